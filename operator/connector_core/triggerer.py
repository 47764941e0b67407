"""Deferrals and triggers: what Airflow's triggerer does, for the engine's event loop.

A deferral's trigger is always rebuilt from ``trigger.serialize()`` (classpath and kwargs), through the
allowlist, before it runs; the same path rebuilds it after a restart, so what runs first is what a
restart would run. A trigger runs as one asyncio task until its first event.

A ``DateTimeTrigger`` (``TimeDeltaTrigger`` is one) only waits for a moment, but its run() polls the clock,
every second in its last seconds, logging a line each time: it fires up to a second late, and thousands of
them fill the event loop with wake-ups and log lines. For such a trigger (when its class keeps that run())
the engine waits until the moment on an :class:`AlarmClock` and then makes the event run() yields there.
The clock keeps one loop timer for all of them and wakes at most :data:`WAKE_PER_TURN` per event-loop turn,
so thousands due at one moment do not stall the loop for the time it takes to handle them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeGuard

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk.exceptions import TaskDeferred
from airflow.triggers.base import BaseTaskEndEvent, BaseTrigger, TaskSuccessEvent, TriggerEvent
from airflowtask.connector_core import logs
from airflowtask.connector_core.loader import Loader
from airflowtask.connector_core.model import Phase, Reason
from airflowtask.connector_core.outcomes import Verdict
from airflowtask.connector_core.paths import split_classpath

log = logging.getLogger(__name__)

_LONGEST_NAP = 60.0
"""An AlarmClock checks the wall clock at least this often (in case the clock is changed)."""
WAKE_PER_TURN = 500
"""Sleepers an AlarmClock wakes per event-loop turn at most; the others wake in the next turns."""


class TriggerExhausted(RuntimeError):
    """The trigger's run() ended without an event."""


@dataclass
class Deferral:
    """A trigger to run (rebuilt from its serialized form) and the callback to run when it fires."""

    module: str
    name: str
    kwargs: dict[str, Any]
    trigger: BaseTrigger
    method: str | None
    next_kwargs: dict[str, Any] = field(default_factory=dict)
    deadline: datetime | None = None


def deferral_from(deferred: TaskDeferred, loader: Loader, now: datetime) -> Deferral:
    """Serialize the trigger of a TaskDeferred and rebuild it from that form (seed defect 2)."""
    classpath, kwargs = deferred.trigger.serialize()
    module, name = split_classpath(classpath)
    timeout = deferred.timeout
    if isinstance(timeout, int | float):
        timeout = timedelta(seconds=timeout)
    return Deferral(
        module=module,
        name=name,
        kwargs=dict(kwargs),
        trigger=loader.trigger(module, name, kwargs),
        method=deferred.method_name,
        next_kwargs=dict(deferred.kwargs or {}),
        deadline=now + timeout if timeout is not None else None,
    )


async def first_event(trigger: BaseTrigger, deadline: float | None, clock: AlarmClock | None = None) -> TriggerEvent:
    """Run ``trigger`` until its first event, then clean it up. TimeoutError at ``deadline`` (loop time).

    A trigger that only waits for a moment sleeps on ``clock`` (a new one without it) instead of running.
    """
    timed = trigger if waits_for_a_moment(trigger) else None
    events = None if timed is not None else trigger.run()
    try:
        async with contextlib.nullcontext() if deadline is None else asyncio.timeout_at(deadline):
            if timed is not None:
                return await moment_event(timed, clock or AlarmClock(asyncio.get_running_loop()))
            async for event in events:
                return event
        raise TriggerExhausted(f"{type(trigger).__name__} ended without an event")
    finally:
        await _close(trigger, events)


def waits_for_a_moment(trigger: BaseTrigger) -> TypeGuard[DateTimeTrigger]:
    """A DateTimeTrigger (or subclass) whose run() is DateTimeTrigger's: it only waits for ``trigger.moment``."""
    return isinstance(trigger, DateTimeTrigger) and type(trigger).run is DateTimeTrigger.run


async def moment_event(trigger: DateTimeTrigger, clock: AlarmClock) -> TriggerEvent:
    """What DateTimeTrigger.run() yields, once its moment has come by the wall clock."""
    moment = trigger.moment
    await clock.sleep_until(moment.timestamp())
    event = TaskSuccessEvent() if trigger.end_from_trigger else TriggerEvent(moment)
    if (task_log := logs.current.get()) is not None:
        task_log.append(f"{type(trigger).__name__}: {datetime.isoformat(moment)} has come")
    return event


class AlarmClock:
    """Wakes sleepers at wall-clock times, with one timer of ``loop``, at most WAKE_PER_TURN per loop turn."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._cancelled = 0

    async def sleep_until(self, due: float) -> None:
        """Return once ``time.time()`` has reached ``due``."""
        if due <= time.time():
            return
        future = self.loop.create_future()
        heapq.heappush(self._sleepers, (due, next(self._order), future))
        self._arm()
        try:
            await future
        except asyncio.CancelledError:
            self._forget_cancelled()
            raise

    def _arm(self) -> None:
        """Set the timer for the earliest sleeper (or none)."""
        if not self._sleepers:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        delay = min(self._sleepers[0][0] - time.time(), _LONGEST_NAP)
        when = self.loop.time() + max(delay, 0.0)
        if self._timer is not None:
            if self._timer.when() <= when:
                return
            self._timer.cancel()
        self._timer = self.loop.call_at(when, self._ring)

    def _ring(self) -> None:
        self._timer = None
        now, woken = time.time(), 0
        while self._sleepers and self._sleepers[0][0] <= now and woken < WAKE_PER_TURN:
            future = heapq.heappop(self._sleepers)[2]
            if future.done():
                self._cancelled -= 1
            else:
                future.set_result(None)
                woken += 1
        if self._sleepers and self._sleepers[0][0] <= now:
            self._timer = self.loop.call_at(self.loop.time(), self._ring)  # the rest in the next turn
        else:
            self._arm()

    def _forget_cancelled(self) -> None:
        """Count a cancelled sleeper; drop them all once they are half of the sleepers."""
        self._cancelled += 1
        if 2 * self._cancelled > len(self._sleepers):
            self._sleepers = [sleeper for sleeper in self._sleepers if not sleeper[2].done()]
            heapq.heapify(self._sleepers)
            self._cancelled = 0
            self._arm()


async def _close(trigger: BaseTrigger, events: Any) -> None:
    try:
        if events is not None:
            await events.aclose()
        await trigger.cleanup()
    except Exception:
        log.warning("cleaning up %s failed", type(trigger).__name__, exc_info=True)


def end_verdict(event: TriggerEvent) -> tuple[Verdict, Mapping[str, Any]] | None:
    """For an event that ends the task without a callback (TaskSuccessEvent, ...): its verdict and XComs."""
    if not isinstance(event, BaseTaskEndEvent):
        return None
    state = str(event.task_instance_state)
    xcoms = event.xcoms or {}
    if state == "success":
        return Verdict(Phase.SUCCEEDED, Reason.COMPLETED, "the trigger ended the task"), xcoms
    if state == "skipped":
        return Verdict(Phase.SUCCEEDED, Reason.SKIPPED, "the trigger skipped the task"), xcoms
    return Verdict(Phase.FAILED, Reason.TASK_FAILED, f"the trigger ended the task as {state}"), xcoms
