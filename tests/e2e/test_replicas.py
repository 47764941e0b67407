"""Two operator replicas as shipped: one leads, the other stands by; failover loses and doubles nothing."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from kubetools import Kubectl, airflow_task, wait_until
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


def _pods_per_task(kubectl: Kubectl, namespace: str) -> Counter[str]:
    raw = kubectl("get", "pods", "-n", namespace, "-o", "json").stdout
    return Counter(pod["metadata"]["labels"]["airflowtask.dev/task-name"] for pod in json.loads(raw)["items"])


def _assert_each_ran_once(kubectl: Kubectl, namespace: str, run_log: RunLog, names: list[str]) -> None:
    for name in names:
        status = kubectl.wait_phase(name, namespace, "Succeeded", timeout=600)["status"]
        assert (status["result"], status["attempts"]) == (name, 1), status
    assert run_log.counts() == Counter(names), "a task ran twice, or not at all"
    assert _pods_per_task(kubectl, namespace) == Counter(names), "a task has more than one Pod"


def _hand_over_mid_run(kubectl: Kubectl, replicas: OperatorDeployment, namespace: str, count: int, seconds: int,
                       remove: Callable[[], Any]) -> float:
    """``count`` tasks of ``seconds`` each; once a few run, ``remove`` the leader; every task runs once, on
    one Pod, and the standby holds the Lease. The seconds until the Lease changed holder."""
    with RunLog() as runs:
        tasks = _tasks(runs, namespace, count, seconds)
        names = [task["metadata"]["name"] for task in tasks]
        standby = _standby(replicas)
        kubectl.apply(*tasks)
        wait_until(lambda: len(runs.names) >= count // 5, 300, "tasks running")
        quiet = _log_of(kubectl, standby)
        assert not any(name in quiet for name in names), "the standby acted on a task while another replica led"
        leader = replicas.holder()
        unfinished = _unfinished(kubectl, namespace)
        remove()
        handover = wait_until(lambda: replicas.holder() not in ("", leader), HANDOVER_SECONDS,
                              "the Lease changing holder")
        assert replicas.holder().rpartition("_")[0] == standby
        assert unfinished, "every task had finished before the failover"
        _assert_each_ran_once(kubectl, namespace, runs, names)
    return handover


def test_two_replicas_run_100_tasks_once_each_and_a_deleted_leader_hands_over(
    kubectl: Kubectl, replicas: OperatorDeployment, namespace: str
) -> None:
    # SIGTERM: the leader stops, releases the Lease; the standby takes over at its next look
    handover = _hand_over_mid_run(kubectl, replicas, namespace, 100, 3, replicas.delete_pod)
    print(f"the Lease changed holder {handover:.1f}s after the leader's Pod was deleted")


def test_a_killed_leader_hands_over_within_the_lease_duration(
    kubectl: Kubectl, replicas: OperatorDeployment, namespace: str
) -> None:
    # SIGKILL: no release, the standby waits until the lease expires
    handover = _hand_over_mid_run(kubectl, replicas, namespace, 20, 8, replicas.kill)
    print(f"the Lease changed holder {handover:.1f}s after the leader was killed")


def _unfinished(kubectl: Kubectl, namespace: str) -> list[str]:
    raw = kubectl("get", "airflowtasks", "-n", namespace, "-o", "json").stdout
    return [task["metadata"]["name"] for task in json.loads(raw)["items"]
            if task.get("status", {}).get("phase") not in ("Succeeded", "Failed")]


def _standby(replicas: OperatorDeployment) -> str:
    leader = replicas.pod()["metadata"]["name"]
    others = [pod["metadata"]["name"] for pod in replicas.pods() if pod["metadata"]["name"] != leader]
    assert len(others) == 1, others
    return others[0]


def _log_of(kubectl: Kubectl, pod: str) -> str:
    return kubectl("logs", "-n", "airflowtask-system", pod, "--tail=-1").stdout
