"""API trouble heals by itself, fast and quietly: the API server killed for a while, the operator's RBAC removed.

Tasks run across the trouble and finish once each; afterwards the operator takes new work within seconds (the
time is printed; bench/bench_outage.py measures it); its log says WARNING once per outage, with no traceback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubetools import AFT, Kubectl, airflow_task
from operator_deployment import OperatorDeployment

BASH = ("airflow.providers.standard.operators.bash", "BashOperator")
NAMESPACE = "airflowtask-system"


def _logs_since(kubectl: Kubectl, pods: list[str], since: str) -> list[dict[str, Any]]:
    """The JSON log records of each operator Pod's current container written at or after ``since``."""
    records = []
    for pod in pods:
        text = kubectl("logs", "-n", NAMESPACE, pod, f"--since-time={since}", check=False).stdout
        records += [json.loads(line) | {"pod": pod} for line in text.splitlines() if line.startswith("{")]
    return records


def _first_status_after(kubectl: Kubectl, name: str, namespace: str, started: float, timeout: float) -> float:
    deadline = started + timeout
    while time.monotonic() < deadline:
        obj = json.loads(kubectl("get", AFT, name, "-n", namespace, "-o", "json", check=False).stdout or "{}")
        if obj.get("status", {}).get("phase"):
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{namespace}/{name} got no status within {timeout}s of the API coming back")


def _outage_is_survived(kubectl: Kubectl, operator: OperatorDeployment, namespace: str,
                        outage: Callable[[], list[str]], what: str) -> None:
    """Tasks run across ``outage`` (which returns the names of tasks it created meanwhile, if any)."""
    names = [f"across-{i}" for i in range(5)]
    kubectl.apply(*[airflow_task(name, namespace, *BASH, {"bash_command": f"sleep 20; echo {name}"})
                    for name in names])
    for name in names:
        kubectl.wait_task(name, namespace, lambda o: o.get("status", {}).get("reason") == "Executing", timeout=180)
    pods = [pod["metadata"]["name"] for pod in operator.pods()]
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    names += outage()
    back = time.monotonic()
    kubectl.apply(airflow_task("after", namespace, *BASH, {"bash_command": "echo after"}))
    resumed = _first_status_after(kubectl, "after", namespace, back, timeout=60)
    for name in [*names, "after"]:
        status = kubectl.wait_phase(name, namespace, "Succeeded", timeout=240)["status"]
        assert (status["result"], status["attempts"]) == (name, 1), status
    records = _logs_since(kubectl, pods, since)
    loud = [r for r in records if r.get("severity") in ("warn", "error", "fatal")]  # kopf's JSON names
    outages = [r for r in loud if "Kubernetes API cannot be used" in r["message"]]
    assert len(outages) <= len(pods) and {r["pod"] for r in outages} <= set(pods), outages
    # told at WARNING; at INFO only when it began within seconds of an earlier outage's end (an aftershock)
    told = [r for r in records if "Kubernetes API cannot be used" in r["message"]]
    assert told, "the outage was not reported"
    assert all(len([r for r in outages if r["pod"] == pod]) <= 1 for pod in pods), outages
    assert loud == outages, {r["message"][:200] for r in loud if r not in outages}
    assert not any("Traceback" in json.dumps(r) for r in records)
    print(f"{what}: the operator wrote the first status {resumed:.1f}s after the API came back")


def test_an_api_server_killed_for_20s_loses_nothing_and_is_reported_once(
    cluster: Any, kubectl: Kubectl, operator: Any, namespace: str
) -> None:
    if not hasattr(cluster, "restart") or not isinstance(operator, OperatorDeployment):
        pytest.skip("needs the local control plane (to kill its API server) and the operator's Deployment")
    def kill_api_server() -> list[str]:
        cluster.restart("kube-apiserver", down_seconds=20)
        return []

    _outage_is_survived(kubectl, operator, namespace, kill_api_server, "API server killed for 20s")


def test_the_operators_rbac_removed_for_20s_loses_nothing_and_is_reported_once(
    cluster: Any, kubectl: Kubectl, operator: Any, namespace: str
) -> None:
    if not isinstance(operator, OperatorDeployment):
        pytest.skip("needs the operator's Deployment, which runs as its ServiceAccount")
    binding = kubectl("get", "clusterrolebinding", "airflowtask-operator", "-o", "json").stdout

    def remove_rbac() -> list[str]:
        kubectl("delete", "clusterrolebinding", "airflowtask-operator")
        time.sleep(2)
        # work the operator sees (its watches stay open) but may not act on until the binding is back
        kubectl.apply(airflow_task("during", namespace, *BASH, {"bash_command": "echo during"}))
        time.sleep(18)
        kubectl("create", "-f", "-", input=_without_server_fields(binding))
        return ["during"]

    _outage_is_survived(kubectl, operator, namespace, remove_rbac, "RBAC binding removed for 20s")


def _without_server_fields(manifest: str) -> str:
    obj = json.loads(manifest)
    obj["metadata"] = {k: v for k, v in obj["metadata"].items() if k in ("name", "labels", "annotations")}
    return json.dumps(obj)
