"""The Flyte connector end to end: flytekit's real `pyflyte serve connector --modules airflowtask.flyte.connector`,
called over gRPC as FlytePropeller calls it, creating AirflowTasks that the real operator runs.

The connector runs as shipped in manifests/flyte-connector/ (its Deployment, ServiceAccount and RBAC:
airflowtasks only), reached through its Service; connections come from one Secret through
AIRFLOWTASK_FLYTE_CONNECTIONS. With ``AIRFLOWTASK_TEST_OPERATOR=process`` it runs as a local process instead,
authenticated as the same ServiceAccount.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import kubernetes
import pytest
import yaml
from airflowtask.controlplane import Kubectl as Cluster
from airflowtask.flyte import naming
from airflowtask.flyte.connector import AirflowTaskConnector, AirflowTaskMetadata, ConnectorConfig
from airflowtask.install import MANIFESTS
from flyte_grpc import (
    ConnectorClient,
    ConnectorServer,
    execution_metadata,
    fixture_index,
    load_template,
    phase_name,
)
from flyte_services import FixtureServices
from flyteidl.admin import agent_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flytekit.models.task import TaskExecutionMetadata, TaskTemplate
from kubetools import AFT, Kubectl, airflow_task
from operator_deployment import OperatorDeployment

REPO = Path(__file__).resolve().parents[2]
FIXTURES = {entry["name"]: entry for entry in fixture_index()["fixtures"]}
SECRET = "airflow-connections"
CONNECTIONS = ",".join(f"{conn_id}={SECRET}/{conn_id}" for conn_id in ("local_http", "local_sqlite", "local_jobs"))


@pytest.fixture(scope="module")
def services(operator_process: Any) -> Iterator[FixtureServices]:
    in_pods = isinstance(operator_process, OperatorDeployment)  # task Pods read the test image's database
    with (FixtureServices("/opt/airflowtask-test/ready.db") if in_pods else FixtureServices()) as ready:
        yield ready


@pytest.fixture(scope="module")
def flyte_namespace(kubectl: Kubectl, crd: None, services: FixtureServices) -> Iterator[str]:
    """The namespace the connector creates AirflowTasks in, with the connections' Secret."""
    name = f"flyte-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    kubectl.apply(services.secret(name, SECRET))
    access = (REPO / "examples" / "rbac" / "flyte-connector-connections.yaml").read_text()
    kubectl.apply(*yaml.safe_load_all(access.replace("flytesnacks-development", name)))  # admission asks for it
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def connector_kubeconfig(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig for the connector's ServiceAccount, bound to manifests/flyte-connector/rbac.yaml."""
    cluster.kubectl("apply", "-f", str(REPO / "manifests" / "namespace.yaml"))
    cluster.kubectl("apply", "-f", str(REPO / "manifests" / "flyte-connector" / "rbac.yaml"))
    token = cluster.mint_token("airflowtask-system", "airflowtask-flyte-connector", duration="6h")
    return cluster.kubeconfig_for_token(token, tmp_path_factory.mktemp("connector") / "connector.kubeconfig")


class ConnectorDeployment(OperatorDeployment):
    """manifests/flyte-connector/ in the cluster, reached through its Service."""

    @property
    def address(self) -> str:
        ip = self.kubectl("get", "service", self.name, "-n", "airflowtask-system", "-o",
                          "jsonpath={.spec.clusterIP}").stdout.strip()
        return f"{ip}:8000"

    def start(self, timeout: float = 180.0) -> list[agent_pb2.Agent]:
        """Scale to its Ready Pods, then wait until its Service answers ListAgents."""
        super().start(timeout)
        deadline = time.monotonic() + 60
        with ConnectorClient(self.address, timeout=2.0) as client:
            while True:
                try:
                    return client.list_connectors()
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)


@pytest.fixture(scope="module")
def server(
    cluster: Cluster, operator_process: Any, connector_kubeconfig: Path, flyte_namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ConnectorServer | ConnectorDeployment]:
    env = {"AIRFLOWTASK_FLYTE_NAMESPACE": flyte_namespace, "AIRFLOWTASK_FLYTE_CONNECTIONS": CONNECTIONS}
    if isinstance(operator_process, OperatorDeployment):
        connector = ConnectorDeployment(cluster, operator_process.image, tmp_path_factory.mktemp("connector"), env,
                                        base=MANIFESTS / "flyte-connector", name="airflowtask-flyte-connector",
                                        component="flyte-connector", lease=None)
        connector.deploy()
        yield connector
        connector.stop()
        return
    with ConnectorServer(["airflowtask.flyte.connector"], env=env | {"KUBECONFIG": str(connector_kubeconfig)}) as srv:
        yield srv


@pytest.fixture
def client(
    server: ConnectorServer | ConnectorDeployment, operator: Any, services: FixtureServices
) -> Iterator[ConnectorClient]:
    if not server.running:
        server.start()
    if isinstance(operator, OperatorDeployment):  # the fixtures' files, where the operator runs their triggers
        operator.exec_python(services.files_script(), container="triggerer")
    with ConnectorClient(server.address) as cli:
        yield cli
    print(server.logs()[-10000:])


def new_execution(template: str, **kwargs: Any) -> agent_pb2.TaskExecutionMetadata:
    """Metadata of a fresh workflow execution (Flyte execution names are short random strings)."""
    return execution_metadata(template, execution=f"f{uuid.uuid4().hex[:19]}", **kwargs)


def object_of(resource_meta: bytes) -> tuple[str, str]:
    meta = json.loads(resource_meta)
    return meta["namespace"], meta["name"]


def deferred(obj: dict[str, Any]) -> bool:
    status = obj.get("status", {})
    return status.get("reason") == "Deferred" and bool(status.get("jobId"))


def test_only_this_connector_serves_airflow_tasks(client: ConnectorClient) -> None:
    serving = [agent.name for agent in client.list_connectors() if "airflow" in agent.supported_task_types]
    assert serving == ["AirflowTask Connector"]


@pytest.mark.parametrize("name", list(FIXTURES))
def test_fixture_reaches_its_expected_phase(client: ConnectorClient, kubectl: Kubectl, name: str) -> None:
    resource_meta = client.create(name, task_execution_metadata=new_execution(name))
    final = client.wait(resource_meta, timeout=120, poll_interval=1)
    assert phase_name(final) == FIXTURES[name]["expected_phase"], final.message
    namespace, object_name = object_of(resource_meta)
    obj = kubectl.get_json(AFT, object_name, namespace)
    assert obj["metadata"]["labels"]["airflowtask.dev/flyte-task"] == name
    assert final.message == obj["status"]["message"]
    assert final.custom_info["reason"] == obj["status"]["reason"]
    if name == "bash_ok":
        assert final.custom_info["result"].startswith("hello 20")  # {{ ds }} rendered
    if name == "bash_fail":
        assert "exit code 3" in final.message
    if name == "python_operator":
        assert final.custom_info["result"] == "hello flyte"


def test_delete_task_cancels_the_job_and_removes_the_object(
    client: ConnectorClient, kubectl: Kubectl, services: FixtureServices
) -> None:
    resource_meta = client.create("local_job", task_execution_metadata=new_execution("local_job"))
    namespace, name = object_of(resource_meta)
    job_id = kubectl.wait_task(name, namespace, deferred)["status"]["jobId"]
    assert phase_name(client.get(resource_meta)) == "RUNNING"
    assert services.jobs.jobs[job_id].state == "running"
    client.delete(resource_meta)
    kubectl.wait_gone(AFT, name, namespace)
    assert services.jobs.jobs[job_id].state == "cancelled"
    gone = client.get(resource_meta)
    assert (phase_name(gone), gone.message) == ("FAILED", f"AirflowTask {namespace}/{name} no longer exists")
    client.delete(resource_meta)  # deleting again is fine


def test_create_task_sent_twice_makes_one_object(client: ConnectorClient, kubectl: Kubectl) -> None:
    metadata = new_execution("bash_ok")
    execution = metadata.task_execution_id.node_execution_id.execution_id.name
    first = client.create("bash_ok", task_execution_metadata=metadata)
    assert client.create("bash_ok", task_execution_metadata=metadata) == first
    namespace, _ = object_of(first)
    selector = f"airflowtask.dev/flyte-execution={execution}"
    listed = json.loads(kubectl("get", AFT, "-n", namespace, "-l", selector, "-o", "json").stdout)["items"]
    assert len(listed) == 1
    retried = client.create("bash_ok", task_execution_metadata=new_execution("bash_ok", retry_attempt=1))
    assert retried != first


def test_restarting_the_connector_between_create_and_get_changes_nothing(
    client: ConnectorClient, server: ConnectorServer, kubectl: Kubectl, services: FixtureServices
) -> None:
    jobs_before = len(services.jobs.jobs)
    resource_meta = client.create("local_job", task_execution_metadata=new_execution("local_job"))
    namespace, name = object_of(resource_meta)
    job_id = kubectl.wait_task(name, namespace, deferred)["status"]["jobId"]
    server.stop()
    server.start()
    assert phase_name(client.get(resource_meta)) == "RUNNING"
    assert phase_name(client.wait(resource_meta, timeout=90, poll_interval=1)) == "SUCCEEDED"
    assert services.jobs.jobs[job_id].state == "succeeded"
    assert len(services.jobs.jobs) == jobs_before + 1


def test_a_bad_template_gets_a_clear_grpc_error(client: ConnectorClient, kubectl: Kubectl) -> None:
    template = load_template("bash_ok")
    template.custom.Clear()
    template.custom.update({"task_config_pkl": json.dumps({"py/object": "os.system", "command": "true"})})
    with pytest.raises(grpc.RpcError) as caught:
        client.create(template, task_execution_metadata=new_execution("bash_ok"))
    details = caught.value.details()
    assert "invalid Airflow task config in task 'bash_ok': task_config_pkl: expected a py/object " \
           "flytekitplugins.airflow.task.AirflowObj, found 'os.system'" in details
    assert "File \"" not in details and "Traceback" not in details


def test_a_name_taken_by_another_object_is_refused(
    client: ConnectorClient, kubectl: Kubectl, flyte_namespace: str
) -> None:
    metadata = new_execution("bash_ok")
    task = naming.TaskExecutionId.from_metadata(TaskExecutionMetadata.from_flyte_idl(metadata))
    taken = naming.object_name(task)
    kubectl.apply(airflow_task(taken, flyte_namespace, "airflow.providers.standard.operators.empty", "EmptyOperator"))
    with pytest.raises(grpc.RpcError) as caught:
        client.create("bash_ok", task_execution_metadata=metadata)
    assert f"AirflowTask {flyte_namespace}/{taken} already exists and was not made for task execution" in \
        caught.value.details()


def test_another_task_for_the_same_attempt_is_refused(client: ConnectorClient, flyte_namespace: str) -> None:
    metadata = new_execution("bash_ok")
    client.create("bash_ok", task_execution_metadata=metadata)
    metadata.task_execution_id.task_id.name = "bash_fail"
    with pytest.raises(grpc.RpcError) as caught:
        client.create("bash_fail", task_execution_metadata=metadata)
    assert "already exists and was not made for task execution" in caught.value.details()


def test_a_class_outside_the_allowlist_fails_in_the_operator(client: ConnectorClient) -> None:
    template = load_template("bash_ok")
    template.custom.Clear()
    template.custom.update({"operator": {"module": "subprocess", "name": "Popen", "parameters": {"args": ["true"]}}})
    final = client.wait(client.create(template, task_execution_metadata=new_execution("bash_ok")), timeout=60)
    assert phase_name(final) == "FAILED"
    assert final.custom_info["reason"] == "NotAllowed"
    assert "subprocess" in final.message


def test_get_logs_in_process(connector_kubeconfig: Path, flyte_namespace: str, operator: Any) -> None:
    """GetTaskLogs is dropped on the wire by flytekit 1.16 (see tests/integration/test_flyte_harness.py)."""
    api_client = kubernetes.config.new_client_from_config(str(connector_kubeconfig))
    connector = AirflowTaskConnector(ConnectorConfig(namespace=flyte_namespace), api_client=api_client)
    template = TaskTemplate.from_flyte_idl(load_template("bash_ok"))
    metadata = TaskExecutionMetadata.from_flyte_idl(new_execution("bash_ok"))

    async def scenario() -> tuple[int, list[str]]:
        meta = await connector.create(template, task_execution_metadata=metadata)
        meta = AirflowTaskMetadata.decode(meta.encode())
        deadline = time.monotonic() + 60
        while (resource := await connector.get(meta)).phase not in (TaskExecution.SUCCEEDED, TaskExecution.FAILED):
            assert time.monotonic() < deadline, resource.message
            await asyncio.sleep(0.5)
        return resource.phase, list((await connector.get_logs(meta)).body.results)

    phase, logs = asyncio.run(scenario())
    assert phase == TaskExecution.SUCCEEDED
    assert any("hello 20" in line for line in logs), logs
