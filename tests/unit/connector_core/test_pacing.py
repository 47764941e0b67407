"""Pacer: a burst of starts spread over event-loop iterations, in arrival order."""

from __future__ import annotations

import asyncio

from airflowtask.connector_core.pacing import Pacer


def test_at_most_per_iteration_starts_run_in_one_iteration_in_arrival_order() -> None:
    pacer = Pacer(per_iteration=3)
    iteration = 0
    admitted: list[tuple[int, int]] = []

    async def count_iterations() -> None:
        nonlocal iteration
        while True:
            await asyncio.sleep(0)
            iteration += 1

    async def start(number: int) -> None:
        await pacer.turn()
        admitted.append((number, iteration))

    async def scenario() -> None:
        counter = asyncio.create_task(count_iterations())
        await asyncio.gather(*(start(number) for number in range(10)))
        counter.cancel()

    asyncio.run(scenario())
    assert [number for number, _ in admitted] == list(range(10))
    per_iteration: dict[int, int] = {}
    for _, at in admitted:
        per_iteration[at] = per_iteration.get(at, 0) + 1
    assert max(per_iteration.values()) == 3
    assert len(per_iteration) == 4


def test_a_second_turn_in_the_same_iteration_counts_once_and_a_cancelled_waiter_is_skipped() -> None:
    pacer = Pacer(per_iteration=1)
    order: list[str] = []

    async def start(name: str) -> None:
        await pacer.turn()
        await pacer.turn()  # the engine's turn after the connector's: no second wait
        order.append(name)

    async def scenario() -> None:
        first = asyncio.create_task(start("first"))
        cancelled = asyncio.create_task(start("cancelled"))
        last = asyncio.create_task(start("last"))
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.gather(first, last)

    asyncio.run(scenario())
    assert order == ["first", "last"]
