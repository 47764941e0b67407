"""A deferrable operator with an external job: results, job ids, and cancellation (also after a restart)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from airflowtask.connector_core import AirflowMetadata, Engine, Phase, RunInfo
from conftest import Harness, run_info
from localjob import JobService


@pytest.fixture
def service() -> Iterator[JobService]:
    with JobService() as service:
        yield service


@pytest.fixture
def run(service: JobService) -> RunInfo:
    return run_info(connections={"local_jobs": service.url})


def test_job_result(harness: Harness, engine: Engine, service: JobService, run: RunInfo) -> None:
    meta, state = harness.create(engine, "localjob", "LocalJobOperator", run, duration_seconds=0.3, result={"rows": 3})
    assert state.reason == "Deferred"
    assert state.job_id in service.jobs and meta.job_id == state.job_id
    state = harness.finish(engine, meta, run)
    assert (state.phase, state.result) == (Phase.SUCCEEDED, {"rows": 3})
    assert any(f"submitted job {state.job_id}" in line for line in engine.logs(meta))


def test_delete_cancels_the_job(harness: Harness, engine: Engine, service: JobService, run: RunInfo) -> None:
    meta, state = harness.create(engine, "localjob", "LocalJobOperator", run, duration_seconds=60)
    harness.run(engine.delete(meta, run=run))
    assert service.jobs[state.job_id].state == "cancelled"
    state = harness.run(engine.get(meta, run=run))
    assert (state.phase, state.reason, state.retryable) == (Phase.FAILED, "Cancelled", False)
    assert engine.running_triggers == 0
    harness.run(engine.delete(meta, run=run))  # idempotent


def test_delete_after_a_restart_cancels_the_job(harness: Harness, service: JobService, run: RunInfo) -> None:
    first = harness.engine()
    meta, state = harness.create(first, "localjob", "LocalJobOperator", run, duration_seconds=60)
    data = meta.encode()
    harness.run(first.close())
    assert service.jobs[state.job_id].state == "running"

    harness.run(harness.engine().delete(AirflowMetadata.decode(data), run=run))
    assert service.jobs[state.job_id].state == "cancelled"


def test_job_is_followed_to_the_end_after_a_restart(harness: Harness, service: JobService, run: RunInfo) -> None:
    first = harness.engine()
    meta, state = harness.create(first, "localjob", "LocalJobOperator", run, duration_seconds=1, result="ok")
    data = meta.encode()
    harness.run(first.close())

    second = harness.engine()
    state = harness.finish(second, AirflowMetadata.decode(data), run)
    assert (state.reason, state.result) == ("Completed", "ok")
    assert len(service.jobs) == 1  # not submitted twice


def test_delete_of_a_finished_task_does_nothing(harness: Harness, engine: Engine, run: RunInfo) -> None:
    meta, _ = harness.create(engine, "localjob", "LocalJobOperator", run, duration_seconds=0)
    harness.finish(engine, meta, run)
    harness.run(engine.delete(meta, run=run))
    assert harness.run(engine.get(meta, run=run)).reason == "Completed"


def test_delete_of_unknown_metadata_is_safe(harness: Harness, engine: Engine, run: RunInfo) -> None:
    meta, _ = harness.create(engine, "localjob", "LocalJobOperator", run, duration_seconds=0)
    state = harness.finish(engine, meta, run)
    engine.forget(meta)
    harness.run(harness.engine().delete(AirflowMetadata.decode(meta.encode())))
    assert state.finished
