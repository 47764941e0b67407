"""Flyte's side of the wire for tests: flytekit's real connector server and a FlytePropeller-like client.

``ConnectorServer`` runs ``pyflyte serve connector --port P --prometheus_port Q --modules M ...`` as a
subprocess in its own process group; ``ConnectorClient`` speaks flyteidl's ``AsyncAgentService`` /
``AgentMetadataService`` gRPC (the "agent" names are still the wire names in flyteidl 1.16) as
FlytePropeller does. Fixture helpers load the TaskTemplates of tests/fixtures/flyte (see generate.py there).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import grpc
from flyteidl.admin import agent_pb2
from flyteidl.core import execution_pb2, identifier_pb2, literals_pb2, tasks_pb2
from flyteidl.service import agent_pb2_grpc
from google.protobuf import json_format
from process_group import stop_group

SUPPORT_DIR = Path(__file__).resolve().parent
FIXTURES_DIR = SUPPORT_DIR.parent / "fixtures" / "flyte"
_Phase = execution_pb2.TaskExecution
TERMINAL_PHASES = frozenset({_Phase.SUCCEEDED, _Phase.FAILED, _Phase.ABORTED})


class _HasIdl(Protocol):
    def to_flyte_idl(self) -> tasks_pb2.TaskTemplate: ...


TemplateLike = str | Path | tasks_pb2.TaskTemplate | _HasIdl


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- fixtures


def fixture_index() -> dict[str, Any]:
    """tests/fixtures/flyte/index.json: versions, jsonpickle forms and one entry per fixture."""
    return json.loads((FIXTURES_DIR / "index.json").read_text())


def fixture(name: str) -> dict[str, Any]:
    """One fixture's index entry (operator, expected_phase, prepare, notes)."""
    for entry in fixture_index()["fixtures"]:
        if entry["name"] == name:
            return entry
    raise KeyError(f"no Flyte fixture named {name!r}")


def load_template(template: TemplateLike) -> tasks_pb2.TaskTemplate:
    """A TaskTemplate message from a fixture name, a JSON file path, a message or a flytekit model."""
    if isinstance(template, tasks_pb2.TaskTemplate):
        return template
    if isinstance(template, str | Path):
        path = Path(template)
        if path.suffix != ".json":
            path = FIXTURES_DIR / "templates" / f"{template}.json"
        return json_format.Parse(path.read_text(), tasks_pb2.TaskTemplate())
    return template.to_flyte_idl()


def phase_name(resource: agent_pb2.Resource) -> str:
    """'SUCCEEDED', 'RUNNING', ...: the spelling used by index.json's expected_phase."""
    return execution_pb2.TaskExecution.Phase.Name(resource.phase)


def execution_metadata(
    template: TemplateLike | None = None,
    *,
    execution: str = "aftexec1",
    node_id: str = "n0",
    retry_attempt: int = 0,
    project: str | None = None,
    domain: str | None = None,
    task_name: str | None = None,
    version: str | None = None,
    namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    environment_variables: Mapping[str, str] | None = None,
    service_account: str = "default",
    max_attempts: int = 1,
) -> agent_pb2.TaskExecutionMetadata:
    """TaskExecutionMetadata as FlytePropeller sends it; ids default to the template's id.

    The task execution id is project/domain/execution (workflow execution), node_id, retry_attempt and
    the task id: a connector that creates Kubernetes objects derives their names from it.
    """
    task_id = load_template(template).id if template is not None else identifier_pb2.Identifier()
    project = project or task_id.project or "flytesnacks"
    domain = domain or task_id.domain or "development"
    return agent_pb2.TaskExecutionMetadata(
        task_execution_id=identifier_pb2.TaskExecutionIdentifier(
            task_id=identifier_pb2.Identifier(
                resource_type=identifier_pb2.TASK,
                project=project,
                domain=domain,
                name=task_name or task_id.name or "task",
                version=version or task_id.version or "v1",
            ),
            node_execution_id=identifier_pb2.NodeExecutionIdentifier(
                node_id=node_id,
                execution_id=identifier_pb2.WorkflowExecutionIdentifier(
                    project=project, domain=domain, name=execution
                ),
            ),
            retry_attempt=retry_attempt,
        ),
        namespace=namespace or f"{project}-{domain}",
        labels=dict(labels or {}),
        annotations=dict(annotations or {}),
        environment_variables=dict(environment_variables or {}),
        k8s_service_account=service_account,
        max_attempts=max_attempts,
    )


# ---------------------------------------------------------------- server


class ConnectorServer:
    """flytekit's ``pyflyte serve connector`` as a subprocess on free ports; use as a context manager.

    ``env`` is laid over this process's environment; tests/support is put on PYTHONPATH and AIRFLOW_HOME
    defaults to a fresh temporary directory. Output goes to ``log_path`` (``logs()`` reads it). ``pyflyte``
    defaults to the one beside this interpreter (another venv's, e.g. the seed's, works too).
    """

    def __init__(
        self,
        modules: Iterable[str],
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        workers: int = 10,
        inherit_env: bool = True,
        pyflyte: str | Path | None = None,
    ) -> None:
        self.modules = list(modules)
        self.pyflyte = Path(pyflyte) if pyflyte else Path(sys.executable).parent / "pyflyte"
        self.port = free_port()
        self.prometheus_port = free_port()
        self.workers = workers
        self._tmp = tempfile.TemporaryDirectory(prefix="aft-connector-")
        self.log_path = log_path or Path(self._tmp.name) / "connector.log"
        base = dict(os.environ) if inherit_env else {"PATH": os.environ.get("PATH", "")}
        self.env = {**base, "AIRFLOW_HOME": str(Path(self._tmp.name) / "airflow"), "PYTHONUNBUFFERED": "1"}
        if inherit_env and "AIRFLOW_HOME" in os.environ:
            self.env["AIRFLOW_HOME"] = os.environ["AIRFLOW_HOME"]
        self.env.update(env or {})
        paths = (str(SUPPORT_DIR), self.env.get("PYTHONPATH"))
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [str(self.pyflyte), "serve", "connector", "--port", str(self.port)]
        cmd += ["--prometheus_port", str(self.prometheus_port), "--worker", str(self.workers)]
        for module in self.modules:
            cmd += ["--modules", module]
        return cmd

    def start(self, timeout: float = 90.0) -> list[agent_pb2.Agent]:
        """Start the server and wait until ListAgents answers; returns the registered connectors."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                env=self.env,
                cwd=self._tmp.name,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        with ConnectorClient(self.address, timeout=2.0) as client:
            while True:
                if self.process.poll() is not None:
                    code = self.process.returncode
                    raise RuntimeError(f"pyflyte exited with {code}:\n{self.logs()[-4000:]}")
                try:
                    return client.list_connectors()
                except grpc.RpcError as err:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise TimeoutError(f"not serving after {timeout}s:\n{self.logs()[-4000:]}") from err
                    time.sleep(0.3)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL after ``grace`` seconds; leaves no strays."""
        stop_group(self.process, grace)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> ConnectorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._tmp.cleanup()


# ---------------------------------------------------------------- client


class ConnectorClient:
    """Calls the connector service as FlytePropeller does (default RPC timeout 10 s, like Propeller)."""

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.channel = grpc.insecure_channel(address)
        self.tasks = agent_pb2_grpc.AsyncAgentServiceStub(self.channel)
        self.metadata = agent_pb2_grpc.AgentMetadataServiceStub(self.channel)
        self._categories: dict[bytes, agent_pb2.TaskCategory] = {}

    def list_connectors(self) -> list[agent_pb2.Agent]:
        return list(self.metadata.ListAgents(agent_pb2.ListAgentsRequest(), timeout=self.timeout).agents)

    def create(
        self,
        template: TemplateLike,
        *,
        output_prefix: str = "file:///tmp/airflowtask-fixtures/outputs",
        task_execution_metadata: agent_pb2.TaskExecutionMetadata | None = None,
        inputs: literals_pb2.LiteralMap | None = None,
    ) -> bytes:
        """CreateTask; returns resource_meta. Metadata defaults to ``execution_metadata(template)``."""
        template = load_template(template)
        request = agent_pb2.CreateTaskRequest(
            template=template,
            output_prefix=output_prefix,
            task_execution_metadata=task_execution_metadata or execution_metadata(template),
            inputs=inputs,
        )
        meta = self.tasks.CreateTask(request, timeout=self.timeout).resource_meta
        category = agent_pb2.TaskCategory(name=template.type, version=template.task_type_version)
        self._categories[meta] = category
        return meta

    def _category(self, resource_meta: bytes, task_type: str | None) -> agent_pb2.TaskCategory:
        if task_type is not None:
            return agent_pb2.TaskCategory(name=task_type, version=0)
        return self._categories.get(resource_meta, agent_pb2.TaskCategory(name="airflow", version=0))

    def get(self, resource_meta: bytes, task_type: str | None = None) -> agent_pb2.Resource:
        """GetTask: the Resource (phase, message, log_links, outputs, custom_info)."""
        category = self._category(resource_meta, task_type)
        request = agent_pb2.GetTaskRequest(
            task_type=category.name, task_category=category, resource_meta=resource_meta
        )
        return self.tasks.GetTask(request, timeout=self.timeout).resource

    def delete(self, resource_meta: bytes, task_type: str | None = None) -> None:
        category = self._category(resource_meta, task_type)
        request = agent_pb2.DeleteTaskRequest(
            task_type=category.name, task_category=category, resource_meta=resource_meta
        )
        self.tasks.DeleteTask(request, timeout=self.timeout)

    def get_logs(self, resource_meta: bytes, task_type: str | None = None, lines: int = 0) -> list[str]:
        """GetTaskLogs (server streaming): all ``body.results`` lines received."""
        category = self._category(resource_meta, task_type)
        request = agent_pb2.GetTaskLogsRequest(
            task_type=category.name, task_category=category, resource_meta=resource_meta, lines=lines
        )
        stream = self.tasks.GetTaskLogs(request, timeout=self.timeout)
        return [line for part in stream for line in part.body.results]

    def wait(
        self, resource_meta: bytes, timeout: float, poll_interval: float = 1.0, task_type: str | None = None
    ) -> agent_pb2.Resource:
        """Poll GetTask until the phase is terminal; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            resource = self.get(resource_meta, task_type)
            if resource.phase in TERMINAL_PHASES:
                return resource
            if time.monotonic() > deadline:
                raise TimeoutError(f"still {phase_name(resource)} after {timeout}s: {resource.message}")
            time.sleep(poll_interval)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> ConnectorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
