"""Airflow 2 -> Airflow 3 path mapping."""

from __future__ import annotations

import importlib

import pytest
from airflowtask.connector_core import paths
from airflowtask.connector_core.paths import UnknownAirflow2Path, to_airflow3

STANDARD = "airflow.providers.standard"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("airflow.sensors.filesystem.FileSensor", f"{STANDARD}.sensors.filesystem.FileSensor"),
        ("airflow.operators.bash.BashOperator", f"{STANDARD}.operators.bash.BashOperator"),
        ("airflow.operators.python.PythonOperator", f"{STANDARD}.operators.python.PythonOperator"),
        ("airflow.sensors.time_delta.TimeDeltaSensor", f"{STANDARD}.sensors.time_delta.TimeDeltaSensor"),
        ("airflow.sensors.time_delta.TimeDeltaSensorAsync", f"{STANDARD}.sensors.time_delta.TimeDeltaSensorAsync"),
        ("airflow.sensors.date_time.DateTimeSensor", f"{STANDARD}.sensors.date_time.DateTimeSensor"),
        ("airflow.sensors.date_time.DateTimeSensorAsync", f"{STANDARD}.sensors.date_time.DateTimeSensorAsync"),
        ("airflow.sensors.time_sensor.TimeSensor", f"{STANDARD}.sensors.time.TimeSensor"),
        ("airflow.operators.empty.EmptyOperator", f"{STANDARD}.operators.empty.EmptyOperator"),
        ("airflow.operators.dummy.DummyOperator", f"{STANDARD}.operators.empty.EmptyOperator"),
        ("airflow.sensors.external_task.ExternalTaskSensor", f"{STANDARD}.sensors.external_task.ExternalTaskSensor"),
        (
            "airflow.operators.trigger_dagrun.TriggerDagRunOperator",
            f"{STANDARD}.operators.trigger_dagrun.TriggerDagRunOperator",
        ),
        ("airflow.sensors.bash.BashSensor", f"{STANDARD}.sensors.bash.BashSensor"),
        ("airflow.sensors.python.PythonSensor", f"{STANDARD}.sensors.python.PythonSensor"),
        ("airflow.sensors.weekday.DayOfWeekSensor", f"{STANDARD}.sensors.weekday.DayOfWeekSensor"),
        ("airflow.operators.datetime.BranchDateTimeOperator", f"{STANDARD}.operators.datetime.BranchDateTimeOperator"),
        ("airflow.operators.weekday.BranchDayOfWeekOperator", f"{STANDARD}.operators.weekday.BranchDayOfWeekOperator"),
        ("airflow.operators.latest_only.LatestOnlyOperator", f"{STANDARD}.operators.latest_only.LatestOnlyOperator"),
        ("airflow.hooks.subprocess.SubprocessHook", f"{STANDARD}.hooks.subprocess.SubprocessHook"),
        ("airflow.hooks.filesystem.FSHook", f"{STANDARD}.hooks.filesystem.FSHook"),
        ("airflow.hooks.base.BaseHook", "airflow.sdk.bases.hook.BaseHook"),
        ("airflow.triggers.temporal.DateTimeTrigger", f"{STANDARD}.triggers.temporal.DateTimeTrigger"),
        (
            "airflow.providers.http.operators.http.SimpleHttpOperator",
            "airflow.providers.http.operators.http.HttpOperator",
        ),
        ("airflow.providers.http.sensors.http.HttpSensor", "airflow.providers.http.sensors.http.HttpSensor"),
        ("airflow.sensors.sql.SqlSensor", "airflow.providers.common.sql.sensors.sql.SqlSensor"),
        ("localjob.LocalJobOperator", "localjob.LocalJobOperator"),
    ],
)
def test_maps_airflow2_paths(old: str, new: str) -> None:
    module, _, name = old.rpartition(".")
    assert ".".join(to_airflow3(module, name)) == new


@pytest.mark.parametrize(
    "path", ["airflow.operators.subdag.SubDagOperator", "airflow.sensors.smart_sensor.SmartSensorOperator"]
)
def test_unknown_airflow2_path_names_it(path: str) -> None:
    module, _, name = path.rpartition(".")
    with pytest.raises(UnknownAirflow2Path, match=path.replace(".", r"\.")):
        to_airflow3(module, name)


def test_every_target_exists_in_the_installed_airflow() -> None:
    for target in paths.MODULES.values():
        importlib.import_module(target)
    for module, name in paths.CLASSES.values():
        assert hasattr(importlib.import_module(module), name), f"{module}.{name}"


@pytest.mark.parametrize("package", ["airflow.operators", "airflow.sensors", "airflow.hooks", "airflow.triggers"])
def test_agrees_with_airflows_own_deprecation_table(package: str) -> None:
    """Every class Airflow 3 still knows under an Airflow 2 path maps to where Airflow says it moved."""
    table = vars(importlib.import_module(package))["__deprecated_classes"]
    for submodule, classes in table.items():
        for name, target in classes.items():
            if not name[0].isupper():
                continue  # functions such as get_current_context are not tasks
            assert ".".join(to_airflow3(f"{package}.{submodule}", name)) == target
