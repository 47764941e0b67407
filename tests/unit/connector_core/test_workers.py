"""WorkerPool: blocking calls in threads, outcomes back on the event loop."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest
from airflowtask.connector_core.workers import STALL_SECONDS, WorkerPool

name: contextvars.ContextVar[str] = contextvars.ContextVar("name", default="unset")


def in_context(value: str) -> contextvars.Context:
    context = contextvars.copy_context()
    context.run(name.set, value)
    return context


def test_runs_in_a_named_thread_in_the_given_context() -> None:
    pool = WorkerPool(2, "test-worker")

    async def scenario() -> tuple[str, str]:
        return await pool.run(lambda: (name.get(), threading.current_thread().name), in_context("task-1"))

    assert asyncio.run(scenario()) == ("task-1", "test-worker_0")
    pool.close()


def test_exceptions_reach_the_caller() -> None:
    pool = WorkerPool(1, "test-worker")

    def fail() -> None:
        raise ValueError("boom")

    async def scenario() -> None:
        await pool.run(fail, contextvars.copy_context())

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(scenario())
    pool.close()


def test_at_most_size_threads_and_a_cancelled_job_never_runs() -> None:
    pool = WorkerPool(2, "test-worker")
    release = threading.Event()
    ran: list[str] = []

    def job(label: str) -> str:
        release.wait(5)
        ran.append(label)
        return threading.current_thread().name

    async def scenario() -> set[str]:
        first = [pool.run(lambda label=label: job(label), contextvars.copy_context()) for label in ("a", "b")]
        cancelled = pool.run(lambda: job("cancelled"), contextvars.copy_context())
        last = pool.run(lambda: job("c"), contextvars.copy_context())
        await asyncio.sleep(0.05)
        cancelled.cancel()
        release.set()
        return set(await asyncio.gather(*first, last))

    assert asyncio.run(scenario()) == {"test-worker_0", "test-worker_1"}
    assert sorted(ran) == ["a", "b", "c"]
    pool.close()


def test_close_cancels_waiting_jobs_and_refuses_new_ones() -> None:
    pool = WorkerPool(1, "test-worker")
    release = threading.Event()

    async def scenario() -> tuple[bool, bool]:
        context = contextvars.copy_context()
        running = pool.run(lambda: release.wait(5), context)
        waiting = pool.run(lambda: "never", context)
        await asyncio.sleep(0.05)
        pool.close()
        release.set()
        await running
        with pytest.raises(RuntimeError, match="closed"):
            pool.run(lambda: None, context)
        await asyncio.sleep(0)
        return running.result(), waiting.cancelled()

    assert asyncio.run(scenario()) == (True, True)


def test_a_thread_is_added_while_all_are_stuck_in_long_calls() -> None:
    pool = WorkerPool(1, "test-worker")
    release = threading.Event()

    async def scenario() -> tuple[str, float, bool]:
        loop = asyncio.get_running_loop()
        stuck = pool.run(lambda: release.wait(10), contextvars.copy_context())
        started = loop.time()
        quick = await pool.run(lambda: threading.current_thread().name, contextvars.copy_context())
        waited = loop.time() - started
        release.set()
        return quick, waited, await stuck

    quick, waited, stuck = asyncio.run(scenario())
    assert (quick, stuck) == ("test-worker_1", True)
    assert STALL_SECONDS <= waited < STALL_SECONDS + 1
    pool.close()


def run_while_the_loop_is_blocked(monkeypatch: pytest.MonkeyPatch, max_yield: float) -> tuple[float, float, float]:
    """Hold the loop for 0.3 s while the one worker ends a 0.1 s job: (block start, block end, next job's start)."""
    from airflowtask.connector_core import workers

    monkeypatch.setattr(workers, "MAX_YIELD_SECONDS", max_yield)
    pool = WorkerPool(1, "test-worker")

    async def scenario() -> tuple[float, float, float]:
        first = pool.run(lambda: time.sleep(0.1), contextvars.copy_context())
        job = pool.run(time.monotonic, contextvars.copy_context())
        blocked = time.monotonic()
        time.sleep(0.3)  # the loop, busy: no beat
        resumed = time.monotonic()
        await first
        return blocked, resumed, await job

    try:
        return asyncio.run(scenario())
    finally:
        pool.close()


def test_a_worker_waits_for_a_loop_that_is_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    _, resumed, started = run_while_the_loop_is_blocked(monkeypatch, max_yield=10.0)
    assert started >= resumed


def test_a_worker_waits_for_the_loop_a_while_at_most(monkeypatch: pytest.MonkeyPatch) -> None:
    blocked, resumed, started = run_while_the_loop_is_blocked(monkeypatch, max_yield=0.0)
    assert blocked <= started < resumed
