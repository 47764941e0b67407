"""A tiny flytekit connector for task type ``dummy``: proves the gRPC harness without Airflow.

Served with ``pyflyte serve connector --modules dummy_connector``. The template's custom fields:
``seconds`` (how long the job "runs", default 0) and ``fail`` (end FAILED instead of SUCCEEDED).
The job id is derived from the task execution id, so a test can check that the metadata arrived.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from flyteidl.admin.agent_pb2 import GetTaskLogsResponse, GetTaskLogsResponseBody
from flyteidl.core import identifier_pb2, tasks_pb2
from flyteidl.core.execution_pb2 import TaskExecution, TaskLog
from flytekit.extend.backend import base_connector as bc
from flytekit.models.literals import LiteralMap
from flytekit.models.task import TaskExecutionMetadata, TaskTemplate
from google.protobuf import struct_pb2

TASK_TYPE = "dummy"


@dataclass
class DummyMetadata(bc.ResourceMeta):
    job_id: str
    finish_at: float
    fail: bool = False


class DummyConnector(bc.AsyncConnectorBase):
    name = "Dummy Connector"

    def __init__(self) -> None:
        super().__init__(task_type_name=TASK_TYPE, metadata_type=DummyMetadata)

    def create(
        self,
        task_template: TaskTemplate,
        output_prefix: str,
        inputs: LiteralMap | None = None,
        task_execution_metadata: TaskExecutionMetadata | None = None,
        **kwargs: object,
    ) -> DummyMetadata:
        custom = task_template.custom or {}
        job_id = "no-metadata"
        if task_execution_metadata is not None:
            tid = task_execution_metadata.task_execution_id
            node = tid.node_execution_id
            job_id = f"{node.execution_id.name}-{node.node_id}-{tid.retry_attempt}"
        finish_at = time.time() + float(custom.get("seconds", 0))
        return DummyMetadata(job_id=job_id, finish_at=finish_at, fail=bool(custom.get("fail")))

    def get(self, resource_meta: DummyMetadata, **kwargs: object) -> bc.Resource:
        links = [TaskLog(uri=f"http://127.0.0.1/jobs/{resource_meta.job_id}", name="dummy job")]
        if time.time() < resource_meta.finish_at:
            return bc.Resource(phase=TaskExecution.RUNNING, message=f"job {resource_meta.job_id} running")
        phase = TaskExecution.FAILED if resource_meta.fail else TaskExecution.SUCCEEDED
        return bc.Resource(phase=phase, message=f"job {resource_meta.job_id} done", log_links=links)

    def delete(self, resource_meta: DummyMetadata, **kwargs: object) -> None:
        return None

    def get_logs(self, resource_meta: DummyMetadata, **kwargs: object) -> GetTaskLogsResponse:
        return GetTaskLogsResponse(body=GetTaskLogsResponseBody(results=[f"log of {resource_meta.job_id}"]))


bc.ConnectorRegistry.register(DummyConnector())


def dummy_template(
    name: str = "dummy_task", seconds: float = 0, fail: bool = False
) -> tasks_pb2.TaskTemplate:
    """A TaskTemplate for this connector, as flytekit would serialize one."""
    custom = struct_pb2.Struct()
    custom.update({"seconds": seconds, "fail": fail})
    return tasks_pb2.TaskTemplate(
        id=identifier_pb2.Identifier(
            resource_type=identifier_pb2.TASK,
            project="flytesnacks",
            domain="development",
            name=name,
            version="v1",
        ),
        type=TASK_TYPE,
        metadata=tasks_pb2.TaskMetadata(
            runtime=tasks_pb2.RuntimeMetadata(type=tasks_pb2.RuntimeMetadata.FLYTE_SDK)
        ),
        custom=custom,
    )
