"""Deferrals and triggers: what Airflow's triggerer does, for the engine's event loop.

A deferral's trigger is always rebuilt from ``trigger.serialize()`` (classpath and kwargs), through the
allowlist, before it runs; the same path rebuilds it after a restart, so what runs first is what a
restart would run. A trigger runs as one asyncio task until its first event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import TaskDeferred
from airflow.triggers.base import BaseTaskEndEvent, BaseTrigger, TriggerEvent
from airflowtask.connector_core.loader import Loader
from airflowtask.connector_core.model import Phase, Reason
from airflowtask.connector_core.outcomes import Verdict
from airflowtask.connector_core.paths import split_classpath

log = logging.getLogger(__name__)


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


async def first_event(trigger: BaseTrigger, deadline: float | None) -> TriggerEvent:
    """Run ``trigger`` until its first event, then clean it up. TimeoutError at ``deadline`` (loop time)."""
    events = trigger.run()
    try:
        async with asyncio.timeout_at(deadline):
            async for event in events:
                return event
        raise TriggerExhausted(f"{type(trigger).__name__} ended without an event")
    finally:
        await _close(trigger, events)


async def _close(trigger: BaseTrigger, events: Any) -> None:
    try:
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
