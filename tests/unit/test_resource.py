"""Parsing an AirflowTask body into the operator's view (pure logic)."""

from datetime import UTC, datetime
from pathlib import Path

import yaml
from airflowtask.resource import AirflowTaskResource, ConnectionRef, PodTemplate, PodTemplateSpec

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


def test_pod_fields_default_to_none_and_an_empty_template() -> None:
    task = AirflowTaskResource.parse(BODY)
    assert (task.image, task.service_account_name, task.uid) == (None, None, "u1")
    assert task.pod_template == PodTemplate()


def test_pod_fields_are_read() -> None:
    template = {"metadata": {"labels": {"team": "data"}, "annotations": {"a": "b"}},
                "spec": {"nodeSelector": {"pool": "batch"}, "automountServiceAccountToken": True}}
    spec = {**BODY["spec"], "image": "registry.example/t:1", "serviceAccountName": "etl-runner",
            "podTemplate": template}
    task = AirflowTaskResource.parse({**BODY, "spec": spec})
    assert (task.image, task.service_account_name) == ("registry.example/t:1", "etl-runner")
    assert task.pod_template == PodTemplate(labels={"team": "data"}, annotations={"a": "b"}, spec=template["spec"])


def test_the_crd_lists_the_pod_template_fields_the_operator_reads() -> None:
    crd = yaml.safe_load((Path(__file__).resolve().parents[2] / "crds" / "airflowtask.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert set(spec["podTemplate"]["properties"]["spec"]["properties"]) == set(PodTemplateSpec.__optional_keys__)
