"""The engine both front ends use: runs Airflow tasks without blocking the event loop.

Blocking work (building the task, ``execute``, pokes, callbacks, hook calls, ``on_kill``) runs in a
:class:`~.workers.WorkerPool` of ``max_workers`` threads; ``on_kill`` has a small pool of its own so a full pool
never delays a cancellation. Triggers run as asyncio tasks in the engine's loop until their first event (time
triggers sleep on the loop's :class:`~.triggerer.AlarmClock`), then the callback runs in the pool, in the
trigger's asyncio task. Every piece of work for a task runs in a copy of that task's context, which binds
its connections, variables and log (see :mod:`.secrets` and :mod:`.logs`).

A task's :class:`~.encoding.AirflowMetadata` is all another engine (after a restart) needs: ``get()``,
``wait()`` and ``delete()`` on metadata the engine does not know rebuild the task from it (restarting
its trigger, restoring the operator state ``execute`` left, e.g. a job id).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import gc
import hashlib
import itertools
import logging
import os
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import cloudpickle
from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowRescheduleException, TaskDeferred
from airflowtask.connector_core import jobs, logs, secrets, typed
from airflowtask.connector_core.allowlist import Allowlist
from airflowtask.connector_core.encoding import AirflowMetadata, Sealed, SignatureError
from airflowtask.connector_core.jobs import Prepared
from airflowtask.connector_core.links import log_links
from airflowtask.connector_core.loader import Kind, Loader, LoadError
from airflowtask.connector_core.model import EngineConfig, Phase, Reason, RunInfo, TaskState
from airflowtask.connector_core.outcomes import (
    Verdict,
    completed,
    find_job_id,
    from_exception,
    jsonable,
    load_verdict,
    result_of,
    step_verdict,
)
from airflowtask.connector_core.pacing import Pacer
from airflowtask.connector_core.spec import AirflowObj
from airflowtask.connector_core.triggerer import AlarmClock, Deferral, deferral_from, end_verdict, first_event
from airflowtask.connector_core.workers import WorkerPool

log = logging.getLogger(__name__)

T = TypeVar("T")

INTERRUPTED_MESSAGE = (
    "work in progress in another process was lost (engine {epoch}): its execute() may have submitted "
    "an external job; retry if that is safe"
)
_SWEEP_INTERVAL = 10.0
_STARTS_PER_ITERATION = 20
"""Task starts the engine runs per event-loop iteration (each about 0.1 ms of the loop's time): see :mod:`.pacing`."""


@dataclass
class _Step:
    """What one execute/poke/callback returned, as seen from the event loop."""

    value: Any = None
    error: BaseException | None = None
    deferral: Deferral | None = None
    rescheduled: bool = False
    plain_state: dict[str, Any] = field(default_factory=dict)
    pickled_state: dict[str, bytes] = field(default_factory=dict)
    pickled_trigger_kwargs: bytes | None = None
    trigger_saved: bool = True


class _Task:
    """The engine's in-memory record of one task."""

    def __init__(self, meta: AirflowMetadata, run: RunInfo, log_limit: int) -> None:
        self.meta = meta
        self.secrets = secrets.TaskSecrets(run)
        self.log = logs.TaskLog(log_limit)
        self.xcoms: dict[str, Any] = {}
        self.prepared: Prepared | None = None
        self.deferral: Deferral | None = None
        self.driver: asyncio.Task[None] | None = None
        self.trigger: asyncio.Task[None] | None = None
        self.state = TaskState(Phase.PENDING, Reason.EXECUTING, "created")
        self.changed: asyncio.Event | None = None
        """Set (and dropped) at the next change; made only when someone waits."""
        self.metrics: defaultdict[str, float] = defaultdict(float)
        self.sealed_state: dict[str, bytes] = {}
        self.finished_at: float | None = None

    def context(self) -> contextvars.Context:
        """A fresh copy of the current context with this task's secrets and log bound."""
        ctx = contextvars.copy_context()
        ctx.run(secrets.current.set, self.secrets)
        ctx.run(logs.current.set, self.log)
        return ctx


class Engine:
    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.epoch = uuid.uuid4().hex[:12]
        self._loader = Loader(Allowlist(config.allowed_modules))
        self._pool = WorkerPool(config.max_workers, "airflowtask-worker")
        self._kill_pool = WorkerPool(2, "airflowtask-kill")
        self._tasks: dict[str, _Task] = {}
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._last_sweep = time.monotonic()
        self._clock: AlarmClock | None = None
        self.pacer = Pacer(_STARTS_PER_ITERATION)
        """Spreads a burst of creates over loop iterations; a front end takes its turn before its own start-up work."""
        secrets.install()
        logs.install()
        _tune_garbage_collector()
        _keep_the_loop_responsive()

    # ---- the interface ------------------------------------------------------------------------------

    async def create(self, obj: AirflowObj, *, task_id: str, run: RunInfo) -> tuple[AirflowMetadata, TaskState]:
        """Start a task; return once it finished, deferred, or after ``create_wait_seconds``."""
        await self.pacer.turn()
        self._sweep()
        now = datetime.now(UTC)
        meta = AirflowMetadata(
            airflow_operator=obj,
            task_key=random_key(),
            task_id=task_id,
            run_id=run.run_id,
            logical_date=run.logical_date,
            started_at=now,
            executing_in=self.epoch,
        )
        task = self._register(meta, run)
        try:
            secrets.check_connections(run.connections)
        except secrets.InvalidConnectionError as exc:
            self._finish(task, Verdict(Phase.FAILED, Reason.INVALID_CONNECTION, str(exc), retryable=False))
            return task.meta, task.state
        self._set(task, Phase.RUNNING, Reason.EXECUTING, "starting the task")
        task.driver = asyncio.create_task(self._first_run(task))
        await self._settle(task, self.config.create_wait_seconds)
        return task.meta, task.state

    async def get(self, meta: AirflowMetadata, *, run: RunInfo | None = None) -> TaskState:
        """The task's state; a waiting sensor is poked (once at a time) and awaited up to create_wait_seconds.

        ``run`` replaces the task's RunInfo (newer connections, say); without it the task keeps its own.
        """
        task = self._tasks.get(meta.task_key)
        if task is None:
            task = self._restore(meta, run or run_of(meta))
            await self._settle(task, self.config.create_wait_seconds)
            return task.state
        if run is not None:
            task.secrets.run = run
        if task.state.reason == Reason.WAITING and task.driver is None and task.prepared is not None:
            self._set(task, Phase.RUNNING, Reason.WAITING, "poking")
            task.driver = asyncio.create_task(self._run_step(task, jobs.execute))
            await self._settle(task, self.config.create_wait_seconds)
        return task.state

    async def wait(self, meta: AirflowMetadata, *, timeout: float, run: RunInfo | None = None) -> None:
        """Return when something changed for the task, or after ``timeout``; immediately if it is finished."""
        task = self._tasks.get(meta.task_key) or self._restore(meta, run or run_of(meta))
        if not task.state.finished:
            await self._wait_change(task, timeout)

    async def delete(self, meta: AirflowMetadata, *, run: RunInfo | None = None) -> None:
        """Cancel the task: stop its trigger, call ``on_kill``; idempotent, a no-op for finished tasks."""
        task = self._tasks.get(meta.task_key)
        if task is None:
            if meta.outcome is not None:
                return
            task = self._register(meta, run or run_of(meta))
        if task.state.finished:
            return
        prepared = task.prepared
        self._finish(task, Verdict(Phase.FAILED, Reason.CANCELLED, "cancelled by delete", retryable=False))
        if prepared is None:
            try:
                prepared = await self._in_pool(task, lambda: self._rebuild_operator(task), pool=self._kill_pool)
            except Exception as exc:
                log.warning("task %s: cannot rebuild it to call on_kill: %s", meta.task_id, exc)
                task.log.append(f"cannot rebuild the task to call on_kill: {exc}")
                return
        await self._kill(task, prepared)

    def logs(self, meta: AirflowMetadata) -> list[str]:
        task = self._tasks.get(meta.task_key)
        return list(task.log.lines) if task else []

    def metrics(self, meta: AirflowMetadata) -> dict[str, float]:
        task = self._tasks.get(meta.task_key)
        return dict(task.metrics) if task else {}

    def forget(self, meta: AirflowMetadata) -> None:
        task = self._tasks.get(meta.task_key)
        if task is not None and task.state.finished:
            del self._tasks[meta.task_key]

    @property
    def running_triggers(self) -> int:
        """Triggers running now; safe to read from another thread (the metrics server)."""
        return sum(1 for task in list(self._tasks.values()) if task.trigger is not None)

    def pool_in_use(self) -> int:
        return self._busy

    async def close(self) -> None:
        pending = [t for task in self._tasks.values() for t in (task.trigger, task.driver) if t is not None]
        for item in pending:
            item.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._pool.close()
        self._kill_pool.close()

    # ---- running work ---------------------------------------------------------------------------------

    async def _first_run(self, task: _Task) -> None:
        try:
            prepared = await self._in_pool(
                task, lambda: jobs.prepare(self._loader, task.meta, task.secrets.run, task.xcoms)
            )
        except Exception as exc:
            self._finish(task, load_verdict(exc))
            return
        finally:
            task.driver = None
        if task.state.finished:  # deleted meanwhile
            return
        task.prepared = prepared
        task.meta.kind = prepared.loaded.kind.value
        task.meta.task_id = getattr(prepared.loaded.instance, "task_id", task.meta.task_id)
        if prepared.loaded.kind is Kind.TRIGGER:
            obj = task.meta.airflow_operator
            task.meta.executing_in = None
            self._start_trigger(task, Deferral(obj.module, obj.name, obj.parameters, prepared.loaded.instance, None))
            return
        self._set(task, Phase.RUNNING, Reason.EXECUTING, self._running_message(prepared))
        task.driver = asyncio.current_task()
        await self._run_step(task, jobs.execute)

    async def _run_step(self, task: _Task, work: Callable[[Prepared], Any], label: str = "execute") -> None:
        """Run execute/poke (``work``) or a callback in the pool and apply what it returned."""
        prepared = task.prepared
        assert prepared is not None
        started = time.monotonic()
        try:
            step = await self._in_pool(task, lambda: self._step(prepared, work))
        finally:
            task.driver = None
        seconds = time.monotonic() - started
        if label == "execute" and isinstance(prepared.loaded.instance, BaseSensorOperator):
            task.metrics["pokes"] += 1
            task.metrics["poke_seconds"] += seconds
        else:
            task.metrics[f"{label}_seconds"] += seconds
        self._apply(task, prepared, step)

    def _step(self, prepared: Prepared, work: Callable[[Prepared], Any]) -> _Step:
        """In a worker thread: run ``work`` and turn its outcome into a _Step."""
        step = _Step()
        try:
            step.value = work(prepared)
        except TaskDeferred as deferred:
            try:
                step.deferral = deferral_from(deferred, self._loader, datetime.now(UTC))
            except Exception as exc:
                step.error = exc
        except AirflowRescheduleException:
            step.rescheduled = True
        except BaseException as exc:
            step.error = exc
        step.plain_state, other = jobs.changed_state(prepared)
        if self.config.signing_key:
            step.pickled_state = _pickle_each(other)
        if step.deferral is not None:
            try:
                typed.encode(step.deferral.kwargs)
            except typed.TypedValueError:
                step.pickled_trigger_kwargs = _pickle(step.deferral.kwargs) if self.config.signing_key else None
                step.trigger_saved = step.pickled_trigger_kwargs is not None
        return step

    def _apply(self, task: _Task, prepared: Prepared, step: _Step) -> None:
        """Record what a step returned: finish, defer, or keep waiting (on the event loop)."""
        if task.state.reason == Reason.CANCELLED:
            if step.deferral is not None:
                task.log.append("execute() deferred after the task was cancelled: calling on_kill again")
                task.driver = asyncio.create_task(self._kill(task, prepared))
            self._notify(task)
            return
        self._keep_operator_state(task, prepared, step)
        if step.error is not None:
            self._finish(task, step_verdict(step.error))
        elif step.deferral is not None:
            self._defer(task, step)
        elif step.rescheduled:
            task.meta.executing_in = None
            self._set(task, Phase.RUNNING, Reason.WAITING, "the sensor's condition is not met yet")
        else:
            self._finish(task, *completed(step.value, prepared.loaded.instance, task.xcoms))

    def _defer(self, task: _Task, step: _Step) -> None:
        deferral = step.deferral
        assert deferral is not None
        task.metrics["deferrals"] += 1
        meta = task.meta
        meta.airflow_trigger = (
            AirflowObj(deferral.module, deferral.name, deferral.kwargs) if step.trigger_saved else None
        )
        meta.airflow_trigger_callback = deferral.method
        meta.next_kwargs = deferral.next_kwargs or None
        meta.trigger_deadline = deferral.deadline
        meta.executing_in = None if step.trigger_saved else self.epoch
        if step.pickled_trigger_kwargs is not None:
            meta.airflow_trigger = AirflowObj(deferral.module, deferral.name, {})
            self._seal(task, trigger_kwargs=step.pickled_trigger_kwargs)
        self._start_trigger(task, deferral)

    def _start_trigger(self, task: _Task, deferral: Deferral) -> None:
        task.deferral = deferral
        if task.prepared is not None and task.prepared.context:
            deferral.trigger.task_instance = task.prepared.context["ti"]
        loop = asyncio.get_running_loop()
        deadline = None
        if deferral.deadline is not None:
            deadline = loop.time() + (deferral.deadline - datetime.now(UTC)).total_seconds()
        self._set(task, Phase.RUNNING, Reason.DEFERRED, f"waiting for trigger {deferral.name}")
        task.trigger = loop.create_task(self._await_trigger(task, deferral, deadline), context=task.context())

    async def _await_trigger(self, task: _Task, deferral: Deferral, deadline: float | None) -> None:
        started = time.monotonic()
        error: BaseException | None = None
        try:
            event = await first_event(deferral.trigger, deadline, self._alarm_clock())
        except TimeoutError:
            event = None
        except Exception as exc:
            event, error = None, exc
        finally:
            task.trigger = None
            task.metrics["trigger_wait_seconds"] += time.monotonic() - started
        if task.state.reason != Reason.DEFERRED:
            return
        prepared = task.prepared
        if prepared is None or prepared.loaded.kind is Kind.TRIGGER:
            if event is not None:
                self._finish(
                    task, Verdict(Phase.SUCCEEDED, Reason.COMPLETED, "the trigger fired"), jsonable(event.payload)
                )
            else:
                self._finish(task, from_exception(error or TimeoutError("the trigger timed out")))
            return
        if event is not None and (ended := end_verdict(event)) is not None:
            verdict, xcoms = ended
            self._finish(task, verdict, result_of(None, {**task.xcoms, **xcoms}))
            return
        if event is None:
            work = functools.partial(jobs.fail_deferral, error=error)
            message = f"the trigger {deferral.name} {'failed' if error else 'timed out'}"
        else:
            next_kwargs = {**deferral.next_kwargs, "event": event.payload}
            work = functools.partial(jobs.resume, method=deferral.method or "execute_complete", next_kwargs=next_kwargs)
            message = f"running callback {deferral.method}"
        self._set(task, Phase.RUNNING, Reason.EXECUTING, message)
        task.driver = asyncio.current_task()  # this task, no longer the trigger's, runs the callback
        await self._run_step(task, work, label="callback")

    def _alarm_clock(self) -> AlarmClock:
        """The alarm clock of the running loop (one per engine and loop)."""
        loop = asyncio.get_running_loop()
        if self._clock is None or self._clock.loop is not loop:
            self._clock = AlarmClock(loop)
        return self._clock

    async def _kill(self, task: _Task, prepared: Prepared) -> None:
        try:
            await self._in_pool(task, lambda: jobs.on_kill(prepared), pool=self._kill_pool)
        except Exception as exc:
            log.warning("task %s: on_kill failed: %s", task.meta.task_id, exc)
            task.log.append(f"on_kill failed: {type(exc).__name__}: {exc}")

    async def _in_pool(self, task: _Task, work: Callable[[], T], pool: WorkerPool | None = None) -> T:
        """Run ``work`` in a worker thread, in a copy of the task's context."""
        queued = time.monotonic()

        def run() -> T:
            task.metrics["queue_seconds"] += time.monotonic() - queued
            with self._busy_lock:
                self._busy += 1
            try:
                return work()
            finally:
                with self._busy_lock:
                    self._busy -= 1

        return await (pool or self._pool).run(run, task.context())

    # ---- restarts -------------------------------------------------------------------------------------

    def _restore(self, meta: AirflowMetadata, run: RunInfo) -> _Task:
        """Rebuild a task this engine does not know from its metadata."""
        task = self._register(meta, run)
        if meta.outcome is not None:
            outcome = meta.outcome
            task.state = self._state(
                task,
                Phase(outcome.get("phase", Phase.FAILED.value)),
                str(outcome.get("reason", "")),
                str(outcome.get("message", "")),
                outcome.get("result"),
                bool(outcome.get("retryable", True)),
            )
            task.finished_at = time.monotonic()
        elif meta.executing_in is not None:
            message = INTERRUPTED_MESSAGE.format(epoch=meta.executing_in)
            self._finish(task, Verdict(Phase.FAILED, Reason.INTERRUPTED, message, retryable=True))
        else:
            waiting = meta.airflow_trigger is None and meta.kind == Kind.OPERATOR
            reason = Reason.WAITING if waiting else Reason.DEFERRED
            self._set(task, Phase.RUNNING, reason, "restoring the task after a restart")
            task.driver = asyncio.create_task(self._resume_after_restart(task))
        return task

    async def _resume_after_restart(self, task: _Task) -> None:
        try:
            task.prepared = await self._in_pool(task, lambda: self._rebuild_operator(task))
            deferral = await self._in_pool(task, lambda: self._rebuild_trigger(task))
        except Exception as exc:
            self._finish(task, load_verdict(exc))
            return
        finally:
            task.driver = None
        if task.state.finished:
            return
        if deferral is not None:
            self._start_trigger(task, deferral)
        else:
            self._set(task, Phase.RUNNING, Reason.WAITING, "restored after a restart")

    def _rebuild_operator(self, task: _Task) -> Prepared:
        """In a worker thread: build the task again and restore the operator state execute() left."""
        meta = task.meta
        prepared = jobs.prepare(self._loader, meta, task.secrets.run, task.xcoms)
        state = dict(meta.operator_state)
        state.update(
            {name: cloudpickle.loads(blob) for name, blob in self._open_sealed(task).get("operator_state", {}).items()}
        )
        jobs.restore_state(prepared, state)
        return prepared

    def _rebuild_trigger(self, task: _Task) -> Deferral | None:
        """In a worker thread: rebuild the trigger the metadata names (through the allowlist)."""
        meta, prepared = task.meta, task.prepared
        assert prepared is not None
        trigger = meta.airflow_trigger
        if trigger is None:
            if prepared.loaded.kind is not Kind.TRIGGER:
                return None
            obj = meta.airflow_operator
            return Deferral(obj.module, obj.name, obj.parameters, prepared.loaded.instance, None)
        pickled = self._open_sealed(task).get("trigger_kwargs")
        kwargs = cloudpickle.loads(pickled) if pickled else trigger.parameters
        return Deferral(
            module=trigger.module,
            name=trigger.name,
            kwargs=kwargs,
            trigger=self._loader.trigger(trigger.module, trigger.name, kwargs),
            method=meta.airflow_trigger_callback,
            next_kwargs=dict(meta.next_kwargs or {}),
            deadline=meta.trigger_deadline,
        )

    def _open_sealed(self, task: _Task) -> dict[str, Any]:
        """The verified content of the metadata's sealed state (empty without one)."""
        if task.meta.sealed is None:
            return {}
        try:
            payload = task.meta.sealed.open(self.config.signing_key, task.meta.task_key)
        except SignatureError as exc:
            raise LoadError(Reason.INVALID_PARAMETERS, str(exc)) from exc
        task.sealed_state = dict(payload.get("operator_state", {}))
        return payload

    # ---- state ----------------------------------------------------------------------------------------

    def _register(self, meta: AirflowMetadata, run: RunInfo) -> _Task:
        task = _Task(meta, run, self.config.log_tail_lines)
        self._tasks[meta.task_key] = task
        return task

    def _keep_operator_state(self, task: _Task, prepared: Prepared, step: _Step) -> None:
        task.meta.operator_state.update(step.plain_state)
        if step.pickled_state:
            task.sealed_state.update(step.pickled_state)
            self._seal(task)
        sources = [vars(prepared.loaded.instance)]
        if step.deferral is not None:
            sources.append(step.deferral.kwargs)
        task.meta.job_id = find_job_id(*sources, task.xcoms) or task.meta.job_id

    def _seal(self, task: _Task, trigger_kwargs: bytes | None = None) -> None:
        key = self.config.signing_key
        assert key is not None
        payload = {"operator_state": task.sealed_state, "trigger_kwargs": trigger_kwargs}
        task.meta.sealed = Sealed.seal(payload, key, task.meta.task_key)

    def _finish(self, task: _Task, verdict: Verdict, result: Any = None) -> None:
        meta = task.meta
        meta.outcome = {
            "phase": verdict.phase.value,
            "reason": str(verdict.reason),
            "message": verdict.message,
            "result": result,
            "retryable": verdict.retryable,
        }
        meta.airflow_trigger = None
        meta.airflow_trigger_callback = None
        meta.next_kwargs = None
        meta.trigger_deadline = None
        meta.executing_in = None
        if task.trigger is not None:
            task.trigger.cancel()
        task.finished_at = time.monotonic()
        self._set(task, verdict.phase, verdict.reason, verdict.message, result, verdict.retryable)
        task.prepared = None
        task.deferral = None

    @staticmethod
    def _notify(task: _Task) -> None:
        if task.changed is not None:
            task.changed.set()
            task.changed = None

    def _set(
        self,
        task: _Task,
        phase: Phase,
        reason: str,
        message: str,
        result: Any = None,
        retryable: bool = True,
    ) -> None:
        task.state = self._state(task, phase, reason, message, result, retryable)
        self._notify(task)

    def _state(self, task: _Task, phase: Phase, reason: str, message: str, result: Any, retryable: bool) -> TaskState:
        instance = task.prepared.loaded.instance if task.prepared else None
        trigger_kwargs = task.deferral.kwargs if task.deferral else None
        return TaskState(
            phase=phase,
            reason=str(reason),
            message=message,
            result=result,
            retryable=retryable,
            log_links=log_links(instance, trigger_kwargs),
            job_id=task.meta.job_id,
            meta=task.meta,
        )

    @staticmethod
    async def _settle(task: _Task, timeout: float) -> None:
        """Wait (at most ``timeout``) until no pool work is in flight for the task: until its driver is done."""
        deadline = time.monotonic() + timeout
        while (
            (driver := task.driver) is not None and not driver.done() and (remaining := deadline - time.monotonic()) > 0
        ):
            await asyncio.wait((driver,), timeout=remaining)

    @staticmethod
    async def _wait_change(task: _Task, timeout: float) -> None:
        if task.changed is None:
            task.changed = asyncio.Event()
        changed = task.changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)

    @staticmethod
    def _running_message(prepared: Prepared) -> str:
        call = prepared.loaded.hook_call
        name = type(prepared.loaded.instance).__name__
        return f"calling {name}.{call.method}" if call else f"{name}.execute() is running"

    def _sweep(self) -> None:
        """Drop tasks that finished more than ``finished_ttl_seconds`` ago (every few seconds at most)."""
        now = time.monotonic()
        if now - self._last_sweep < _SWEEP_INTERVAL:
            return
        self._last_sweep = now
        expired = [
            key
            for key, task in self._tasks.items()
            if task.finished_at is not None and now - task.finished_at > self.config.finished_ttl_seconds
        ]
        for key in expired:
            del self._tasks[key]


_GC_THRESHOLDS = (50_000, 3, 4)
"""A young collection every 50,000 net allocations (Python's default: 700), the middle generation every fourth
(so it holds at most about 200,000 objects), the oldest considered about every million (4 * 5 * 50,000; the
default: about 85,000)."""


_SWITCH_INTERVAL = 0.001
"""Seconds a thread keeps the GIL while another waits for it (Python's default: 0.005)."""


@functools.cache
def _keep_the_loop_responsive() -> None:
    """Once per process: switch the GIL between threads every millisecond instead of every five.

    While worker threads run Python code (building many tasks, say), the event loop waits for the GIL behind
    each of them in turn, a switch interval each: with eight busy workers that is 40 ms and more per wait.
    A smaller interval already set in the process is kept.
    """
    sys.setswitchinterval(min(sys.getswitchinterval(), _SWITCH_INTERVAL))


@functools.cache
def _tune_garbage_collector() -> None:
    """Once per process: move what is alive now (Airflow's modules) out of the collector's reach; collect less often.

    A collection walks every live object of the generations it collects. With thousands of tasks polled at once,
    tens of thousands of young objects are alive at any moment, and with thousands held the oldest generation
    takes a few hundred milliseconds, during which the event loop stands still; while many tasks are being
    created, Python's default thresholds run such a full collection about every second. Thresholds already
    raised elsewhere in the process are kept.
    """
    gc.collect()
    gc.freeze()
    if gc.get_threshold()[0] < _GC_THRESHOLDS[0]:
        gc.set_threshold(*_GC_THRESHOLDS)


def random_key() -> str:
    """32 unpredictable hex digits, as ``uuid.uuid4().hex`` gives, without a system call per key.

    ``uuid4`` reads ``os.urandom``, which releases the GIL: while worker threads are busy the event loop then waits
    a switch interval or more to get it back, for every task created. Python's ``random`` would be fast but is
    predictable from a few hundred outputs, and a task key names a task to ``get`` and ``delete``. So: BLAKE2b keyed
    with a secret read once from the OS, over this process's id and a counter.
    """
    message = f"{os.getpid()}:{next(_KEY_COUNTER)}".encode()
    return hashlib.blake2b(message, key=_KEY_SECRET, digest_size=16).hexdigest()


_KEY_SECRET = os.urandom(32)
_KEY_COUNTER = itertools.count()


def run_of(meta: AirflowMetadata) -> RunInfo:
    """RunInfo from the metadata alone (no connections or variables beyond the environment's)."""
    return RunInfo(run_id=meta.run_id, logical_date=meta.logical_date or meta.started_at or datetime.now(UTC))


def _pickle(value: Any) -> bytes | None:
    try:
        return cloudpickle.dumps(value)
    except Exception:
        return None


def _pickle_each(values: dict[str, Any]) -> dict[str, bytes]:
    pickled = {name: _pickle(value) for name, value in values.items()}
    return {name: blob for name, blob in pickled.items() if blob is not None}
