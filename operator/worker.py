"""The worker entry point: one step of one AirflowTask, run by a Pod in the task's namespace.

Run as ``python -m airflowtask.worker``. The operator builds the Pod; nothing of the operator (its token, its
signing key, other tasks' connections) reaches it. The worker builds the task through the same allowlist,
Airflow 2 -> 3 path mapping and rendering as the in-process engine (:mod:`airflowtask.connector_core`), runs the
step, and reports one outcome.

Environment
-----------
``AIRFLOWTASK_WORK``             the work order, one JSON object (below); it holds no secrets
``AIRFLOWTASK_TERMINATION_LOG``  the file the outcome is written to (default ``/dev/termination-log``)
``AIRFLOWTASK_ALLOWED_MODULES``  comma separated module patterns (default: the operator's default)
``AIRFLOW_CONN_<ID>``            the task's connections, filled by the kubelet from the Secrets the spec names
``AIRFLOW_HOME``                 a writable directory (the image sets ``/tmp/airflow``)

Work order (typed JSON is :mod:`airflowtask.connector_core.typed`'s ``{"__type", "__var"}`` form)::

    {"version": 1,                          optional; only 1 is understood
     "step": "execute" | "callback" | "kill",
     "task": {"operator": {"module", "name", "parameters"},   the AirflowTask's spec.operator (typed JSON)
              "name": "wait-for-report",    the AirflowTask's name; the task_id unless parameters name one
              "namespace", "uid",           optional, for the log
              "attempt": 1,                 optional (default 1): ti.try_number
              "logicalDate": "<ISO 8601>",  optional (default now; naive = UTC); run_id is airflowtask__<it>
              "params": {}},                optional: the run's params
     "method": "execute_complete",          callback: the method to call (default execute_complete)
     "event": <typed JSON>,                 callback: the trigger event's payload, passed as ``event``
     "nextKwargs": {<typed JSON>},          callback: the deferral's next_kwargs
     "state": {<typed JSON>}}               callback, kill: the ``state`` of the Deferred outcome

- ``execute``: the operator's ``execute()``; a sensor pokes in this process at its ``poke_interval`` until done,
  with its own ``timeout``, ``soft_fail`` and backoff (its ``mode`` is set to ``poke``: nothing reschedules a
  Pod); a hook: its method. Operators that accept ``deferrable`` defer unless the parameters say otherwise, as in
  the engine. A deferral's trigger is rebuilt once from ``serialize()`` through the allowlist before it is
  reported, so a trigger the operator would refuse fails here.
- ``callback``: rebuild the task, restore ``state``, call ``method`` with the context and ``nextKwargs`` plus
  ``event``. A trigger that timed out or failed is reported as Airflow's scheduler does: ``method`` ``__fail__``,
  no ``event``, ``nextKwargs`` ``{"error": "Trigger timeout"}`` (a sensor then ends SensorTimeout), or
  ``{"error": "Trigger failure", "traceback": [lines]}`` (Airflow's ``TriggerFailureReason`` values).
- ``kill``: rebuild the task, restore ``state`` and call ``on_kill()`` (cancels a deferred task's external job).

``execute`` and callbacks honour the operator's ``execution_timeout`` (then ``on_kill()``, as Airflow does).
SIGTERM during a step calls ``on_kill()`` and ends the step ``Failed``/``Cancelled`` (``retryable``: the Pod may
have been evicted); SIGTERM after a step finished changes nothing. SIGINT and SIGHUP during a step, and any
``BaseException`` out of it (``KeyboardInterrupt``, ``SystemExit`` from task code, ...), call ``on_kill()`` too and
end the step ``Failed``/``Interrupted``, so the worker still writes its own outcome (over whatever the task's code
wrote to the termination log). That is defence in depth only: the operator does not trust what a Pod reports
(:mod:`airflowtask.reports`), since task code can also SIGKILL the worker.

Outcome (written to the termination log; at most 4096 bytes, which Kubernetes keeps)::

    {"phase": "Succeeded" | "Failed" | "Deferred",
     "reason": "Completed", "Skipped", "Deferred", "TaskFailed", "FailedNoRetry", "SensorTimeout", "Cancelled",
               "NotAllowed", "ImportFailed", "InvalidParameters", "InvalidConnection", "InvalidWorkOrder",
               "OutcomeTooLarge", "Interrupted",
     "message": "...",                      terminal control characters stripped; at most 1024 bytes (cut visibly)
     "retryable": true,                     false when another attempt would fail the same way
     "result": <JSON>,                      the return value (or all XComs), as the engine reports it
     "jobId": "..." | null,                 an external job's id (``job_id`` of the operator or trigger)
     "state": {<typed JSON>},               Deferred only: operator attributes execute() set (what callback and
                                            kill need, e.g. a job id); attributes JSON cannot hold are left out
     "deferral": null | {"trigger": {"classpath": "...", "kwargs": {<typed JSON of trigger.serialize()>}},
                         "method": "execute_complete" | null, "nextKwargs": {<typed JSON>},
                         "timeout": <seconds> | null, "deadline": "<ISO 8601>" | null}}

An outcome larger than 4096 bytes is replaced by a Failed one with reason ``OutcomeTooLarge`` saying how large it
was (a deferred task's ``on_kill()`` is called then: nobody could follow its job). The exit code is 1 for a
Failed outcome (or when the outcome cannot be written), else 0. Airflow's and the task's logs go to
stdout/stderr as usual.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from types import FrameType
from typing import Any

from airflow.sdk.exceptions import AirflowTaskTimeout, TaskDeferred
from airflow.sdk.execution_time.timeout import timeout as airflow_timeout
from airflowtask.connector_core import jobs, secrets, typed
from airflowtask.connector_core.allowlist import Allowlist
from airflowtask.connector_core.encoding import AirflowMetadata
from airflowtask.connector_core.jobs import Prepared
from airflowtask.connector_core.loader import Kind, Loader, LoadError
from airflowtask.connector_core.model import Reason, RunInfo, allowed_modules_from_env
from airflowtask.connector_core.outcomes import Verdict, completed, find_job_id, load_verdict, step_verdict
from airflowtask.connector_core.spec import AirflowObj, SpecError, from_spec
from airflowtask.connector_core.triggerer import deferral_from

log = logging.getLogger("airflowtask.worker")

WORK_ENV = "AIRFLOWTASK_WORK"
TERMINATION_LOG_ENV = "AIRFLOWTASK_TERMINATION_LOG"
DEFAULT_TERMINATION_LOG = "/dev/termination-log"
VERSION = 1
OUTCOME_LIMIT = 4096
"""Bytes of a termination message Kubernetes keeps."""
MESSAGE_LIMIT = 1024
"""Bytes of ``message`` kept (the Pod's log has the whole error)."""

FAILED, DEFERRED = "Failed", "Deferred"
"""Outcome phases besides Succeeded (which comes from a Verdict)."""

_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class Step(StrEnum):
    EXECUTE = "execute"
    CALLBACK = "callback"
    KILL = "kill"


# ---- the work order ------------------------------------------------------------------------------------------


class WorkOrderError(ValueError):
    """The work order cannot be used; ``reason`` is InvalidWorkOrder or InvalidParameters."""

    def __init__(self, message: str, reason: Reason = Reason.INVALID_WORK_ORDER) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class WorkOrder:
    step: Step
    operator: AirflowObj
    task_id: str
    run: RunInfo
    name: str
    namespace: str = ""
    uid: str = ""
    method: str = "execute_complete"
    next_kwargs: dict[str, Any] = field(default_factory=dict)
    """The callback's keyword arguments: the deferral's next_kwargs plus ``event``."""
    state: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return (
            f"{self.step} step of {where} (uid {self.uid or '?'}, attempt {self.run.try_number}): "
            f"{self.operator.module}.{self.operator.name}"
        )


def parse_work_order(text: str | None) -> WorkOrder:
    """The work order in ``text`` (the value of AIRFLOWTASK_WORK); WorkOrderError names what is wrong."""
    if not text:
        raise WorkOrderError(f"{WORK_ENV} is not set: it must hold the work order (a JSON object)")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkOrderError(f"the work order in {WORK_ENV} is not JSON: {exc}") from exc
    order = _object(document, "the work order")
    if (version := order.get("version", VERSION)) != VERSION:
        raise WorkOrderError(f"work order version {version!r} is not understood (this worker reads {VERSION})")
    step = order.get("step")
    if step not in set(Step):
        raise WorkOrderError(f"unknown step {step!r} (known: {', '.join(Step)})")
    task = _object(order.get("task"), "task")
    name = task.get("name")
    if not isinstance(name, str) or not name:
        raise WorkOrderError("task.name must be the AirflowTask's name (a non-empty string)")
    try:
        operator = from_spec(task.get("operator"))
    except SpecError as exc:
        raise WorkOrderError(f"task.{exc}", Reason.INVALID_PARAMETERS) from exc
    logical_date = _logical_date(task.get("logicalDate"))
    method = order.get("method", "execute_complete")
    if not isinstance(method, str) or not method.isidentifier():
        raise WorkOrderError(f"method must name a method of the task, got {method!r}")
    next_kwargs = _typed_object(order.get("nextKwargs", {}), "nextKwargs")
    if "event" in order:
        next_kwargs["event"] = _typed(order["event"], "event")
    return WorkOrder(
        step=Step(step),
        operator=operator,
        task_id=str(operator.parameters.get("task_id") or name),
        run=RunInfo(
            run_id=f"airflowtask__{logical_date.isoformat()}",
            logical_date=logical_date,
            params=_object(task.get("params", {}), "task.params"),
            try_number=_attempt(task.get("attempt", 1)),
        ),
        name=name,
        namespace=_text(task.get("namespace", ""), "task.namespace"),
        uid=_text(task.get("uid", ""), "task.uid"),
        method=method,
        next_kwargs=next_kwargs,
        state=_typed_object(order.get("state", {}), "state"),
    )


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WorkOrderError(f"{where} must be a JSON object, got {type(value).__name__}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise WorkOrderError(f"{where} must be a string, got {value!r}")
    return value


def _typed(value: Any, where: str) -> Any:
    try:
        return typed.decode(value, where)
    except typed.TypedValueError as exc:
        raise WorkOrderError(str(exc)) from exc


def _typed_object(value: Any, where: str) -> dict[str, Any]:
    return _typed(_object(value, where), where)


def _logical_date(value: Any) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(_text(value, "task.logicalDate"))
    except ValueError as exc:
        raise WorkOrderError(f"task.logicalDate is not an ISO 8601 time: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _attempt(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise WorkOrderError(f"task.attempt must be a positive integer, got {value!r}")
    return value


# ---- the outcome ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    phase: str
    reason: str
    message: str
    retryable: bool = True
    result: Any = None
    job_id: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    deferral: dict[str, Any] | None = None

    @classmethod
    def of(cls, verdict: Verdict, **fields: Any) -> Outcome:
        return cls(verdict.phase.value, str(verdict.reason), verdict.message, verdict.retryable, **fields)

    @property
    def exit_code(self) -> int:
        return 1 if self.phase == FAILED else 0

    def document(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "reason": self.reason,
            "message": clean_message(self.message),
            "retryable": self.retryable,
            "result": self.result,
            "jobId": self.job_id,
            "state": self.state,
            "deferral": self.deferral,
        }


def clean_message(text: str) -> str:
    """``text`` without terminal control characters (newlines and tabs stay), cut visibly to MESSAGE_LIMIT bytes."""
    text = _CONTROL.sub("", _ESCAPE.sub("", text.replace("\r\n", "\n")))
    data = _utf8(text)
    if len(data) <= MESSAGE_LIMIT:
        return text
    head = data[: MESSAGE_LIMIT - 80].decode(errors="ignore")
    return f"{head}... [{len(data) - len(_utf8(head))} more bytes cut; the Pod's log has all of it]"


def encode(outcome: Outcome) -> bytes:
    return _json(outcome.document())


def _json(value: Any) -> bytes:
    return _utf8(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def _utf8(text: str) -> bytes:
    """UTF-8, with lone surrogates (undecodable output) written as backslash escapes."""
    return text.encode(errors="backslashreplace")


def fit(outcome: Outcome) -> Outcome:
    """``outcome``, or when it is larger than OUTCOME_LIMIT bytes a Failed OutcomeTooLarge outcome that says so."""
    size = len(encode(outcome))
    if size <= OUTCOME_LIMIT:
        return outcome
    parts = {"result": outcome.result, "state": outcome.state, "deferral": outcome.deferral}
    sizes = ", ".join(f"{name} {len(_json(value))} bytes" for name, value in parts.items() if value)
    message = (
        f"the step ended {outcome.phase} ({outcome.reason}) but its outcome is {size} bytes ({sizes}), more than "
        f"the {OUTCOME_LIMIT} bytes Kubernetes keeps of a termination message; nothing was cut: return less "
        "(e.g. do_xcom_push=False) and keep large data elsewhere"
    )
    return Outcome(FAILED, Reason.OUTCOME_TOO_LARGE, message, retryable=False, job_id=outcome.job_id)


def report(outcome: Outcome, path: str) -> int:
    """Write ``outcome`` (fitted) to ``path``; the exit code (1 when it cannot be written)."""
    outcome = fit(outcome)
    data = encode(outcome)
    log.info("outcome: %s %s: %s", outcome.phase, outcome.reason, clean_message(outcome.message))
    try:
        with open(path, "wb") as file:
            file.write(data)
    except OSError as exc:
        log.error("cannot write the outcome to %s (%s): %s", path, exc, data.decode())
        return 1
    return outcome.exit_code


# ---- running a step ------------------------------------------------------------------------------------------


class _Terminated(BaseException):
    """SIGTERM arrived while a step ran (a BaseException, so that task code catching Exception lets it pass)."""


class _Interrupted(BaseException):
    """SIGINT or SIGHUP arrived while a step ran; ``cause`` names the signal."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


INTERRUPTING_SIGNALS = (signal.SIGINT, signal.SIGHUP)
"""Signals that end a running step Interrupted (SIGTERM ends it Cancelled)."""


class Worker:
    """Runs one work order; SIGTERM while the step runs calls ``on_kill()`` and ends the step Cancelled, SIGINT,
    SIGHUP or any other BaseException out of the step calls it and ends the step Interrupted."""

    def __init__(self, order: WorkOrder, allowed_modules: tuple[str, ...], host: str = "the Pod") -> None:
        self.order = order
        self.host = host
        """What SIGTERM stops, as the Cancelled message names it."""
        self.loader = Loader(Allowlist(allowed_modules), reschedule_sensors=False)
        self.xcoms: dict[str, Any] = {}
        self.prepared: Prepared | None = None
        self.running = False
        self.kill_note = ""

    def run(self) -> Outcome:
        log.info("airflowtask worker: %s", self.order.describe())
        try:
            secrets.check_connections(_env_connections())
        except secrets.InvalidConnectionError as exc:
            return Outcome(FAILED, Reason.INVALID_CONNECTION, str(exc), retryable=False)
        secrets.install()
        try:
            with self._interruptible():
                outcome = self._step()
        except _Terminated:
            message = f"{self.host} was terminated (SIGTERM) during the {self.order.step} step; {self.kill_note}"
            return Outcome(FAILED, Reason.CANCELLED, message, job_id=self._job_id())
        except BaseException as exc:  # SIGINT, SIGHUP, KeyboardInterrupt, SystemExit, GeneratorExit...
            return self._interrupted(exc)
        fitted = fit(outcome)
        if outcome.phase == DEFERRED and fitted is not outcome:
            return replace(fitted, message=f"{fitted.message}; {self._on_kill()}")
        return outcome

    def on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        """The SIGTERM handler: during execute or a callback, on_kill() then stop the step; else nothing to do."""
        if not self.running or self.order.step is Step.KILL:
            log.info("SIGTERM: letting the %s step finish", self.order.step)
            return
        self.running = False
        log.warning("SIGTERM: stopping the %s step", self.order.step)
        self.kill_note = self._on_kill()
        raise _Terminated

    def on_interrupt(self, signum: int, frame: FrameType | None) -> None:
        """The SIGINT and SIGHUP handler: during execute or a callback, stop the step; else nothing to do."""
        name = signal.Signals(signum).name
        if not self.running or self.order.step is Step.KILL:
            log.info("%s: letting the %s step finish", name, self.order.step)
            return
        self.running = False
        log.warning("%s: stopping the %s step", name, self.order.step)
        raise _Interrupted(name)

    def _interrupted(self, exc: BaseException) -> Outcome:
        """The outcome of a step that a signal or a BaseException stopped (on_kill() is called first)."""
        if isinstance(exc, _Interrupted):
            cause = exc.cause
        else:
            log.error("the %s step was interrupted", self.order.step, exc_info=exc)
            cause = type(exc).__name__ + (f" ({exc})" if str(exc) else "")
        message = f"the worker was interrupted by {cause} during the {self.order.step} step; {self._on_kill()}"
        return Outcome(FAILED, Reason.INTERRUPTED, message, job_id=self._job_id())

    @contextlib.contextmanager
    def _interruptible(self) -> Iterator[None]:
        self.running = True
        try:
            yield
        finally:
            self.running = False

    def _step(self) -> Outcome:
        try:
            self.prepared = self._build()
        except Exception as exc:
            log.error("cannot build the task: %s", exc, exc_info=not isinstance(exc, LoadError))
            return Outcome.of(load_verdict(exc))
        if self.order.step is Step.KILL:
            return self._kill()
        if self.order.step is Step.CALLBACK:
            return self._call(partial(jobs.resume, method=self.order.method, next_kwargs=self.order.next_kwargs))
        return self._call(jobs.execute)

    def _build(self) -> Prepared:
        order = self.order
        meta = AirflowMetadata(
            order.operator,
            task_id=order.task_id,
            run_id=order.run.run_id,
            logical_date=order.run.logical_date,
            started_at=datetime.now(UTC),
        )
        prepared = jobs.prepare(self.loader, meta, order.run, self.xcoms)
        if prepared.loaded.kind is Kind.TRIGGER:
            raise LoadError(
                Reason.INVALID_PARAMETERS,
                f"{order.operator.module}.{order.operator.name} is a trigger: triggers run in the operator, "
                "not in a worker Pod",
            )
        jobs.restore_state(prepared, order.state)
        return prepared

    def _call(self, work: Callable[[Prepared], Any]) -> Outcome:
        """Run execute() or a callback (with the execution_timeout) and turn what it did into an outcome."""
        prepared = self.prepared
        assert prepared is not None
        try:
            with _execution_timeout(prepared.operator):
                value = work(prepared)
        except TaskDeferred as deferred:
            return self._deferred(deferred)
        except AirflowTaskTimeout as exc:
            log.exception("the execution_timeout ran out")
            return Outcome(FAILED, Reason.TASK_FAILED, f"{exc}; {self._on_kill()}", job_id=self._job_id())
        except Exception as exc:
            log.exception("the %s step failed", self.order.step)
            return Outcome.of(step_verdict(exc), job_id=self._job_id())
        verdict, result = completed(value, prepared.loaded.instance, self.xcoms)
        return Outcome.of(verdict, result=result, job_id=self._job_id())

    def _deferred(self, deferred: TaskDeferred) -> Outcome:
        """The Deferred outcome: the trigger as serialize() wrote it, checked by rebuilding it (allowlist first)."""
        prepared = self.prepared
        assert prepared is not None
        now = datetime.now(UTC)
        try:
            deferral = deferral_from(deferred, self.loader, now)
            handed_over = {
                "trigger": {
                    "classpath": f"{deferral.module}.{deferral.name}",
                    "kwargs": typed.encode(deferral.kwargs, "trigger.kwargs"),
                },
                "method": deferral.method,
                "nextKwargs": typed.encode(deferral.next_kwargs, "nextKwargs"),
                "timeout": None if deferral.deadline is None else (deferral.deadline - now).total_seconds(),
                "deadline": None if deferral.deadline is None else deferral.deadline.isoformat(),
            }
        except Exception as exc:
            log.exception("the deferral cannot be handed to the operator")
            verdict = step_verdict(exc)
            message = f"the task deferred, but its trigger cannot be handed to the operator: {exc}; {self._on_kill()}"
            return Outcome(FAILED, str(verdict.reason), message, retryable=False, job_id=self._job_id())
        plain, other = jobs.changed_state(prepared)
        if other:
            log.info("operator attributes not kept for a later step (not typed JSON): %s", ", ".join(sorted(other)))
        return Outcome(
            DEFERRED,
            Reason.DEFERRED,
            f"waiting for trigger {deferral.name}",
            state=typed.encode(plain, "state"),
            deferral=handed_over,
            job_id=self._job_id(deferral.kwargs),
        )

    def _kill(self) -> Outcome:
        error = self._on_kill_error()
        if error is not None:
            return Outcome(FAILED, Reason.TASK_FAILED, f"on_kill() failed: {error}", job_id=self._job_id())
        return Outcome(FAILED, Reason.CANCELLED, "on_kill() was called", retryable=False, job_id=self._job_id())

    def _on_kill(self) -> str:
        """Call the task's on_kill(); a clause saying how that went."""
        if self.prepared is None or self.prepared.operator is None:
            return "no operator was running, so on_kill() was not called"
        error = self._on_kill_error()
        return "on_kill() was called" if error is None else f"on_kill() failed: {error}"

    def _on_kill_error(self) -> str | None:
        assert self.prepared is not None
        try:
            jobs.on_kill(self.prepared)
        except BaseException as exc:  # SystemExit from task code, say: the worker still reports
            log.exception("on_kill() failed")
            return f"{type(exc).__name__}: {exc}"
        return None

    def _job_id(self, *more: Mapping[str, Any]) -> str | None:
        sources = [vars(self.prepared.loaded.instance)] if self.prepared is not None else []
        return find_job_id(*sources, *more, self.xcoms)


def _execution_timeout(operator: Any) -> contextlib.AbstractContextManager[Any]:
    """Airflow's timeout for the operator's ``execution_timeout`` (none for hooks or without one)."""
    limit = getattr(operator, "execution_timeout", None)
    if limit is None:
        return contextlib.nullcontext()
    seconds = limit.total_seconds()
    message = f"the step ran longer than its execution_timeout of {seconds:g} seconds"
    if seconds <= 0:
        raise AirflowTaskTimeout(message)
    return airflow_timeout(seconds, error_message=message)


def _env_connections() -> dict[str, str]:
    """The connections in ``AIRFLOW_CONN_<ID>`` variables, by conn id (lower case, as Airflow looks them up)."""
    prefix = "AIRFLOW_CONN_"
    return {name[len(prefix) :].lower(): value for name, value in os.environ.items() if name.startswith(prefix)}


def run(environ: Mapping[str, str], host: str = "the Pod") -> Outcome:
    """Read the work order and run its step in ``host`` (as messages name it); SIGTERM, SIGINT and SIGHUP are
    handled from here on."""
    try:
        order = parse_work_order(environ.get(WORK_ENV))
    except WorkOrderError as exc:
        log.error("%s", exc)
        return Outcome(FAILED, exc.reason, str(exc), retryable=False)
    except BaseException as exc:  # KeyboardInterrupt before the handlers are installed
        return Outcome(FAILED, Reason.INTERRUPTED, f"the worker was interrupted by {type(exc).__name__}")
    worker = Worker(order, allowed_modules_from_env(environ), host)
    signal.signal(signal.SIGTERM, worker.on_sigterm)
    for signum in INTERRUPTING_SIGNALS:
        signal.signal(signum, worker.on_interrupt)
    try:
        return worker.run()
    except Exception as exc:
        log.exception("the worker failed")
        return Outcome(FAILED, Reason.TASK_FAILED, f"the worker failed: {type(exc).__name__}: {exc}")
    except BaseException as exc:  # outside the step: while checking connections, say
        log.exception("the worker was interrupted")
        return Outcome(FAILED, Reason.INTERRUPTED, f"the worker was interrupted by {type(exc).__name__}")


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s [%(name)s] %(message)s"
    )
    return report(run(os.environ), os.environ.get(TERMINATION_LOG_ENV) or DEFAULT_TERMINATION_LOG)


if __name__ == "__main__":
    sys.exit(main())
