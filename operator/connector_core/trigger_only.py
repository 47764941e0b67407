"""Build and run triggers, and nothing else: the triggerer's whole power over a deferral.

A deferral names a trigger by classpath with typed-JSON kwargs. Here the kwargs are decoded as data (a callable
reference anywhere is refused before anything is imported), the class is imported through the allowlist and must
be a subclass of Airflow's ``BaseTrigger``; then it runs to its first event. There is no path that constructs an
operator, a sensor or a hook, nor one that calls ``execute()``, ``poke()`` or a hook method.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger
from airflowtask.connector_core import logs, secrets, typed
from airflowtask.connector_core.allowlist import Allowlist, ImportFailedError, NotAllowedError
from airflowtask.connector_core.model import RunInfo
from airflowtask.connector_core.triggerer import AlarmClock, end_verdict, first_event


class Refused(Exception):
    """The deferral names something that is not run: ``reason`` (InvalidOutcome, NotAllowed, ImportFailed)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


@dataclass(frozen=True)
class Event:
    """What a trigger's first event says: ``fired`` with a typed-JSON payload for the callback, or ``ended``
    (a TaskSuccessEvent and its kin end the task without a callback) with the task's final phase and reason."""

    kind: str
    payload: Any = None
    phase: str | None = None
    reason: str | None = None


def build_trigger(allowlist: Allowlist, classpath: str, kwargs: Mapping[str, Any]) -> BaseTrigger:
    """The trigger a deferral names; Refused for anything else."""
    try:
        decoded = typed.decode(dict(kwargs), "deferral.trigger.kwargs")
    except (typed.TypedValueError, TypeError, ValueError) as error:
        raise Refused("InvalidOutcome", f"deferral.trigger.kwargs: {error}") from None
    if _holds_callable(decoded):
        raise Refused("InvalidOutcome", "deferral.trigger.kwargs: a callable reference is not data")
    module, _, name = classpath.rpartition(".")
    try:
        cls = allowlist.load(module, name)
    except NotAllowedError as error:
        raise Refused("InvalidOutcome", str(error)) from None
    except ImportFailedError as error:
        raise Refused("ImportFailed", str(error)) from None
    if not (isinstance(cls, type) and issubclass(cls, BaseTrigger)):
        raise Refused("InvalidOutcome", f"deferral.trigger.classpath {classpath} is not a trigger")
    try:
        return cls(**decoded)
    except Exception as error:
        raise Refused("InvalidParameters", f"{classpath}({', '.join(decoded)}): {type(error).__name__}: "
                                           f"{error}") from None


def _holds_callable(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, typed.CallableRef):
            return True
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
    return False


async def run_trigger(trigger: BaseTrigger, connections: Mapping[str, str], clock: AlarmClock, name: str) -> Event:
    """Run ``trigger`` to its first event, its connections bound for it alone, as an asyncio task named ``name``."""
    run = RunInfo(run_id="trigger", logical_date=datetime.now(UTC), connections=dict(connections))
    context = contextvars.copy_context()
    context.run(secrets.current.set, secrets.TaskSecrets(run))
    context.run(logs.current.set, None)
    event = await asyncio.get_running_loop().create_task(first_event(trigger, None, clock), name=name,
                                                                     context=context)
    if (ended := end_verdict(event)) is not None:
        return Event("ended", phase=ended[0].phase.value, reason=str(ended[0].reason))
    return Event("fired", payload=typed.encode(event.payload, "event"))
