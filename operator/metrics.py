"""Prometheus metrics of the operator, in a registry of its own (no kopf, no Airflow imports).

Series (all documented in docs/deploy.md):

- ``airflowtask_tasks{phase}``: AirflowTasks by their latest phase (``observe_phase`` / ``forget``);
- ``airflowtask_connector_seconds{call}``: duration of connector calls (``connector_call``);
- ``airflowtask_task_failures_total{reason}``: tasks that ended Failed (``count_failure``);
- ``airflowtask_triggers_running``, ``airflowtask_worker_pool_in_use``: read from the engine (``bind_engine``);
- ``process_*`` and ``python_gc_*``: the standard process and garbage-collector collectors.

The module-level functions act on ``METRICS``, the operator's one ``Metrics`` instance.
"""

from __future__ import annotations

import functools
import inspect
import math
import threading
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import start_http_server as _start_http_server
from prometheus_client.gc_collector import GCCollector
from prometheus_client.process_collector import ProcessCollector

PREFIX = "airflowtask"
PHASES = ("Pending", "Running", "Succeeded", "Failed")
CALLS = ("create", "get", "delete")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds: from a quick ``get`` of an in-memory state to a ``create`` that runs ``execute`` for minutes."""

P = ParamSpec("P")
R = TypeVar("R")


def _safe(read: Callable[[], int]) -> Callable[[], float]:
    """A gauge callback that never breaks a scrape: NaN when ``read`` raises."""

    def value() -> float:
        try:
            return float(read())
        except Exception:
            return math.nan

    return value


class ConnectorTimer:
    """Observes the seconds spent in a block (``with``) or in each call of a function (decorator).

    Works around awaits: ``with metrics.connector_call("get"): state = await engine.get(...)``.
    The time is recorded whether the block returns or raises.
    """

    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram
        self._started: list[float] = []

    def __enter__(self) -> ConnectorTimer:
        self._started.append(time.perf_counter())
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._histogram.observe(time.perf_counter() - self._started.pop())

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(fn):
            coroutine_fn = cast(Callable[P, Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def timed_coroutine(*args: P.args, **kwargs: P.kwargs) -> Any:
                with ConnectorTimer(self._histogram):
                    return await coroutine_fn(*args, **kwargs)

            return cast(Callable[P, R], timed_coroutine)

        @functools.wraps(fn)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            with ConnectorTimer(self._histogram):
                return fn(*args, **kwargs)

        return timed


class Metrics:
    """The operator's metrics, registered in ``registry`` (a new one unless given)."""

    def __init__(self, registry: CollectorRegistry | None = None, *, process_metrics: bool = True) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._tasks = Gauge(
            f"{PREFIX}_tasks",
            "AirflowTasks seen by this operator process, by their latest phase.",
            ["phase"],
            registry=self.registry,
        )
        self._connector = Histogram(
            f"{PREFIX}_connector_seconds",
            "Duration of connector calls (create, get, delete) in seconds.",
            ["call"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._failures = Counter(
            f"{PREFIX}_task_failures",
            "AirflowTasks that ended Failed, by status.reason.",
            ["reason"],
            registry=self.registry,
        )
        self._triggers = Gauge(
            f"{PREFIX}_triggers_running",
            "Deferred tasks whose Airflow trigger is running (in the operator or its triggerer).",
            registry=self.registry,
        )
        self._blocked = Counter(
            f"{PREFIX}_trigger_loop_blocked",
            "Triggers that held their namespace's triggerer loop longer than the threshold, by namespace.",
            ["namespace"],
            registry=self.registry,
        )
        self._pool = Gauge(
            f"{PREFIX}_worker_pool_in_use",
            "Worker threads busy with synchronous Airflow code (execute, poke, callbacks).",
            registry=self.registry,
        )
        for phase in PHASES:
            self._tasks.labels(phase=phase)
        for call in CALLS:
            self._connector.labels(call=call)
        if process_metrics:
            ProcessCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        self._phases: dict[str, str] = {}
        self._lock = threading.Lock()
        self.bind_engine(lambda: 0, lambda: 0)

    def observe_phase(self, uid: str, phase: str | None) -> None:
        """Count the object ``uid`` once, in ``phase`` (None, before the first status, counts as Pending)."""
        phase = phase or "Pending"
        with self._lock:
            previous = self._phases.get(uid)
            if previous == phase:
                return
            if previous is not None:
                self._tasks.labels(phase=previous).dec()
            self._phases[uid] = phase
            self._tasks.labels(phase=phase).inc()

    def forget(self, uid: str) -> None:
        """Stop counting the object ``uid`` (it was deleted); unknown uids are ignored."""
        with self._lock:
            previous = self._phases.pop(uid, None)
            if previous is not None:
                self._tasks.labels(phase=previous).dec()

    def connector_call(self, call: str) -> ConnectorTimer:
        """A timer for one connector call: ``create``, ``get`` or ``delete``."""
        return ConnectorTimer(self._connector.labels(call=call))

    def count_failure(self, reason: str) -> None:
        """One more task ended Failed with ``reason`` (a CamelCase word, e.g. ``DeadlineExceeded``)."""
        self._failures.labels(reason=reason or "Unknown").inc()

    def count_blocked_loop(self, namespace: str) -> None:
        """One more trigger that blocked its triggerer's event loop."""
        self._blocked.labels(namespace=namespace).inc()

    def bind_engine(self, running_triggers: Callable[[], int], pool_in_use: Callable[[], int]) -> None:
        """Read the two engine gauges from these callables at every scrape (NaN if one raises)."""
        self._triggers.set_function(_safe(running_triggers))
        self._pool.set_function(_safe(pool_in_use))

    def serve(self, port: int, addr: str = "0.0.0.0") -> tuple[WSGIServer, threading.Thread]:
        """Serve the text exposition on ``http://addr:port/`` (any path) from a daemon thread."""
        return _start_http_server(port, addr=addr, registry=self.registry)

    def exposition(self) -> str:
        """The current metrics in the Prometheus text format."""
        return generate_latest(self.registry).decode()


METRICS = Metrics()
"""The operator's metrics; the functions below act on it."""

observe_phase = METRICS.observe_phase
forget = METRICS.forget
connector_call = METRICS.connector_call
count_failure = METRICS.count_failure
bind_engine = METRICS.bind_engine
count_blocked_loop = METRICS.count_blocked_loop
serve = METRICS.serve
