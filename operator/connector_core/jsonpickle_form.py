"""Read the seed's ``task_config_pkl`` without running jsonpickle's unpickler.

flytekitplugins-airflow stores ``jsonpickle.encode(AirflowObj(...))`` in the Flyte task template. Decoding
that with jsonpickle would import and call whatever the text names, so this module walks the JSON itself
and accepts only the forms jsonpickle writes for plain values:

- ``py/tuple``, ``py/set``, ``py/id`` (a repeated object), plain lists and objects;
- ``py/reduce`` of ``datetime.timedelta``, ``datetime.timezone``, ``pendulum.datetime.DateTime``,
  ``pendulum.tz.timezone.FixedTimezone`` and the ``_unpickle`` of pendulum's and zoneinfo's timezones;
- ``py/object`` ``datetime.datetime`` / ``date`` / ``time`` with their ``__reduce__`` state;
- ``py/function`` and ``py/type`` as values (e.g. ``python_callable``), which become
  :class:`~airflowtask.connector_core.typed.CallableRef` (imported later, through the allowlist).

Anything else (another ``py/object`` class, ``py/newobj``, ``py/state``, ...) is rejected with an error
naming it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import zoneinfo
from typing import Any

import pendulum
from airflowtask.connector_core.typed import CallableRef, parse_timezone

AIRFLOW_OBJ_CLASS = "flytekitplugins.airflow.task.AirflowObj"

_STATE_LENGTH = {"datetime.datetime": 10, "datetime.date": 4, "datetime.time": 6}
_STATE_CLASS: dict[str, type] = {"datetime.datetime": dt.datetime, "datetime.date": dt.date, "datetime.time": dt.time}


class JsonpickleFormError(ValueError):
    """The text is not a jsonpickle-encoded AirflowObj made of accepted forms."""


def parse_airflow_obj(text: str) -> tuple[str, str, dict[str, Any]]:
    """jsonpickle text of an AirflowObj -> ``(module, name, parameters)``."""
    try:
        root = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonpickleFormError(f"not JSON: {exc}") from exc
    if not isinstance(root, dict) or root.get("py/object") != AIRFLOW_OBJ_CLASS:
        found = root.get("py/object") if isinstance(root, dict) else type(root).__name__
        raise JsonpickleFormError(f"expected a py/object {AIRFLOW_OBJ_CLASS}, found {found!r}")
    unexpected = set(root) - {"py/object", "module", "name", "parameters"}
    if unexpected:
        raise JsonpickleFormError(f"unexpected AirflowObj fields {sorted(unexpected)}")
    module, name, parameters = root.get("module"), root.get("name"), root.get("parameters", {})
    if not isinstance(module, str) or not isinstance(name, str):
        raise JsonpickleFormError("AirflowObj.module and AirflowObj.name must be strings")
    walker = _Walker()
    walker.refs.append(root)  # jsonpickle numbers the AirflowObj itself first
    decoded = walker.value(parameters, "parameters")
    if not isinstance(decoded, dict):
        raise JsonpickleFormError("AirflowObj.parameters must be an object")
    return module, name, decoded


class _Walker:
    """Turns accepted jsonpickle forms into values, numbering objects as jsonpickle's unpickler does."""

    def __init__(self) -> None:
        self.refs: list[Any] = []

    def value(self, node: Any, where: str) -> Any:
        if isinstance(node, list):
            items: list[Any] = []
            self.refs.append(items)
            items.extend(self.value(v, f"{where}[{i}]") for i, v in enumerate(node))
            return items
        if not isinstance(node, dict):
            return node
        tags = [key for key in node if key.startswith("py/")]
        if not tags:
            plain: dict[str, Any] = {}
            self.refs.append(plain)
            for key, item in node.items():
                plain[key] = self.value(item, f"{where}.{key}")
            return plain
        if len(tags) != 1:
            raise JsonpickleFormError(f"{where}: unsupported combination of tags {tags}")
        tag = tags[0]
        if tag == "py/tuple":
            return tuple(self._items(node[tag], where))
        if tag == "py/set":
            return set(self._items(node[tag], where))
        if tag == "py/id":
            return self._ref(node[tag], where)
        if tag in ("py/function", "py/type"):
            return self._callable(node[tag], where)
        if tag == "py/reduce":
            return self._reduce(node[tag], where)
        if tag == "py/object":
            return self._object(node, where)
        raise JsonpickleFormError(f"{where}: {tag} is not accepted")

    def _items(self, node: Any, where: str) -> list[Any]:
        if not isinstance(node, list):
            raise JsonpickleFormError(f"{where}: expected a list")
        return [self.value(v, f"{where}[{i}]") for i, v in enumerate(node)]

    def _ref(self, index: Any, where: str) -> Any:
        if not isinstance(index, int) or not 0 <= index < len(self.refs):
            raise JsonpickleFormError(f"{where}: py/id {index!r} refers to nothing seen before")
        return self.refs[index]

    @staticmethod
    def _callable(path: Any, where: str) -> CallableRef:
        if not isinstance(path, str) or "." not in path:
            raise JsonpickleFormError(f"{where}: bad function path {path!r}")
        return CallableRef(path)

    def _reduce(self, node: Any, where: str) -> Any:
        slot = len(self.refs)
        self.refs.append(None)
        if not isinstance(node, list) or not 2 <= len(node) <= 3 or not isinstance(node[0], dict):
            raise JsonpickleFormError(f"{where}: malformed py/reduce")
        factory = node[0].get("py/type") or node[0].get("py/function")
        args = node[1].get("py/tuple") if isinstance(node[1], dict) else None
        if not isinstance(args, list):
            raise JsonpickleFormError(f"{where}: py/reduce of {factory!r} without a py/tuple of arguments")
        values = [self.value(v, f"{where}.args[{i}]") for i, v in enumerate(args)]
        if len(node) == 3:
            self.value(node[2], f"{where}.state")  # numbered like jsonpickle does, then ignored
        builder = _REDUCERS.get(factory)  # type: ignore[arg-type]
        if builder is None:
            raise JsonpickleFormError(f"{where}: py/reduce of {factory!r} is not accepted")
        try:
            result = builder(*values)
        except (TypeError, ValueError, OverflowError, zoneinfo.ZoneInfoNotFoundError) as exc:
            raise JsonpickleFormError(f"{where}: invalid {factory} arguments {values!r}: {exc}") from exc
        self.refs[slot] = result
        return result

    def _object(self, node: dict[str, Any], where: str) -> Any:
        classname = node["py/object"]
        if classname not in _STATE_CLASS:
            raise JsonpickleFormError(f"{where}: py/object {classname!r} is not accepted")
        slot = len(self.refs)
        self.refs.append(None)
        reduce = node.get("__reduce__")
        if set(node) != {"py/object", "__reduce__"} or not isinstance(reduce, list) or len(reduce) != 2:
            raise JsonpickleFormError(f"{where}: py/object {classname} without its __reduce__ state")
        if reduce[0] != {"py/type": classname} or not isinstance(reduce[1], list) or not 1 <= len(reduce[1]) <= 2:
            raise JsonpickleFormError(f"{where}: malformed __reduce__ of {classname}")
        state, *tz = reduce[1]
        try:
            raw = base64.b64decode(state, validate=True)
        except (binascii.Error, TypeError) as exc:
            raise JsonpickleFormError(f"{where}: bad {classname} state {state!r}") from exc
        if len(raw) != _STATE_LENGTH[classname]:
            raise JsonpickleFormError(f"{where}: bad {classname} state length {len(raw)}")
        tzinfo = self.value(tz[0], f"{where}.tzinfo") if tz else None
        if tzinfo is not None and not isinstance(tzinfo, dt.tzinfo):
            raise JsonpickleFormError(f"{where}: {tzinfo!r} is not a timezone")
        try:
            result = _STATE_CLASS[classname](raw, tzinfo) if tz else _STATE_CLASS[classname](raw)
        except (TypeError, ValueError) as exc:
            raise JsonpickleFormError(f"{where}: bad {classname} state: {exc}") from exc
        self.refs[slot] = result
        return result


def _timedelta(days: int, seconds: int = 0, microseconds: int = 0) -> dt.timedelta:
    return dt.timedelta(days=_int(days), seconds=_int(seconds), microseconds=_int(microseconds))


def _timezone(offset: dt.timedelta, name: str | None = None) -> dt.timezone:
    if not isinstance(offset, dt.timedelta):
        raise TypeError("timezone offset must be a timedelta")
    return dt.timezone(offset, name) if name is not None else dt.timezone(offset)


def _pendulum_datetime(*args: Any) -> pendulum.DateTime:
    if not 3 <= len(args) <= 9:
        raise TypeError("DateTime takes 3 to 9 arguments")
    fields = [_int(a) for a in args[:7]]
    tz = args[7] if len(args) > 7 else None
    if tz is not None and not isinstance(tz, dt.tzinfo):
        raise TypeError("DateTime tzinfo must be a timezone")
    fold = _int(args[8]) if len(args) > 8 else 0
    return pendulum.instance(dt.datetime(*fields, tzinfo=tz, fold=fold))


def _fixed_timezone(offset: int, name: str | None = None) -> dt.tzinfo:
    return pendulum.FixedTimezone(_int(offset), name=name if isinstance(name, str) else None)


def _named_timezone(name: str, *_: Any) -> dt.tzinfo:
    if not isinstance(name, str):
        raise TypeError("timezone name must be a string")
    return parse_timezone(name)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


_REDUCERS: dict[str, Any] = {
    "datetime.timedelta": _timedelta,
    "datetime.timezone": _timezone,
    "pendulum.datetime.DateTime": _pendulum_datetime,
    "pendulum.tz.timezone.FixedTimezone": _fixed_timezone,
    "pendulum.tz.timezone.Timezone._unpickle": _named_timezone,
    "zoneinfo.ZoneInfo._unpickle": _named_timezone,
}
