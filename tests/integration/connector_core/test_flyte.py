"""The Flyte connector: in process, and served by `pyflyte serve connector` over real gRPC.

(GetTaskLogs is checked in process only: flytekit 1.16's servicer drops it on the wire, see
tests/integration/test_flyte_harness.py.)
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator

import pendulum
import pytest
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflowtask.connector_core import AirflowMetadata, Engine
from airflowtask.connector_core.flyte import AirflowConnector, _Resources, get_log_links
from airflowtask.connector_core.model import DEFAULT_ALLOWED_MODULES, Phase, TaskState
from conftest import TEST_MODULES, Harness, make_config
from flyte_grpc import ConnectorClient, ConnectorServer, load_template, phase_name
from flyteidl.core.execution_pb2 import TaskExecution
from flytekit.extend.backend.base_connector import ConnectorRegistry, Resource
from flytekit.models.task import TaskTemplate
from localjob import JobService


def template(name: str) -> TaskTemplate:
    return TaskTemplate.from_flyte_idl(load_template(name))


@pytest.fixture
def connector(harness: Harness) -> AirflowConnector:
    engine = Engine(make_config())
    harness.engines.append(engine)
    return AirflowConnector(engine)


def test_registered_for_airflow_tasks_in_place_of_the_seed() -> None:
    registered = ConnectorRegistry.get_connector("airflow", 0)
    assert isinstance(registered, AirflowConnector)
    assert registered.name == "Airflow Connector"
    assert registered.metadata_type is AirflowMetadata


def test_bash_fixture_in_process(harness: Harness, connector: AirflowConnector) -> None:
    async def scenario() -> tuple[object, list[str], dict[str, float]]:
        meta = await connector.create(template("bash_ok"))
        resource = await connector.get(AirflowMetadata.decode(meta.encode()))
        logs = (await connector.get_logs(meta)).body.results
        metrics = {result.metric: result.data["value"] for result in (await connector.get_metrics(meta)).results}
        return resource, list(logs), metrics

    resource, logs, metrics = harness.run(scenario())
    assert resource.phase == TaskExecution.SUCCEEDED
    assert resource.custom_info["reason"] == "Completed"
    assert resource.custom_info["result"].startswith("hello 20")
    assert any("hello 20" in line for line in logs)
    assert metrics["execute_seconds"] > 0


def test_bash_failure_is_a_failed_resource(harness: Harness, connector: AirflowConnector) -> None:
    async def scenario() -> object:
        return await connector.get(await connector.create(template("bash_fail")))

    resource = harness.run(scenario())
    assert resource.phase == TaskExecution.FAILED
    assert "exit code 3" in resource.message


def test_unreadable_task_config_is_a_failed_resource(harness: Harness, connector: AirflowConnector) -> None:
    broken = template("bash_ok")
    broken._custom = {"task_config_pkl": '{"py/object": "os.system"}'}

    async def scenario() -> object:
        return await connector.get(await connector.create(broken))

    resource = harness.run(scenario())
    assert resource.phase == TaskExecution.FAILED
    assert resource.custom_info["reason"] == "InvalidParameters"


@pytest.fixture(scope="module")
def jobs() -> Iterator[JobService]:
    with JobService() as service:
        yield service


@pytest.fixture(scope="module")
def server(jobs: JobService) -> Iterator[ConnectorServer]:
    allowed = ",".join(DEFAULT_ALLOWED_MODULES + TEST_MODULES)
    env = {"AIRFLOWTASK_ALLOWED_MODULES": allowed, "AIRFLOW_CONN_LOCAL_JOBS": jobs.url}
    with ConnectorServer(["airflowtask.connector_core.flyte"], env=env) as srv:
        yield srv


@pytest.fixture
def client(server: ConnectorServer) -> Iterator[ConnectorClient]:
    with ConnectorClient(server.address) as cli:
        yield cli


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["bash_ok", "python_operator", "date_time_sensor_template", "time_delta_sensor_async", "time_sensor"]
)
def test_fixture_over_grpc(client: ConnectorClient, name: str) -> None:
    meta = client.create(name)
    assert phase_name(client.wait(meta, timeout=20, poll_interval=0.2)) == "SUCCEEDED"


@pytest.mark.slow
def test_bash_in_the_grpc_server_process_repeatedly(client: ConnectorClient, server: ConnectorServer) -> None:
    """Seed defect 9: BashOperator in the gRPC server crashed it (fork with gRPC threads running)."""
    metas = [client.create("bash_ok") for _ in range(20)]
    assert all(phase_name(client.get(meta)) == "SUCCEEDED" for meta in metas)
    assert server.running


@pytest.mark.slow
def test_delete_over_grpc_cancels_the_job(client: ConnectorClient, jobs: JobService) -> None:
    meta = client.create("local_job")
    assert phase_name(client.get(meta)) == "RUNNING"
    job_id = AirflowMetadata.decode(meta).job_id
    assert job_id is not None and jobs.jobs[job_id].state == "running"
    client.delete(meta)
    assert jobs.jobs[job_id].state == "cancelled"


@pytest.mark.slow
def test_slow_create_does_not_stall_other_requests(client: ConnectorClient) -> None:
    """Seed defect 1: create of a slow operator returns after create_wait_seconds; get is immediate."""
    started = time.monotonic()
    meta = client.create("local_job")
    assert time.monotonic() - started < 3
    started = time.monotonic()
    client.get(meta)
    assert time.monotonic() - started < 0.5
    client.delete(meta)


def test_get_log_links_keeps_the_seed_signature() -> None:

    class DataprocSubmitJobOperator:
        region, project_id, job_id = "r", "p", "j-2"

    links = get_log_links(DataprocSubmitJobOperator(), DateTimeTrigger(moment=pendulum.now("UTC")))
    assert [(link.name, link.uri.split("/jobs/")[1].split("/")[0]) for link in links] == [("Dataproc Console", "j-2")]


def test_one_resource_per_state_while_it_lives() -> None:
    """get() is polled far more often than a state changes: the Resource (and its protobuf) is made once."""
    resources = _Resources()
    deferred = TaskState(Phase.RUNNING, "Deferred", "waiting for trigger DateTimeTrigger")
    first = resources.of(deferred)
    assert resources.of(deferred) is first
    one, two = asyncio.run(first.to_flyte_idl()), asyncio.run(first.to_flyte_idl())
    assert one == two and one is not two
    assert one.phase == TaskExecution.RUNNING and one.custom_info["reason"] == "Deferred"
    done = resources.of(TaskState(Phase.SUCCEEDED, "Completed", "completed", result={"a": 1}))
    assert done is not first and done.custom_info["result"] == {"a": 1}
    del deferred, first
    gc.collect()
    assert len(resources._made) == 0


@pytest.mark.parametrize(
    "state",
    [
        TaskState(Phase.RUNNING, "Deferred", "waiting for trigger DateTimeTrigger"),
        TaskState(Phase.SUCCEEDED, "Completed", "completed", result={"rows": [1, 2.5, "x", None]}, job_id="j-1"),
        TaskState(Phase.FAILED, "TaskFailed", "exit code 3", retryable=False),
    ],
)
def test_the_protobuf_is_the_one_flytekit_makes(state: TaskState) -> None:
    ours = _Resources().of(state)
    theirs = Resource(phase=ours.phase, message=ours.message, log_links=ours.log_links, custom_info=ours.custom_info)
    assert asyncio.run(ours.to_flyte_idl()) == asyncio.run(theirs.to_flyte_idl())
