"""Two operator replicas as shipped: one leads, the other stands by; failover loses and doubles nothing."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest
from kubetools import Kubectl, airflow_task
from operator_deployment import OperatorDeployment
from runlog import RunLog, reporting_command

BASH = ("airflow.providers.standard.operators.bash", "BashOperator")
HANDOVER_SECONDS = 20


@pytest.fixture
def replicas(operator: Any) -> OperatorDeployment:
    if not isinstance(operator, OperatorDeployment) or operator.replicas < 2:
        pytest.skip("needs the operator's Deployment with its two replicas")
    return operator


def _tasks(run_log: RunLog, namespace: str, count: int, seconds: int) -> list[dict[str, Any]]:
    return [airflow_task(f"bash-{i:03d}", namespace, *BASH,
                         {"bash_command": reporting_command(run_log, f"bash-{i:03d}", seconds)})
            for i in range(count)]


def _wait(predicate: Any, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.2)
    return time.monotonic() - started


def _pods_per_task(kubectl: Kubectl, namespace: str) -> Counter[str]:
    raw = kubectl("get", "pods", "-n", namespace, "-o", "json").stdout
    return Counter(pod["metadata"]["labels"]["airflowtask.dev/task-name"] for pod in json.loads(raw)["items"])


def _assert_each_ran_once(kubectl: Kubectl, namespace: str, run_log: RunLog, names: list[str]) -> None:
    for name in names:
        status = kubectl.wait_phase(name, namespace, "Succeeded", timeout=600)["status"]
        assert (status["result"], status["attempts"]) == (name, 1), status
    assert run_log.counts() == Counter(names), "a task ran twice, or not at all"
    assert _pods_per_task(kubectl, namespace) == Counter(names), "a task has more than one Pod"


def test_two_replicas_run_100_tasks_once_each_and_a_deleted_leader_hands_over(
    kubectl: Kubectl, replicas: OperatorDeployment, namespace: str
) -> None:
    with RunLog() as runs:
        tasks = _tasks(runs, namespace, 100, seconds=3)
        names = [task["metadata"]["name"] for task in tasks]
        kubectl.apply(*tasks)
        _wait(lambda: len(runs.names) >= 15, 300, "15 tasks running")
        leader, standby = replicas.holder(), _standby(replicas)
        replicas.delete_pod()  # SIGTERM: the leader stops, releases the Lease; the standby takes over
        handover = _wait(lambda: replicas.holder() not in ("", leader), HANDOVER_SECONDS, "the Lease changing holder")
        assert replicas.holder().rpartition("_")[0] == standby
        assert len(runs.names) < len(names), "the failover came too late to be mid-run"
        _assert_each_ran_once(kubectl, namespace, runs, names)
    print(f"the Lease changed holder {handover:.1f}s after the leader's Pod was deleted")


def test_a_killed_leader_hands_over_within_the_lease_and_the_standby_never_acted_before(
    kubectl: Kubectl, replicas: OperatorDeployment, namespace: str
) -> None:
    with RunLog() as runs:
        tasks = _tasks(runs, namespace, 20, seconds=8)
        names = [task["metadata"]["name"] for task in tasks]
        standby = _standby(replicas)
        kubectl.apply(*tasks)
        _wait(lambda: len(runs.names) >= 5, 300, "5 tasks running")
        quiet = _log_of(kubectl, standby)
        assert not any(name in quiet for name in names), "the standby acted on a task while another replica led"
        leader = replicas.holder()
        replicas.kill()  # SIGKILL: no release, the standby waits out the lease
        handover = _wait(lambda: replicas.holder() not in ("", leader), HANDOVER_SECONDS, "the Lease changing holder")
        assert replicas.holder().rpartition("_")[0] == standby
        _assert_each_ran_once(kubectl, namespace, runs, names)
    print(f"the Lease changed holder {handover:.1f}s after the leader was killed")


def _standby(replicas: OperatorDeployment) -> str:
    leader = replicas.pod()["metadata"]["name"]
    others = [pod["metadata"]["name"] for pod in replicas.pods() if pod["metadata"]["name"] != leader]
    assert len(others) == 1, others
    return others[0]


def _log_of(kubectl: Kubectl, pod: str) -> str:
    return kubectl("logs", "-n", "airflowtask-system", pod, "--tail=-1").stdout
