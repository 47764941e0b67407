"""Self-test of tests/support/flyte_grpc.py against flytekit's real server and a dummy connector."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from dummy_connector import TASK_TYPE, dummy_template
from flyte_grpc import ConnectorClient, ConnectorServer, execution_metadata, phase_name


@pytest.fixture(scope="module")
def server() -> Iterator[ConnectorServer]:
    with ConnectorServer(["dummy_connector"]) as srv:
        yield srv
    assert not srv.running


@pytest.fixture
def client(server: ConnectorServer) -> Iterator[ConnectorClient]:
    with ConnectorClient(server.address) as cli:
        yield cli


def test_lists_the_dummy_connector(client: ConnectorClient) -> None:
    types = {t.name for agent in client.list_connectors() for t in agent.supported_task_categories}
    assert TASK_TYPE in types


def test_create_get_wait_delete_roundtrip(client: ConnectorClient) -> None:
    template = dummy_template(seconds=1.5)
    meta = execution_metadata(template, execution="exec42", node_id="n3", retry_attempt=2)
    resource_meta = client.create(template, task_execution_metadata=meta)
    assert phase_name(client.get(resource_meta)) == "RUNNING"
    final = client.wait(resource_meta, timeout=20, poll_interval=0.3)
    assert phase_name(final) == "SUCCEEDED"
    assert final.message == "job exec42-n3-2 done"
    assert [link.uri for link in final.log_links] == ["http://127.0.0.1/jobs/exec42-n3-2"]
    client.delete(resource_meta)


def test_failed_job(client: ConnectorClient) -> None:
    resource_meta = client.create(dummy_template(fail=True))
    assert phase_name(client.wait(resource_meta, timeout=10)) == "FAILED"


def test_unknown_task_type_is_not_found(client: ConnectorClient) -> None:
    template = dummy_template()
    template.type = "no_such_type"
    with pytest.raises(grpc.RpcError) as err:
        client.create(template)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_get_logs_stream_is_empty_under_flytekit_1_16(client: ConnectorClient) -> None:
    """flytekit's GetTaskLogs servicer returns one response from a coroutine on a server-streaming RPC;
    grpc.aio drops it, so clients receive an empty stream whatever the connector's get_logs returns."""
    resource_meta = client.create(dummy_template())
    assert client.get_logs(resource_meta) == []
