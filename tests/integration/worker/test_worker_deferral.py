"""Deferral: the Pod hands the trigger over; the operator's triggerer code runs it; a callback Pod finishes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from airflowtask.connector_core import typed
from airflowtask.connector_core.allowlist import Allowlist
from airflowtask.connector_core.loader import Loader
from airflowtask.connector_core.model import DEFAULT_ALLOWED_MODULES
from airflowtask.connector_core.paths import split_classpath
from airflowtask.connector_core.triggerer import first_event
from localjob import JobService

Order = Callable[..., dict[str, Any]]


def fire(trigger: dict[str, Any]) -> Any:
    """Rebuild a reported trigger as the operator does (allowlist, typed kwargs) and run it to its first event."""
    module, name = split_classpath(trigger["classpath"])
    rebuilt = Loader(Allowlist((*DEFAULT_ALLOWED_MODULES, "localjob"))).trigger(
        module, name, typed.decode(trigger["kwargs"])
    )
    return asyncio.run(first_event(rebuilt, None)).payload


def test_deferred_job_is_finished_by_a_callback_step(
    workers, order: Order, service: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    execute = order("localjob", "LocalJobOperator", duration_seconds=0.5, result={"rows": 3})
    deferred = workers.run(execute)
    outcome = deferred.outcome
    (job_id,) = service.jobs
    assert (outcome["phase"], outcome["reason"], deferred.exit_code) == ("Deferred", "Deferred", 0)
    assert outcome["message"] == "waiting for trigger LocalJobTrigger"
    assert (outcome["jobId"], outcome["state"]) == (job_id, {"job_id": job_id})
    assert outcome["deferral"] == {
        "trigger": {
            "classpath": "localjob.LocalJobTrigger",
            "kwargs": {"conn_id": "local_jobs", "job_id": job_id, "poll_interval": 0.2},
        },
        "method": "execute_complete",
        "nextKwargs": {},
        "timeout": None,
        "deadline": None,
    }

    monkeypatch.setenv("AIRFLOW_CONN_LOCAL_JOBS", service.url)  # the triggerer reads the task's connection
    event = fire(outcome["deferral"]["trigger"])
    assert event["state"] == "succeeded"

    callback = {
        **execute,
        "step": "callback",
        "method": outcome["deferral"]["method"],
        "event": typed.encode(event),
        "nextKwargs": outcome["deferral"]["nextKwargs"],
        "state": outcome["state"],
    }
    finished = workers.run(callback)
    assert (finished.outcome["phase"], finished.outcome["reason"], finished.exit_code) == ("Succeeded", "Completed", 0)
    assert (finished.outcome["result"], finished.outcome["jobId"]) == ({"rows": 3}, job_id)
    assert len(service.jobs) == 1  # the callback did not submit again


def test_deferral_timeout_and_typed_trigger_kwargs(workers, order: Order, tmp_path) -> None:
    """A sensor's timeout becomes the deferral's; datetimes in the trigger's kwargs are typed JSON."""
    file_sensor = workers.start(
        order("airflow.sensors.filesystem", "FileSensor", filepath=str(tmp_path / "x"), timeout=120)
    )
    date_sensor = workers.start(
        order("airflow.sensors.date_time", "DateTimeSensorAsync", target_time="2099-01-01T00:00:00+00:00")
    )
    deferral = file_sensor.wait().outcome["deferral"]
    assert deferral["trigger"]["classpath"] == "airflow.providers.standard.triggers.file.FileTrigger"
    assert deferral["timeout"] == pytest.approx(120, abs=1)
    assert deferral["deadline"] is not None

    deferral = date_sensor.wait().outcome["deferral"]
    assert deferral["trigger"]["classpath"] == "airflow.providers.standard.triggers.temporal.DateTimeTrigger"
    assert deferral["trigger"]["kwargs"]["moment"] == {"__type": "datetime", "__var": 4070908800.0}
    assert (deferral["timeout"], deferral["deadline"]) == (None, None)


def test_trigger_timeout_reported_to_a_sensor_ends_it_sensor_timeout(workers, order: Order) -> None:
    """The operator reports a trigger that timed out as Airflow's scheduler does: method __fail__."""
    callback = {
        **order("airflow.sensors.filesystem", "FileSensor", filepath="/nowhere"),
        "step": "callback",
        "method": "__fail__",
        "nextKwargs": {"error": "Trigger timeout"},
    }
    finished = workers.run(callback)
    assert (finished.outcome["phase"], finished.outcome["reason"], finished.exit_code) == ("Failed", "SensorTimeout", 1)
