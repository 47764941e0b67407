"""An AirflowTask's status as the Resource FlytePropeller reads from GetTask (pure logic)."""

from __future__ import annotations

from typing import Any

from flyteidl.core.execution_pb2 import TaskExecution, TaskLog
from flytekit.extend.backend.base_connector import Resource

PHASES = {
    "Pending": TaskExecution.INITIALIZING,
    "Running": TaskExecution.RUNNING,
    "Succeeded": TaskExecution.SUCCEEDED,
    "Failed": TaskExecution.FAILED,
}


def resource(obj: dict[str, Any] | None, namespace: str, name: str, uid: str) -> Resource:
    """The Resource for the object read back (None when it is gone, or replaced by one with another uid).

    No status yet is QUEUED (the operator has not picked it up); Pending is INITIALIZING (submitting, or
    waiting to retry); Running, Succeeded, Failed map to themselves. Airflow tasks have no Flyte outputs:
    the task's result, reason and job id go to ``custom_info``.
    """
    if obj is None or obj.get("metadata", {}).get("uid") != uid:
        return Resource(phase=TaskExecution.FAILED, message=f"AirflowTask {namespace}/{name} no longer exists")
    status = obj.get("status") or {}
    phase = status.get("phase")
    if phase not in PHASES:
        message = f"AirflowTask {namespace}/{name} is waiting for the operator"
        return Resource(phase=TaskExecution.QUEUED, message=message, custom_info={"name": name})
    links = [TaskLog(name=link.get("name", ""), uri=link.get("uri", "")) for link in status.get("logLinks") or ()]
    info = {"name": name, "reason": status.get("reason"), "jobId": status.get("jobId"), "result": status.get("result")}
    return Resource(
        phase=PHASES[phase],
        message=status.get("message") or phase,
        log_links=links,
        custom_info={key: value for key, value in info.items() if value is not None},
    )


def log_lines(obj: dict[str, Any] | None) -> list[str]:
    """``status.logs`` (the operator's tail of the task's Airflow log) as lines."""
    return (((obj or {}).get("status") or {}).get("logs") or "").splitlines()
