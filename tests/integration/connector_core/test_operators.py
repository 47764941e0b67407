"""Operators, hooks and triggers: execute in the pool, deferral, callbacks, context, results."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import pytest
from airflowtask.connector_core import AirflowObj, Engine, Phase
from conftest import Harness, WebServer, finish, run_info


def callable_ref(path: str) -> dict[str, str]:
    return {"__type": "callable", "__var": path}


def test_bash_operator_renders_ds_and_returns_its_last_line(harness: Harness, engine: Engine) -> None:
    meta, state = harness.create(engine, "airflow.operators.bash", "BashOperator", bash_command="echo hello {{ ds }}")
    assert (state.phase, state.reason, state.result) == (Phase.SUCCEEDED, "Completed", "hello 2024-01-02")
    assert any(line.endswith("hello 2024-01-02") for line in engine.logs(meta))
    assert engine.metrics(meta)["execute_seconds"] > 0


def test_bash_operator_failure_names_the_exit_code(harness: Harness, engine: Engine) -> None:
    meta, state = harness.create(engine, "airflow.operators.bash", "BashOperator", bash_command="echo oops >&2; exit 3")
    assert (state.phase, state.reason, state.retryable) == (Phase.FAILED, "TaskFailed", True)
    assert "exit code 3" in state.message
    assert any("oops" in line for line in engine.logs(meta))


def test_bash_operator_never_forks_the_interpreter(harness: Harness, engine: Engine) -> None:
    """Seed defect 9: fork() in a multi-threaded (gRPC) process. Subprocesses start without os.fork()."""
    forks: list[int] = []
    os.register_at_fork(before=lambda: forks.append(1))
    for _ in range(3):
        _, state = harness.create(engine, "airflow.operators.bash", "BashOperator", bash_command="true")
        assert state.phase is Phase.SUCCEEDED
    assert forks == []


def test_python_operator_with_templated_op_args(harness: Harness, engine: Engine) -> None:
    _, state = harness.create(
        engine,
        "airflow.operators.python",
        "PythonOperator",
        python_callable=callable_ref("task_callables.greet"),
        op_args=["{{ ds }}"],
        op_kwargs={"punctuation": "{{ params.mark }}"},
        run=run_info(params={"mark": "?"}),
    )
    assert state.result == "hello 2024-01-02?"


def test_xcom_push_and_pull_of_own_values(harness: Harness, engine: Engine) -> None:
    _, state = harness.create(
        engine,
        "airflow.operators.python",
        "PythonOperator",
        python_callable=callable_ref("task_callables.push_and_pull"),
    )
    assert state.result == {"answer": 42, "return_value": "pulled 42"}


def test_skip(harness: Harness, engine: Engine) -> None:
    _, state = harness.create(
        engine, "airflow.operators.python", "PythonOperator", python_callable=callable_ref("task_callables.skip")
    )
    assert (state.phase, state.reason, state.message) == (Phase.SUCCEEDED, "Skipped", "nothing to do today")


def test_fail_exception_is_not_retryable(harness: Harness, engine: Engine) -> None:
    _, state = harness.create(
        engine,
        "airflow.operators.python",
        "PythonOperator",
        python_callable=callable_ref("task_callables.fail_for_good"),
    )
    assert (state.phase, state.reason, state.retryable) == (Phase.FAILED, "FailedNoRetry", False)
    assert state.message == "the input is broken"


def test_deferrable_http_operator_with_deferrable_given(harness: Harness, engine: Engine, web: WebServer) -> None:
    """Seed defect 3: deferrable=True in the parameters must not crash; the trigger gets the connection."""
    run = run_info(connections={"local_http": web.uri})
    meta, state = harness.create(
        engine,
        "airflow.providers.http.operators.http",
        "HttpOperator",
        run,
        http_conn_id="local_http",
        endpoint="/data",
        method="GET",
        deferrable=True,
    )
    assert state.reason in ("Deferred", "Completed"), state.message
    state = harness.finish(engine, meta, run)
    assert state.reason == "Completed", state.message
    assert '"value": 42' in state.result


def test_slow_operator_reports_executing_then_its_outcome(harness: Harness) -> None:
    engine = harness.engine(create_wait_seconds=0.2)
    started = time.monotonic()
    meta, state = harness.create(engine, "airflow.operators.bash", "BashOperator", bash_command="sleep 1; echo done")
    assert time.monotonic() - started < 1
    assert (state.phase, state.reason) == (Phase.RUNNING, "Executing")
    assert meta.executing_in == engine.epoch
    state = harness.finish(engine, meta)
    assert (state.reason, state.result) == ("Completed", "done")
    assert meta.executing_in is None and meta.outcome is not None  # the same metadata object, kept current


def test_hook_method_call(harness: Harness, engine: Engine, tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite"
    with sqlite3.connect(database) as db:
        db.execute("create table t (n integer)")
        db.execute("insert into t values (1), (2)")
    _, state = harness.create(
        engine,
        "airflow.providers.sqlite.hooks.sqlite",
        "SqliteHook",
        run_info(connections={"db": f'{{"conn_type": "sqlite", "host": "{database}"}}'}),
        hook_params={"sqlite_conn_id": "db"},
        method="get_records",
        args=["select n from t order by n"],
    )
    assert (state.reason, state.result) == ("Completed", [[1], [2]]), state.message


def test_a_trigger_alone_returns_its_event(harness: Harness, engine: Engine) -> None:
    moment = {"__type": "datetime", "__var": time.time() + 0.3}
    meta, state = harness.create(engine, "airflow.triggers.temporal", "DateTimeTrigger", moment=moment)
    assert state.reason == "Deferred"
    assert harness.finish(engine, meta).reason == "Completed"


def test_trigger_failure_fails_the_task_with_the_error(harness: Harness, engine: Engine) -> None:
    meta, _ = harness.create(engine, "task_callables", "DeferringOperator", trigger="failing")
    state = harness.finish(engine, meta)
    assert state.reason == "TaskFailed"
    assert "the service is down" in state.message


def test_deferral_timeout(harness: Harness, engine: Engine) -> None:
    meta, _ = harness.create(engine, "task_callables", "DeferringOperator", trigger="never", timeout=0.3)
    state = harness.finish(engine, meta)
    assert (state.reason, state.message) == ("TaskFailed", "Trigger timeout")


def test_connections_and_variables_are_scoped_per_task(harness: Harness, engine: Engine) -> None:
    """Many tasks at once, each sees its own RunInfo (in worker threads)."""

    async def one(index: int) -> object:
        run = run_info(connections={"svc": f"http://host{index}:80"}, variables={"color": f"c{index}"})
        obj = AirflowObj(
            "airflow.operators.python",
            "PythonOperator",
            {"python_callable": callable_ref("task_callables.connection_host"), "op_args": ["svc", 0.3]},
        )
        meta, _ = await engine.create(obj, task_id=f"t{index}", run=run)
        host = (await finish(engine, meta, run)).result
        bash = AirflowObj("airflow.operators.bash", "BashOperator", {"bash_command": "echo {{ var.value.color }}"})
        meta, _ = await engine.create(bash, task_id=f"b{index}", run=run)
        return host, (await finish(engine, meta, run)).result

    async def all_of_them() -> list[object]:
        return await asyncio.gather(*(one(i) for i in range(6)))

    assert harness.run(all_of_them()) == [(f"host{i}/host{i}", f"c{i}") for i in range(6)]


def test_environment_connections_and_variables(
    harness: Harness, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_GREETING", "hi")
    monkeypatch.setenv("AIRFLOW_CONN_ENV_SVC", "http://envhost:80")
    _, state = harness.create(
        engine,
        "airflow.operators.bash",
        "BashOperator",
        bash_command="echo {{ var.value.greeting }} {{ conn.env_svc.host }}",
    )
    assert state.result == "hi envhost"


def test_a_slow_poke_does_not_delay_other_tasks(harness: Harness) -> None:
    """Seed defect 1: pokes run in the pool; the event loop keeps serving other tasks."""
    engine = harness.engine(create_wait_seconds=0.2)

    async def scenario() -> tuple[float, float]:
        slow = AirflowObj(
            "airflow.sensors.python",
            "PythonSensor",
            {"python_callable": callable_ref("task_callables.slow_poke"), "op_args": [2.0]},
        )
        for index in range(4):
            await engine.create(slow, task_id=f"slow{index}", run=run_info())
        lag = 0.0
        started = time.monotonic()
        fast = AirflowObj("airflow.operators.bash", "BashOperator", {"bash_command": "echo fast"})
        _, state = await engine.create(fast, task_id="fast", run=run_info())
        assert state.result == "fast"
        fast_seconds = time.monotonic() - started
        for _ in range(20):
            before = time.monotonic()
            await asyncio.sleep(0.01)
            lag = max(lag, time.monotonic() - before - 0.01)
        return fast_seconds, lag

    fast_seconds, lag = harness.run(scenario())
    assert fast_seconds < 1.0
    assert lag < 0.1


def test_get_answers_at_once_and_wait_wakes_when_the_trigger_fires(harness: Harness, engine: Engine) -> None:
    """Seed defect 7: get() does not rebuild the trigger and wait 2 s; completion is seen when it happens."""
    fire_at = time.time() + 0.5
    meta, state = harness.create(engine, "task_callables", "DeferringOperator", trigger="at", at=fire_at)
    assert state.reason == "Deferred"
    started = time.monotonic()
    assert harness.run(engine.get(meta, run=run_info())).reason == "Deferred"
    assert time.monotonic() - started < 0.05

    async def until_finished() -> float:
        while not (await engine.get(meta, run=run_info())).finished:
            await engine.wait(meta, timeout=30)
        return time.time()

    assert harness.run(until_finished()) - fire_at < 0.3
    assert engine.metrics(meta)["trigger_wait_seconds"] > 0.3


def test_delete_kills_a_running_execute(harness: Harness) -> None:
    engine = harness.engine(create_wait_seconds=0.2)
    meta, state = harness.create(engine, "airflow.operators.bash", "BashOperator", bash_command="sleep 30")
    assert state.reason == "Executing"
    started = time.monotonic()
    harness.run(engine.delete(meta))

    async def pool_drained() -> None:
        while engine.pool_in_use():
            await asyncio.sleep(0.05)

    harness.run(asyncio.wait_for(pool_drained(), 5))
    assert time.monotonic() - started < 5
    assert harness.run(engine.get(meta, run=run_info())).reason == "Cancelled"
    assert any("SIGTERM" in line for line in engine.logs(meta))
