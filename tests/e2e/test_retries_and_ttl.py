"""backoffLimit retries with backoff and counts attempts; ttlSecondsAfterFinished deletes."""

from __future__ import annotations

from kubetools import AFT, Kubectl, airflow_task

BASH = ("airflow.providers.standard.operators.bash", "BashOperator")


def test_retry_counts_attempts_and_succeeds_on_the_second(kubectl: Kubectl, operator: object, namespace: str) -> None:
    command = 'echo "try {{ ti.try_number }}"; test {{ ti.try_number }} -ge 2'  # each attempt is a new Pod
    kubectl.apply(airflow_task("flaky", namespace, *BASH, {"bash_command": command}, backoffLimit=2))
    retrying = kubectl.wait_task("flaky", namespace, lambda o: o.get("status", {}).get("reason") == "Retrying")
    assert retrying["status"]["phase"] == "Pending"
    assert retrying["status"]["nextAttemptTime"]
    assert "attempt 1 failed" in retrying["status"]["message"]
    status = kubectl.wait_phase("flaky", namespace, "Succeeded", timeout=60)["status"]
    assert (status["attempts"], status["result"]) == (2, "try 2")
    events = [(t, r) for t, r, _ in kubectl.events("flaky", namespace)]
    assert ("Warning", "Retrying") in events and ("Normal", "Completed") in events


def test_retries_stop_at_backoff_limit(kubectl: Kubectl, operator: object, namespace: str) -> None:
    kubectl.apply(airflow_task("broken", namespace, *BASH, {"bash_command": "exit 1"}, backoffLimit=2))
    status = kubectl.wait_phase("broken", namespace, "Failed", timeout=90)["status"]
    assert status["attempts"] == 3
    assert status["reason"] == "TaskFailed"
    retries = [r for _, r, _ in kubectl.events("broken", namespace) if r == "Retrying"]
    assert len(retries) >= 1  # events with the same reason may be aggregated by the API server


def test_ttl_deletes_the_finished_object(kubectl: Kubectl, operator: object, namespace: str) -> None:
    kubectl.apply(airflow_task("short-lived", namespace, *BASH, {"bash_command": "true"},
                               ttlSecondsAfterFinished=2))
    kubectl.wait_phase("short-lived", namespace, "Succeeded", timeout=60)
    kubectl.wait_gone(AFT, "short-lived", namespace, timeout=30)


def test_ttl_may_be_added_after_the_task_finished(kubectl: Kubectl, operator: object, namespace: str) -> None:
    kubectl.apply(airflow_task("kept", namespace, *BASH, {"bash_command": "true"}))
    kubectl.wait_phase("kept", namespace, "Succeeded", timeout=60)
    kubectl.apply(airflow_task("kept", namespace, *BASH, {"bash_command": "true"}, ttlSecondsAfterFinished=0))
    kubectl.wait_gone(AFT, "kept", namespace, timeout=30)
