"""WarmPool's pure parts: which tasks share a pool, the worker Pod's manifest, and reading a worker's answer."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import pytest
from airflowtask.pod_security import check_pod
from airflowtask.resource import AirflowTaskResource
from airflowtask.settings import Settings
from airflowtask.warm_pools import LABEL_POOL, WarmPools, pool_name, step_outcome, worker_pod

IMAGE = "registry.example/airflow-tasks:1.2"
KEY = b"k" * 32


def _task(name: str = "report", namespace: str = "data", uid: str = "uid-1", **spec: Any) -> AirflowTaskResource:
    body = {
        "metadata": {"namespace": namespace, "name": name, "uid": uid, "creationTimestamp": "2026-01-02T03:04:05Z"},
        "spec": {"operator": {"module": "airflow.providers.standard.operators.bash", "name": "BashOperator"},
                 "execution": "WarmPool", **spec},
    }
    return AirflowTaskResource.parse(body)


CONNECTION = {"connId": "db", "secretRef": {"name": "db", "key": "uri"}}


def test_tasks_given_the_same_things_share_a_pool_whatever_they_run() -> None:
    first = _task("a", uid="1", serviceAccountName="etl", connections=[CONNECTION], params={"x": 1})
    second = _task("b", uid="2", serviceAccountName="etl", connections=[CONNECTION], pollIntervalSeconds=3)
    assert pool_name(first, IMAGE) == pool_name(second, IMAGE)
    assert pool_name(first, IMAGE).startswith("warm-")


@pytest.mark.parametrize("other", [
    {"namespace": "billing"},
    {"serviceAccountName": "other"},
    {"connections": [{"connId": "db", "secretRef": {"name": "db-admin", "key": "uri"}}]},
    {"connections": [CONNECTION, {"connId": "s3", "secretRef": {"name": "s3"}}]},
    {"podTemplate": {"spec": {"resources": {"limits": {"memory": "1Gi"}}}}},
    {"podTemplate": {"metadata": {"labels": {"team": "other"}}}},
], ids=["namespace", "service-account", "secret", "more-connections", "resources", "labels"])
def test_tasks_given_different_things_never_share_a_pool(other: dict[str, Any]) -> None:
    base = {"serviceAccountName": "etl", "connections": [CONNECTION]}
    namespace = other.pop("namespace", "data")
    assert pool_name(_task(namespace=namespace, **(base | other)), IMAGE) != pool_name(_task(**base), IMAGE)
    assert pool_name(_task(**base), "another/image:1") != pool_name(_task(**base), IMAGE)


def test_a_worker_pod_is_the_tasks_own_pod_serving_steps_and_holds_only_the_keys_hash() -> None:
    task = _task(serviceAccountName="etl", connections=[CONNECTION])
    pool = pool_name(task, IMAGE)
    pod = worker_pod(task, pool=pool, image=IMAGE, allowed_modules="airflow.providers.*", key=KEY, slots=3)
    meta, spec = pod["metadata"], pod["spec"]
    assert (meta["generateName"], meta["namespace"], "name" in meta, "ownerReferences" in meta) == (
        f"{pool}-", "data", False, False)
    assert meta["labels"][LABEL_POOL] == pool and "airflowtask.dev/task-uid" not in meta["labels"]
    assert spec["serviceAccountName"] == "etl" and spec["automountServiceAccountToken"] is False
    [container] = spec["containers"]
    assert container["command"] == ["python", "-P", "-m", "airflowtask.warm_worker"]
    env = {item["name"]: item for item in container["env"]}
    assert "AIRFLOWTASK_WORK" not in env
    assert env["AIRFLOWTASK_POOL_KEY_SHA256"]["value"] == hashlib.sha256(KEY).hexdigest()
    assert env["AIRFLOWTASK_WARM_SLOTS"]["value"] == "3"
    assert env["AIRFLOW_CONN_DB"]["valueFrom"]["secretKeyRef"] == {"name": "db", "key": "uri"}
    assert KEY.decode() not in json.dumps(pod)
    assert container["readinessProbe"]["tcpSocket"]["port"] == 8790
    assert check_pod(pod, "restricted") == []


def test_a_worker_pod_asking_for_host_access_fails_pod_security() -> None:
    task = _task(podTemplate={"spec": {"hostNetwork": True}})
    pod = worker_pod(task, pool=pool_name(task, IMAGE), image=IMAGE, allowed_modules="x", key=KEY, slots=1)
    assert check_pod(pod, "restricted")


OUTCOME = {"phase": "Succeeded", "reason": "Completed", "message": "completed", "retryable": True, "result": 7,
           "jobId": None, "state": {}, "deferral": None}


def test_a_done_answer_is_read_like_a_pods_termination_message() -> None:
    read = step_outcome({"state": "done", "exitCode": 0, "outcome": json.dumps(OUTCOME)}, ("airflow.*",))
    assert (read.failed, read.outcome.phase.value, read.outcome.result) == (False, "Succeeded", 7)


def test_a_forged_outcome_is_refused_and_nothing_of_it_is_believed() -> None:
    forged = {**OUTCOME, "phase": "Deferred", "reason": "Deferred",
              "deferral": {"trigger": {"classpath": "os.system", "kwargs": {}}, "method": None, "nextKwargs": {},
                           "timeout": None, "deadline": None}}
    read = step_outcome({"state": "done", "exitCode": 0, "outcome": json.dumps(forged)}, ("airflow.*",))
    assert (read.failed, read.reason, read.outcome) == (True, "InvalidOutcome", None)
    assert read.message.startswith("the step's report was refused, nothing of it was acted on: ")


def test_a_step_that_left_no_outcome_says_how_its_process_ended() -> None:
    killed = step_outcome({"state": "done", "signal": "SIGKILL", "outcome": None}, ())
    assert (killed.failed, killed.reason) == (True, "StepKilled")
    assert "killed by SIGKILL" in killed.message
    exited = step_outcome({"state": "done", "exitCode": 3, "outcome": None}, ())
    assert (exited.reason, exited.message) == (
        "NoOutcome", "the step's process exited with code 3 without reporting an outcome")


def test_a_freed_slot_wakes_the_longest_waiting_step_alone() -> None:
    async def scenario() -> list[int]:
        pools = WarmPools(kube=None, settings=Settings.from_env(), signer=None)  # type: ignore[arg-type]
        woken: list[int] = []

        async def step(number: int) -> None:
            await pools.wait_for_worker("data", "warm-1", timeout=5)
            woken.append(number)

        steps = [asyncio.create_task(step(n)) for n in range(3)]
        await asyncio.sleep(0)
        pools._wake("data", "warm-1")  # one step done: one slot
        await asyncio.sleep(0.01)
        assert woken == [0]
        pools._wake("data", "warm-1", everyone=True)  # a worker ended: every step looks again
        await asyncio.gather(*steps)
        return woken

    assert asyncio.run(scenario()) == [0, 1, 2]


class _Answering(WarmPools):
    """WarmPools whose workers answer from a table: which step each worker knows. Nothing can be made (no Kube)."""

    def __init__(self, known: dict[str, set[str]], listed: bool = True) -> None:
        super().__init__(kube=None, settings=Settings.from_env(), signer=None)  # type: ignore[arg-type]
        self.known, self.asked = known, []
        for name in known:
            self.see(name)
        if listed:
            self.listed()

    def see(self, name: str, ready: bool = True) -> None:
        """The watch reports worker ``name`` (known to answer for ``self.known[name]``)."""
        number = list(self.known).index(name) + 1
        self.on_pod("ADDED", {"metadata": {"namespace": "data", "name": name, "labels": {LABEL_POOL: POOL}},
                              "status": {"podIP": f"10.0.0.{number}", "phase": "Running",
                                         "conditions": [{"type": "Ready", "status": str(ready)}]}})

    async def _call(self, worker: Any, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        self.asked.append((worker.name, request["op"]))
        if request["id"] in self.known[worker.name]:
            return {"state": "running"}
        if request["op"] == "start":
            self.known[worker.name].add(request["id"])
            return {"state": "running"}
        return {"state": "unknown"}


POOL = pool_name(_task(), IMAGE)
STEP = "uid-1/1/execute"


@pytest.mark.parametrize("holder", ["worker-a", "worker-b", None])
def test_a_step_handed_over_before_is_found_and_never_started_twice(holder: str | None) -> None:
    pools = _Answering({"worker-a": set(), "worker-b": set()})
    if holder:
        pools.known[holder].add(STEP)
    assert asyncio.run(pools.submit(_task(), IMAGE, STEP, {})) == (holder or "worker-a")
    assert sum(STEP in steps for steps in pools.known.values()) == 1
    assert ("worker-b", "start") not in pools.asked  # the first worker had room


def test_a_worker_not_ready_now_is_asked_for_the_step_before_another_starts_it() -> None:
    pools = _Answering({"worker-a": set(), "worker-b": {STEP}})
    pools.see("worker-b", ready=False)  # e.g. its readiness probe missed once under load
    assert asyncio.run(pools.submit(_task(), IMAGE, STEP, {})) == "worker-b"
    assert ("worker-a", "start") not in pools.asked


def test_a_new_leader_hands_nothing_over_before_its_watch_has_listed_the_workers() -> None:
    async def scenario() -> tuple[str | None, list[tuple[str, str]]]:
        pools = _Answering({"worker-a": set()}, listed=False)
        pools.workers.clear()  # the watch has not reported anything yet
        pools.known["worker-a"].add(STEP)  # an earlier leader handed the step to worker-a
        submitting = asyncio.create_task(pools.submit(_task(), IMAGE, STEP, {}))
        await asyncio.sleep(0.05)
        assert not submitting.done() and pools.asked == []  # neither asked nor grown (no Kube: growing would fail)
        pools.see("worker-a")
        pools.listed()
        return await submitting, pools.asked

    assert asyncio.run(scenario()) == ("worker-a", [("worker-a", "start")])  # found, not started again


def test_without_the_watchs_listing_a_step_waits_and_no_worker_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("airflowtask.warm_pools._CALL_SECONDS", 0.05)
    pools = _Answering({}, listed=False)
    assert asyncio.run(pools.submit(_task(), IMAGE, STEP, {})) is None


class _LeadingKube:
    """The little of Kube that scaling down uses: it leads, and records the Pods it deletes."""

    def __init__(self) -> None:
        self.deleted: list[str] = []

    def leading(self) -> bool:
        return True

    async def delete_pod(self, namespace: str, name: str) -> None:
        self.deleted.append(name)


@pytest.mark.parametrize(("unread", "retired"), [(1, False), (0, True)])
def test_an_idle_worker_holding_an_unread_outcome_is_not_retired(unread: int, retired: bool) -> None:
    class Idle(_Answering):
        async def _call(self, worker: Any, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
            self.asked.append((worker.name, request["op"]))
            state = "retired" if request["op"] == "retire" else "ready"
            return {"state": state, "running": 0, "unread": unread, "idleSeconds": 10 * idle_seconds}

    pools = Idle({"worker-a": set()})
    idle_seconds = pools.settings.warm.idle_seconds
    pools.kube = kube = _LeadingKube()  # type: ignore[assignment]
    asyncio.run(pools._scale_down())
    assert (("worker-a", "retire") in pools.asked, kube.deleted == ["worker-a"]) == (retired, retired)
