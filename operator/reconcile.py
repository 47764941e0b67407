"""Drive one AirflowTask forward: submit, observe, retry, time out, cancel.

This is the operator's one path from a watch event to a status patch. kopf calls it from
``handlers.py``; it drives an :class:`~airflowtask.executors.Executor` (task work in Pods, or in this
process), writes status through ``Kube``, and returns the events to post. Nothing here imports kopf.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from airflowtask import metrics
from airflowtask.connector_core import Phase, RunInfo, TaskState
from airflowtask.executors import Executor, Meta
from airflowtask.kube import Kube, SecretError
from airflowtask.resource import AirflowTaskResource, ObservedStatus, format_time
from airflowtask.settings import Settings
from airflowtask.status import Event, merge_patch, next_status, transition_event

log = logging.getLogger(__name__)

HOLD_SECONDS = 1.0
"""How long a new unfinished state (a step handed over, a Pod started, a trigger deferred) is held before it is
written, when the executor can find its steps again (``Executor.idempotent_create``): a step that finishes meanwhile
goes straight to its outcome, one status write and one event fewer. Holding changes nothing after a crash: the
state is written after the act in any case, and a restarted operator finds the step by its name."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class TaskMemory:
    """What this process remembers about one object between handler calls.

    ``status`` is the status last written, newer than the watched body until the watch echoes
    it back. ``lock`` keeps two handlers from advancing the same object at once.
    """

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    status: dict[str, Any] | None = None
    run: RunInfo | None = None
    meta: Meta | None = None
    _view: tuple[str, AirflowTaskResource] | None = field(default=None, init=False, repr=False)

    def view(self, body: Mapping[str, Any]) -> AirflowTaskResource:
        """The task parsed from ``body``; parsed again only when the object changed (a new resourceVersion)."""
        version = body["metadata"].get("resourceVersion")
        if version is None:
            return AirflowTaskResource.parse(body)
        if self._view is None or self._view[0] != version:
            self._view = (version, AirflowTaskResource.parse(body))
        return self._view[1]

    def current(self, body_status: dict[str, Any]) -> dict[str, Any]:
        """The freshest status known: the one last written here, else the watched one."""
        return self.status if self.status is not None else dict(body_status)

    def metadata(self, resource_meta: str | None, executor: Executor, task: AirflowTaskResource) -> Meta | None:
        """The task's metadata: held in memory, else decoded from status (ValueError if unreadable)."""
        if self.meta is None and resource_meta:
            return executor.decode(resource_meta, task)
        return self.meta


class Reconciler:
    """Advances AirflowTask objects; one per operator process."""

    def __init__(self, executor: Executor, kube: Kube, settings: Settings) -> None:
        self.executor = executor
        self.kube = kube
        self.settings = settings

    async def follow(
        self,
        body: Mapping[str, Any],
        memory: TaskMemory,
        stop: asyncio.Future[None],
        post: Callable[[list[Event]], None],
    ) -> None:
        """Advance one task step by step until it finished or ``stop`` is done, posting each step's events.

        ``body`` is the object as last watched (kopf keeps it current). Waiting for news happens inside the steps,
        so a task that waits costs no more than its polls. Returns early after a step that neither wrote nor
        waited, so that whoever calls again decides the pace.
        """
        while not stop.done():
            task = memory.view(body)
            async with memory.lock:
                step = _Step(self, task, memory, memory.current(body.get("status") or {}), stop)
                events = await step.advance()
            post(events)
            if step.finished or not step.moved:
                return

    async def cancel(self, task: AirflowTaskResource, body_status: dict[str, Any], memory: TaskMemory) -> list[Event]:
        """On deletion: cancel the external job unless the policy is Orphan. Raises to be retried."""
        async with memory.lock:
            return await self._cancel(task, memory.current(body_status), memory)

    async def _cancel(self, task: AirflowTaskResource, current: dict[str, Any], memory: TaskMemory) -> list[Event]:
        observed = ObservedStatus.parse(current)
        if observed.finished:
            return []
        try:
            meta = memory.metadata(observed.resource_meta, self.executor, task)
        except ValueError as error:
            return [Event("Warning", "CannotCancel",
                          f"status.resourceMeta cannot be read ({error}); no external job was cancelled")]
        if meta is None:
            return []
        if task.deletion_policy == "Orphan":
            await self.executor.orphan(task, meta)
            self.executor.forget(meta)
            return [Event("Normal", "Orphaned", "deletionPolicy is Orphan: the external job was left running")]
        with metrics.connector_call("delete"):
            await self.executor.delete(task, meta, memory.run)
        self.executor.forget(meta)
        return [Event("Normal", "Cancelled", f"{task.operator.name} was cancelled because the AirflowTask was deleted")]

    @staticmethod
    def ttl_remaining(task: AirflowTaskResource) -> float | None:
        """Seconds until a finished task should be deleted, or None when it is kept."""
        finished = task.status.completion_time
        if task.ttl_seconds_after_finished is None or not task.status.finished or finished is None:
            return None
        return finished.timestamp() + task.ttl_seconds_after_finished - _now().timestamp()


class _Step:
    """One advance of one object: reads ``current``, writes the statuses it moves through.

    ``moved`` tells whether it wrote a status or waited; ``finished`` whether the task is finished after it.
    """

    def __init__(
        self,
        owner: Reconciler,
        task: AirflowTaskResource,
        memory: TaskMemory,
        current: dict[str, Any],
        stop: asyncio.Future[None],
    ) -> None:
        self.executor, self.kube, self.settings = owner.executor, owner.kube, owner.settings
        self.task, self.memory, self.current, self.stop = task, memory, current, stop
        self.events: list[Event] = []
        self.moved = False

    @property
    def finished(self) -> bool:
        return ObservedStatus.parse(self.current).finished

    async def _wait(self, news: Awaitable[Any], timeout: float) -> bool:
        """Wait for ``news`` (at most ``timeout``); False when stop came first."""
        self.moved = True
        waiter = asyncio.ensure_future(news)
        await asyncio.wait((waiter, self.stop), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        return not self.stop.done()

    async def advance(self) -> list[Event]:
        observed = ObservedStatus.parse(self.current)
        if observed.finished:
            return self.events
        deadline = self.task.deadline(observed.start_time)
        if observed.submitting and self.executor.idempotent_create:
            await self._submit(observed, attempt=observed.attempts)  # finds and adopts what it made, if anything
        elif observed.submitting:
            await self._interrupted_submission(observed)
        elif deadline and _now() >= deadline:
            await self._exceed_deadline(observed)
        elif observed.next_attempt_time and _now() < observed.next_attempt_time:
            due = min(observed.next_attempt_time, deadline or observed.next_attempt_time)
            await self._wait(asyncio.sleep(_seconds_until(due)), _seconds_until(due))
        elif not observed.resource_meta:
            await self._submit(observed)
        else:
            await self._observe(observed, deadline=deadline)
        return self.events

    async def _write(self, **kwargs: Any) -> None:
        self.moved = True
        new = next_status(self.current, generation=self.task.generation, now=_now(), **kwargs)
        patch = merge_patch(self.current, new)
        if patch:
            await self.kube.patch_status(self.task.namespace, self.task.name, patch)
        if new["phase"] == "Failed" and self.current.get("phase") != "Failed":
            metrics.count_failure(new["reason"])
        event = transition_event(self.current, new)
        if event:
            self.events.append(event)
            log.info("%s/%s: %s/%s: %s", self.task.namespace, self.task.name, new["phase"], event.reason,
                     event.message)
        self.current = self.memory.status = new

    async def _run_info(self) -> RunInfo | None:
        """The run's context, with connections read from Secrets when the executor needs their values;
        None (and Failed) when one is missing."""
        if self.memory.run is None:
            refs = self.task.connections if self.executor.needs_connections else ()
            try:
                connections = {
                    ref.conn_id: await self.kube.read_secret_key(self.task.namespace, ref.secret_name, ref.secret_key)
                    for ref in refs
                }
            except SecretError as error:
                await self._finish_failed("MissingSecret", f"{error}; it is named in spec.connections", False)
                return None
            self.memory.run = RunInfo(
                run_id=self.task.run_id,
                logical_date=self.task.logical_date,
                connections=connections,
                params=self.task.params,
            )
        return self.memory.run

    async def _submit(self, observed: ObservedStatus, attempt: int | None = None) -> None:
        attempt = attempt or observed.attempts + 1
        run = await self._run_info()
        if run is None:
            return
        await self._write(
            phase="Pending",
            reason="Submitting",
            message=f"submitting attempt {attempt}: {self.task.operator.module}.{self.task.operator.name}",
            attempts=attempt,
            startTime=self.current.get("startTime") or format_time(_now()),
            resourceMeta=None,
            nextAttemptTime=None,
            completionTime=None,
        )
        with metrics.connector_call("create"):
            meta, state = await self.executor.create(self.task, attempt, run)
        self.memory.meta = meta
        await self._settle(meta, await self._held(meta, run, state))

    async def _held(self, meta: Meta, run: RunInfo, state: TaskState) -> TaskState:
        """``state`` if it is finished or no news, else the state after the news of HOLD_SECONDS (never past the
        deadline or ``pollIntervalSeconds``): each change is read, none written."""
        if state.finished or not self.executor.idempotent_create or (
                (state.phase.value, state.reason) == (self.current.get("phase"), self.current.get("reason"))):
            return state
        deadline = self.task.deadline(ObservedStatus.parse(self.current).start_time)
        loop = asyncio.get_running_loop()
        window = min(HOLD_SECONDS, float(self.task.poll_interval_seconds),
                     _seconds_until(deadline) if deadline else HOLD_SECONDS)
        end = loop.time() + window
        while not state.finished and (timeout := end - loop.time()) > 0:
            if not await self._wait(self.executor.wait(meta, timeout), timeout) or loop.time() >= end:
                break  # stopped, or no news within the hold: what was read last is written
            with metrics.connector_call("get"):
                state = await self.executor.get(self.task, meta, run)
        return state

    async def _observe(self, observed: ObservedStatus, *, deadline: datetime | None) -> None:
        try:
            meta = self.memory.metadata(observed.resource_meta, self.executor, self.task)
        except ValueError as error:
            await self._finish_failed("InvalidResourceMeta", f"status.resourceMeta cannot be read: {error}", False)
            return
        run = await self._run_info()
        if meta is None or run is None:
            return
        if self.memory.meta is None:
            # First look in this process (after a restart): get() brings the trigger back with the
            # task's connections before anything waits on it.
            self.memory.meta = meta
            with metrics.connector_call("get"):
                state = await self.executor.get(self.task, meta, run)
            if state.finished:
                await self._settle(meta, state)
                return
        timeout = float(self.task.poll_interval_seconds)
        if deadline:
            timeout = min(timeout, _seconds_until(deadline))
        if not await self._wait(self.executor.wait(meta, timeout), timeout):
            return
        with metrics.connector_call("get"):
            state = await self.executor.get(self.task, meta, run)
        if not state.finished and deadline and _now() >= deadline:
            await self._exceed_deadline(observed)
            return
        await self._settle(meta, await self._held(meta, run, state))

    async def _settle(self, meta: Meta, state: TaskState) -> None:
        """Record what the executor reported; on a retryable failure, schedule the next attempt."""
        fields = {
            "resourceMeta": meta.encode().decode(),
            "jobId": state.job_id,
            "result": state.result,
            "logLinks": [{"name": link.name, "uri": link.uri} for link in state.log_links] or None,
            **self.executor.status_fields(meta),
        }
        if state.phase is Phase.FAILED:
            await self._finish_failed(state.reason, state.message, state.retryable, **fields)
        else:
            if state.finished:
                fields["completionTime"] = format_time(_now())
            await self._write(phase=state.phase.value, reason=state.reason, message=state.message, **fields)
        # Only once what the steps reported is recorded: until then, a restarted operator can still read it.
        self.executor.recorded(meta)
        if state.finished:
            self.executor.forget(meta)

    async def _finish_failed(self, reason: str, message: str, retryable: bool, **fields: Any) -> None:
        """Fail the attempt: retry after a backoff while ``backoffLimit`` allows, else fail the task."""
        attempts = int(self.current.get("attempts") or 0)
        if retryable and attempts <= self.task.backoff_limit:
            delay = min(self.settings.retry_backoff_seconds * 2 ** max(attempts - 1, 0),
                        self.settings.retry_backoff_max_seconds)
            self.memory.meta = None
            await self._write(
                phase="Pending",
                reason="Retrying",
                message=f"attempt {attempts} failed ({reason}: {message}); attempt {attempts + 1} in {delay}s",
                **{**fields, "resourceMeta": None},
                nextAttemptTime=format_time(_now() + timedelta(seconds=delay)),
            )
            return
        await self._write(
            phase="Failed", reason=reason, message=message, completionTime=format_time(_now()), **fields
        )

    async def _interrupted_submission(self, observed: ObservedStatus) -> None:
        """A marker without metadata: a previous process died inside create. Never resubmit silently."""
        message = (
            f"the operator stopped while submitting attempt {observed.attempts}; "
            "its external job may have been started"
        )
        if observed.attempts <= self.task.backoff_limit:
            await self._finish_failed("SubmissionInterrupted", message, retryable=True)
            return
        await self._finish_failed(
            "SubmissionInterrupted",
            f"{message}; not submitting again because backoffLimit allows no retry "
            "(delete and re-create the AirflowTask to run it again)",
            retryable=False,
        )

    async def _exceed_deadline(self, observed: ObservedStatus) -> None:
        try:
            meta = self.memory.metadata(observed.resource_meta, self.executor, self.task)
        except ValueError as error:
            meta, cancelled = None, f"; no external job was cancelled: status.resourceMeta cannot be read ({error})"
        else:
            cancelled = ""
        if meta is not None:
            with metrics.connector_call("delete"):
                await self.executor.delete(self.task, meta, self.memory.run)
            self.executor.forget(meta)
            cancelled = "; the external job was cancelled"
        await self._write(
            phase="Failed",
            reason="DeadlineExceeded",
            message=f"activeDeadlineSeconds ({self.task.active_deadline_seconds}s) exceeded{cancelled}",
            completionTime=format_time(_now()),
            nextAttemptTime=None,
        )


def _seconds_until(moment: datetime) -> float:
    return max(moment.timestamp() - _now().timestamp(), 0.0)
