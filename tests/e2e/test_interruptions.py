"""An operator killed while Airflow code runs never runs it again silently: the status says what happened.

The last two tests are about the in-process executor (AIRFLOWTASK_EXECUTION=in-process, set on the Deployment
for them, so they run last), where Airflow code dies with the operator. With task Pods (the default) the work
outlives the operator, which adopts it on restart: tests/e2e/test_task_pods.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from airflowtask.install import DEPLOYMENT, NAMESPACE
from kubetools import Kubectl, airflow_task
from operator_deployment import OperatorDeployment

SLEEP = ("airflow.providers.standard.operators.bash", "BashOperator", {"bash_command": "sleep 60"})


@pytest.fixture(scope="module")
def in_process(operator_process: Any) -> Iterator[Any]:
    """The operator with AIRFLOWTASK_EXECUTION=in-process for this module (its Deployment rolled, then rolled back)."""
    if not isinstance(operator_process, OperatorDeployment):  # a local process runs in-process already
        yield operator_process
        return
    _set_execution(operator_process, "AIRFLOWTASK_EXECUTION=in-process")
    try:
        yield operator_process
    finally:
        _set_execution(operator_process, "AIRFLOWTASK_EXECUTION-")


def _set_execution(deployment: OperatorDeployment, change: str) -> None:
    deployment.kubectl("set", "env", f"deployment/{DEPLOYMENT}", "-n", NAMESPACE, "-c", "operator", change)
    deployment.kubectl("rollout", "status", f"deployment/{DEPLOYMENT}", "-n", NAMESPACE, "--timeout=300s")
    deployment.start()


def _reason(reason: str) -> Any:
    return lambda obj: obj.get("status", {}).get("reason") == reason


def test_unreadable_metadata_never_blocks_deletion(kubectl: Kubectl, operator: Any, namespace: str) -> None:
    kubectl.apply(airflow_task("tampered", namespace, *SLEEP), airflow_task("failed", namespace, *SLEEP))
    for name in ("tampered", "failed"):
        kubectl.wait_task(name, namespace, _reason("Executing"))
    operator.kill()
    for name in ("tampered", "failed"):
        kubectl("patch", "aft", name, "-n", namespace, "--subresource=status", "--type=merge",
                "-p", '{"status": {"resourceMeta": "not json"}}')
    kubectl("delete", "aft", "tampered", "-n", namespace, "--wait=false")
    operator.start()
    kubectl.wait_gone("airflowtasks.airflowtask.dev", "tampered", namespace, timeout=60)
    assert ("Warning", "CannotCancel") in [(t, r) for t, r, _ in kubectl.events("tampered", namespace)]
    status = kubectl.wait_phase("failed", namespace, "Failed", timeout=60)["status"]
    assert status["reason"] == "InvalidResourceMeta"
    assert "status.resourceMeta cannot be read" in status["message"]
    kubectl("delete", "aft", "failed", "-n", namespace, "--timeout=60s")
    assert not kubectl.exists("airflowtasks.airflowtask.dev", "failed", namespace)


def test_killed_during_submission_fails_without_resubmitting(
    kubectl: Kubectl, in_process: Any, namespace: str
) -> None:
    operator = in_process
    kubectl.apply(airflow_task("cut-short", namespace, *SLEEP))
    kubectl.wait_task("cut-short", namespace, _reason("Submitting"))
    operator.kill()
    operator.start()
    status = kubectl.wait_phase("cut-short", namespace, "Failed", timeout=60)["status"]
    assert status["reason"] == "SubmissionInterrupted"
    assert "may have been started" in status["message"]
    assert "not submitting again" in status["message"]
    assert status["attempts"] == 1


def test_killed_while_executing_retries_only_when_allowed_and_says_so(
    kubectl: Kubectl, in_process: Any, namespace: str
) -> None:
    operator = in_process
    kubectl.apply(airflow_task("retried", namespace, "airflow.providers.standard.operators.bash", "BashOperator",
                               {"bash_command": "sleep 6; echo done"}, backoffLimit=1))
    kubectl.wait_task("retried", namespace, _reason("Executing"))
    operator.kill()
    operator.start()
    retrying = kubectl.wait_task("retried", namespace, _reason("Retrying"), timeout=60)["status"]
    assert "attempt 1 failed" in retrying["message"]
    status = kubectl.wait_phase("retried", namespace, "Succeeded", timeout=90)["status"]
    assert status["attempts"] == 2
    assert status["result"] == "done"
