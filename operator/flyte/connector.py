"""The Flyte connector for task type ``airflow``, backed by AirflowTask objects.

Serve it with ``pyflyte serve connector --modules airflowtask.flyte.connector``: it registers for
``airflow`` version 0, replacing any other connector for that type. It reads the task config that
flytekitplugins-airflow writes (``task_config_pkl``, parsed without unpickling) or an ``{"operator": {...}}``
custom, and runs nothing itself: the operator does.

- **CreateTask** creates an AirflowTask named after the Flyte task execution (see
  :mod:`airflowtask.flyte.naming`) in ``AIRFLOWTASK_FLYTE_NAMESPACE``, else in the execution's namespace.
  A retried CreateTask finds the object the first one made and returns it (the object must carry the same
  execution's annotation, else the call fails). The template's timeout becomes ``activeDeadlineSeconds``.
- **GetTask** reads the object: its status phase, message, log links; reason, job id and result in
  ``custom_info``. A deleted object is a FAILED resource, "AirflowTask ns/name no longer exists".
- **DeleteTask** deletes the object; the operator's finalizer cancels the external job.
- **GetTaskLogs** returns ``status.logs`` (flytekit 1.16's server drops the stream on the wire, though).

Configuration (environment):

- ``AIRFLOWTASK_FLYTE_NAMESPACE``: the namespace of every AirflowTask; unset: the execution's namespace.
- ``AIRFLOWTASK_FLYTE_CONNECTIONS``: ``conn_id=secret[/key],...``; a task gets the connections it names in
  its parameters (``conn_id`` / ``*_conn_id``) from these Secrets of its namespace; the rest are left to the
  operator (its ``AIRFLOW_CONN_*``, built-in ``fs_default``). See :mod:`airflowtask.flyte.connections`.
- ``AIRFLOWTASK_FLYTE_TTL_SECONDS_AFTER_FINISHED``: how long a finished object is kept (default 86400).

Kubernetes access: the in-cluster service account, else ``KUBECONFIG``; it needs get, create and delete
on ``airflowtasks`` only. Requests it cannot serve (an unreadable task config, a name taken by another
execution, an API error) fail with a gRPC error whose details state the problem, without a stack trace.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import kubernetes
from airflowtask.client import AirflowTaskClient
from airflowtask.connector_core.spec import SpecError, from_flyte_custom
from airflowtask.flyte import naming, phases
from airflowtask.flyte.connections import ENV as CONNECTIONS_ENV
from airflowtask.flyte.connections import connections_for, parse_mapping
from airflowtask.kube import load_client_config
from airflowtask.manifest import ManifestError, build_task
from flyteidl.admin.agent_pb2 import GetTaskLogsResponse, GetTaskLogsResponseBody
from flytekit.exceptions.user import FlyteUserRuntimeException
from flytekit.extend.backend.base_connector import AsyncConnectorBase, ConnectorRegistry, Resource, ResourceMeta
from flytekit.models.literals import LiteralMap
from flytekit.models.task import TaskExecutionMetadata, TaskTemplate
from kubernetes.client.exceptions import ApiException

T = TypeVar("T")
NAMESPACE_ENV = "AIRFLOWTASK_FLYTE_NAMESPACE"
TTL_ENV = "AIRFLOWTASK_FLYTE_TTL_SECONDS_AFTER_FINISHED"


class AirflowTaskConnectorError(Exception):
    """A request the connector cannot serve."""


@dataclass
class AirflowTaskMetadata(ResourceMeta):
    """Which AirflowTask a Flyte task execution is: Propeller hands it back on GetTask and DeleteTask."""

    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class ConnectorConfig:
    namespace: str | None = None
    connections: Mapping[str, str] = field(default_factory=dict)
    ttl_seconds_after_finished: int | None = 86400

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ConnectorConfig:
        ttl = environ.get(TTL_ENV, "").strip()
        return cls(
            namespace=environ.get(NAMESPACE_ENV, "").strip() or None,
            connections=parse_mapping(environ.get(CONNECTIONS_ENV, "")),
            ttl_seconds_after_finished=int(ttl) if ttl else cls.ttl_seconds_after_finished,
        )


class AirflowTaskConnector(AsyncConnectorBase):
    """Turns Flyte ``airflow`` tasks into AirflowTask objects and reports their status."""

    name = "AirflowTask Connector"

    def __init__(
        self, config: ConnectorConfig | None = None, api_client: kubernetes.client.ApiClient | None = None
    ) -> None:
        super().__init__(task_type_name="airflow", task_type_version=0, metadata_type=AirflowTaskMetadata)
        self.config = config or ConnectorConfig.from_env()
        self._api_client = api_client

    async def create(
        self,
        task_template: TaskTemplate,
        output_prefix: str | None = None,
        inputs: LiteralMap | None = None,
        task_execution_metadata: TaskExecutionMetadata | None = None,
        **kwargs: Any,
    ) -> AirflowTaskMetadata:
        task, manifest = self.manifest(task_template, task_execution_metadata)
        meta = manifest["metadata"]
        obj = await self._call(meta["namespace"], "create", lambda client: _create_or_adopt(client, manifest, task))
        return AirflowTaskMetadata(namespace=meta["namespace"], name=meta["name"], uid=obj["metadata"]["uid"])

    async def get(self, resource_meta: AirflowTaskMetadata, **kwargs: Any) -> Resource:
        obj = await self._read(resource_meta)
        return phases.resource(obj, resource_meta.namespace, resource_meta.name, resource_meta.uid)

    async def delete(self, resource_meta: AirflowTaskMetadata, **kwargs: Any) -> None:
        await self._call(resource_meta.namespace, "delete",
                         lambda client: client.cancel(resource_meta.name, uid=resource_meta.uid))

    async def get_logs(self, resource_meta: AirflowTaskMetadata, **kwargs: Any) -> GetTaskLogsResponse:
        obj = await self._read(resource_meta)
        if obj is not None and obj["metadata"].get("uid") != resource_meta.uid:
            obj = None
        return GetTaskLogsResponse(body=GetTaskLogsResponseBody(results=phases.log_lines(obj)))

    def manifest(
        self, task_template: TaskTemplate, metadata: TaskExecutionMetadata | None
    ) -> tuple[naming.TaskExecutionId, dict[str, Any]]:
        """The task execution's id and the AirflowTask manifest for it."""
        task_name = task_template.id.name if task_template.id else ""
        if metadata is None:
            _refuse("CreateTask carries no task_execution_metadata; the AirflowTask's name is derived from it")
        task = naming.TaskExecutionId.from_metadata(metadata)
        namespace = self.config.namespace or metadata.namespace
        if not namespace:
            _refuse(f"no namespace for the AirflowTask: set {NAMESPACE_ENV} or run executions in a namespace")
        try:
            obj = from_flyte_custom(task_template.custom or {})
            manifest = build_task(
                obj,
                name=naming.object_name(task),
                namespace=namespace,
                labels=naming.labels(task),
                annotations=naming.annotations(task),
                connections=connections_for(obj.parameters, self.config.connections),
                active_deadline_seconds=_timeout_seconds(task_template),
                ttl_seconds_after_finished=self.config.ttl_seconds_after_finished,
            )
        except (SpecError, ManifestError) as exc:
            _refuse(f"invalid Airflow task config in task {task_name!r}: {exc}")
        return task, manifest

    async def _read(self, meta: AirflowTaskMetadata) -> dict[str, Any] | None:
        return await self._call(meta.namespace, "read", lambda client: client.get(meta.name))

    async def _call(self, namespace: str, action: str, fn: Callable[[AirflowTaskClient], T]) -> T:
        """Run a blocking client call in a thread; API errors become a clear refusal."""
        if self._api_client is None:
            self._api_client = load_client_config()
        client = AirflowTaskClient(namespace, self._api_client)
        try:
            return await asyncio.to_thread(fn, client)
        except ApiException as error:
            _refuse(f"cannot {action} AirflowTask in namespace {namespace}: {_api_problem(error)}")


def _create_or_adopt(client: AirflowTaskClient, manifest: dict[str, Any], task: naming.TaskExecutionId) -> dict:
    """Create the object, or return the one an earlier CreateTask of the same execution made."""
    name = manifest["metadata"]["name"]
    for _ in range(3):
        try:
            return client.create(manifest)
        except ApiException as error:
            if error.status != 409:
                raise
        existing = client.get(name)
        if existing is None:
            continue  # deleted between create and get: create again
        if not naming.made_for(existing, task):
            _refuse(f"AirflowTask {client.namespace}/{name} already exists and was not made for task execution "
                    f"{task.key()}")
        return existing
    _refuse(f"AirflowTask {client.namespace}/{name} keeps being deleted while it is created")


def _timeout_seconds(task_template: TaskTemplate) -> int | None:
    timeout = task_template.metadata.timeout if task_template.metadata else None
    seconds = timeout.total_seconds() if timeout else 0
    return math.ceil(seconds) if seconds > 0 else None


def _api_problem(error: ApiException) -> str:
    try:
        message = json.loads(error.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return f"{error.status} {error.reason}: {message}" if message else f"{error.status} {error.reason}"


def _refuse(message: str) -> NoReturn:
    """Raise an error that flytekit's servicer reports as the message alone.

    flytekit formats a user exception's cause with its stack; this cause was never raised, so it has none.
    """
    error = AirflowTaskConnectorError(message)
    raise FlyteUserRuntimeException(error) from error


ConnectorRegistry.register(AirflowTaskConnector(), override=True)
