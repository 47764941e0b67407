"""The engine's vocabulary: phases, reasons, task states, run information and configuration."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflowtask.connector_core.encoding import AirflowMetadata


class Phase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class Reason(StrEnum):
    """The one-word reason of a TaskState (the ``reason`` field holds one of these)."""

    EXECUTING = "Executing"  # Running: execute(), a callback or a hook call runs in the worker pool
    DEFERRED = "Deferred"  # Running: a trigger runs in the engine's event loop
    WAITING = "Waiting"  # Running: a sensor's poke returned False (or is in flight)
    COMPLETED = "Completed"
    SKIPPED = "Skipped"
    TASK_FAILED = "TaskFailed"
    FAILED_NO_RETRY = "FailedNoRetry"
    SENSOR_TIMEOUT = "SensorTimeout"
    IMPORT_FAILED = "ImportFailed"
    NOT_ALLOWED = "NotAllowed"
    INVALID_PARAMETERS = "InvalidParameters"
    INVALID_CONNECTION = "InvalidConnection"
    INTERRUPTED = "Interrupted"
    CANCELLED = "Cancelled"
    INVALID_WORK_ORDER = "InvalidWorkOrder"  # a worker Pod's work order cannot be read
    OUTCOME_TOO_LARGE = "OutcomeTooLarge"  # a worker Pod's outcome does not fit in a termination message


@dataclass(frozen=True)
class LogLink:
    name: str
    uri: str


@dataclass(frozen=True)
class TaskState:
    """What a task is doing now, or how it ended."""

    phase: Phase
    reason: str
    message: str
    result: Any = None
    retryable: bool = True
    log_links: tuple[LogLink, ...] = ()
    job_id: str | None = None
    meta: AirflowMetadata | None = None
    """The task's metadata: the same object create() returned (or get() was given), which the engine keeps
    current while the task runs (a deferral after create() returned, the outcome). Persist its encode()."""

    @property
    def finished(self) -> bool:
        return self.phase in (Phase.SUCCEEDED, Phase.FAILED)


@dataclass(frozen=True)
class RunInfo:
    """What the caller knows about the run a task belongs to."""

    run_id: str
    logical_date: datetime
    connections: Mapping[str, str] = field(default_factory=dict)
    variables: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    try_number: int = 1
    """The attempt: ``ti.try_number`` and ``try_number`` in the context."""


DEFAULT_ALLOWED_MODULES = (
    "airflow.providers.*",
    "airflow.sensors.*",
    "airflow.operators.*",
    "airflow.hooks.*",
    "airflow.triggers.*",
)


@dataclass(frozen=True)
class EngineConfig:
    allowed_modules: tuple[str, ...] = DEFAULT_ALLOWED_MODULES
    max_workers: int = 8
    """Threads for synchronous Airflow code; while all are stuck in long calls the pool adds more (up to 4x)."""
    signing_key: bytes | None = None
    create_wait_seconds: float = 2.0
    log_tail_lines: int = 200
    finished_ttl_seconds: float = 3600.0
    """Finished tasks are dropped from memory this long after they ended (their metadata keeps the outcome)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> EngineConfig:
        """Read AIRFLOWTASK_ALLOWED_MODULES (comma separated), AIRFLOWTASK_SIGNING_KEY, AIRFLOWTASK_MAX_WORKERS."""
        kwargs: dict[str, Any] = {"allowed_modules": allowed_modules_from_env(environ)}
        if key := environ.get("AIRFLOWTASK_SIGNING_KEY"):
            kwargs["signing_key"] = key.encode()
        if workers := environ.get("AIRFLOWTASK_MAX_WORKERS"):
            kwargs["max_workers"] = int(workers)
        return cls(**kwargs)


def allowed_modules_from_env(environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """AIRFLOWTASK_ALLOWED_MODULES (comma separated module patterns) when set, else DEFAULT_ALLOWED_MODULES."""
    if not (modules := environ.get("AIRFLOWTASK_ALLOWED_MODULES")):
        return DEFAULT_ALLOWED_MODULES
    return tuple(m.strip() for m in modules.split(",") if m.strip())
