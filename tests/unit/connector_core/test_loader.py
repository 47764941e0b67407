"""Deciding whether to pass deferrable=True (seed defect 3), building hooks."""

from __future__ import annotations

import pytest
from airflowtask.connector_core.allowlist import Allowlist
from airflowtask.connector_core.loader import Kind, Loader, LoadError, accepts_deferrable
from airflowtask.connector_core.model import DEFAULT_ALLOWED_MODULES, Reason
from airflowtask.connector_core.spec import AirflowObj


def test_accepts_deferrable() -> None:
    from airflow.providers.http.operators.http import HttpOperator
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor, TimeDeltaSensorAsync

    assert accepts_deferrable(HttpOperator)
    assert accepts_deferrable(TimeDeltaSensor)
    assert not accepts_deferrable(TimeDeltaSensorAsync)  # sets it itself: passing it again would crash
    assert not accepts_deferrable(BashOperator)


def load(module: str, name: str, **parameters: object):
    return Loader(Allowlist(DEFAULT_ALLOWED_MODULES)).load(AirflowObj(module, name, dict(parameters)), "t")


def test_deferrable_is_added_only_when_accepted_and_not_given() -> None:
    assert load("airflow.providers.http.operators.http", "HttpOperator", endpoint="/x").instance.deferrable
    explicit = load("airflow.providers.http.operators.http", "HttpOperator", endpoint="/x", deferrable=False)
    assert not explicit.instance.deferrable
    delta = {"__type": "timedelta", "__var": 1}
    assert load("airflow.sensors.time_delta", "TimeDeltaSensorAsync", delta=delta).instance.deferrable


def test_sensors_run_in_reschedule_mode() -> None:
    loaded = load("airflow.sensors.filesystem", "FileSensor", filepath="/x", deferrable=False)
    assert loaded.kind is Kind.OPERATOR and loaded.instance.mode == "reschedule"


def test_hook_form() -> None:
    loaded = load(
        "airflow.providers.sqlite.hooks.sqlite",
        "SqliteHook",
        hook_params={"sqlite_conn_id": "db"},
        method="get_records",
        args=["select 1"],
    )
    assert loaded.kind is Kind.HOOK and loaded.hook_call is not None
    assert loaded.hook_call.method == "get_records" and loaded.hook_call.args == ["select 1"]


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"method": "_private"}, "public method"),
        ({"method": "get_records", "extra": 1}, "unknown"),
        ({"method": "no_such_method"}, "no method"),
        ({"method": "get_records", "hook_params": [1]}, "objects"),
    ],
)
def test_bad_hook_parameters(parameters: dict[str, object], message: str) -> None:
    with pytest.raises(LoadError, match=message) as info:
        load("airflow.providers.sqlite.hooks.sqlite", "SqliteHook", **parameters)
    assert info.value.reason == Reason.INVALID_PARAMETERS


def test_constructor_errors_are_invalid_parameters() -> None:
    with pytest.raises(LoadError, match=r"BashOperator.*rejected the parameters") as info:
        load("airflow.operators.bash", "BashOperator", bash_command="true", no_such_argument=1)
    assert info.value.reason == Reason.INVALID_PARAMETERS
