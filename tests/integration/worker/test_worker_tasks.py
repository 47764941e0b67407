"""The worker runs operators, sensors (poking in its own process) and hooks, and reports what they did."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from local_http import JsonHandler, LocalServer

Order = Callable[..., dict[str, Any]]


@pytest.fixture
def web() -> Iterator[str]:
    """A local HTTP server whose /data answers {"value": 42}."""

    class Handler(JsonHandler):
        def do_GET(self) -> None:
            self.reply(*((200, {"value": 42}) if self.path == "/data" else (404, {})))

    server = LocalServer(Handler)
    server.start()
    yield server.url
    server.stop()


def test_bash_result_is_the_last_line_rendered_with_the_run(workers, order: Order) -> None:
    work = order(
        "airflow.operators.bash", "BashOperator", bash_command="echo first; echo {{ ds }} try {{ ti.try_number }}"
    )
    work["task"]["attempt"] = 3
    finished = workers.run(work)
    assert finished.outcome == {
        "phase": "Succeeded",
        "reason": "Completed",
        "message": "completed",
        "retryable": True,
        "result": "2024-01-02 try 3",
        "jobId": None,
        "state": {},
        "deferral": None,
    }
    assert finished.exit_code == 0
    assert "first" in finished.log  # the task's output is in the Pod's log


def test_bash_failure_names_the_exit_code(workers, order: Order) -> None:
    finished = workers.run(order("airflow.operators.bash", "BashOperator", bash_command="echo oops >&2; exit 3"))
    outcome = finished.outcome
    assert (outcome["phase"], outcome["reason"], outcome["retryable"], finished.exit_code) == (
        "Failed",
        "TaskFailed",
        True,
        1,
    )
    assert "exit code 3" in outcome["message"]


def test_file_sensor_pokes_until_the_file_appears(workers, order: Order, tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    running = workers.start(
        order("airflow.sensors.filesystem", "FileSensor", filepath=str(target), deferrable=False, poke_interval=0.2)
    )
    running.wait_for_log("Poking for file")
    target.write_text("done")
    finished = running.wait()
    assert (finished.outcome["phase"], finished.outcome["reason"], finished.exit_code) == ("Succeeded", "Completed", 0)
    assert finished.log.count("Poking for file") >= 2


def test_file_sensor_times_out(workers, order: Order, tmp_path: Path) -> None:
    missing = str(tmp_path / "never")
    finished = workers.run(
        order(
            "airflow.sensors.filesystem", "FileSensor", filepath=missing, deferrable=False, poke_interval=0.2, timeout=1
        )
    )
    outcome = finished.outcome
    assert (outcome["phase"], outcome["reason"], outcome["retryable"], finished.exit_code) == (
        "Failed",
        "SensorTimeout",
        False,
        1,
    )
    assert "timed out" in outcome["message"]


def test_soft_fail_sensor_that_times_out_is_skipped(workers, order: Order, tmp_path: Path) -> None:
    finished = workers.run(
        order(
            "airflow.sensors.filesystem",
            "FileSensor",
            filepath=str(tmp_path / "never"),
            deferrable=False,
            poke_interval=0.2,
            timeout=0.5,
            soft_fail=True,
        )
    )
    assert (finished.outcome["phase"], finished.outcome["reason"], finished.exit_code) == ("Succeeded", "Skipped", 0)


def test_python_operator_with_a_callable_by_path(workers, order: Order) -> None:
    finished = workers.run(
        order(
            "airflow.operators.python",
            "PythonOperator",
            python_callable={"__type": "callable", "__var": "task_callables.greet"},
            op_kwargs={"name": "pod"},
        )
    )
    assert (finished.outcome["reason"], finished.outcome["result"]) == ("Completed", "hello pod!")


def test_hook_method_with_a_connection_from_the_environment(workers, order: Order, tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite"
    with sqlite3.connect(database) as db:
        db.execute("create table t (n integer)")
        db.execute("insert into t values (1), (2)")
    workers.env["AIRFLOW_CONN_DB"] = f'{{"conn_type": "sqlite", "host": "{database}"}}'
    finished = workers.run(
        order(
            "airflow.providers.sqlite.hooks.sqlite",
            "SqliteHook",
            hook_params={"sqlite_conn_id": "db"},
            method="get_records",
            args=["select n from t order by n"],
        )
    )
    assert (finished.outcome["reason"], finished.outcome["result"]) == ("Completed", [[1], [2]])


def test_http_operator_uses_the_connection_from_the_environment(workers, order: Order, web: str) -> None:
    workers.env["AIRFLOW_CONN_WEB"] = web
    finished = workers.run(
        order(
            "airflow.providers.http.operators.http",
            "HttpOperator",
            http_conn_id="web",
            endpoint="/data",
            method="GET",
            deferrable=False,
        )
    )
    assert (finished.outcome["reason"], finished.outcome["result"]) == ("Completed", '{"value": 42}')
