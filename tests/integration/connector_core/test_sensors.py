"""Sensors: poke-per-call (reschedule mode) and deferrable ones, with Airflow's timeout rules."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflowtask.connector_core import Engine, Phase
from conftest import Harness, WebServer, run_info


def test_file_sensor_succeeds_once_the_file_appears_without_fs_default(
    harness: Harness, engine: Engine, tmp_path: Path, monkeypatch
) -> None:
    """Seed defect 6: no AIRFLOW_CONN_FS_DEFAULT needed. Deferrable by default: a FileTrigger polls."""
    monkeypatch.delenv("AIRFLOW_CONN_FS_DEFAULT", raising=False)
    target = tmp_path / "report.csv"
    meta, state = harness.create(
        engine, "airflow.sensors.filesystem", "FileSensor", filepath=str(target), poke_interval=0.1
    )
    assert (state.phase, state.reason) == (Phase.RUNNING, "Deferred")
    assert meta.airflow_trigger is not None and meta.airflow_trigger.name == "FileTrigger"
    target.write_text("done")
    assert harness.finish(engine, meta).reason == "Completed"


def test_file_sensor_in_poke_mode_pokes_on_each_get(harness: Harness, engine: Engine, tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    meta, state = harness.create(
        engine, "airflow.sensors.filesystem", "FileSensor", filepath=str(target), deferrable=False
    )
    assert (state.phase, state.reason) == (Phase.RUNNING, "Waiting")
    assert harness.run(engine.get(meta, run=run_info())).reason == "Waiting"
    target.write_text("done")
    state = harness.run(engine.get(meta, run=run_info()))
    assert (state.phase, state.reason) == (Phase.SUCCEEDED, "Completed")
    assert engine.metrics(meta)["pokes"] == 3


def test_time_delta_sensor_is_deferred_from_the_data_interval_end(harness: Harness, engine: Engine) -> None:
    """Seed defect 5: TimeDeltaSensor needs data_interval_end; deferrable=True is added (defect 3)."""
    run = run_info(logical_date=datetime.now(UTC))
    started = time.monotonic()
    meta, state = harness.create(
        engine, "airflow.sensors.time_delta", "TimeDeltaSensor", run, delta={"__type": "timedelta", "__var": 1.0}
    )
    assert state.reason == "Deferred"
    assert harness.finish(engine, meta, run).reason == "Completed"
    assert 0.8 < time.monotonic() - started < 5


def test_time_delta_sensor_async_by_its_airflow2_path(harness: Harness, engine: Engine) -> None:
    """TimeDeltaSensorAsync sets deferrable itself: the engine must not pass it again (seed defect 3)."""
    run = run_info(logical_date=datetime.now(UTC))
    meta, state = harness.create(
        engine, "airflow.sensors.time_delta", "TimeDeltaSensorAsync", run, delta={"__type": "timedelta", "__var": 0.5}
    )
    assert state.reason == "Deferred", state.message
    assert harness.finish(engine, meta, run).phase is Phase.SUCCEEDED


def test_date_time_sensor_async_renders_its_target_from_the_context(harness: Harness, engine: Engine) -> None:
    """target_time '{{ ts }}' must be rendered (the seed left it literal); the trigger is rebuilt from serialize()."""
    run = run_info(logical_date=datetime.now(UTC) + timedelta(seconds=1))
    meta, state = harness.create(
        engine, "airflow.sensors.date_time", "DateTimeSensorAsync", run, target_time="{{ ts }}"
    )
    assert state.reason == "Deferred", state.message
    assert meta.airflow_trigger is not None and meta.airflow_trigger.name == "DateTimeTrigger"
    assert harness.finish(engine, meta, run).reason == "Completed"


def test_date_time_sensor_in_poke_mode(harness: Harness, engine: Engine) -> None:
    past = {"__type": "datetime", "__var": "2020-01-01T00:00:00Z"}
    _, state = harness.create(engine, "airflow.sensors.date_time", "DateTimeSensor", target_time=past)
    assert (state.phase, state.reason) == (Phase.SUCCEEDED, "Completed")


def test_trigger_can_end_the_task_itself(harness: Harness, engine: Engine) -> None:
    """end_from_trigger: the trigger yields TaskSuccessEvent and no callback runs."""
    run = run_info(logical_date=datetime.now(UTC))
    meta, _ = harness.create(
        engine,
        "airflow.providers.standard.sensors.time_delta",
        "TimeDeltaSensor",
        run,
        delta={"__type": "timedelta", "__var": 0.3},
        end_from_trigger=True,
    )
    assert harness.finish(engine, meta, run).reason == "Completed"
    assert "callback_seconds" not in engine.metrics(meta)


def test_sensor_timeout(harness: Harness, engine: Engine) -> None:
    _, state = harness.create(
        engine,
        "airflow.sensors.python",
        "PythonSensor",
        python_callable={"__type": "callable", "__var": "task_callables.never"},
        timeout=0,
    )
    assert (state.phase, state.reason, state.retryable) == (Phase.FAILED, "SensorTimeout", False)


def test_sensor_timeout_is_counted_from_the_first_create(harness: Harness, engine: Engine) -> None:
    never = {"__type": "callable", "__var": "task_callables.never"}
    meta, state = harness.create(engine, "airflow.sensors.python", "PythonSensor", python_callable=never, timeout=1)
    assert state.reason == "Waiting"
    time.sleep(1.1)
    assert harness.run(engine.get(meta, run=run_info())).reason == "SensorTimeout"


def test_sensor_soft_fail_skips_on_timeout(harness: Harness, engine: Engine) -> None:
    never = {"__type": "callable", "__var": "task_callables.never"}
    _, state = harness.create(
        engine, "airflow.sensors.python", "PythonSensor", python_callable=never, timeout=0, soft_fail=True
    )
    assert (state.phase, state.reason) == (Phase.SUCCEEDED, "Skipped")


def test_deferrable_sensor_timeout(harness: Harness, engine: Engine, tmp_path: Path) -> None:
    """A deferred sensor's own timeout becomes the deferral's timeout: SensorTimeout, as in Airflow."""
    meta, _ = harness.create(
        engine,
        "airflow.sensors.filesystem",
        "FileSensor",
        filepath=str(tmp_path / "never"),
        poke_interval=0.1,
        timeout=0.5,
    )
    state = harness.finish(engine, meta)
    assert (state.reason, state.retryable) == ("SensorTimeout", False)


def test_sql_sensor_on_sqlite(harness: Harness, engine: Engine, tmp_path: Path) -> None:
    database = tmp_path / "ready.db"
    with sqlite3.connect(database) as db:
        db.execute("create table ready (id integer)")
    run = run_info(connections={"local_sqlite": f'{{"conn_type": "sqlite", "host": "{database}"}}'})
    meta, state = harness.create(
        engine,
        "airflow.providers.common.sql.sensors.sql",
        "SqlSensor",
        run,
        conn_id="local_sqlite",
        sql="select count(*) from ready",
    )
    assert state.reason == "Waiting", state.message
    with sqlite3.connect(database) as db:
        db.execute("insert into ready values (1)")
    assert harness.run(engine.get(meta, run=run)).reason == "Completed"


def test_http_sensor_with_a_connection_from_run_info(harness: Harness, engine: Engine, web: WebServer) -> None:
    """HttpSensor defers to HttpSensorTrigger, which looks the connection up inside the trigger."""
    run = run_info(connections={"local_http": web.uri})
    meta, state = harness.create(
        engine,
        "airflow.providers.http.sensors.http",
        "HttpSensor",
        run,
        http_conn_id="local_http",
        endpoint="/ready",
        poke_interval=0.1,
    )
    assert state.reason == "Deferred", state.message
    web.ready.set()
    assert harness.finish(engine, meta, run).reason == "Completed"


def test_http_sensor_in_poke_mode(harness: Harness, engine: Engine, web: WebServer) -> None:
    run = run_info(connections={"local_http": web.uri})
    _, state = harness.create(
        engine,
        "airflow.providers.http.sensors.http",
        "HttpSensor",
        run,
        http_conn_id="local_http",
        endpoint="/health",
        deferrable=False,
    )
    assert state.reason == "Completed", state.message
