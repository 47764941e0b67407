"""The Python client against a real API server and the real operator: Airflow operators in, results out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest
from airflowtask.client import AirflowTaskClient, AirflowTaskFailed
from airflowtask.connector_core import AirflowObj
from airflowtask.controlplane import Kubectl as Cluster
from kubetools import AFT, Kubectl
from localjob import JobService, LocalJobOperator


@pytest.fixture
def client(cluster: Cluster, crd: None, namespace: str) -> AirflowTaskClient:
    return AirflowTaskClient(namespace, api_client=kubernetes.config.new_client_from_config(str(cluster.kubeconfig)))


@pytest.fixture
def jobs(kubectl: Kubectl, namespace: str) -> Iterator[JobService]:
    with JobService() as service:
        kubectl.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "jobs-conn", "namespace": namespace},
                       "stringData": {"uri": service.url}})
        yield service


def test_run_returns_the_operators_result(client: AirflowTaskClient, kubectl: Kubectl, operator: Any) -> None:
    from airflow.providers.standard.operators.bash import BashOperator

    result = client.run(BashOperator(task_id="greet", bash_command="echo hello {{ ds }}"), timeout=60)
    assert result.startswith("hello 20")
    [obj] = json.loads(kubectl("get", AFT, "-n", client.namespace, "-o", "json").stdout)["items"]
    assert obj["metadata"]["name"].startswith("greet-")
    assert obj["spec"]["operator"] == {
        "module": "airflow.providers.standard.operators.bash",
        "name": "BashOperator",
        "parameters": {"task_id": "greet", "bash_command": "echo hello {{ ds }}"},
    }


def test_a_failing_task_raises_with_its_reason(client: AirflowTaskClient, operator: Any) -> None:
    from airflow.providers.standard.operators.bash import BashOperator

    with pytest.raises(AirflowTaskFailed) as caught:
        client.run(BashOperator(task_id="fail", bash_command="exit 3"), timeout=60, name="fail")
    assert caught.value.reason == "TaskFailed"
    assert "exit code 3" in caught.value.message


def test_connections_and_a_deferred_operator(client: AirflowTaskClient, operator: Any, jobs: JobService) -> None:
    task = LocalJobOperator(task_id="job", service_conn_id="jobs", duration_seconds=1, result={"rows": 42})
    assert client.run(task, timeout=60, connections={"jobs": "jobs-conn"}, poll_interval_seconds=600) == {"rows": 42}
    assert [job.state for job in jobs.jobs.values()] == ["succeeded"]


def test_run_cancels_the_task_when_it_times_out(
    client: AirflowTaskClient, kubectl: Kubectl, operator: Any, jobs: JobService
) -> None:
    task = AirflowObj("localjob", "LocalJobOperator", {"service_conn_id": "jobs", "duration_seconds": 300})
    with pytest.raises(TimeoutError, match=r"still Running \(Deferred\) after 20s"):  # its Pod deferred by then
        client.run(task, timeout=20, name="slow", connections={"jobs": "jobs-conn"})
    kubectl.wait_gone(AFT, "slow", client.namespace)
    assert [job.state for job in jobs.jobs.values()] == ["cancelled"]


def test_cancel_and_wait_on_a_deleted_task(client: AirflowTaskClient, operator: Any, jobs: JobService) -> None:
    task = AirflowObj("localjob", "LocalJobOperator", {"service_conn_id": "jobs", "duration_seconds": 300})
    name = client.submit(task, name="doomed", connections={"jobs": "jobs-conn"})
    uid = client.get(name)["metadata"]["uid"]
    assert client.cancel(name, uid="not-" + uid) is False  # another object's uid: left alone
    assert client.cancel(name) is True
    with pytest.raises(AirflowTaskFailed) as caught:
        client.wait(name, timeout=60)
    assert caught.value.reason == "NotFound"
    assert client.cancel(name) is False
