"""Typed JSON values: what parameters, trigger kwargs and callback kwargs look like on the wire.

Plain JSON stays plain. Values JSON cannot hold use the typed form Airflow's
``BaseSerialization`` writes for serialized DAGs, ``{"__type": <type>, "__var": <value>}``:

=============  ==========================================  ===============================
``__type``     ``__var``                                   Python value
=============  ==========================================  ===============================
timedelta      seconds (number)                            ``datetime.timedelta``
datetime       POSIX timestamp (number) or ISO 8601 text   aware ``pendulum.DateTime`` (naive = UTC)
timezone       ``"UTC"``, an IANA name, or ``"+02:00"``    a tzinfo
relativedelta  ``{"days": 1, ...}``                        ``dateutil.relativedelta``
tuple, set     a list                                      ``tuple``, ``set``
dict           an object                                   ``dict`` (a plain object works too)
date           ``"2024-01-31"`` (ISO)                      ``datetime.date``       [extension]
time           ``"12:30:00"`` or ``"12:30:00+02:00"``      ``datetime.time``       [extension]
callable       ``"package.module.function"``               :class:`CallableRef`   [extension]
=============  ==========================================  ===============================

Airflow 3.3 writes ``date`` and ``time`` as plain strings (losing the type), so this module adds the two
extensions in the same shape, plus ``callable`` for ``python_callable``-style arguments. Decoding never
imports anything: a callable stays a :class:`CallableRef` until the engine resolves it through the
allowlist.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pendulum
from dateutil.relativedelta import relativedelta

TYPE = "__type"
VAR = "__var"

_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")
_RELATIVEDELTA_FIELDS = frozenset(
    {"years", "months", "weeks", "days", "hours", "minutes", "seconds", "microseconds", "leapdays"}
    | {"year", "month", "day", "weekday", "hour", "minute", "second", "microsecond"}
)
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


class TypedValueError(ValueError):
    """A value is not valid typed JSON (or cannot be written as typed JSON)."""


@dataclass(frozen=True)
class CallableRef:
    """A reference to an importable function, ``package.module.function``; resolved by the engine."""

    path: str

    @property
    def module(self) -> str:
        return self.path.rsplit(".", 1)[0]

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[1]


Where = str | tuple["Where", str | int]
"""Where a value sits, for error messages: a name, or (parent, key or index), rendered only on error."""


def where_text(where: Where) -> str:
    """``("parameters", "poke"), "delay")`` -> ``"parameters.poke.delay"``; indexes render as ``[i]``."""
    parts: list[str] = []
    while isinstance(where, tuple):
        where, key = where
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return where + "".join(reversed(parts))


def decode(value: Any, where: Where = "parameters") -> Any:
    """Typed JSON (or already-decoded Python values) -> Python values. ``where`` names the value in errors."""
    if isinstance(value, dict):
        if TYPE in value:
            return _decode_typed(value, where)
        return {_key(k, where): decode(v, (where, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, (where, i)) for i, v in enumerate(value)]
    return value


def _key(key: Any, where: Where) -> str:
    if not isinstance(key, str):
        raise TypedValueError(f"{where_text(where)}: object keys must be strings, got {key!r}")
    return key


def _decode_typed(value: dict[str, Any], where: Where) -> Any:
    kind, var = value.get(TYPE), value.get(VAR)
    if len(value) != 2 or VAR not in value:
        raise TypedValueError(f"{where_text(where)}: a typed value has exactly the keys {TYPE!r} and {VAR!r}")
    decoder = _DECODERS.get(kind)  # type: ignore[arg-type]
    if decoder is None:
        raise TypedValueError(f"{where_text(where)}: unknown {TYPE} {kind!r} (known: {', '.join(sorted(_DECODERS))})")
    try:
        return decoder(var, where)
    except TypedValueError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypedValueError(f"{where_text(where)}: invalid {kind} {var!r}: {exc}") from exc


def _decode_timedelta(var: Any, where: Where) -> dt.timedelta:
    return dt.timedelta(seconds=_number(var, where))


def _decode_datetime(var: Any, where: Where) -> pendulum.DateTime:
    if isinstance(var, str):
        parsed = dt.datetime.fromisoformat(var)
        return pendulum.instance(parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC))
    return utc_from_timestamp(_number(var, where))


def utc_from_timestamp(seconds: float) -> pendulum.DateTime:
    """What ``pendulum.from_timestamp(seconds, tz="UTC")`` returns, built directly (a quarter of the time)."""
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return pendulum.DateTime(
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond,
        tzinfo=pendulum.UTC,
    )


def _decode_date(var: Any, where: Where) -> dt.date:
    return dt.date.fromisoformat(_text(var, where))


def _decode_time(var: Any, where: Where) -> dt.time:
    return dt.time.fromisoformat(_text(var, where))


def _decode_timezone(var: Any, where: Where) -> dt.tzinfo:
    return parse_timezone(_text(var, where))


def _decode_relativedelta(var: Any, where: Where) -> relativedelta:
    if not isinstance(var, dict) or not set(var) <= _RELATIVEDELTA_FIELDS:
        raise TypedValueError(
            f"{where_text(where)}: relativedelta takes an object with {sorted(_RELATIVEDELTA_FIELDS)}"
        )
    return relativedelta(**var)


def _decode_sequence(factory: Callable[[list[Any]], Any]) -> Callable[[Any, Where], Any]:
    def decode_sequence(var: Any, where: Where) -> Any:
        if not isinstance(var, list):
            raise TypedValueError(f"{where_text(where)}: expected a list, got {var!r}")
        return factory([decode(v, (where, i)) for i, v in enumerate(var)])

    return decode_sequence


def _decode_dict(var: Any, where: Where) -> dict[str, Any]:
    if not isinstance(var, dict):
        raise TypedValueError(f"{where_text(where)}: expected an object, got {var!r}")
    return {_key(k, where): decode(v, (where, k)) for k, v in var.items()}


def _decode_callable(var: Any, where: Where) -> CallableRef:
    if not isinstance(var, str) or not _DOTTED.match(var):
        raise TypedValueError(
            f"{where_text(where)}: a callable is a dotted path 'package.module.function', got {var!r}"
        )
    return CallableRef(var)


_DECODERS: dict[str, Callable[[Any, Where], Any]] = {
    "timedelta": _decode_timedelta,
    "datetime": _decode_datetime,
    "date": _decode_date,
    "time": _decode_time,
    "timezone": _decode_timezone,
    "relativedelta": _decode_relativedelta,
    "tuple": _decode_sequence(tuple),
    "set": _decode_sequence(set),
    "dict": _decode_dict,
    "callable": _decode_callable,
}


def _number(var: Any, where: Where) -> float:
    if isinstance(var, bool) or not isinstance(var, int | float):
        raise TypedValueError(f"{where_text(where)}: expected a number, got {var!r}")
    return float(var)


def _text(var: Any, where: Where) -> str:
    if not isinstance(var, str):
        raise TypedValueError(f"{where_text(where)}: expected a string, got {var!r}")
    return var


def parse_timezone(name: str) -> dt.tzinfo:
    """``"UTC"``, ``"+02:00"`` or an IANA name -> tzinfo."""
    if name in ("UTC", "Z"):
        return dt.UTC
    if match := _OFFSET.match(name):
        sign = -1 if match.group(1) == "-" else 1
        return dt.timezone(sign * dt.timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    try:
        return pendulum.timezone(name)
    except Exception as exc:
        raise TypedValueError(f"unknown timezone {name!r}") from exc


def encode(value: Any, where: Where = "value") -> Any:
    """Python values -> typed JSON; raises TypedValueError for values outside the table above."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {_key(k, where): encode(v, (where, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [encode(v, (where, i)) for i, v in enumerate(value)]
    if isinstance(value, tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        kind = "tuple" if isinstance(value, tuple) else "set"
        return _typed(kind, [encode(v, (where, i)) for i, v in enumerate(items)])
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return _typed("datetime", aware.timestamp())
    if isinstance(value, dt.date):
        return _typed("date", value.isoformat())
    if isinstance(value, dt.time):
        return _typed("time", value.isoformat())
    if isinstance(value, dt.timedelta):
        return _typed("timedelta", value.total_seconds())
    if isinstance(value, dt.tzinfo):
        return _typed("timezone", _timezone_name(value, where))
    if isinstance(value, relativedelta):
        return _typed("relativedelta", {k: v for k, v in vars(value).items() if k in _RELATIVEDELTA_FIELDS and v})
    if isinstance(value, CallableRef):
        return _typed("callable", value.path)
    if callable(value) and _DOTTED.match(path := f"{getattr(value, '__module__', '')}.{value.__qualname__}"):
        return _typed("callable", path)
    raise TypedValueError(f"{where_text(where)}: cannot write a {type(value).__name__} as typed JSON")


def _typed(kind: str, var: Any) -> dict[str, Any]:
    return {TYPE: kind, VAR: var}


def _timezone_name(tz: dt.tzinfo, where: Where) -> str:
    name = getattr(tz, "name", None) or getattr(tz, "key", None)
    if isinstance(name, str) and name not in ("", "UTC") and not name.startswith(("+", "-")):
        return name
    offset = tz.utcoffset(None)
    if offset is None:
        raise TypedValueError(f"{where_text(where)}: cannot write timezone {tz!r}")
    if not offset:
        return "UTC"
    sign, offset = ("-", -offset) if offset < dt.timedelta(0) else ("+", offset)
    minutes = int(offset.total_seconds()) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
