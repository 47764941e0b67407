"""Task work runs in Pods of the task's namespace, under the task's ServiceAccount, never in the operator.

These tests need the operator deployed with task Pods (the default); a tenant limited to its namespace tries
to reach what is not its own, and the test proves it cannot.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflowtask.controlplane import Kubectl as Cluster
from kubetools import AFT, Kubectl, airflow_task, use_service_account_role
from localjob import JobService
from tenants import as_tenant, grant

BASH = ("airflow.providers.standard.operators.bash", "BashOperator")
PYTHON = ("airflow.providers.standard.operators.python", "PythonOperator")
MANAGED = "app.kubernetes.io/managed-by=airflowtask-operator"

# Every credential a task's process can find, tried against another namespace's Secret; prints a JSON summary.
PROBE = r"""python3 - <<'EOF'
import glob, json, os, ssl, urllib.error, urllib.request
url = "https://%s:%s/api/v1/namespaces/{victim}/secrets/bank" % (
    os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"])
tokens = [open(path).read().strip() for path in glob.glob("/var/run/secrets/**/token", recursive=True)]
codes = []
for token in tokens + [None]:
    request = urllib.request.Request(url, headers={"Authorization": "Bearer " + token} if token else {})
    try:
        urllib.request.urlopen(request, context=ssl._create_unverified_context(), timeout=10)
        codes.append(200)
    except urllib.error.HTTPError as error:
        codes.append(error.code)
secretish = sorted(name for name in os.environ if not name.startswith("AIRFLOW__")
                   and ("KEY" in name or "TOKEN" in name or "SECRET" in name))
print(json.dumps({"tokens": len(tokens), "codes": codes, "env": secretish}))
EOF"""


@pytest.fixture
def victim(kubectl: Kubectl) -> Iterator[tuple[str, str]]:
    """Another tenant's namespace with a Secret in it: (namespace, the secret's value)."""
    name, value = f"victim-{uuid.uuid4().hex[:6]}", f"s3cr3t-{uuid.uuid4().hex}"
    kubectl("create", "namespace", name)
    kubectl("create", "secret", "generic", "bank", "-n", name, f"--from-literal=password={value}")
    yield name, value
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def _pods_of(kubectl: Kubectl, name: str, namespace: str) -> list[dict[str, Any]]:
    uid = kubectl.get_json(AFT, name, namespace)["metadata"]["uid"]
    raw = kubectl("get", "pods", "-n", namespace, "-l", f"airflowtask.dev/task-uid={uid}", "-o", "json").stdout
    return json.loads(raw)["items"]


def test_a_task_runs_in_a_hardened_pod_of_its_namespace_under_its_service_account(
    kubectl: Kubectl, operator: Any, namespace: str
) -> None:
    kubectl("create", "serviceaccount", "etl-runner", "-n", namespace)
    kubectl.apply(airflow_task("where", namespace, *BASH, {"bash_command": "echo ran as $(id -u) in $HOSTNAME"},
                               serviceAccountName="etl-runner",
                               podTemplate={"metadata": {"labels": {"team": "data"}}}))
    status = kubectl.wait_phase("where", namespace, "Succeeded", timeout=120)["status"]
    pods = _pods_of(kubectl, "where", namespace)
    assert [pod["metadata"]["name"] for pod in pods] == [status["podName"]]
    pod = pods[0]
    assert status["result"] == f"ran as 10001 in {status['podName']}"
    assert pod["spec"]["serviceAccountName"] == "etl-runner"
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["metadata"]["labels"]["team"] == "data"
    owner = pod["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("AirflowTask", "where", True)
    container = pod["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert "echo ran as" in kubectl("logs", status["podName"], "-n", namespace).stdout
    row = kubectl("get", "aft", "where", "-n", namespace, "-o", "wide", "--no-headers").stdout
    assert status["podName"] in row


@pytest.mark.parametrize("automount", [False, True], ids=["no-token", "own-token"])
def test_a_tenant_task_cannot_read_another_namespaces_secret(
    cluster: Cluster, kubectl: Kubectl, operator: Any, namespace: str, victim: tuple[str, str],
    tmp_path: Path, automount: bool,
) -> None:
    tenant = as_tenant(cluster, kubectl, namespace, tmp_path, "pods", "pods/log")
    victim_namespace, secret = victim
    template = {"spec": {"automountServiceAccountToken": True}} if automount else {}
    if automount:  # admission asks that the tenant may use the ServiceAccount whose token it mounts
        kubectl.apply(use_service_account_role("use-default", namespace, "default"))
        grant(kubectl, namespace, "use-default")
    tenant.apply(airflow_task("thief", namespace, *BASH, {"bash_command": PROBE.replace("{victim}", victim_namespace)},
                              podTemplate=template))
    obj = kubectl.wait_task("thief", namespace, lambda o: o.get("status", {}).get("phase") in ("Succeeded", "Failed"),
                            timeout=120)
    status = obj["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    found = json.loads(status["result"])
    assert found["tokens"] == (1 if automount else 0)
    assert found["codes"] and all(code in (401, 403) for code in found["codes"]), found
    assert found["env"] == [], "no key, token or secret reaches a task's environment"
    everything = json.dumps(obj) + kubectl("logs", status["podName"], "-n", namespace).stdout
    assert secret not in everything


def test_a_task_past_its_memory_limit_ends_oomkilled_while_others_finish(
    kubectl: Kubectl, operator: Any, namespace: str
) -> None:
    kubectl.apply(
        airflow_task("hungry", namespace, *PYTHON,
                     {"python_callable": {"__type": "callable", "__var": "task_callables.allocate"},
                      "op_args": [2048]},
                     podTemplate={"spec": {"resources": {"limits": {"memory": "400Mi"}}}}),
        airflow_task("modest", namespace, *BASH, {"bash_command": "echo fine"}),
    )
    status = kubectl.wait_phase("hungry", namespace, "Failed", timeout=120)["status"]
    assert status["reason"] == "OOMKilled", status
    assert "400Mi" in status["message"]
    assert kubectl.wait_phase("modest", namespace, "Succeeded", timeout=120)["status"]["result"] == "fine"


def test_a_missing_image_fails_with_a_clear_reason(kubectl: Kubectl, operator: Any, namespace: str) -> None:
    kubectl.apply(airflow_task("no-image", namespace, *BASH, {"bash_command": "true"},
                               image="localhost/airflowtask-no-such-image:1"))
    status = kubectl.wait_phase("no-image", namespace, "Failed", timeout=120)["status"]
    assert status["reason"] == "ImagePullFailed"
    assert "localhost/airflowtask-no-such-image:1" in status["message"]


def test_a_deferred_task_defers_in_a_pod_and_calls_back_in_another(
    kubectl: Kubectl, operator: Any, namespace: str
) -> None:
    jobs = JobService()
    with jobs:
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "jobs-conn", "namespace": namespace},
                  "stringData": {"uri": jobs.url}}
        kubectl.apply(secret, airflow_task(
            "job", namespace, "localjob", "LocalJobOperator",
            {"service_conn_id": "jobs", "duration_seconds": 3, "result": {"rows": 7}},
            connections=[{"connId": "jobs", "secretRef": {"name": "jobs-conn"}}]))
        deferred = kubectl.wait_task("job", namespace, lambda o: o.get("status", {}).get("reason") == "Deferred",
                                     timeout=120)["status"]
        assert deferred["podName"].endswith("-execute")
        status = kubectl.wait_phase("job", namespace, "Succeeded", timeout=120)["status"]
        assert status["result"] == {"rows": 7}
        assert status["podName"].endswith("-callback-1")
        names = sorted(pod["metadata"]["name"] for pod in _pods_of(kubectl, "job", namespace))
        assert names == sorted([deferred["podName"], status["podName"]])
        assert len(jobs.jobs) == 1


def test_operator_killed_while_pods_run_adopts_them_and_runs_nothing_twice(
    kubectl: Kubectl, operator: Any, namespace: str
) -> None:
    names = [f"sleeper-{i:02d}" for i in range(20)]
    kubectl.apply(*[airflow_task(name, namespace, *BASH, {"bash_command": f"sleep 8; echo {name}"}) for name in names])
    for name in names:
        kubectl.wait_task(name, namespace, lambda o: bool(o.get("status", {}).get("podName")), timeout=120)
    operator.kill()
    time.sleep(1)
    operator.start()
    for name in names:
        status = kubectl.wait_phase(name, namespace, "Succeeded", timeout=240)["status"]
        assert (status["result"], status["attempts"]) == (name, 1)
        assert len(_pods_of(kubectl, name, namespace)) == 1, f"{name} has more than one Pod"
