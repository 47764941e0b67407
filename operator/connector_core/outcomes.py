"""How an exception or a return value becomes a phase, a reason and a JSON result."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    DownstreamTasksSkipped,
)
from airflowtask.connector_core.loader import LoadError
from airflowtask.connector_core.model import Phase, Reason


@dataclass(frozen=True)
class Verdict:
    phase: Phase
    reason: Reason
    message: str
    retryable: bool = True


def from_exception(exc: BaseException) -> Verdict:
    """The verdict for an exception raised by execute, a callback, a poke or a hook call."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, AirflowSkipException):
        return Verdict(Phase.SUCCEEDED, Reason.SKIPPED, text)
    if isinstance(exc, DownstreamTasksSkipped):
        return Verdict(Phase.SUCCEEDED, Reason.COMPLETED, "completed (downstream tasks would be skipped)")
    if isinstance(exc, AirflowFailException):
        return Verdict(Phase.FAILED, Reason.FAILED_NO_RETRY, text, retryable=False)
    if isinstance(exc, AirflowSensorTimeout):
        return Verdict(Phase.FAILED, Reason.SENSOR_TIMEOUT, text, retryable=False)
    return Verdict(Phase.FAILED, Reason.TASK_FAILED, text)


def load_verdict(exc: BaseException) -> Verdict:
    """The verdict for a failure to build or rebuild a task."""
    if isinstance(exc, LoadError):
        return Verdict(Phase.FAILED, exc.reason, str(exc), retryable=False)
    return Verdict(Phase.FAILED, Reason.TASK_FAILED, f"building the task failed: {type(exc).__name__}: {exc}")


def step_verdict(exc: BaseException) -> Verdict:
    """The verdict for an exception from a step (a LoadError there comes from rebuilding its trigger)."""
    return load_verdict(exc) if isinstance(exc, LoadError) else from_exception(exc)


def completed(return_value: Any, instance: Any, xcoms: Mapping[str, Any]) -> tuple[Verdict, Any]:
    """The verdict and result of a step that returned ``return_value`` (pushed unless do_xcom_push is off)."""
    push = getattr(instance, "do_xcom_push", True)
    return Verdict(Phase.SUCCEEDED, Reason.COMPLETED, "completed"), result_of(return_value, xcoms, push)


def result_of(return_value: Any, xcoms: Mapping[str, Any], push_return: bool = True) -> Any:
    """The task's result: the return value, or (when values were pushed) all XComs including it."""
    if not xcoms:
        return jsonable(return_value) if push_return else None
    values = dict(xcoms)
    if push_return and return_value is not None:
        values["return_value"] = return_value
    return jsonable(values)


def jsonable(value: Any) -> Any:
    """A JSON-serializable copy of ``value``: containers kept, times as ISO text, other values as str()."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return str(value)


def find_job_id(*sources: Mapping[str, Any]) -> str | None:
    """The first ``job_id`` found in the given mappings (operator attributes, trigger kwargs, XComs)."""
    for source in sources:
        value = source.get("job_id")
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return None
