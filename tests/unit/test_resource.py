"""Parsing an AirflowTask body into the operator's view (pure logic)."""

from datetime import UTC, datetime

from airflowtask.resource import AirflowTaskResource, ConnectionRef

BODY = {
    "metadata": {"namespace": "data", "name": "wait", "uid": "u1", "generation": 3,
                 "creationTimestamp": "2026-01-02T03:04:05Z"},
    "spec": {
        "operator": {"module": "airflow.sensors.filesystem", "name": "FileSensor",
                     "parameters": {"filepath": "/data/x"}},
        "connections": [{"connId": "fs_default", "secretRef": {"name": "fs"}}],
        "pollIntervalSeconds": 5,
        "activeDeadlineSeconds": 60,
    },
    "status": {"phase": "Pending", "reason": "Submitting", "attempts": 1, "startTime": "2026-01-02T03:04:06Z"},
}


def test_parse_applies_defaults_and_reads_status() -> None:
    task = AirflowTaskResource.parse(BODY)
    assert task.task_id == "wait"
    assert task.connections == (ConnectionRef("fs_default", "fs", "uri"),)
    assert task.logical_date == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (task.backoff_limit, task.deletion_policy, task.poll_interval_seconds) == (0, "Delete", 5)
    assert task.status.submitting
    assert not task.status.finished
    assert task.deadline(task.status.start_time) == datetime(2026, 1, 2, 3, 5, 6, tzinfo=UTC)


def test_task_id_from_parameters_wins() -> None:
    body = {**BODY, "spec": {"operator": {"module": "m", "name": "C", "parameters": {"task_id": "custom"}}}}
    assert AirflowTaskResource.parse(body).task_id == "custom"
    assert AirflowTaskResource.parse(body).deadline(None) is None
