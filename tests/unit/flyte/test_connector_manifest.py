"""What CreateTask would create, from the TaskTemplates flytekitplugins-airflow made (no API server)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from airflowtask.flyte.connector import AirflowTaskConnector, ConnectorConfig
from flyte_grpc import execution_metadata, load_template
from flytekit.bin.entrypoint import get_traceback_str
from flytekit.exceptions.user import FlyteUserRuntimeException
from flytekit.models.task import TaskExecutionMetadata, TaskTemplate


def template(name: str) -> TaskTemplate:
    return TaskTemplate.from_flyte_idl(load_template(name))


def metadata(name: str, **kwargs: object) -> TaskExecutionMetadata:
    return TaskExecutionMetadata.from_flyte_idl(execution_metadata(load_template(name), **kwargs))


def test_the_manifest_of_a_fixture() -> None:
    connector = AirflowTaskConnector(ConnectorConfig(connections={"local_http": "conns/http", "other": "x"}))
    task, manifest = connector.manifest(template("http_sensor"), metadata("http_sensor", execution="e1", node_id="n2"))
    assert (task.execution, task.node_id, task.retry_attempt) == ("e1", "n2", 0)
    assert manifest["metadata"]["namespace"] == "flytesnacks-development"  # the execution's namespace
    assert manifest["metadata"]["name"].startswith("e1-n2-0-")
    assert manifest["metadata"]["labels"]["airflowtask.dev/flyte-task"] == "http_sensor"
    assert manifest["spec"] == {
        "operator": {
            "module": "airflow.providers.http.sensors.http",
            "name": "HttpSensor",
            "parameters": {"task_id": "http_sensor", "http_conn_id": "local_http", "endpoint": "health"},
        },
        "connections": [{"connId": "local_http", "secretRef": {"name": "conns", "key": "http"}}],
        "ttlSecondsAfterFinished": 86400,
    }


def test_configured_namespace_and_the_template_timeout() -> None:
    timed = template("time_delta_sensor_async")
    timed.metadata._timeout = dt.timedelta(seconds=90.5)
    connector = AirflowTaskConnector(ConnectorConfig(namespace="flyte-tasks"))
    _, manifest = connector.manifest(timed, metadata("time_delta_sensor_async"))
    assert manifest["metadata"]["namespace"] == "flyte-tasks"
    assert manifest["spec"]["activeDeadlineSeconds"] == 91
    assert manifest["spec"]["operator"]["parameters"]["delta"] == {"__type": "timedelta", "__var": 2.0}


@pytest.mark.parametrize(
    ("custom", "problem"),
    [
        ({"task_config_pkl": '{"py/object": "os.system"}'},
         "invalid Airflow task config in task 'bash_ok': task_config_pkl: expected a py/object "
         "flytekitplugins.airflow.task.AirflowObj, found 'os.system'"),
        ({}, "invalid Airflow task config in task 'bash_ok': the task's custom holds neither task_config_pkl nor"),
    ],
)
def test_a_bad_task_config_is_refused_with_the_problem_and_no_stack(custom: dict, problem: str) -> None:
    broken = template("bash_ok")
    broken._custom = custom
    with pytest.raises(FlyteUserRuntimeException) as caught:
        AirflowTaskConnector(ConnectorConfig()).manifest(broken, metadata("bash_ok"))
    assert problem in str(caught.value)
    reported = get_traceback_str(caught.value)  # what flytekit's servicer puts in the gRPC details
    assert problem in reported and "File " not in reported


def test_serving_module_registers_only_this_connector_for_airflow() -> None:
    code = ("import sys, airflowtask.flyte.connector as c;"
            "from flytekit.extend.backend.base_connector import ConnectorRegistry as R;"
            "assert type(R.get_connector('airflow', 0)) is c.AirflowTaskConnector;"
            "assert 'airflowtask.connector_core.flyte' not in sys.modules;"
            "print(sorted(a.name for a in R.list_connectors() if 'airflow' in a.supported_task_types))")
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "['AirflowTask Connector']"  # after any log lines of Airflow's
