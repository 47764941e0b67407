"""What a worker Pod reports, read as untrusted input.

A task's own code runs in the worker's container: it can write any termination message and stop the worker
before the worker writes its own. So the outcome is parsed against the worker's schema (see
:mod:`airflowtask.worker`) and anything else is refused with :class:`InvalidReport`, whose ``message`` names the
first thing refused. Parsing is pure: it imports nothing (no Airflow, no kopf), so the controller can use it.

What is checked: size (OUTCOME_LIMIT bytes) and nesting depth (MAX_DEPTH) before decoding; JSON without
NaN/Infinity or repeated keys; exactly the worker's keys at every level; ``phase`` and ``reason`` from their
enums and consistent with each other; types and sizes of every field; a deferral iff the phase is Deferred; the
trigger's classpath a dotted path whose module the allowlist matches and which does not name an operator, sensor
or hook; trigger kwargs, ``nextKwargs`` and ``state`` typed JSON data (:mod:`airflowtask.connector_core.typed`'s
form) without callable references. Whether the classpath names a ``BaseTrigger`` subclass can only be known by
importing it: the triggerer checks that when it builds the trigger.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Any

from airflowtask.connector_core.model import Reason

INVALID_OUTCOME = "InvalidOutcome"
"""The reason of a task whose Pod reported something :func:`parse_outcome` refused."""

OUTCOME_LIMIT = 4096
"""Bytes of a termination message (the worker's OUTCOME_LIMIT)."""
MESSAGE_LIMIT = 1024
"""Bytes of ``message`` (the worker's MESSAGE_LIMIT)."""
MAX_DEPTH = 32
"""Nesting levels of JSON objects and arrays."""
JOB_ID_LIMIT = 512
CLASSPATH_LIMIT = 512
METHOD_LIMIT = 128
PATH_LIMIT = 200
"""Characters of a value's path shown in a message; a longer one ends with "..."."""

NOT_TRIGGER_PACKAGES = frozenset({"operators", "sensors", "hooks"})
"""Module path parts under which Airflow keeps operators, sensors and hooks, never triggers."""
NOT_TRIGGER_SUFFIXES = ("Operator", "Sensor", "Hook")

DATA_TYPES = frozenset({"timedelta", "datetime", "date", "time", "timezone", "relativedelta", "tuple", "set", "dict"})
"""The typed JSON ``__type`` values that are data (``callable`` is not)."""
RELATIVEDELTA_FIELDS = frozenset(
    {"years", "months", "weeks", "days", "hours", "minutes", "seconds", "microseconds", "leapdays"}
    | {"year", "month", "day", "weekday", "hour", "minute", "second", "microsecond"}
)
_TIMESTAMPS = (-62135596800.0, 253402300799.0)
"""POSIX timestamps of 0001-01-01 and 9999-12-31T23:59:59 UTC: what a datetime can hold."""

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHOWN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_TIMEZONE = re.compile(r"UTC|Z|[+-]\d{2}:\d{2}|[A-Za-z][A-Za-z0-9_+-]{0,30}(/[A-Za-z0-9_+-]{1,30}){0,3}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""What the worker's clean_message strips from a message (newlines and tabs stay)."""


class ReportPhase(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DEFERRED = "Deferred"


_SUCCEEDED_REASONS = frozenset({Reason.COMPLETED, Reason.SKIPPED})
_RUNNING_REASONS = frozenset({Reason.EXECUTING, Reason.WAITING, Reason.DEFERRED})
_REASONS: dict[ReportPhase, frozenset[Reason]] = {
    ReportPhase.SUCCEEDED: _SUCCEEDED_REASONS,
    ReportPhase.DEFERRED: frozenset({Reason.DEFERRED}),
    ReportPhase.FAILED: frozenset(Reason) - _SUCCEEDED_REASONS - _RUNNING_REASONS,
}
"""The reasons a worker reports with each phase."""

_TOP_KEYS = ("phase", "reason", "message", "retryable", "result", "jobId", "state", "deferral")
_DEFERRAL_KEYS = ("trigger", "method", "nextKwargs", "timeout", "deadline")
_TRIGGER_KEYS = ("classpath", "kwargs")


class InvalidReport(ValueError):
    """A report was refused; ``message`` names the first thing refused."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Deferral:
    """The trigger a deferred step hands over, and how to resume the task when it fires."""

    classpath: str
    kwargs: dict[str, Any]
    """Typed JSON of the trigger's ``serialize()`` kwargs (checked to be data)."""
    method: str | None
    next_kwargs: dict[str, Any]
    timeout: float | None
    deadline: datetime | None
    """Timezone-aware."""

    def document(self) -> dict[str, Any]:
        """The deferral as the worker wrote it."""
        return {
            "trigger": {"classpath": self.classpath, "kwargs": self.kwargs},
            "method": self.method,
            "nextKwargs": self.next_kwargs,
            "timeout": self.timeout,
            "deadline": None if self.deadline is None else self.deadline.isoformat(),
        }


@dataclass(frozen=True)
class Outcome:
    """One step's outcome as a worker reports it, checked."""

    phase: ReportPhase
    reason: Reason
    message: str
    retryable: bool
    result: Any = None
    job_id: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    """Deferred only (else empty): typed JSON of the operator's attributes."""
    deferral: Deferral | None = None
    """Set iff ``phase`` is Deferred."""


def parse_outcome(raw: str | bytes, allowlist: tuple[str, ...]) -> Outcome:
    """The outcome in a termination message; InvalidReport names the first thing refused.

    ``allowlist`` holds the module patterns (fnmatch, as :class:`~airflowtask.connector_core.allowlist.Allowlist`)
    a trigger's module must match.
    """
    document = _load(raw)
    return _outcome(_object(document, "the outcome"), tuple(allowlist))


def check_trigger_kwargs(kwargs: Any, *, where: str = "deferral.trigger.kwargs") -> None:
    """Refuse trigger kwargs that are not a JSON object of typed JSON data (a callable reference, say)."""
    check_data(_object(kwargs, where), where)


def check_classpath(classpath: Any, allowlist: Iterable[str], *, where: str = "deferral.trigger.classpath") -> str:
    """``classpath`` when it is a dotted path in an allowed module that may name a trigger; else InvalidReport.

    Not checked (it needs an import): that it names a BaseTrigger subclass.
    """
    if not isinstance(classpath, str):
        raise InvalidReport(f"{where} must be a string, got {_show(classpath)}")
    if len(classpath) > CLASSPATH_LIMIT:
        raise InvalidReport(f"{where} is longer than {CLASSPATH_LIMIT} characters")
    if not _DOTTED.fullmatch(classpath):
        raise InvalidReport(f"{where} must be a dotted Python path, got {_show(classpath)}")
    module, name = classpath.rsplit(".", 1)
    if NOT_TRIGGER_PACKAGES.intersection(module.split(".")) or name.endswith(NOT_TRIGGER_SUFFIXES):
        raise InvalidReport(f"{where} {classpath} is not a trigger")
    patterns = tuple(allowlist)
    if not any(fnmatchcase(module, pattern) for pattern in patterns):
        raise InvalidReport(
            f"{where} {classpath} is not allowed: module {module} matches none of the allowed patterns "
            f"{', '.join(patterns) or '(none)'}"
        )
    return classpath


def check_data(value: Any, where: str) -> None:
    """Refuse anything in ``value`` that is not typed JSON data: a callable reference, an unknown ``__type``,
    a malformed typed value, a value JSON cannot hold. Iterative: any depth is fine."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                bad = next(key for key in item if not isinstance(key, str))
                raise InvalidReport(f"{path}: object keys must be strings, got {_show(bad)}")
            parts = _typed_parts(item, path) if "__type" in item else [(v, _child(path, k)) for k, v in item.items()]
            stack.extend(reversed(parts))  # the first problem in document order is the one named
        elif isinstance(item, list):
            stack.extend(reversed([(v, _child(path, i)) for i, v in enumerate(item)]))
        elif item is not None and not isinstance(item, str | int | float):  # bool is an int
            raise InvalidReport(f"{path}: a {type(item).__name__} is not JSON")
        elif isinstance(item, float) and not _is_number(item):
            raise InvalidReport(f"{path}: {item} is not JSON")


# ---- decoding ------------------------------------------------------------------------------------------------


def _load(raw: str | bytes) -> Any:
    if isinstance(raw, bytes | bytearray):
        if len(raw) > OUTCOME_LIMIT:
            raise InvalidReport(f"the outcome is {len(raw)} bytes, more than the {OUTCOME_LIMIT} a worker writes")
        try:
            text = bytes(raw).decode()
        except UnicodeDecodeError as exc:
            raise InvalidReport(f"the outcome is not UTF-8 text (byte {exc.start})") from None
    elif isinstance(raw, str):
        if (size := len(raw.encode(errors="surrogatepass"))) > OUTCOME_LIMIT:
            raise InvalidReport(f"the outcome is {size} bytes, more than the {OUTCOME_LIMIT} a worker writes")
        text = raw
    else:
        raise InvalidReport(f"the outcome must be text, got {type(raw).__name__}")
    if _depth(text) > MAX_DEPTH:
        raise InvalidReport(f"the outcome is nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InvalidReport(f"the outcome is not JSON: {exc.msg} at character {exc.pos}") from None
    except RecursionError:
        raise InvalidReport(f"the outcome is nested deeper than {MAX_DEPTH} levels") from None


def _depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` outside JSON strings (a scan: no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise InvalidReport(f"the outcome repeats the key {_show(key)}")
        document[key] = value
    return document


def _no_constant(name: str) -> Any:
    raise InvalidReport(f"the outcome holds {name}, which is not JSON")


# ---- the schema ----------------------------------------------------------------------------------------------


def _outcome(document: dict[str, Any], allowlist: tuple[str, ...]) -> Outcome:
    _exact_keys(document, _TOP_KEYS, "the outcome")
    phase = _phase(document["phase"])
    reason = _reason(document["reason"], phase)
    message = _message(document["message"])
    retryable = document["retryable"]
    if not isinstance(retryable, bool):
        raise InvalidReport(f"retryable must be true or false, got {_show(retryable)}")
    job_id = _job_id(document["jobId"])
    state = _object(document["state"], "state")
    check_data(state, "state")
    deferral = document["deferral"]
    if phase is ReportPhase.DEFERRED:
        if deferral is None:
            raise InvalidReport("deferral is required when phase is Deferred")
        return Outcome(
            phase, reason, message, retryable, document["result"], job_id, state, _deferral(deferral, allowlist)
        )
    if deferral is not None:
        raise InvalidReport(f"deferral must be null when phase is {phase}")
    if state:
        raise InvalidReport(f"state must be empty when phase is {phase}")
    return Outcome(phase, reason, message, retryable, document["result"], job_id, state)


def _phase(value: Any) -> ReportPhase:
    if not isinstance(value, str) or value not in set(ReportPhase):
        raise InvalidReport(f"phase must be one of {', '.join(ReportPhase)}, got {_show(value)}")
    return ReportPhase(value)


def _reason(value: Any, phase: ReportPhase) -> Reason:
    if not isinstance(value, str) or value not in set(Reason):
        raise InvalidReport(f"reason must be one of the reasons a worker reports, got {_show(value)}")
    reason = Reason(value)
    if reason not in _REASONS[phase]:
        raise InvalidReport(f"reason {reason} does not go with phase {phase}")
    return reason


def _message(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidReport(f"message must be a string, got {_show(value)}")
    size = len(value.encode(errors="backslashreplace"))
    if size > MESSAGE_LIMIT:
        raise InvalidReport(f"message is {size} bytes, more than the {MESSAGE_LIMIT} a worker writes")
    if _CONTROL.search(value):
        raise InvalidReport("message holds terminal control characters")
    return value


def _job_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidReport(f"jobId must be a string or null, got {_show(value)}")
    if len(value) > JOB_ID_LIMIT:
        raise InvalidReport(f"jobId is longer than {JOB_ID_LIMIT} characters")
    if _CONTROL.search(value) or "\n" in value or "\t" in value:
        raise InvalidReport("jobId holds control characters")
    return value


def _deferral(value: Any, allowlist: tuple[str, ...]) -> Deferral:
    deferral = _object(value, "deferral")
    _exact_keys(deferral, _DEFERRAL_KEYS, "deferral")
    trigger = _object(deferral["trigger"], "deferral.trigger")
    _exact_keys(trigger, _TRIGGER_KEYS, "deferral.trigger")
    classpath = check_classpath(trigger["classpath"], allowlist)
    kwargs = trigger["kwargs"]
    check_trigger_kwargs(kwargs)
    next_kwargs = _object(deferral["nextKwargs"], "deferral.nextKwargs")
    check_data(next_kwargs, "deferral.nextKwargs")
    timeout, deadline = _timeout(deferral["timeout"]), _deadline(deferral["deadline"])
    if (timeout is None) != (deadline is None):
        raise InvalidReport("deferral.timeout and deferral.deadline must both be set or both be null")
    return Deferral(classpath, kwargs, _method(deferral["method"]), next_kwargs, timeout, deadline)


def _method(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > METHOD_LIMIT or not _IDENTIFIER.fullmatch(value):
        raise InvalidReport(f"deferral.method must be a method name or null, got {_show(value)}")
    return value


def _timeout(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidReport(f"deferral.timeout must be a number of seconds (at least 0) or null, got {_show(value)}")
    return float(value)


def _deadline(value: Any) -> datetime | None:
    if value is None:
        return None
    problem = f"deferral.deadline must be an ISO 8601 time with a timezone or null, got {_show(value)}"
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidReport(problem)
    try:
        deadline = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidReport(problem) from None
    if deadline.tzinfo is None or deadline.utcoffset() is None:
        raise InvalidReport(problem)
    return deadline


# ---- typed JSON data -----------------------------------------------------------------------------------------


def _typed_parts(item: dict[str, Any], path: str) -> list[tuple[Any, str]]:
    """Check a typed value's shape; the parts of it that are data in turn."""
    kind, var = item["__type"], item.get("__var")
    if kind == "callable":
        raise InvalidReport(f"{path}: a callable reference is not data")
    if not isinstance(kind, str) or kind not in DATA_TYPES:
        raise InvalidReport(f"{path}: unknown __type {_show(kind)}")
    if len(item) != 2 or "__var" not in item:
        raise InvalidReport(f"{path}: a typed value has exactly the keys '__type' and '__var'")
    if kind in ("tuple", "set"):
        if not isinstance(var, list):
            raise InvalidReport(f"{path}: a {kind} is a list, got {_show(var)}")
        return [(v, _child(path, i)) for i, v in enumerate(var)]
    if kind == "dict":
        if not isinstance(var, dict):
            raise InvalidReport(f"{path}: a dict is an object, got {_show(var)}")
        return [(v, _child(path, k)) for k, v in var.items()]
    if kind == "relativedelta":
        _relativedelta(var, path)
    elif not _SCALARS[kind](var):
        raise InvalidReport(f"{path}: {_SCALAR_FORMS[kind]}, got {_show(var)}")
    return []


def _relativedelta(var: Any, path: str) -> None:
    if not isinstance(var, dict):
        raise InvalidReport(f"{path}: a relativedelta is an object, got {_show(var)}")
    for key, value in var.items():
        if key not in RELATIVEDELTA_FIELDS:
            raise InvalidReport(f"{path}: a relativedelta has no field {_show(key)}")
        if not _is_number(value):
            raise InvalidReport(f"{_child(path, key)}: a relativedelta field is a number, got {_show(value)}")


def _is_number(value: Any) -> bool:
    """An int or a finite float, not a bool."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or math.isfinite(value)


def _is_timestamp(value: Any) -> bool:
    return _is_number(value) and _TIMESTAMPS[0] <= value <= _TIMESTAMPS[1]


def _parses(parse: Callable[[str], object]) -> Callable[[Any], bool]:
    """A check that a value is a short string ``parse`` accepts."""

    def check(value: Any) -> bool:
        if not isinstance(value, str) or len(value) > 64:
            return False
        try:
            parse(value)
        except ValueError:
            return False
        return True

    return check


_is_iso_datetime = _parses(datetime.fromisoformat)
_SCALARS: dict[str, Callable[[Any], bool]] = {
    "timedelta": _is_number,
    "datetime": lambda v: _is_timestamp(v) or _is_iso_datetime(v),
    "date": _parses(date.fromisoformat),
    "time": _parses(time.fromisoformat),
    "timezone": lambda v: isinstance(v, str) and bool(_TIMEZONE.fullmatch(v)),
}
_SCALAR_FORMS = {
    "timedelta": "a timedelta is a number of seconds",
    "datetime": "a datetime is a POSIX timestamp or an ISO 8601 time",
    "date": "a date is an ISO 8601 date",
    "time": "a time is an ISO 8601 time of day",
    "timezone": "a timezone is 'UTC', '+HH:MM' or an IANA name",
}


# ---- helpers -------------------------------------------------------------------------------------------------


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidReport(f"{where} must be a JSON object, got {_show(value)}")
    return value


def _exact_keys(document: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    if unknown := [key for key in document if key not in keys]:
        raise InvalidReport(f"{where} has an unknown key {_show(unknown[0])}")
    if missing := [key for key in keys if key not in document]:
        raise InvalidReport(f"{where} lacks the key {missing[0]!r}")


def _child(path: str, key: Any) -> str:
    if len(path) > PATH_LIMIT:  # a deep path is named by its start
        return path if path.endswith("...") else f"{path}..."
    if isinstance(key, int):
        return f"{path}[{key}]"
    if isinstance(key, str) and _SHOWN_KEY.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{_show(key)}]"


def _show(value: Any) -> str:
    """A short, printable rendering of a value from a report: scalars as repr (cut), containers by type."""
    if isinstance(value, str):
        shown = repr(value[:40])
        return shown if len(value) <= 40 else f"{shown}..."
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return "a very large number"
    if value is None or isinstance(value, bool | int | float):
        shown = repr(value)
        return shown if len(shown) <= 40 else f"{shown[:40]}..."
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
