"""Reading what to run from an AirflowTask spec or a Flyte task's custom."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from airflowtask.connector_core.spec import SpecError, from_flyte_custom, from_spec


def test_from_spec_decodes_typed_parameters() -> None:
    obj = from_spec(
        {
            "module": "airflow.providers.standard.sensors.time_delta",
            "name": "TimeDeltaSensor",
            "parameters": {"delta": {"__type": "timedelta", "__var": 30}},
        }
    )
    assert obj.parameters == {"delta": dt.timedelta(seconds=30)}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "X"}, "module"),
        ({"module": "m"}, "name"),
        ({"module": "m", "name": "X", "parameters": []}, "parameters must be an object"),
        ({"module": "m", "name": "X", "parameters": {"d": {"__type": "timedelta", "__var": "x"}}}, r"parameters\.d"),
    ],
)
def test_from_spec_rejects(spec: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        from_spec(spec)


def test_flyte_custom_with_task_config_pkl() -> None:
    pkl = json.dumps(
        {
            "py/object": "flytekitplugins.airflow.task.AirflowObj",
            "module": "airflow.sensors.filesystem",
            "name": "FileSensor",
            "parameters": {"task_id": "wait", "filepath": "/tmp/x"},
        }
    )
    obj = from_flyte_custom({"task_config_pkl": pkl})
    assert (obj.module, obj.name, obj.parameters) == (
        "airflow.sensors.filesystem",
        "FileSensor",
        {"task_id": "wait", "filepath": "/tmp/x"},
    )


def test_flyte_custom_with_operator_spec() -> None:
    obj = from_flyte_custom({"operator": {"module": "m", "name": "X", "parameters": {"a": 1}}})
    assert obj.parameters == {"a": 1}


def test_flyte_custom_errors() -> None:
    with pytest.raises(SpecError, match="neither"):
        from_flyte_custom({})
    with pytest.raises(SpecError, match="task_config_pkl"):
        from_flyte_custom({"task_config_pkl": '{"py/object": "os.system"}'})
