"""A pool of threads for the engine's blocking calls, built so that the event loop never waits for a worker.

``concurrent.futures.ThreadPoolExecutor`` (behind ``loop.run_in_executor``) makes the submitting thread take
locks its workers take too: the pool's idle semaphore and each Future's condition. A worker that holds one
when it loses the GIL blocks the event loop on that lock, and then the loop waits for the GIL again, a switch
interval (5 ms) or more. Here a job reaches the threads through a ``queue.SimpleQueue`` and its outcome comes
back through an :class:`_Outbox`; neither takes a lock a busy worker can hold. The outbox wakes the loop
(``loop.call_soon_threadsafe``, a write to its self-pipe) once per batch of outcomes, not once per job: each
such write releases the worker's GIL, and getting it back under load costs another switch interval.

Python runs one thread at a time, and the event loop gets no more of it than any busy worker: with eight
workers building thousands of tasks, the loop runs a ninth of the time, falls behind the work it is given,
and then runs one iteration of seconds. So the loop beats (every :data:`BEAT_SECONDS` while jobs are in
flight), and a worker about to take a job first waits while the last beat is more than
:data:`LOOP_BEHIND_SECONDS` old, at most :data:`MAX_YIELD_SECONDS` per job: a loop that falls behind gets
the interpreter to itself until it catches up. A job already running is never paused.

A pool of ``size`` threads all stuck in long calls (BashOperators running for minutes, say) would leave
every other task waiting, even those whose work takes milliseconds. So while jobs wait and no job has
ended for :data:`STALL_SECONDS`, the pool adds a thread, up to ``GROWTH`` times ``size``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

STALL_SECONDS = 1.0
GROWTH = 4
BEAT_SECONDS = 0.005
LOOP_BEHIND_SECONDS = 0.02
MAX_YIELD_SECONDS = 0.1
_YIELD_SLEEP = 0.001

_Job = tuple["_Outbox", "asyncio.Future[Any]", contextvars.Context, Callable[[], Any]]


class WorkerPool:
    """``size`` daemon threads named ``<name>_<i>``, started as concurrent work needs them (more when all are stuck)."""

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._in_flight = 0
        """Jobs submitted and not done yet (read and written on event loops only)."""
        self._closed = False
        self._last_end = 0.0
        """Loop time at which the last job ended."""
        self._stall_check: asyncio.TimerHandle | None = None
        self._outbox: _Outbox | None = None

    def run(self, work: Callable[[], T], context: contextvars.Context) -> asyncio.Future[T]:
        """Run ``context.run(work)`` in a worker thread; the returned future (of the running loop) gets its outcome.

        Cancelling the future before a worker took the job means the job never runs.
        """
        if self._closed:
            raise RuntimeError(f"the {self._name} pool is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        future.add_done_callback(self._done)
        self._in_flight += 1
        if len(self._threads) < min(self._in_flight, self._size):
            self._start_thread()
        elif self._in_flight > len(self._threads) and self._stall_check is None:
            self._stall_check = loop.call_later(STALL_SECONDS, self._unstall, loop)
        if self._outbox is None or self._outbox.loop is not loop:
            self._outbox = _Outbox(loop)
        self._outbox.beat_while(self._has_work)
        self._jobs.put((self._outbox, future, context, work))
        return future

    def close(self) -> None:
        """Cancel the jobs no worker took yet and let the threads end (running jobs finish on their own)."""
        self._closed = True
        if self._stall_check is not None:
            self._stall_check.cancel()
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                _call_soon(job[0].loop, job[1].cancel)
        for _ in self._threads:
            self._jobs.put(None)
        self._threads.clear()

    def _has_work(self) -> bool:
        return self._in_flight > 0 and not self._closed

    def _done(self, future: asyncio.Future[Any]) -> None:
        self._in_flight -= 1
        self._last_end = future.get_loop().time()

    def _unstall(self, loop: asyncio.AbstractEventLoop) -> None:
        """While jobs wait: add a thread if no job ended for STALL_SECONDS, and look again later."""
        self._stall_check = None
        if self._closed or self._in_flight <= len(self._threads):
            return
        if loop.time() - self._last_end >= STALL_SECONDS and len(self._threads) < GROWTH * self._size:
            self._start_thread()
        self._stall_check = loop.call_later(STALL_SECONDS, self._unstall, loop)

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._work, name=f"{self._name}_{len(self._threads)}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            _run_job(*job)
            del job


def _run_job(
    outbox: _Outbox, future: asyncio.Future[Any], context: contextvars.Context, work: Callable[[], Any]
) -> None:
    """In a worker thread: run one job and post its outcome."""
    outbox.wait_for_loop()
    if future.cancelled():  # read from this thread: at worst the job runs and its outcome is dropped
        return
    try:
        result, error = context.run(work), None
    except BaseException as exc:
        result, error = None, exc
    outbox.post(future, result, error)


class _Outbox:
    """Outcomes of jobs on their way to one loop: posted by any thread, delivered on the loop in batches."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._outcomes: deque[tuple[asyncio.Future[Any], Any, BaseException | None]] = deque()
        self._delivery_due = False
        self._last_beat = time.monotonic()
        """When the loop last ran :meth:`_beat` (written on the loop, read by workers)."""
        self._beating: Callable[[], bool] | None = None

    def beat_while(self, busy: Callable[[], bool]) -> None:
        """On the loop: beat every BEAT_SECONDS from now on, until ``busy()`` is false."""
        if self._beating is None:
            self._last_beat = time.monotonic()
            self.loop.call_later(BEAT_SECONDS, self._beat)
        self._beating = busy

    def _beat(self) -> None:
        self._last_beat = time.monotonic()
        if self._beating is not None and self._beating():
            self.loop.call_later(BEAT_SECONDS, self._beat)
        else:
            self._beating = None

    def wait_for_loop(self) -> None:
        """In a worker: while the loop is behind (last beat is old), yield the interpreter to it, a while at most."""
        deadline = time.monotonic() + MAX_YIELD_SECONDS
        while self._beating is not None and (now := time.monotonic()) - self._last_beat > LOOP_BEHIND_SECONDS:
            if now > deadline:
                return
            time.sleep(_YIELD_SLEEP)

    def post(self, future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
        """From any thread; wakes the loop unless a delivery is already due (which will take this one too)."""
        self._outcomes.append((future, result, error))
        if not self._delivery_due:
            self._delivery_due = True
            _call_soon(self.loop, self._deliver)

    def _deliver(self) -> None:
        self._delivery_due = False  # before draining: what is posted from now on is drained now or by a new delivery
        while self._outcomes:
            future, result, error = self._outcomes.popleft()
            if future.done():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    """``loop.call_soon_threadsafe``, doing nothing once the loop is closed (nobody waits any more)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)
