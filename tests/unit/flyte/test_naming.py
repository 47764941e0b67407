"""Names, labels and the identity annotation of the AirflowTask made for a Flyte task execution."""

from __future__ import annotations

import re

import pytest
from airflowtask.flyte import naming
from airflowtask.flyte.naming import TaskExecutionId
from flyte_grpc import execution_metadata
from flytekit.models.task import TaskExecutionMetadata

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
TASK = TaskExecutionId("flytesnacks", "development", "f8a3b2c1d0e9", "n0", 0, "workflows.example/wait for file", "v1")


def test_id_from_the_metadata_propeller_sends() -> None:
    pb = execution_metadata(execution="abc123", node_id="n3-0-dn1", retry_attempt=2)
    model = TaskExecutionMetadata.from_flyte_idl(pb)
    expected = TaskExecutionId("flytesnacks", "development", "abc123", "n3-0-dn1", 2, "task", "v1")
    assert TaskExecutionId.from_metadata(model) == expected


def test_name_is_readable_deterministic_and_differs_per_attempt() -> None:
    name = naming.object_name(TASK)
    assert re.fullmatch(r"f8a3b2c1d0e9-n0-0-[0-9a-f]{10}", name)
    assert naming.object_name(TaskExecutionId(*TASK.__dict__.values())) == name
    others = {naming.object_name(TaskExecutionId("flytesnacks", "development", "f8a3b2c1d0e9", "n0", 1)),
              naming.object_name(TaskExecutionId("flytesnacks", "production", "f8a3b2c1d0e9", "n0", 0)),
              naming.object_name(TaskExecutionId("flytesnacks", "development", "f8a3b2c1d0e9", "n1", 0))}
    assert name not in others and len(others) == 3


@pytest.mark.parametrize(
    "task",
    [
        TaskExecutionId("p", "d", "x" * 200, "n" * 100, 12345),
        TaskExecutionId("p", "d", "Exec_With.Odd/Chars", "--n0--", 0),
        TaskExecutionId("p", "d", "", "", 0),
        TaskExecutionId("p", "d", "a_b", "n0", 0),
    ],
)
def test_names_are_dns_labels_of_at_most_63(task: TaskExecutionId) -> None:
    name = naming.object_name(task)
    assert len(name) <= 63 and DNS_LABEL.match(name), name


def test_sanitized_collisions_still_get_different_names() -> None:
    a = naming.object_name(TaskExecutionId("p", "d", "a_b", "n0", 0))
    b = naming.object_name(TaskExecutionId("p", "d", "a-b", "n0", 0))
    assert a.rsplit("-", 1)[0] == b.rsplit("-", 1)[0] and a != b


@pytest.mark.parametrize(
    ("value", "expected"),
    [("n0", "n0"), ("wf.tasks.sensor", "wf.tasks.sensor"), ("a/b c", "a-b-c"), ("-x-", "x"), ("", ""),
     ("y" * 80, "y" * 63), ("a" * 62 + "/b", "a" * 62)],
)
def test_label_values_are_sanitized(value: str, expected: str) -> None:
    assert naming.label_value(value) == expected
    assert LABEL_VALUE.match(expected)


def test_labels_and_annotation_identify_the_execution() -> None:
    labels = naming.labels(TASK)
    assert labels == {
        "app.kubernetes.io/managed-by": "airflowtask-flyte-connector",
        "airflowtask.dev/flyte-project": "flytesnacks",
        "airflowtask.dev/flyte-domain": "development",
        "airflowtask.dev/flyte-execution": "f8a3b2c1d0e9",
        "airflowtask.dev/flyte-node": "n0",
        "airflowtask.dev/flyte-retry-attempt": "0",
        "airflowtask.dev/flyte-task": "workflows.example-wait-for-file",
    }
    obj = {"metadata": {"labels": labels, "annotations": naming.annotations(TASK)}}
    assert naming.made_for(obj, TASK)
    assert not naming.made_for(obj, TaskExecutionId("flytesnacks", "development", "f8a3b2c1d0e9", "n0", 1))
    assert not naming.made_for({"metadata": {"labels": labels}}, TASK)


def test_another_task_in_the_same_attempt_gets_the_name_but_is_not_adopted() -> None:
    other = TaskExecutionId(TASK.project, TASK.domain, TASK.execution, TASK.node_id, 0, "other_task", "v1")
    assert naming.object_name(other) == naming.object_name(TASK)
    assert not naming.made_for({"metadata": {"annotations": naming.annotations(TASK)}}, other)
