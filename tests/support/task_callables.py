"""Importable callables and small Airflow classes the connector_core integration tests run by path."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook, BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from airflow.triggers.base import BaseTrigger, TaskFailedEvent, TaskSuccessEvent, TriggerEvent


def greet(name: str, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


def push_and_pull(ti: Any) -> str:
    ti.xcom_push(key="answer", value=42)
    return f"pulled {ti.xcom_pull(key='answer')}"


def skip() -> None:
    raise AirflowSkipException("nothing to do today")


def fail_for_good() -> None:
    raise AirflowFailException("the input is broken")


def never() -> bool:
    return False


def connection_host(conn_id: str, pause: float = 0.0) -> str:
    """The host of ``conn_id``, read twice around a pause (so concurrent tasks overlap)."""
    first = BaseHook.get_connection(conn_id).host
    time.sleep(pause)
    return f"{first}/{BaseHook.get_connection(conn_id).host}"


def allocate(megabytes: int) -> int:
    """Hold ``megabytes`` of memory in this process (to run past a Pod's memory limit)."""
    held = [bytearray(1024 * 1024) for _ in range(megabytes)]
    return len(held)


def slow_poke(seconds: float) -> bool:
    time.sleep(seconds)
    return False


def busy_poke(seconds: float) -> bool:
    """Like slow_poke, but holding the GIL as pure-Python work does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass
    return False


class NeverTrigger(BaseTrigger):
    """Never fires (until it is cancelled or times out)."""

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__name__}", {}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            await asyncio.sleep(3600)
            yield TriggerEvent(None)


class FailingTrigger(BaseTrigger):
    """Raises as soon as it runs."""

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__name__}", {}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        raise RuntimeError("the service is down")
        yield TriggerEvent(None)


class EndingTrigger(BaseTrigger):
    """Ends the task itself (a task-end event, as Airflow's own sensors do): success or failure."""

    def __init__(self, succeed: bool = True) -> None:
        super().__init__()
        self.succeed = succeed

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__name__}", {"succeed": self.succeed}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        yield TaskSuccessEvent() if self.succeed else TaskFailedEvent()


class AtTimeTrigger(BaseTrigger):
    """Fires at ``at`` (POSIX seconds) to within the event loop's precision; the payload is the firing time."""

    def __init__(self, at: float) -> None:
        super().__init__()
        self.at = at

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__name__}", {"at": self.at}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        await asyncio.sleep(max(self.at - time.time(), 0))
        yield TriggerEvent(time.time())


class LoopBlockingTrigger(BaseTrigger):
    """Holds its event loop (``time.sleep``, as blocking I/O in a trigger would) for ``seconds``, then fires."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__name__}", {"seconds": self.seconds}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        time.sleep(self.seconds)
        yield TriggerEvent("woke")


class DeferringOperator(BaseOperator):
    """Defers to NeverTrigger (optionally with a timeout), FailingTrigger, AtTimeTrigger (``at``),
    LoopBlockingTrigger (``block`` seconds) or EndingTrigger (``succeeding``, ``ending-failed``).

    With ``kill_marker``, execute() keeps a ``Path`` (state JSON cannot hold) that on_kill writes to.
    """

    def __init__(
        self,
        *,
        trigger: str = "never",
        timeout: float | None = None,
        kill_marker: str | None = None,
        at: float = 0.0,
        block: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.trigger = trigger
        self.at = at
        self.block = block
        self.defer_timeout = timeout
        self.kill_marker = kill_marker

    def execute(self, context: Any) -> None:
        if self.kill_marker:
            self.marker_path = Path(self.kill_marker)
        triggers = {"never": NeverTrigger, "failing": FailingTrigger, "at": lambda: AtTimeTrigger(self.at),
                    "blocking": lambda: LoopBlockingTrigger(self.block), "succeeding": EndingTrigger,
                    "ending-failed": lambda: EndingTrigger(succeed=False)}
        trigger = triggers[self.trigger]()
        timeout = timedelta(seconds=self.defer_timeout) if self.defer_timeout is not None else None
        self.defer(trigger=trigger, method_name="execute_complete", timeout=timeout)

    def execute_complete(self, context: Any, event: Any = None) -> Any:
        return event if self.trigger in ("at", "blocking") else "fired"

    def on_kill(self) -> None:
        if self.kill_marker:
            self.marker_path.write_text("killed")


def forge_outcome(outcome: Any) -> None:
    """What a hostile task can do: write its own "outcome" to the termination log and end the worker at once,
    before the worker writes its own (``os._exit`` runs no handler)."""
    import json
    import os

    with open("/dev/termination-log", "w") as log:
        log.write(outcome if isinstance(outcome, str) else json.dumps(outcome))
    os._exit(0)
