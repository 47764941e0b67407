"""The Flyte connector: a drop-in for flytekitplugins-airflow's, running tasks in this process's Engine.

Serve it with ``pyflyte serve connector --modules airflowtask.connector_core.flyte``. It registers for
task type ``airflow`` version 0 (replacing any other connector for that type) and reads the seed's
``task_config_pkl`` (jsonpickle, parsed without unpickling) or an ``{"operator": {...}}`` custom.
The engine's settings come from the environment (:meth:`EngineConfig.from_env`); connections and
variables from ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflowtask.connector_core.encoding import AirflowMetadata
from airflowtask.connector_core.engine import Engine, random_key
from airflowtask.connector_core.links import log_links
from airflowtask.connector_core.model import EngineConfig, Phase, Reason, RunInfo, TaskState
from airflowtask.connector_core.spec import AirflowObj, SpecError, from_flyte_custom
from flyteidl.admin.agent_pb2 import GetTaskLogsResponse, GetTaskLogsResponseBody, GetTaskMetricsResponse
from flyteidl.admin.agent_pb2 import Resource as ResourceMessage
from flyteidl.core.execution_pb2 import TaskExecution, TaskLog
from flyteidl.core.metrics_pb2 import ExecutionMetricResult
from flytekit.extend.backend.base_connector import AsyncConnectorBase, ConnectorRegistry, Resource
from flytekit.models.literals import LiteralMap
from flytekit.models.task import TaskTemplate
from google.protobuf.struct_pb2 import Struct

_PHASES = {
    Phase.PENDING: TaskExecution.QUEUED,
    Phase.RUNNING: TaskExecution.RUNNING,
    Phase.SUCCEEDED: TaskExecution.SUCCEEDED,
    Phase.FAILED: TaskExecution.FAILED,
}


class AirflowConnector(AsyncConnectorBase):
    """Runs Airflow operators, sensors, hooks and triggers for Flyte tasks of type ``airflow``."""

    name = "Airflow Connector"

    def __init__(self, engine: Engine | None = None) -> None:
        super().__init__(task_type_name="airflow", task_type_version=0, metadata_type=AirflowMetadata)
        self.engine = engine or Engine(EngineConfig.from_env())
        self._resources = _Resources()

    async def create(
        self, task_template: TaskTemplate, inputs: LiteralMap | None = None, **kwargs: Any
    ) -> AirflowMetadata:
        await self.engine.pacer.turn()
        run = RunInfo(run_id=_run_id(kwargs.get("task_execution_metadata")), logical_date=datetime.now(UTC))
        task_id = task_template.id.name or "airflow-task"
        try:
            obj = from_flyte_custom(task_template.custom or {})
        except SpecError as exc:
            return _failed_metadata(task_id, run, str(exc))
        meta, _ = await self.engine.create(obj, task_id=task_id, run=run)
        return meta

    async def get(self, resource_meta: AirflowMetadata, **kwargs: Any) -> Resource:
        return self._resources.of(await self.engine.get(resource_meta))

    async def delete(self, resource_meta: AirflowMetadata, **kwargs: Any) -> None:
        await self.engine.delete(resource_meta)

    async def get_logs(self, resource_meta: AirflowMetadata, **kwargs: Any) -> GetTaskLogsResponse:
        return GetTaskLogsResponse(body=GetTaskLogsResponseBody(results=self.engine.logs(resource_meta)))

    async def get_metrics(self, resource_meta: AirflowMetadata, **kwargs: Any) -> GetTaskMetricsResponse:
        results = []
        for name, value in sorted(self.engine.metrics(resource_meta).items()):
            data = Struct()
            data.update({"value": value})
            results.append(ExecutionMetricResult(metric=name, data=data))
        return GetTaskMetricsResponse(results=results)


def get_log_links(airflow_operator: Any, airflow_trigger: Any = None) -> list[TaskLog]:
    """Console links for an operator (and its trigger), as Flyte TaskLogs."""
    trigger_kwargs = airflow_trigger.serialize()[1] if airflow_trigger is not None else None
    return [TaskLog(name=link.name, uri=link.uri) for link in log_links(airflow_operator, trigger_kwargs)]


@dataclass
class _StateResource(Resource):
    """A Resource whose protobuf is made once and then copied: Flyte asks for one state many times.

    It has no outputs, and its custom_info holds JSON values only (the result went through ``jsonable``), which
    ``Struct.update`` writes as flytekit's JSON round trip does, in a seventh of the time.
    """

    _message: ResourceMessage | None = field(default=None, init=False, repr=False, compare=False)

    async def to_flyte_idl(self) -> ResourceMessage:
        if self._message is None:
            custom_info = Struct()
            custom_info.update(self.custom_info or {})
            self._message = ResourceMessage(
                phase=self.phase, message=self.message, log_links=self.log_links, custom_info=custom_info
            )
        message = ResourceMessage()
        message.CopyFrom(self._message)
        return message


class _Resources:
    """The Resource of each TaskState get() answered with, made once and kept as long as that state lives."""

    def __init__(self) -> None:
        self._made: dict[int, _StateResource] = {}

    def of(self, state: TaskState) -> Resource:
        key = id(state)
        if (made := self._made.get(key)) is None:
            made = self._made[key] = _resource(state)
            weakref.finalize(state, self._made.pop, key, None)
        return made


def _resource(state: TaskState) -> _StateResource:
    return _StateResource(
        phase=_PHASES[Phase(state.phase)],
        message=state.message,
        log_links=[TaskLog(name=link.name, uri=link.uri) for link in state.log_links],
        custom_info={
            "reason": state.reason,
            "result": state.result,
            "job_id": state.job_id,
            "retryable": state.retryable,
        },
    )


def _run_id(task_execution_metadata: Any) -> str:
    """A run id from Flyte's task execution id (execution name, node, attempt), or a random one."""
    try:
        task_execution = task_execution_metadata.task_execution_id
        node = task_execution.node_execution_id
        return f"{node.execution_id.name}-{node.node_id}-{task_execution.retry_attempt}"
    except AttributeError:
        return f"flyte-{random_key()[:12]}"


def _failed_metadata(task_id: str, run: RunInfo, message: str) -> AirflowMetadata:
    """Metadata of a task whose description could not be read: get() reports it Failed."""
    return AirflowMetadata(
        airflow_operator=AirflowObj(module="", name=""),
        task_key=random_key(),
        task_id=task_id,
        run_id=run.run_id,
        logical_date=run.logical_date,
        outcome={
            "phase": Phase.FAILED.value,
            "reason": Reason.INVALID_PARAMETERS.value,
            "message": message,
            "result": None,
            "retryable": False,
        },
    )


ConnectorRegistry.register(AirflowConnector(), override=True)
