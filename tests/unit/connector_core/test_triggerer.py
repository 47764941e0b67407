"""Time triggers: one alarm clock per loop instead of run()'s clock polling, and the same event as run()."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from collections.abc import AsyncIterator

import pendulum
import pytest
from airflow.providers.standard.triggers.file import FileTrigger
from airflow.providers.standard.triggers.temporal import DateTimeTrigger, TimeDeltaTrigger
from airflow.triggers.base import TriggerEvent
from airflowtask.connector_core import logs
from airflowtask.connector_core.triggerer import (
    WAKE_PER_TURN,
    AlarmClock,
    first_event,
    moment_event,
    waits_for_a_moment,
)


class OwnRunTrigger(DateTimeTrigger):
    async def run(self) -> AsyncIterator[TriggerEvent]:
        yield TriggerEvent("own")


def test_which_triggers_only_wait_for_a_moment() -> None:
    now = pendulum.now("UTC")
    assert waits_for_a_moment(DateTimeTrigger(moment=now))
    assert waits_for_a_moment(TimeDeltaTrigger(dt.timedelta(seconds=1)))
    assert not waits_for_a_moment(OwnRunTrigger(moment=now))
    assert not waits_for_a_moment(FileTrigger(filepath="/nonexistent"))


@pytest.mark.parametrize("end_from_trigger", [False, True])
def test_the_event_is_the_one_run_yields(end_from_trigger: bool) -> None:
    past = pendulum.now("UTC").subtract(seconds=1)

    async def both() -> tuple[TriggerEvent, TriggerEvent]:
        ours = await moment_event(
            DateTimeTrigger(moment=past, end_from_trigger=end_from_trigger), AlarmClock(asyncio.get_running_loop())
        )
        events = DateTimeTrigger(moment=past, end_from_trigger=end_from_trigger).run()
        theirs = await anext(events)
        await events.aclose()
        return ours, theirs

    ours, theirs = asyncio.run(both())
    assert type(ours) is type(theirs)
    assert ours == theirs


def test_waits_until_the_moment_and_tells_the_task_log() -> None:
    async def scenario() -> tuple[float, pendulum.DateTime, TriggerEvent, list[str]]:
        sink = logs.TaskLog(10)
        logs.current.set(sink)
        moment = pendulum.now("UTC").add(microseconds=200_000)
        event = await moment_event(DateTimeTrigger(moment=moment), AlarmClock(asyncio.get_running_loop()))
        return time.time(), moment, event, list(sink.lines)

    woke, moment, event, lines = asyncio.run(scenario())
    assert moment.timestamp() <= woke < moment.timestamp() + 0.5
    assert event.payload == moment
    assert lines == [f"DateTimeTrigger: {moment.isoformat()} has come"]


def test_a_deadline_before_the_moment_is_a_timeout() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        trigger = DateTimeTrigger(moment=pendulum.now("UTC").add(hours=1))
        await first_event(trigger, loop.time() + 0.05, AlarmClock(loop))

    with pytest.raises(TimeoutError):
        asyncio.run(scenario())


def test_sleepers_wake_in_order_of_their_times() -> None:
    async def scenario() -> list[tuple[str, float, float]]:
        clock = AlarmClock(asyncio.get_running_loop())
        woke: list[tuple[str, float, float]] = []

        async def sleeper(name: str, delay: float) -> None:
            due = time.time() + delay
            await clock.sleep_until(due)
            woke.append((name, due, time.time()))

        await asyncio.gather(sleeper("c", 0.15), sleeper("a", 0.03), sleeper("b", 0.08), sleeper("now", -1))
        return woke

    woke = asyncio.run(scenario())
    assert [name for name, _, _ in woke] == ["now", "a", "b", "c"]
    assert all(due <= at < due + 0.5 for name, due, at in woke if name != "now")


def test_many_due_at_once_wake_over_several_loop_turns() -> None:
    async def scenario() -> Counter[int]:
        loop = asyncio.get_running_loop()
        clock = AlarmClock(loop)
        turn = 0

        def count_turns() -> None:
            nonlocal turn
            turn += 1
            loop.call_soon(count_turns)

        due = time.time() + 0.05
        turns: Counter[int] = Counter()

        async def sleeper() -> None:
            await clock.sleep_until(due)
            turns[turn] += 1

        sleepers = [asyncio.create_task(sleeper()) for _ in range(2 * WAKE_PER_TURN + 10)]
        loop.call_soon(count_turns)
        await asyncio.gather(*sleepers)
        return turns

    turns = asyncio.run(scenario())
    assert max(turns.values()) <= WAKE_PER_TURN
    assert len(turns) >= 3


def test_cancelled_sleepers_are_dropped() -> None:
    async def scenario() -> tuple[int, bool]:
        clock = AlarmClock(asyncio.get_running_loop())
        sleepers = [asyncio.create_task(clock.sleep_until(time.time() + 3600)) for _ in range(10)]
        await asyncio.sleep(0)
        for sleeper in sleepers:
            sleeper.cancel()
        await asyncio.gather(*sleepers, return_exceptions=True)
        await clock.sleep_until(time.time() + 0.01)
        return len(clock._sleepers), clock._timer is None

    assert asyncio.run(scenario()) == (0, True)


def test_first_event_without_a_clock_uses_its_own() -> None:
    past = pendulum.now("UTC").subtract(seconds=1)
    event = asyncio.run(first_event(DateTimeTrigger(moment=past), None))
    assert event.payload == past
