"""An operator killed while Airflow code runs never runs it again silently: the status says what happened."""

from __future__ import annotations

from typing import Any

from kubetools import Kubectl, airflow_task

SLEEP = ("airflow.providers.standard.operators.bash", "BashOperator", {"bash_command": "sleep 60"})


def _reason(reason: str) -> Any:
    return lambda obj: obj.get("status", {}).get("reason") == reason


def test_killed_during_submission_fails_without_resubmitting(
    kubectl: Kubectl, operator: Any, namespace: str
) -> None:
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
    kubectl: Kubectl, operator: Any, namespace: str
) -> None:
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
