"""Per-task log capture and per-task connections, routed by context variables."""

from __future__ import annotations

import contextvars
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import structlog
from airflow.sdk import BaseHook, Variable
from airflowtask.connector_core import logs, secrets
from airflowtask.connector_core.model import RunInfo


@pytest.fixture(autouse=True)
def installed() -> None:
    logs.install()
    secrets.install()


def in_task(sink: logs.TaskLog | None = None, run: RunInfo | None = None) -> contextvars.Context:
    ctx = contextvars.copy_context()
    ctx.run(logs.current.set, sink)
    ctx.run(secrets.current.set, secrets.TaskSecrets(run) if run else None)
    return ctx


def test_structlog_and_stdlib_lines_go_to_the_bound_task_only() -> None:
    mine, other = logs.TaskLog(10), logs.TaskLog(10)
    in_task(mine).run(structlog.get_logger("airflow.task.test").info, "from %s", "structlog")
    in_task(mine).run(logging.getLogger("some.library").warning, "from stdlib")
    structlog.get_logger("airflow.task.test").info("outside any task")
    assert [line.split("] ", 1)[1] for line in mine.lines] == ["from structlog", "from stdlib"]
    assert not other.lines


def test_task_log_keeps_the_last_lines() -> None:
    sink = logs.TaskLog(3)
    for i in range(5):
        in_task(sink).run(structlog.get_logger("t").info, f"line {i}")
    assert [line.rsplit(" ", 1)[1] for line in sink.lines] == ["2", "3", "4"]


def run_with(connections: dict[str, str], variables: dict[str, str] | None = None) -> RunInfo:
    return RunInfo("r", datetime(2024, 1, 1, tzinfo=UTC), connections=connections, variables=variables or {})


def test_connections_are_scoped_per_task_across_threads() -> None:
    with ThreadPoolExecutor(4) as pool:
        futures = [
            pool.submit(in_task(run=run_with({"svc": f"http://host{i}:1"})).run, BaseHook.get_connection, "svc")
            for i in range(8)
        ]
        assert [f.result().host for f in futures] == [f"host{i}" for i in range(8)]


def test_run_info_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SVC", "http://from-env:1")
    monkeypatch.setenv("AIRFLOW_VAR_COLOR", "env")
    assert in_task(run=run_with({"svc": "http://from-run:1"})).run(BaseHook.get_connection, "svc").host == "from-run"
    assert in_task(run=run_with({}, {"color": "run"})).run(Variable.get, "color") == "run"
    assert BaseHook.get_connection("svc").host == "from-env"
    assert Variable.get("color") == "env"


def test_fs_default_is_defined_unless_the_environment_defines_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_FS_DEFAULT", raising=False)
    assert BaseHook.get_connection("fs_default").conn_type == "fs"
    monkeypatch.setenv("AIRFLOW_CONN_FS_DEFAULT", '{"conn_type": "fs", "extra": {"path": "/data"}}')
    assert BaseHook.get_connection("fs_default").extra_dejson == {"path": "/data"}


@pytest.mark.parametrize("value", ["not a uri", "http//x", "{broken", '{"conn_type": "http", "nope": 1}'])
def test_invalid_connections_are_named(value: str) -> None:
    with pytest.raises(secrets.InvalidConnectionError, match="'bad'"):
        secrets.check_connections({"ok": "http://h:1", "bad": value})
