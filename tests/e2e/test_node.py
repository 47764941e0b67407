"""What only a node makes possible: real Pods from the project's image, the operator running from manifests/."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from typing import Any

import pytest
from airflowtask.controlplane import Kubectl as Cluster
from airflowtask.install import NAMESPACE
from kubetools import Kubectl, airflow_task
from localjob import JobService
from operator_deployment import OperatorDeployment


def _pod(name: str, namespace: str, image: str, code: str) -> dict[str, Any]:
    """A Pod running ``python -c code`` once, hardened like the operator's own."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "main", "image": image, "imagePullPolicy": "IfNotPresent",
                "command": ["python", "-c", code],
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }


def _wait_pod_phase(kubectl: Kubectl, name: str, namespace: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        phase = kubectl("get", "pod", name, "-n", namespace, "-o", "jsonpath={.status.phase}").stdout
        if phase in ("Succeeded", "Failed"):
            return phase
        time.sleep(0.5)
    raise AssertionError(f"pod {namespace}/{name} did not finish in {timeout}s: "
                         f"{kubectl('describe', 'pod', name, '-n', namespace).stdout[-3000:]}")


def _image(operator: Any) -> str:
    if not isinstance(operator, OperatorDeployment):
        pytest.skip("needs the operator's image on a node (AIRFLOWTASK_TEST_OPERATOR=process runs none)")
    return operator.image


def test_the_node_is_ready(kubectl: Kubectl) -> None:
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert nodes, "the cluster has no node"
    ready = [c["status"] for n in nodes for c in n["status"]["conditions"] if c["type"] == "Ready"]
    assert "True" in ready


def test_a_pod_from_the_project_image_runs_and_logs(kubectl: Kubectl, operator: Any, namespace: str) -> None:
    code = "import airflow, airflowtask; print('airflow', airflow.__version__, 'in a pod')"
    kubectl.apply(_pod("hello", namespace, _image(operator), code))
    assert _wait_pod_phase(kubectl, "hello", namespace) == "Succeeded"
    assert kubectl("logs", "hello", "-n", namespace).stdout.splitlines()[-1].startswith("airflow 3.")


def test_a_pod_calls_the_api_server_with_its_service_account(
    kubectl: Kubectl, operator: Any, namespace: str
) -> None:
    kubectl("create", "configmap", "greeting", "-n", namespace, "--from-literal=text=hello from the API")
    kubectl("create", "role", "read-greeting", "-n", namespace, "--verb=get", "--resource=configmaps",
            "--resource-name=greeting")
    kubectl("create", "rolebinding", "read-greeting", "-n", namespace, "--role=read-greeting",
            f"--serviceaccount={namespace}:default")
    code = (
        "import kubernetes\n"
        "kubernetes.config.load_incluster_config()\n"
        "api = kubernetes.client.CoreV1Api()\n"
        f"print(api.read_namespaced_config_map('greeting', {namespace!r}).data['text'])\n"
        "try:\n"
        "    api.list_namespaced_secret('kube-system')\n"
        "except kubernetes.client.ApiException as error:\n"
        "    print('secrets:', error.status)\n"
    )
    kubectl.apply(_pod("caller", namespace, _image(operator), code))
    assert _wait_pod_phase(kubectl, "caller", namespace) == "Succeeded"
    assert kubectl("logs", "caller", "-n", namespace).stdout.splitlines() == ["hello from the API", "secrets: 403"]


def test_pods_are_kept_off_every_other_network(cluster: Cluster) -> None:
    layout = getattr(cluster, "layout", None)
    if layout is None or shutil.which("iptables") is None:
        pytest.skip("the FORWARD rule belongs to the local node")
    assert subprocess.run(["iptables", "-C", *layout.forward_rule], capture_output=True).returncode == 0


def test_the_operator_deployment_is_available_as_shipped(kubectl: Kubectl, operator: Any) -> None:
    _image(operator)
    deployment = json.loads(kubectl("get", "deployment", "airflowtask-operator", "-n", NAMESPACE, "-o", "json").stdout)
    conditions = {c["type"]: c["status"] for c in deployment["status"]["conditions"]}
    assert conditions["Available"] == "True"
    pod = operator.pod()
    container = pod["spec"]["containers"][0]
    assert {"startupProbe", "livenessProbe", "readinessProbe"} <= container.keys()
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["status"]["containerStatuses"][0]["ready"] is True
    probe = "import os\ntry:\n    open('/opt/x', 'w')\nexcept OSError as e:\n    print(os.getuid(), e.strerror)\n"
    assert operator.exec_python(probe).strip() == "10001 Read-only file system"


def test_operator_logs_are_json_lines(kubectl: Kubectl, operator: Any, namespace: str) -> None:
    _image(operator)
    kubectl.apply(airflow_task("logged", namespace, "airflow.providers.standard.operators.bash", "BashOperator",
                               {"bash_command": "echo logged"}))
    kubectl.wait_phase("logged", namespace, "Succeeded")
    lines = [line for line in operator.logs().splitlines() if line.strip()]
    assert lines, "kubectl logs of the operator printed nothing"
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(isinstance(record, dict) for record in records)


def test_operator_logs_one_line_per_task_transition_and_no_line_per_handler_run(
    kubectl: Kubectl, operator: Any, namespace: str
) -> None:
    _image(operator)
    kubectl.apply(airflow_task("quiet", namespace, "airflow.providers.standard.operators.bash", "BashOperator",
                               {"bash_command": "sleep 3; echo quiet"}, pollIntervalSeconds=1))
    kubectl.wait_phase("quiet", namespace, "Succeeded")
    records = [json.loads(line) for line in operator.logs().splitlines() if line.strip()]
    logged = [r["message"].split(": ")[1] for r in records if r["message"].startswith(f"{namespace}/quiet: ")]
    assert logged[0] == "Pending/Submitting" and logged[-1] == "Succeeded/Completed", logged
    reasons = sorted(reason for _, reason, _ in kubectl.events("quiet", namespace))
    assert sorted(line.split("/")[1] for line in logged) == reasons  # one line per transition, as the events
    assert not [r for r in records if r.get("object", {}).get("name") == "quiet"], "kopf logged a handler run"


def test_deleting_the_operator_pod_mid_run_loses_and_duplicates_nothing(
    kubectl: Kubectl, operator: Any, namespace: str
) -> None:
    _image(operator)
    with JobService() as jobs:
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "jobs-conn", "namespace": namespace},
                  "stringData": {"uri": jobs.url}}
        names = [f"job-{i}" for i in range(10)]
        kubectl.apply(secret, *[airflow_task(
            name, namespace, "localjob", "LocalJobOperator",
            {"service_conn_id": "jobs", "duration_seconds": 15, "result": {"index": i}},
            connections=[{"connId": "jobs", "secretRef": {"name": "jobs-conn"}}],
        ) for i, name in enumerate(names)])
        for name in names:  # each submitted its job (deferred, or done already on a slow machine)
            kubectl.wait_task(name, namespace, lambda o: bool(o.get("status", {}).get("jobId")), timeout=90)
        replaced = operator.delete_pod()
        operator.start()
        assert operator.pod()["metadata"]["name"] != replaced
        for i, name in enumerate(names):
            status = kubectl.wait_phase(name, namespace, "Succeeded", timeout=120)["status"]
            assert (status["result"], status["attempts"]) == ({"index": i}, 1)
        assert len(jobs.jobs) == 10, "a job was submitted twice"
        assert all(job.state == "succeeded" for job in jobs.jobs.values())
