"""Stopping work: SIGTERM and execution_timeout call on_kill(); the kill step cancels a deferred task's job."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflowtask.connector_core.model import DEFAULT_ALLOWED_MODULES
from localjob import JobService

ALLOWED_MODULES = ",".join(DEFAULT_ALLOWED_MODULES)
Order = Callable[..., dict[str, Any]]


def wait_for_job(service: JobService, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while not service.jobs:
        assert time.monotonic() < deadline, "the worker never submitted its job"
        time.sleep(0.05)
    (job_id,) = service.jobs
    return job_id


def test_sigterm_during_execute_calls_on_kill(workers, order: Order, service: JobService) -> None:
    running = workers.start(order("localjob", "LocalJobOperator", duration_seconds=600, deferrable=False))
    job_id = wait_for_job(service)
    stopped = time.monotonic()
    running.process.send_signal(signal.SIGTERM)
    finished = running.wait()
    assert time.monotonic() - stopped < 10
    assert service.jobs[job_id].state == "cancelled"
    outcome = finished.outcome
    assert (outcome["phase"], outcome["reason"], outcome["jobId"], finished.exit_code) == (
        "Failed",
        "Cancelled",
        job_id,
        1,
    )
    assert outcome["message"] == "the Pod was terminated (SIGTERM) during the execute step; on_kill() was called"


def test_kill_step_cancels_the_job_from_the_reported_state(workers, order: Order, service: JobService) -> None:
    execute = order("localjob", "LocalJobOperator", duration_seconds=600)
    deferred = workers.run(execute).outcome
    assert deferred["phase"] == "Deferred"
    job_id = deferred["jobId"]
    assert service.jobs[job_id].state == "running"

    finished = workers.run({**execute, "step": "kill", "state": deferred["state"]})
    assert service.jobs[job_id].state == "cancelled"
    outcome = finished.outcome
    assert (outcome["phase"], outcome["reason"], outcome["message"], outcome["jobId"]) == (
        "Failed",
        "Cancelled",
        "on_kill() was called",
        job_id,
    )


def test_execution_timeout_calls_on_kill(workers, order: Order, service: JobService) -> None:
    finished = workers.run(
        order(
            "localjob",
            "LocalJobOperator",
            duration_seconds=600,
            deferrable=False,
            execution_timeout={"__type": "timedelta", "__var": 1.5},
        )
    )
    (job_id,) = service.jobs
    assert service.jobs[job_id].state == "cancelled"
    outcome = finished.outcome
    assert (outcome["phase"], outcome["reason"], outcome["retryable"], outcome["jobId"]) == (
        "Failed",
        "TaskFailed",
        True,
        job_id,
    )
    assert "longer than its execution_timeout of 1.5 seconds" in outcome["message"]
    assert outcome["message"].endswith("on_kill() was called")
    assert finished.seconds < 30


def test_a_deferral_too_large_to_report_cancels_the_job(workers, order: Order, tmp_path: Path) -> None:
    """Nobody could follow a deferral the operator never hears of: on_kill() runs, the outcome says why."""
    (tmp_path / "big_deferral.py").write_text(
        "import pathlib\nfrom datetime import timedelta\n"
        "from airflow.sdk import BaseOperator\n"
        "from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger\n\n"
        "class BigDeferral(BaseOperator):\n"
        "    def execute(self, context):\n"
        "        self.job_id, self.notes = 'job-9', 'n' * 5000\n"
        "        self.defer(trigger=TimeDeltaTrigger(timedelta(hours=1)), method_name='execute_complete')\n\n"
        "    def on_kill(self):\n"
        f"        pathlib.Path({str(tmp_path / 'killed')!r}).write_text(self.job_id)\n"
    )
    finished = workers.run(
        order("big_deferral", "BigDeferral"),
        env={"AIRFLOWTASK_ALLOWED_MODULES": f"{ALLOWED_MODULES},big_deferral"},
        pythonpath=(tmp_path,),
    )
    outcome = finished.outcome
    assert (outcome["phase"], outcome["reason"], outcome["jobId"]) == ("Failed", "OutcomeTooLarge", "job-9")
    assert outcome["message"].startswith("the step ended Deferred (Deferred) but its outcome is")
    assert outcome["message"].endswith("on_kill() was called")
    assert (tmp_path / "killed").read_text() == "job-9"
