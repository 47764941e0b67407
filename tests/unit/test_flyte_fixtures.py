"""The Flyte TaskTemplate fixtures (tests/fixtures/flyte, made by generate.py) are complete and consistent."""

from __future__ import annotations

import json

import pytest
from flyte_grpc import FIXTURES_DIR, fixture_index, load_template
from flytekit.models.task import TaskTemplate

INDEX = fixture_index()
ENTRIES = {entry["name"]: entry for entry in INDEX["fixtures"]}
EXPECTED = {
    "file_sensor",
    "time_delta_sensor_async",
    "date_time_sensor_async",
    "date_time_sensor_pendulum",
    "date_time_sensor_template",
    "bash_ok",
    "bash_fail",
    "http_sensor",
    "http_operator_deferrable",
    "sql_sensor",
    "time_sensor",
    "python_operator",
    "local_job",
}

TIMEDELTA = {"py/type": "datetime.timedelta"}
TIME = {"py/type": "datetime.time"}


def airflow_obj(name: str) -> dict:
    template = TaskTemplate.from_flyte_idl(load_template(name))
    return json.loads(template.custom["task_config_pkl"])


def test_index_lists_every_template_and_the_plugin_versions() -> None:
    assert set(ENTRIES) == EXPECTED
    assert {p.stem for p in (FIXTURES_DIR / "templates").glob("*.json")} == EXPECTED
    assert INDEX["versions"]["flytekitplugins-airflow"] == "1.16.31"
    assert INDEX["versions"]["apache-airflow"].startswith("2.")
    assert all("error" not in entry for entry in ENTRIES.values())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_is_an_airflow_task_template(name: str) -> None:
    entry = ENTRIES[name]
    template = TaskTemplate.from_flyte_idl(load_template(name))
    assert (template.type, template.task_type_version) == ("airflow", 0)
    assert template.id.name == name
    obj = json.loads(template.custom["task_config_pkl"])
    assert obj["py/object"] == "flytekitplugins.airflow.task.AirflowObj"
    assert {"module": obj["module"], "name": obj["name"]} == entry["operator"]
    assert entry["airflow_import"] == f"{obj['module']}.{obj['name']}"
    assert obj["parameters"]["task_id"] == name
    assert entry["expected_phase"] in {"SUCCEEDED", "FAILED"}


@pytest.mark.parametrize(
    ("name", "parameter", "form"),
    [
        ("time_delta_sensor_async", "delta", {"py/reduce": [TIMEDELTA, {"py/tuple": [0, 2, 0]}]}),
        ("time_sensor", "target_time", {"py/object": "datetime.time", "__reduce__": [TIME, ["AAAAAAAA"]]}),
        ("python_operator", "python_callable", {"py/function": "localjob.hello"}),
        ("date_time_sensor_template", "target_time", "{{ ts }}"),
    ],
)
def test_jsonpickle_forms(name: str, parameter: str, form: object) -> None:
    assert airflow_obj(name)["parameters"][parameter] == form


def test_datetime_forms() -> None:
    aware = airflow_obj("date_time_sensor_async")["parameters"]["target_time"]
    assert aware["py/object"] == "datetime.datetime"
    assert aware["__reduce__"][1][0] == "B+QBAQAAAAAAAA=="  # datetime's pickle state: 2020-01-01 00:00:00
    assert aware["__reduce__"][1][1]["py/reduce"][0] == {"py/type": "datetime.timezone"}
    pendulum_dt = airflow_obj("date_time_sensor_pendulum")["parameters"]["target_time"]
    assert pendulum_dt["py/reduce"][0] == {"py/type": "pendulum.datetime.DateTime"}
    assert pendulum_dt["py/reduce"][1]["py/tuple"][:7] == [2020, 1, 1, 0, 0, 0, 0]


def test_local_job_and_deferrable_parameters() -> None:
    assert airflow_obj("local_job")["parameters"] == {
        "task_id": "local_job",
        "service_conn_id": "local_jobs",
        "duration_seconds": 30,
    }
    assert airflow_obj("http_operator_deferrable")["parameters"]["deferrable"] is True
