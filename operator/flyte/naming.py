"""Names, labels and annotations of the AirflowTask made for one Flyte task execution (pure logic).

The object's name is derived from the task execution (project, domain, execution name, node id, retry
attempt) so that a retried CreateTask finds the object the first one made: a readable part, then a hash of
those five, a DNS-1123 label of at most 63 characters. Labels carry the id for ``kubectl get -l``
(sanitized, so lossy); the annotation :data:`EXECUTION_ANNOTATION` carries it exactly, with the task's
name and version, and decides whether an existing object with that name was made for this execution.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import Any

MAX_NAME = 63
HASH_LENGTH = 10
PREFIX = "airflowtask.dev/"
EXECUTION_ANNOTATION = f"{PREFIX}flyte-task-execution"
MANAGED_BY = "airflowtask-flyte-connector"

_NOT_NAME = re.compile(r"[^a-z0-9]+")
_NOT_LABEL = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class TaskExecutionId:
    """What identifies one attempt of one Flyte task in one workflow execution."""

    project: str
    domain: str
    execution: str
    node_id: str
    retry_attempt: int
    task_name: str = ""
    task_version: str = ""

    @classmethod
    def from_metadata(cls, metadata: Any) -> TaskExecutionId:
        """From flytekit's TaskExecutionMetadata (model or protobuf)."""
        task_execution = metadata.task_execution_id
        node = task_execution.node_execution_id
        execution, task_id = node.execution_id, task_execution.task_id
        return cls(execution.project, execution.domain, execution.name, node.node_id, task_execution.retry_attempt,
                   task_id.name, task_id.version)

    def key(self) -> str:
        """The exact id as compact JSON: the annotation's value."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


def object_name(task: TaskExecutionId) -> str:
    """``<execution>-<node>-<retry>-<hash>``, lowercased, truncated before the hash to fit 63 characters."""
    attempt = [task.project, task.domain, task.execution, task.node_id, task.retry_attempt]
    digest = hashlib.sha256(json.dumps(attempt).encode()).hexdigest()[:HASH_LENGTH]
    readable = _NOT_NAME.sub("-", f"{task.execution}-{task.node_id}-{task.retry_attempt}".lower())
    readable = readable[: MAX_NAME - HASH_LENGTH - 1].strip("-")
    return f"{readable}-{digest}" if readable else f"aft-{digest}"


def label_value(value: str) -> str:
    """A valid label value: runs of other characters become ``-``, at most 63, alphanumeric at both ends."""
    cleaned = _NOT_LABEL.sub("-", value)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)


def labels(task: TaskExecutionId) -> dict[str, str]:
    """Labels that select by Flyte project, domain, execution, node, attempt and task name."""
    values = {
        "flyte-project": task.project,
        "flyte-domain": task.domain,
        "flyte-execution": task.execution,
        "flyte-node": task.node_id,
        "flyte-retry-attempt": str(task.retry_attempt),
        "flyte-task": task.task_name,
    }
    return {"app.kubernetes.io/managed-by": MANAGED_BY} | {
        PREFIX + key: label_value(value) for key, value in values.items()
    }


def annotations(task: TaskExecutionId) -> dict[str, str]:
    return {EXECUTION_ANNOTATION: task.key()}


def made_for(obj: dict[str, Any], task: TaskExecutionId) -> bool:
    """True when an existing AirflowTask was made for this task execution."""
    return (obj.get("metadata", {}).get("annotations") or {}).get(EXECUTION_ANNOTATION) == task.key()
