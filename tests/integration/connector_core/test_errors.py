"""Problems with the task itself become a Failed state with a reason and a message naming the problem."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflowtask.connector_core import Engine, Phase
from conftest import Harness, run_info


@pytest.fixture
def canary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An importable module outside the allowlist that nobody imported yet."""
    name = f"canary_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "from airflow.sdk import BaseOperator\n\n"
        "class Sneaky(BaseOperator):\n    def execute(self, context):\n        return 'ran'\n\n"
        "def f():\n    return 'ran'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_operator_outside_the_allowlist_is_not_imported(harness: Harness, engine: Engine, canary: str) -> None:
    _, state = harness.create(engine, canary, "Sneaky")
    assert (state.phase, state.reason, state.retryable) == (Phase.FAILED, "NotAllowed", False)
    assert canary in state.message
    assert canary not in sys.modules


def test_callable_outside_the_allowlist_is_not_imported(harness: Harness, engine: Engine, canary: str) -> None:
    _, state = harness.create(
        engine,
        "airflow.operators.python",
        "PythonOperator",
        python_callable={"__type": "callable", "__var": f"{canary}.f"},
    )
    assert state.reason == "NotAllowed"
    assert canary not in sys.modules


def test_os_system_as_a_callable_is_not_allowed(harness: Harness, engine: Engine) -> None:
    _, state = harness.create(
        engine,
        "airflow.operators.python",
        "PythonOperator",
        python_callable={"__type": "callable", "__var": "os.system"},
    )
    assert state.reason == "NotAllowed"


@pytest.mark.parametrize(
    ("module", "name", "named"),
    [
        ("airflow.operators.subdag", "SubDagOperator", "airflow.operators.subdag.SubDagOperator"),
        ("airflow.providers.standard.operators.bash", "BashOperatorr", "BashOperatorr"),
        ("airflow.providers.nonexistent.operators.x", "X", "airflow.providers.nonexistent.operators.x"),
        ("airflow.providers.standard.operators.bash", "working_directory", "not an Airflow operator"),
    ],
)
def test_import_failures(harness: Harness, engine: Engine, module: str, name: str, named: str) -> None:
    _, state = harness.create(engine, module, name)
    assert (state.phase, state.reason, state.retryable) == (Phase.FAILED, "ImportFailed", False)
    assert named in state.message


def test_invalid_parameters(harness: Harness, engine: Engine) -> None:
    _, state = harness.create(engine, "airflow.operators.bash", "BashOperator", bash_command="true", colour="blue")
    assert (state.reason, state.retryable) == ("InvalidParameters", False)
    assert "colour" in state.message


def test_invalid_typed_value(harness: Harness, engine: Engine) -> None:
    _, state = harness.create(
        engine, "airflow.sensors.time_delta", "TimeDeltaSensor", delta={"__type": "timedelta", "__var": "one minute"}
    )
    assert state.reason == "InvalidParameters"
    assert "parameters.delta" in state.message


def test_broken_template(harness: Harness, engine: Engine) -> None:
    _, state = harness.create(engine, "airflow.operators.bash", "BashOperator", bash_command="echo {{ ds ")
    assert state.reason == "InvalidParameters"


def test_invalid_connection_names_the_conn_id(harness: Harness, engine: Engine) -> None:
    run = run_info(connections={"good": "http://h:80", "broken": "not a uri"})
    _, state = harness.create(engine, "airflow.operators.bash", "BashOperator", run, bash_command="true")
    assert (state.phase, state.reason, state.retryable) == (Phase.FAILED, "InvalidConnection", False)
    assert "'broken'" in state.message
