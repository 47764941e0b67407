"""AirflowTask manifests from an AirflowObj or an Airflow operator instance (pure logic, real Airflow classes)."""

from __future__ import annotations

import datetime as dt

import pytest
from airflowtask.connector_core import AirflowObj, from_spec
from airflowtask.connector_core.typed import CallableRef
from airflowtask.manifest import ManifestError, build_task, task_from_operator

SENSOR = AirflowObj(
    "airflow.providers.standard.sensors.time_delta",
    "TimeDeltaSensorAsync",
    {"task_id": "wait", "delta": dt.timedelta(seconds=30), "at": dt.time(6, 30), "cb": CallableRef("pkg.mod.fn")},
)


def test_build_task_writes_typed_json_and_only_the_options_given() -> None:
    manifest = build_task(SENSOR, name="wait", namespace="data", labels={"a": "b"}, poll_interval_seconds=5,
                          connections={"db": "db-conn", "http": "conns/http_uri"})
    assert manifest == {
        "apiVersion": "airflowtask.dev/v1alpha1",
        "kind": "AirflowTask",
        "metadata": {"name": "wait", "namespace": "data", "labels": {"a": "b"}},
        "spec": {
            "operator": {
                "module": "airflow.providers.standard.sensors.time_delta",
                "name": "TimeDeltaSensorAsync",
                "parameters": {
                    "task_id": "wait",
                    "delta": {"__type": "timedelta", "__var": 30.0},
                    "at": {"__type": "time", "__var": "06:30:00"},
                    "cb": {"__type": "callable", "__var": "pkg.mod.fn"},
                },
            },
            "connections": [
                {"connId": "db", "secretRef": {"name": "db-conn"}},
                {"connId": "http", "secretRef": {"name": "conns", "key": "http_uri"}},
            ],
            "pollIntervalSeconds": 5,
        },
    }


def test_the_operator_reads_back_what_build_task_wrote() -> None:
    manifest = build_task(SENSOR, generate_name="wait-", namespace="data", deletion_policy="Orphan")
    assert manifest["metadata"] == {"generateName": "wait-", "namespace": "data"}
    assert manifest["spec"]["deletionPolicy"] == "Orphan"
    assert from_spec(manifest["spec"]["operator"]) == SENSOR


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"name": "a", "generate_name": "a-"}, "exactly one of name and generate_name"),
        ({"name": "a", "connections": {"db": "Bad_Secret"}}, "'Bad_Secret' is not a valid Secret name"),
        ({"name": "a", "connections": {"db": "s/bad key"}}, "'bad key' is not a valid Secret key"),
    ],
)
def test_build_task_rejects_bad_options(kwargs: dict, problem: str) -> None:
    with pytest.raises(ManifestError, match=problem):
        build_task(SENSOR, namespace="data", **kwargs)


def test_values_json_cannot_hold_are_named() -> None:
    with pytest.raises(ManifestError, match=r"parameters.handler: cannot write a object"):
        build_task(AirflowObj("m", "C", {"handler": object()}), name="a", namespace="data")


def test_task_from_operator_captures_constructor_kwargs() -> None:
    from airflow.providers.standard.operators.bash import BashOperator

    op = BashOperator(task_id="hello", bash_command="echo 1", env={"A": "1"})
    op.bash_command = "echo 2"  # Airflow keeps the recorded kwargs in step with reassigned attributes
    assert task_from_operator(op) == AirflowObj(
        "airflow.providers.standard.operators.bash", "BashOperator",
        {"task_id": "hello", "bash_command": "echo 2", "env": {"A": "1"}},
    )


def test_task_from_operator_leaves_out_kwargs_a_class_passes_to_its_base() -> None:
    from airflow.providers.standard.sensors.time_delta import TimeDeltaSensorAsync

    obj = task_from_operator(TimeDeltaSensorAsync(task_id="wait", delta=dt.timedelta(seconds=2)))
    assert obj.parameters == {"task_id": "wait", "delta": dt.timedelta(seconds=2), "end_from_trigger": False}


def test_task_from_operator_drops_the_dag_but_keeps_its_default_args() -> None:
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG

    with DAG("d", default_args={"retries": 2}, schedule=None):
        op = BashOperator(task_id="hello", bash_command="echo")
    assert task_from_operator(op).parameters == {"task_id": "hello", "retries": 2, "bash_command": "echo"}


def test_task_from_operator_refuses_what_cannot_run_elsewhere() -> None:
    from airflow.providers.standard.operators.python import PythonOperator

    with pytest.raises(ManifestError, match="is not an Airflow operator"):
        task_from_operator(object())
    with pytest.raises(ManifestError, match="cannot write a function"):
        task_from_operator(PythonOperator(task_id="p", python_callable=lambda: 1))
