"""Fixtures for the engine's integration tests: a real Engine in its own event loop, a local HTTP server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from airflowtask.connector_core import AirflowMetadata, AirflowObj, Engine, EngineConfig, RunInfo, TaskState
from airflowtask.connector_core.model import DEFAULT_ALLOWED_MODULES
from local_http import JsonHandler, LocalServer

T = TypeVar("T")
TEST_MODULES = ("localjob", "task_callables")


def make_config(**overrides: Any) -> EngineConfig:
    return EngineConfig(**{"allowed_modules": DEFAULT_ALLOWED_MODULES + TEST_MODULES, **overrides})


def run_info(**overrides: Any) -> RunInfo:
    return RunInfo(**{"run_id": "manual__1", "logical_date": datetime(2024, 1, 2, tzinfo=UTC), **overrides})


@dataclass
class Harness:
    """Runs coroutines in one event loop, with engines created in it."""

    runner: asyncio.Runner
    engines: list[Engine] = field(default_factory=list)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    def engine(self, **overrides: Any) -> Engine:
        engine = Engine(make_config(**overrides))
        self.engines.append(engine)
        return engine

    def create(
        self,
        engine: Engine,
        module: str,
        name: str,
        run: RunInfo | None = None,
        task_id: str = "task",
        **parameters: Any,
    ) -> tuple[AirflowMetadata, TaskState]:
        return self.run(engine.create(AirflowObj(module, name, parameters), task_id=task_id, run=run or run_info()))

    def finish(
        self, engine: Engine, meta: AirflowMetadata, run: RunInfo | None = None, timeout: float = 20
    ) -> TaskState:
        """get() and wait() until the task is finished, as a front end does."""
        return self.run(finish(engine, meta, run or run_info(), timeout))


async def finish(engine: Engine, meta: AirflowMetadata, run: RunInfo, timeout: float = 20) -> TaskState:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (state := await engine.get(meta, run=run)).finished:
        if loop.time() > deadline:
            raise TimeoutError(f"still {state.phase} {state.reason}: {state.message}")
        await engine.wait(meta, timeout=0.5)
    return state


@pytest.fixture
def harness() -> Iterator[Harness]:
    with asyncio.Runner() as runner:
        harness = Harness(runner)
        yield harness
        for engine in harness.engines:
            runner.run(engine.close())


@pytest.fixture
def engine(harness: Harness) -> Engine:
    return harness.engine()


class WebServer:
    """A local HTTP server: /health is 200, /ready is 200 once ``ready`` is set, /data returns JSON."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        server = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                routes: dict[str, Callable[[], tuple[int, Any]]] = {
                    "/health": lambda: (200, {"ok": True}),
                    "/ready": lambda: (200, {"ready": True}) if server.ready.is_set() else (404, {"ready": False}),
                    "/data": lambda: (200, {"value": 42}),
                }
                self.reply(*routes.get(self.path, lambda: (404, {}))())

            do_POST = do_GET

        self.http = LocalServer(Handler)
        self.http.start()

    @property
    def uri(self) -> str:
        return self.http.url

    def close(self) -> None:
        self.http.stop()


@pytest.fixture
def web() -> Iterator[WebServer]:
    server = WebServer()
    yield server
    server.close()
