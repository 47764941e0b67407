"""Spreading a burst of task starts over event-loop iterations, so that the loop keeps answering.

Each start does some synchronous work on the loop before its first ``await`` (reading the task's
description, registering it): about 0.1 ms. Five thousand CreateTask calls arriving at once would run all
of that in one loop iteration, and every other caller (a poll, a trigger) would wait the whole half
second. A :class:`Pacer` admits at most ``per_iteration`` starts per iteration, the others wait their turn
in arrival order: the same starts, at the same rate, but between them the loop runs everything else.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Pacer:
    """Admits at most ``per_iteration`` asyncio tasks per event-loop iteration, first come first served."""

    def __init__(self, per_iteration: int) -> None:
        self._per_iteration = per_iteration
        self._admitted: set[asyncio.Task[object]] = set()
        """The asyncio tasks admitted in the current iteration."""
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._turn_scheduled = False

    async def turn(self) -> None:
        """Return once the calling asyncio task may run its synchronous part in this iteration.

        A task admitted in this iteration is admitted again at once: a start that takes its turn in two
        places (the Flyte connector, then the engine) counts once.
        """
        task = asyncio.current_task()
        assert task is not None, "Pacer.turn() runs in an asyncio task"
        if task in self._admitted:
            return
        if not self._waiting and len(self._admitted) < self._per_iteration:
            self._admit(task)
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self._schedule_turn()
        await waiter
        self._admit(task)

    def _admit(self, task: asyncio.Task[object]) -> None:
        self._admitted.add(task)
        self._schedule_turn()

    def _schedule_turn(self) -> None:
        if not self._turn_scheduled:
            self._turn_scheduled = True
            asyncio.get_running_loop().call_soon(self._next_iteration)

    def _next_iteration(self) -> None:
        """Once per iteration while anyone was admitted or waits: start a new count and wake the next waiters.

        The woken run in the following iteration, and are counted then (a cancelled waiter is skipped).
        """
        self._turn_scheduled = False
        self._admitted.clear()
        woken = 0
        while self._waiting and woken < self._per_iteration:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                woken += 1
        if woken:
            self._schedule_turn()
