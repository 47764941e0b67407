"""A deferrable operator running a job in a local job service: cancellation on delete, Orphan,
deadlines, completion without waiting for the next poll, and restarts of the operator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubetools import AFT, Kubectl, airflow_task
from localjob import JobService


@pytest.fixture
def jobs() -> Iterator[JobService]:
    with JobService() as service:
        yield service


def _job_task(name: str, namespace: str, duration: float, **spec: Any) -> dict[str, Any]:
    return airflow_task(
        name, namespace, "localjob", "LocalJobOperator",
        {"service_conn_id": "jobs", "duration_seconds": duration, "result": {"rows": 42}},
        connections=[{"connId": "jobs", "secretRef": {"name": "jobs-conn"}}], **spec,
    )


def _conn(namespace: str, service: JobService) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "jobs-conn", "namespace": namespace},
            "stringData": {"uri": service.url}}


def _deferred(obj: dict[str, Any]) -> bool:
    status = obj.get("status", {})
    return status.get("reason") == "Deferred" and bool(status.get("jobId"))


def test_job_succeeds_with_its_result_and_job_id(kubectl: Kubectl, operator: Any, namespace: str,
                                                 jobs: JobService) -> None:
    kubectl.apply(_conn(namespace, jobs), _job_task("job", namespace, 6, pollIntervalSeconds=600))
    deferred = kubectl.wait_task("job", namespace, _deferred)
    assert deferred["status"]["phase"] == "Running"
    # pollIntervalSeconds is 600: success is reported when the trigger fires, not at the next poll.
    status = kubectl.wait_phase("job", namespace, "Succeeded", timeout=60)["status"]
    assert status["result"] == {"rows": 42}
    assert status["jobId"] in jobs.jobs
    assert jobs.jobs[status["jobId"]].state == "succeeded"
    assert "submitted job" in status["logs"]
    reasons = {r for _, r, _ in kubectl.events("job", namespace)}
    assert {"Submitting", "Deferred", "Completed"} <= reasons


def test_deleting_a_running_job_task_cancels_the_job(kubectl: Kubectl, operator: Any, namespace: str,
                                                     jobs: JobService) -> None:
    kubectl.apply(_conn(namespace, jobs), _job_task("doomed", namespace, 300))
    job_id = kubectl.wait_task("doomed", namespace, _deferred)["status"]["jobId"]
    assert jobs.jobs[job_id].state == "running"
    kubectl("delete", "aft", "doomed", "-n", namespace, "--timeout=60s")
    assert not kubectl.exists(AFT, "doomed", namespace)
    assert jobs.jobs[job_id].state == "cancelled"
    assert len(jobs.jobs) == 1


def test_orphan_policy_leaves_the_job_running(kubectl: Kubectl, operator: Any, namespace: str,
                                              jobs: JobService) -> None:
    kubectl.apply(_conn(namespace, jobs), _job_task("orphan", namespace, 300, deletionPolicy="Orphan"))
    job_id = kubectl.wait_task("orphan", namespace, _deferred)["status"]["jobId"]
    kubectl("delete", "aft", "orphan", "-n", namespace, "--timeout=60s")
    assert not kubectl.exists(AFT, "orphan", namespace)
    assert jobs.jobs[job_id].state == "running"


def test_deadline_fails_the_task_and_cancels_the_job(kubectl: Kubectl, operator: Any, namespace: str,
                                                     jobs: JobService) -> None:
    # The deadline leaves a cold task Pod time to submit its job (a slow CI machine needs about 4 s for it).
    kubectl.apply(_conn(namespace, jobs), _job_task("late", namespace, 300, activeDeadlineSeconds=20))
    job_id = kubectl.wait_task("late", namespace, _deferred, timeout=20)["status"]["jobId"]
    assert jobs.jobs[job_id].state == "running"
    status = kubectl.wait_phase("late", namespace, "Failed", timeout=60)["status"]
    assert status["reason"] == "DeadlineExceeded"
    assert status["message"] == "activeDeadlineSeconds (20s) exceeded; the external job was cancelled"
    assert status["jobId"] == job_id
    assert jobs.jobs[job_id].state == "cancelled"
    assert ("Warning", "DeadlineExceeded") in [(t, r) for t, r, _ in kubectl.events("late", namespace)]


def test_operator_killed_mid_flight_resumes_every_task_without_resubmitting(
    kubectl: Kubectl, operator: Any, namespace: str, jobs: JobService
) -> None:
    names = [f"job-{i:02d}" for i in range(20)]
    kubectl.apply(_conn(namespace, jobs), *[_job_task(name, namespace, 45, pollIntervalSeconds=5) for name in names])
    for name in names:  # each submitted its job (most are deferred, waiting on it; a slow machine may finish some)
        kubectl.wait_task(name, namespace, lambda obj: bool(obj.get("status", {}).get("jobId")), timeout=180)
    assert len(jobs.jobs) == 20
    operator.kill()
    time.sleep(1)
    operator.start()
    for name in names:
        status = kubectl.wait_phase(name, namespace, "Succeeded", timeout=240)["status"]
        assert status["result"] == {"rows": 42}
        assert status["attempts"] == 1
    assert len(jobs.jobs) == 20, "a job was submitted twice"
    assert all(job.state == "succeeded" for job in jobs.jobs.values())
