"""Bad input and oversized outcomes end Failed with a reason and a message naming the problem, never a traceback.

The worker processes of this module start together, once (each spends seconds importing Airflow).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

Order = Callable[..., dict[str, Any]]

CANARY = "canary_worker"


@dataclass(frozen=True)
class Case:
    order: Callable[[Order], dict[str, Any] | str]
    reason: str
    says: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


CASES = {
    "not JSON": Case(lambda order: "{not json", "InvalidWorkOrder", ("AIRFLOWTASK_WORK is not JSON",)),
    "unknown step": Case(
        lambda order: order("airflow.operators.bash", "BashOperator", step="run", bash_command="true"),
        "InvalidWorkOrder",
        ("unknown step 'run'", "execute, callback, kill"),
    ),
    "bad typed value": Case(
        lambda order: order("airflow.operators.bash", "BashOperator", bash_command={"__type": "nope", "__var": 1}),
        "InvalidParameters",
        ("operator.parameters.bash_command: unknown __type 'nope'",),
    ),
    "module outside the allowlist": Case(
        lambda order: order(CANARY, "Sneaky"),
        "NotAllowed",
        (f"{CANARY}.Sneaky is not allowed", "airflow.providers.*"),
    ),
    "import failure": Case(
        lambda order: order("airflow.providers.nothere.operators.x", "XOperator"),
        "ImportFailed",
        ("cannot import module airflow.providers.nothere.operators.x",),
    ),
    "parameters the class rejects": Case(
        lambda order: order("airflow.operators.bash", "BashOperator"),
        "InvalidParameters",
        ("BashOperator(task_id) rejected the parameters", "missing keyword argument 'bash_command'"),
    ),
    "a trigger class": Case(
        lambda order: order("airflow.triggers.temporal", "TimeDeltaTrigger", delta={"__type": "timedelta", "__var": 1}),
        "InvalidParameters",
        ("TimeDeltaTrigger is a trigger: triggers run in the operator",),
    ),
    "invalid connection": Case(
        lambda order: order("airflow.operators.bash", "BashOperator", bash_command="true"),
        "InvalidConnection",
        ("connection 'broken' is not a valid Airflow connection URI or JSON",),
        env={"AIRFLOW_CONN_BROKEN": "not a uri"},
    ),
    "a result too large for a termination message": Case(
        lambda order: order(
            "airflow.operators.python",
            "PythonOperator",
            python_callable={"__type": "callable", "__var": "task_callables.greet"},
            op_kwargs={"name": "x" * 5000},
        ),
        "OutcomeTooLarge",
        ("the step ended Succeeded (Completed)", "result 5009 bytes", "more than the 4096 bytes"),
    ),
}


@pytest.fixture(scope="module")
def canary_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A module outside the allowlist that leaves a mark when it is imported."""
    folder = tmp_path_factory.mktemp("canary")
    (folder / f"{CANARY}.py").write_text(
        "import pathlib\n\npathlib.Path(__file__).with_name('imported').write_text('yes')\n"
        "from airflow.sdk import BaseOperator\n\nclass Sneaky(BaseOperator):\n    pass\n"
    )
    return folder


@pytest.fixture(scope="module")
def finished(module_workers, order: Order, canary_dir: Path) -> Iterator[dict[str, Any]]:
    started = {
        name: module_workers.start(case.order(order), env=case.env, pythonpath=(canary_dir,))
        for name, case in CASES.items()
    }
    yield {name: process.wait() for name, process in started.items()}


@pytest.mark.parametrize("name", CASES)
def test_bad_input_ends_failed_with_a_reason(name: str, finished: dict[str, Any]) -> None:
    case, result = CASES[name], finished[name]
    outcome = result.outcome
    assert (outcome["phase"], outcome["reason"], outcome["retryable"], result.exit_code) == (
        "Failed",
        case.reason,
        False,
        1,
    ), outcome["message"]
    for text in case.says:
        assert text in outcome["message"]
    assert "Traceback" not in result.log


def test_a_module_outside_the_allowlist_is_not_imported(finished: dict[str, Any], canary_dir: Path) -> None:
    assert finished["module outside the allowlist"].outcome["reason"] == "NotAllowed"
    assert not (canary_dir / "imported").exists()
