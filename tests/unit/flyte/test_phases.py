"""GetTask's Resource from an AirflowTask's status, and the connector's configuration."""

from __future__ import annotations

import pytest
from airflowtask.flyte.connector import AirflowTaskMetadata, ConnectorConfig
from airflowtask.flyte.phases import log_lines, resource
from flyteidl.core.execution_pb2 import TaskExecution


def obj(status: dict | None = None, uid: str = "u1") -> dict:
    return {"metadata": {"name": "t", "namespace": "ns", "uid": uid}, **({"status": status} if status else {})}


@pytest.mark.parametrize(
    ("phase", "expected"),
    [("Pending", TaskExecution.INITIALIZING), ("Running", TaskExecution.RUNNING),
     ("Succeeded", TaskExecution.SUCCEEDED), ("Failed", TaskExecution.FAILED)],
)
def test_phases(phase: str, expected: int) -> None:
    assert resource(obj({"phase": phase, "message": "m"}), "ns", "t", "u1").phase == expected


def test_no_status_yet_is_queued() -> None:
    got = resource(obj(), "ns", "t", "u1")
    assert (got.phase, got.message) == (TaskExecution.QUEUED, "AirflowTask ns/t is waiting for the operator")


def test_a_finished_task_reports_message_links_and_custom_info() -> None:
    status = {"phase": "Failed", "reason": "TaskFailed", "message": "exit code 3", "jobId": "j1",
              "logLinks": [{"name": "Console", "uri": "https://example.invalid/j1"}]}
    got = resource(obj(status), "ns", "t", "u1")
    assert got.message == "exit code 3"
    assert [(link.name, link.uri) for link in got.log_links] == [("Console", "https://example.invalid/j1")]
    assert got.custom_info == {"name": "t", "reason": "TaskFailed", "jobId": "j1"}
    assert got.outputs is None


@pytest.mark.parametrize("gone", [None, obj({"phase": "Running"}, uid="someone-else")])
def test_a_missing_or_replaced_object_is_failed(gone: dict | None) -> None:
    got = resource(gone, "ns", "t", "u1")
    assert (got.phase, got.message) == (TaskExecution.FAILED, "AirflowTask ns/t no longer exists")


def test_log_lines() -> None:
    assert log_lines(obj({"phase": "Running", "logs": "a\nb\n"})) == ["a", "b"]
    assert log_lines(obj()) == [] and log_lines(None) == []


def test_metadata_round_trips_as_propeller_stores_it() -> None:
    meta = AirflowTaskMetadata(namespace="ns", name="t", uid="u1")
    assert AirflowTaskMetadata.decode(meta.encode()) == meta


def test_config_from_env() -> None:
    assert ConnectorConfig.from_env({}) == ConnectorConfig()
    config = ConnectorConfig.from_env({"AIRFLOWTASK_FLYTE_NAMESPACE": "flyte-tasks",
                                       "AIRFLOWTASK_FLYTE_CONNECTIONS": "db=db-conn",
                                       "AIRFLOWTASK_FLYTE_TTL_SECONDS_AFTER_FINISHED": "60"})
    assert config == ConnectorConfig("flyte-tasks", {"db": "db-conn"}, 60)
