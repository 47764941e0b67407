"""The blocking work of a task, run in the engine's worker threads.

Sensors run in reschedule mode: ``execute`` pokes once and raises AirflowRescheduleException when the
condition is not met yet, so Airflow's own sensor code applies ``timeout`` (counted from the task's first
create, which ``ti.get_first_reschedule_date`` reports), ``soft_fail``, ``never_fail``, ``silent_fail``
and ``PokeReturnValue``. A sensor that refuses reschedule mode is poked directly by :func:`poke_once`.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator, BaseSensorOperator, PokeReturnValue
from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, ExecutorSafeguard, TriggerFailureReason
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferralError,
)
from airflowtask.connector_core import typed
from airflowtask.connector_core.context import build_context
from airflowtask.connector_core.encoding import AirflowMetadata
from airflowtask.connector_core.loader import Kind, Loaded, Loader, LoadError
from airflowtask.connector_core.model import Reason, RunInfo


@dataclass
class Prepared:
    """A live task: the built instance, its context, and its attributes right after rendering."""

    loaded: Loaded
    context: dict[str, Any]
    baseline: dict[str, Any]

    @property
    def operator(self) -> BaseOperator | None:
        return self.loaded.instance if self.loaded.kind is Kind.OPERATOR else None


def prepare(loader: Loader, meta: AirflowMetadata, run: RunInfo, xcoms: dict[str, Any]) -> Prepared:
    """Build the instance, its context, and render its templated fields."""
    loaded = loader.load(meta.airflow_operator, meta.task_id)
    context: dict[str, Any] = {}
    if loaded.kind is Kind.OPERATOR:
        operator = loaded.instance
        try:
            context = build_context(operator, run, xcoms, meta.started_at or datetime.now(UTC))
            operator.render_template_fields(context)
        except Exception as exc:
            raise LoadError(
                Reason.INVALID_PARAMETERS, f"rendering the task failed: {type(exc).__name__}: {exc}"
            ) from exc
    return Prepared(loaded, context, dict(vars(loaded.instance)))


def execute(prepared: Prepared) -> Any:
    """Run the task once: execute() (one poke for sensors) or the hook's method."""
    loaded = prepared.loaded
    if loaded.kind is Kind.HOOK:
        call = loaded.hook_call
        assert call is not None
        return getattr(loaded.instance, call.method)(*call.args, **call.kwargs)
    operator = loaded.instance
    ExecutorSafeguard.tracker.set(operator)
    if loaded.poke_only:
        return poke_once(operator, prepared.context)
    return operator.execute(context=prepared.context)


def resume(prepared: Prepared, method: str, next_kwargs: dict[str, Any]) -> Any:
    """Run the callback a deferral named (``event`` is in ``next_kwargs``)."""
    operator = prepared.loaded.instance
    ExecutorSafeguard.tracker.set(operator)
    return operator.resume_execution(method, next_kwargs, prepared.context)


def fail_deferral(prepared: Prepared, error: BaseException | None) -> Any:
    """Tell the operator its trigger timed out (``error`` None) or failed, as Airflow's scheduler does."""
    if error is None:
        return resume(prepared, TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_TIMEOUT.value})
    lines = traceback.format_exception(error)
    try:
        return resume(
            prepared, TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_FAILURE.value, "traceback": lines}
        )
    except TaskDeferralError as exc:
        raise AirflowException(f"the trigger failed: {type(error).__name__}: {error}") from exc


def poke_once(sensor: BaseSensorOperator, context: dict[str, Any]) -> Any:
    """One poke with Airflow's timeout and soft_fail rules, for sensors that cannot run in reschedule mode."""
    done = sensor.poke(context)
    if done:
        return done.xcom_value if isinstance(done, PokeReturnValue) else None
    now = datetime.now(UTC)
    waited = (now - context["ti"].get_first_reschedule_date(context)).total_seconds()
    if waited > sensor.timeout:
        message = f"Sensor has timed out; waited {waited:.1f} seconds, more than its timeout of {sensor.timeout}."
        raise AirflowSkipException(message) if sensor.soft_fail else AirflowSensorTimeout(message)
    raise AirflowRescheduleException(now + timedelta(seconds=sensor.poke_interval))


def on_kill(prepared: Prepared) -> None:
    if (operator := prepared.operator) is not None:
        operator.on_kill()


def changed_state(prepared: Prepared) -> tuple[dict[str, Any], dict[str, Any]]:
    """Attributes execute() set on the operator (a job id, say), split into typed-JSON-able and other values.

    They are restored on a rebuilt operator after a restart, before ``on_kill`` or a callback runs.
    """
    operator = prepared.operator
    if operator is None:
        return {}, {}
    plain: dict[str, Any] = {}
    other: dict[str, Any] = {}
    cls = type(operator)
    for name, value in vars(operator).items():
        if name in prepared.baseline and prepared.baseline[name] is value:
            continue
        if name.startswith("__") or name == "_log" or isinstance(getattr(cls, name, None), property | cached_property):
            continue
        try:
            typed.encode(value)
            plain[name] = value
        except typed.TypedValueError:
            other[name] = value
    return plain, other


def restore_state(prepared: Prepared, state: dict[str, Any]) -> None:
    for name, value in state.items():
        setattr(prepared.loaded.instance, name, value)
