"""Where a task's work runs, behind one interface the reconciler drives.

- :class:`InProcessExecutor`: the connector engine in the operator's own process (Airflow code in its worker
  pool, triggers in its event loop). Only for a trusted single user: the task's code runs with the operator's
  identity. Chosen with ``AIRFLOWTASK_EXECUTION=in-process``.
- ``airflowtask.pod_executor.PodExecutor`` (the default): every piece of Airflow code in a Pod of the task's
  namespace under its ServiceAccount; the operator only runs triggers.
"""

from __future__ import annotations

from typing import Any, Protocol

from airflowtask.connector_core import AirflowMetadata, Engine, RunInfo, TaskState
from airflowtask.resource import AirflowTaskResource
from airflowtask.status import log_tail


class Meta(Protocol):
    """What an executor keeps in ``status.resourceMeta`` to find its work again after a restart."""

    def encode(self) -> bytes: ...


class Executor(Protocol):
    """The operations the reconciler calls; every one returns quickly (the work itself runs elsewhere)."""

    def decode(self, text: str, task: AirflowTaskResource) -> Meta:
        """Read ``task``'s ``status.resourceMeta`` (ValueError when it cannot be read or is not to be trusted)."""

    async def create(self, task: AirflowTaskResource, attempt: int, run: RunInfo) -> tuple[Meta, TaskState]:
        """Start an attempt; the state right after starting it."""

    async def get(self, task: AirflowTaskResource, meta: Meta, run: RunInfo) -> TaskState:
        """How the attempt stands now (moving it on: a deferral's trigger, a callback)."""

    async def wait(self, meta: Meta, timeout: float) -> None:
        """Return when there may be news, at most after ``timeout`` seconds."""

    async def delete(self, task: AirflowTaskResource, meta: Meta, run: RunInfo | None) -> None:
        """Cancel the attempt's work (on_kill)."""

    async def orphan(self, task: AirflowTaskResource, meta: Meta) -> None:
        """deletionPolicy Orphan: leave the attempt's work running when the AirflowTask goes."""

    def status_fields(self, meta: Meta) -> dict[str, Any]:
        """Extra status fields: the log tail, the Pod's name."""

    def recorded(self, meta: Meta) -> None:
        """The status now holds what ``meta``'s steps reported: what was kept only so that a restarted operator
        could read it again may go."""

    def forget(self, meta: Meta) -> None:
        """Drop what is held in memory for a finished or deleted attempt."""

    @property
    def idempotent_create(self) -> bool:
        """True when create() for an attempt that was already started finds its work instead of starting it
        again (so an interrupted submission is simply repeated)."""

    @property
    def needs_connections(self) -> bool:
        """True when create() needs the connections' values in ``run`` (read from Secrets by the operator)."""

    async def close(self) -> None: ...


class InProcessExecutor:
    """The connector engine, run in this process."""

    needs_connections = True
    idempotent_create = False

    def __init__(self, engine: Engine, log_tail_lines: int) -> None:
        self.engine = engine
        self.log_tail_lines = log_tail_lines

    def decode(self, text: str, task: AirflowTaskResource) -> AirflowMetadata:
        return AirflowMetadata.decode(text.encode())

    async def create(self, task: AirflowTaskResource, attempt: int, run: RunInfo) -> tuple[Meta, TaskState]:
        return await self.engine.create(task.operator, task_id=task.task_id, run=run)

    async def get(self, task: AirflowTaskResource, meta: Meta, run: RunInfo) -> TaskState:
        return await self.engine.get(_engine_meta(meta), run=run)

    async def wait(self, meta: Meta, timeout: float) -> None:
        await self.engine.wait(_engine_meta(meta), timeout=timeout)

    async def delete(self, task: AirflowTaskResource, meta: Meta, run: RunInfo | None) -> None:
        await self.engine.delete(_engine_meta(meta), run=run)

    async def orphan(self, task: AirflowTaskResource, meta: Meta) -> None:
        self.forget(meta)

    def status_fields(self, meta: Meta) -> dict[str, Any]:
        return {"logs": log_tail(self.engine.logs(_engine_meta(meta)), self.log_tail_lines)}

    def recorded(self, meta: Meta) -> None:
        """(The engine keeps nothing for a restart: it has none.)"""

    def forget(self, meta: Meta) -> None:
        self.engine.forget(_engine_meta(meta))

    async def close(self) -> None:
        await self.engine.close()


def _engine_meta(meta: Meta) -> AirflowMetadata:
    assert isinstance(meta, AirflowMetadata)
    return meta
