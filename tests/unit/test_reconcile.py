"""Reconciler.follow: one task advanced step by step, with a fake executor and a fake API (no cluster)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from airflowtask.connector_core import Phase, RunInfo, TaskState
from airflowtask.reconcile import Reconciler, TaskMemory
from airflowtask.resource import AirflowTaskResource
from airflowtask.settings import Settings
from airflowtask.status import Event


@dataclass
class FakeMeta:
    key: str

    def encode(self) -> bytes:
        return self.key.encode()


class FakeExecutor:
    """create() starts in ``first``; get() reports ``states`` one after the other; wait() returns on ``news``."""

    needs_connections = False
    idempotent_create = False

    def __init__(self, first: TaskState, *later: TaskState) -> None:
        self.first, self.later = first, list(later)
        self.news = asyncio.Event()
        self.gets = 0

    def decode(self, text: str, task: Any) -> FakeMeta:
        return FakeMeta(text)

    async def create(self, task: AirflowTaskResource, attempt: int, run: RunInfo) -> tuple[FakeMeta, TaskState]:
        return FakeMeta("m"), self.first

    async def get(self, task: AirflowTaskResource, meta: Any, run: RunInfo) -> TaskState:
        self.gets += 1
        return self.later.pop(0) if self.later else self.first

    async def wait(self, meta: Any, timeout: float) -> None:
        await asyncio.wait_for(self.news.wait(), timeout)

    async def delete(self, task: AirflowTaskResource, meta: Any, run: RunInfo | None) -> None: ...

    async def orphan(self, task: AirflowTaskResource, meta: Any) -> None: ...

    def status_fields(self, meta: Any) -> dict[str, Any]:
        return {}

    def recorded(self, meta: Any) -> None: ...

    def forget(self, meta: Any) -> None: ...

    async def close(self) -> None: ...


class FakeKube:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> bool:
        self.patches.append(patch)
        return True


def _body(version: str = "1", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": "t", "uid": "u", "generation": 1, "resourceVersion": version,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"operator": {"module": "m", "name": "Op", "parameters": {}}, **spec},
    }


def _state(phase: Phase, reason: str) -> TaskState:
    return TaskState(phase=phase, reason=reason, message=reason.lower())


async def _follow(executor: FakeExecutor, body: dict[str, Any], memory: TaskMemory,
                  stop: asyncio.Future[None] | None = None) -> tuple[FakeKube, list[list[Event]]]:
    kube, posted = FakeKube(), []
    reconciler = Reconciler(executor, kube, Settings())  # type: ignore[arg-type]
    stop = stop or asyncio.get_running_loop().create_future()
    await asyncio.wait_for(reconciler.follow(body, memory, stop, posted.append), 10)
    return kube, posted


def test_follow_submits_and_records_until_the_task_finished() -> None:
    executor = FakeExecutor(_state(Phase.SUCCEEDED, "Completed"))
    memory = TaskMemory()
    kube, posted = asyncio.run(_follow(executor, _body(), memory))
    assert [patch["reason"] for patch in kube.patches] == ["Submitting", "Completed"]
    assert [[event.reason for event in events] for events in posted] == [["Submitting", "Completed"]]
    assert memory.status is not None and memory.status["phase"] == "Succeeded"
    assert executor.gets == 0


def test_follow_keeps_waiting_for_news_across_polls_without_returning() -> None:
    async def scenario() -> tuple[FakeKube, list[list[Event]], FakeExecutor]:
        deferred = _state(Phase.RUNNING, "Deferred")
        executor = FakeExecutor(deferred, deferred, deferred, _state(Phase.SUCCEEDED, "Completed"))
        memory = TaskMemory()
        following = asyncio.ensure_future(_follow(executor, _body(pollIntervalSeconds=1), memory))
        await asyncio.sleep(2.5)  # two polls without news: no writes, follow still running
        assert not following.done()
        executor.news.set()
        kube, posted = await following
        return kube, posted, executor

    kube, posted, executor = asyncio.run(scenario())
    assert [patch["reason"] for patch in kube.patches] == ["Submitting", "Deferred", "Completed"]
    assert [event.reason for events in posted for event in events] == ["Submitting", "Deferred", "Completed"]
    assert executor.gets >= 3


def test_follow_returns_when_stopped_while_waiting() -> None:
    async def scenario() -> tuple[FakeKube, FakeExecutor]:
        executor = FakeExecutor(_state(Phase.RUNNING, "Deferred"))
        stop = asyncio.get_running_loop().create_future()
        following = asyncio.ensure_future(_follow(executor, _body(pollIntervalSeconds=300), TaskMemory(), stop))
        await asyncio.sleep(0.1)
        stop.set_result(None)
        kube, _ = await following
        return kube, executor

    kube, executor = asyncio.run(scenario())
    assert [patch["reason"] for patch in kube.patches] == ["Submitting", "Deferred"]
    assert executor.gets == 0


class AdoptingExecutor(FakeExecutor):
    """An executor whose create finds what an earlier create made (task Pods, warm pools)."""

    idempotent_create = True


def test_a_step_finished_within_the_hold_goes_from_pending_straight_to_its_outcome() -> None:
    executor = AdoptingExecutor(_state(Phase.RUNNING, "Executing"), _state(Phase.SUCCEEDED, "Completed"))
    executor.news.set()  # the worker reported before the first wait ended
    kube, posted = asyncio.run(_follow(executor, _body(), TaskMemory()))
    assert [patch["reason"] for patch in kube.patches] == ["Submitting", "Completed"]
    assert [event.reason for events in posted for event in events] == ["Submitting", "Completed"]


def test_every_change_within_the_hold_is_read_and_only_the_last_written() -> None:
    executor = AdoptingExecutor(_state(Phase.PENDING, "WaitingForWorker"), _state(Phase.RUNNING, "Executing"),
                                _state(Phase.SUCCEEDED, "Completed"))
    executor.news.set()
    kube, _ = asyncio.run(_follow(executor, _body(), TaskMemory()))
    assert [patch["reason"] for patch in kube.patches] == ["Submitting", "Completed"]
    assert executor.gets == 2


def test_a_finished_step_is_forgotten_only_after_its_outcome_is_written() -> None:
    class Recording(FakeExecutor):
        def forget(self, meta: Any) -> None:
            forgotten.append(len(kube.patches))

    forgotten: list[int] = []
    kube = FakeKube()
    executor = Recording(_state(Phase.SUCCEEDED, "Completed"))
    reconciler = Reconciler(executor, kube, Settings())  # type: ignore[arg-type]

    async def scenario() -> None:
        stop = asyncio.get_running_loop().create_future()
        await asyncio.wait_for(reconciler.follow(_body(), TaskMemory(), stop, lambda events: None), 10)

    asyncio.run(scenario())
    assert [patch["reason"] for patch in kube.patches] == ["Submitting", "Completed"]
    assert forgotten == [2]  # a worker keeps the outcome until status holds it


def test_a_step_without_news_within_the_hold_is_recorded_running(monkeypatch: Any) -> None:
    monkeypatch.setattr("airflowtask.reconcile.HOLD_SECONDS", 0.2)

    async def scenario() -> tuple[FakeKube, list[list[Event]]]:
        running = _state(Phase.RUNNING, "Executing")
        executor = AdoptingExecutor(running, running, _state(Phase.SUCCEEDED, "Completed"))
        following = asyncio.ensure_future(_follow(executor, _body(pollIntervalSeconds=1), TaskMemory()))
        await asyncio.sleep(0.6)
        executor.news.set()
        return await following

    kube, posted = asyncio.run(scenario())
    assert [patch["reason"] for patch in kube.patches] == ["Submitting", "Executing", "Completed"]
    assert [event.reason for events in posted for event in events] == ["Submitting", "Executing", "Completed"]


def test_a_later_change_is_held_too_and_a_quick_one_never_written(monkeypatch: Any) -> None:
    monkeypatch.setattr("airflowtask.reconcile.HOLD_SECONDS", 0.2)

    async def scenario() -> FakeKube:
        executor = AdoptingExecutor(_state(Phase.RUNNING, "Executing"), _state(Phase.RUNNING, "Deferred"),
                                    _state(Phase.SUCCEEDED, "Completed"))
        following = asyncio.ensure_future(_follow(executor, _body(pollIntervalSeconds=1), TaskMemory()))
        await asyncio.sleep(0.5)  # Executing is written after the hold; then the news: deferred, and at once done
        executor.news.set()
        kube, _ = await following
        return kube

    kube = asyncio.run(scenario())
    assert [patch["reason"] for patch in kube.patches] == ["Submitting", "Executing", "Completed"]


def test_follow_of_a_finished_task_does_nothing() -> None:
    memory = TaskMemory(status={"phase": "Succeeded", "reason": "Completed"})
    executor = FakeExecutor(_state(Phase.SUCCEEDED, "Completed"))
    kube, posted = asyncio.run(_follow(executor, _body(), memory))
    assert kube.patches == [] and posted == [[]]


def test_the_task_view_is_parsed_again_only_for_a_new_resource_version() -> None:
    memory = TaskMemory()
    body = _body("7", pollIntervalSeconds=5)
    first = memory.view(body)
    body["spec"]["pollIntervalSeconds"] = 6  # the same version: the object did not change for the API server
    assert memory.view(body) is first
    changed = memory.view(_body("8", pollIntervalSeconds=6))
    assert changed is not first and changed.poll_interval_seconds == 6
