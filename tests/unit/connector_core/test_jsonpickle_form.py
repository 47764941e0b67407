"""Reading the seed's jsonpickle task_config_pkl without unpickling."""

from __future__ import annotations

import datetime as dt
import json
import sys
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonpickle
import pendulum
import pytest
from airflowtask.connector_core.jsonpickle_form import JsonpickleFormError, parse_airflow_obj
from airflowtask.connector_core.typed import CallableRef

TEMPLATES = Path(__file__).resolve().parents[2] / "fixtures" / "flyte" / "templates"


@dataclass
class AirflowObj:
    """Stands in for flytekitplugins.airflow.task.AirflowObj, so jsonpickle writes the same text."""

    module: str
    name: str
    parameters: dict[str, Any]


AirflowObj.__module__ = "flytekitplugins.airflow.task"


def encode(parameters: dict[str, Any]) -> str:
    return jsonpickle.encode(AirflowObj("airflow.sensors.time_sensor", "TimeSensor", parameters))


SHARED_DELTA = dt.timedelta(days=1)
SHARED_TIME = dt.time(1, 2, tzinfo=dt.UTC)

SAFE_VALUES: dict[str, Any] = {
    "task_id": "t",
    "timedelta": dt.timedelta(days=1, seconds=2, microseconds=3),
    "negative": dt.timedelta(seconds=-1),
    "time": dt.time(6, 30, 15, 123),
    "aware_time": SHARED_TIME,
    "date": dt.date(2020, 2, 29),
    "naive": dt.datetime(2020, 1, 1, 6, 30),
    "utc": dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
    "offset": dt.datetime(2020, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2), "X")),
    "zoneinfo": dt.datetime(2020, 1, 1, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin")),
    "pendulum": pendulum.datetime(2020, 1, 1, tz="UTC"),
    "pendulum_named": pendulum.datetime(2020, 1, 1, 3, tz="Europe/Berlin"),
    "pendulum_fixed": pendulum.datetime(2020, 1, 1, 3, tz=pendulum.FixedTimezone(3600)),
    "tz": dt.UTC,
    "tuple": (1, (2, SHARED_DELTA)),
    "set": {1, 2},
    "repeated": [SHARED_DELTA, SHARED_DELTA, SHARED_TIME, {"again": SHARED_DELTA}],
    "nested": {"a": [1, {"b": None}]},
}


def test_parses_what_jsonpickle_writes_and_agrees_with_jsonpickle() -> None:
    text = encode(SAFE_VALUES)
    module, name, parameters = parse_airflow_obj(text)
    assert (module, name) == ("airflow.sensors.time_sensor", "TimeSensor")
    assert parameters == SAFE_VALUES
    oracle = jsonpickle.decode(text, classes=[AirflowObj])  # jsonpickle as an oracle, on trusted text only
    assert parameters == oracle.parameters


def test_functions_become_callable_refs_without_import() -> None:
    text = (
        '{"py/object": "flytekitplugins.airflow.task.AirflowObj", "module": "m", "name": "n", '
        '"parameters": {"python_callable": {"py/function": "not_imported_module.func"}}}'
    )
    _, _, parameters = parse_airflow_obj(text)
    assert parameters == {"python_callable": CallableRef("not_imported_module.func")}
    assert "not_imported_module" not in sys.modules


@pytest.mark.parametrize("template", sorted(TEMPLATES.glob("*.json")), ids=lambda p: p.stem)
def test_reads_every_flyte_fixture(template: Path) -> None:
    custom = json.loads(template.read_text())["custom"]
    module, name, parameters = parse_airflow_obj(custom["task_config_pkl"])
    assert module and name and "task_id" in parameters


def _obj(parameters: str) -> str:
    return (
        '{"py/object": "flytekitplugins.airflow.task.AirflowObj", "module": "m", "name": "n", '
        f'"parameters": {parameters}}}'
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"py/object": "os.system", "module": "m", "name": "n", "parameters": {}}', "expected a py/object"),
        (_obj('{"x": {"py/object": "subprocess.Popen", "args": ["ls"]}}'), "py/object 'subprocess.Popen'"),
        (_obj('{"x": {"py/reduce": [{"py/function": "os.system"}, {"py/tuple": ["id"]}]}}'), "'os.system'"),
        (_obj('{"x": {"py/reduce": [{"py/type": "subprocess.Popen"}, {"py/tuple": [["ls"]]}]}}'), "Popen"),
        (_obj('{"x": {"py/newobj": [1]}}'), "py/newobj is not accepted"),
        (_obj('{"x": {"py/state": {}}}'), "py/state is not accepted"),
        (_obj('{"x": {"py/id": 7}}'), "py/id 7 refers to nothing"),
        (
            _obj('{"x": {"py/object": "datetime.date", "__reduce__": [{"py/type": "datetime.date"}, ["AAA="]]}}'),
            "length",
        ),
        ('{"py/object": "flytekitplugins.airflow.task.AirflowObj", "module": "m", "name": "n", "x": 1}', "fields"),
        ("not json", "not JSON"),
    ],
)
def test_rejects_anything_else(text: str, message: str) -> None:
    with pytest.raises(JsonpickleFormError, match=message):
        parse_airflow_obj(text)
