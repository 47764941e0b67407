"""The shipped manifests on the real API server, and the operator's metrics after a few tasks."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

from kubetools import Kubectl, airflow_task
from operator_deployment import OperatorDeployment

REPO = Path(__file__).resolve().parents[2]


def test_manifests_pass_server_side_dry_run(kubectl: Kubectl, crd: None) -> None:
    kubectl("create", "namespace", "airflowtask-system", check=False)
    base = kubectl("apply", "-k", str(REPO / "manifests"), "--dry-run=server")
    assert "deployment.apps/airflowtask-operator" in base.stdout
    assert "clusterrole.rbac.authorization.k8s.io/airflowtask-operator" in base.stdout
    flyte = kubectl("apply", "-k", str(REPO / "manifests" / "flyte-connector"), "--dry-run=server")
    assert "deployment.apps/" in flyte.stdout


def test_operator_runs_as_its_service_account(operator: Any) -> None:
    if isinstance(operator, OperatorDeployment):
        assert operator.pod()["spec"]["serviceAccountName"] == "airflowtask-operator"
        return
    kubeconfig = Path(operator.env["KUBECONFIG"]).read_text()
    assert '"token":' in kubeconfig, "the e2e operator should authenticate with its ServiceAccount token"


def test_metrics_endpoint_reports_tasks_and_connector_calls(kubectl: Kubectl, operator: Any, namespace: str) -> None:
    bash = ("airflow.providers.standard.operators.bash", "BashOperator")
    kubectl.apply(airflow_task("ok", namespace, *bash, {"bash_command": "true"}),
                  airflow_task("ko", namespace, *bash, {"bash_command": "exit 2"}))
    kubectl.wait_phase("ok", namespace, "Succeeded")
    kubectl.wait_phase("ko", namespace, "Failed")
    text = urllib.request.urlopen(operator.metrics_url, timeout=5).read().decode()
    samples = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
               if line and not line.startswith("#")}
    assert samples['airflowtask_tasks{phase="Succeeded"}'] >= 1
    assert samples['airflowtask_tasks{phase="Failed"}'] >= 1
    assert samples['airflowtask_task_failures_total{reason="TaskFailed"}'] >= 1
    assert samples['airflowtask_connector_seconds_count{call="create"}'] >= 2
    assert "airflowtask_triggers_running" in samples
    assert "airflowtask_worker_pool_in_use" in samples
