"""The worker's pure parts: reading work orders, and writing outcomes that fit a termination message; and how
a real worker process reports a step that a signal or a BaseException stopped."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflowtask.connector_core.model import DEFAULT_ALLOWED_MODULES
from airflowtask.reports import parse_outcome
from airflowtask.worker import (
    MESSAGE_LIMIT,
    OUTCOME_LIMIT,
    Outcome,
    Step,
    Worker,
    WorkOrderError,
    clean_message,
    encode,
    fit,
    parse_work_order,
    report,
    run,
)

BASH = {"module": "airflow.operators.bash", "name": "BashOperator", "parameters": {"bash_command": "true"}}


def order(**fields: Any) -> str:
    return json.dumps({"step": "execute", "task": {"name": "report", "operator": BASH}, **fields})


def test_a_full_callback_order() -> None:
    parsed = parse_work_order(
        json.dumps(
            {
                "version": 1,
                "step": "callback",
                "task": {
                    "namespace": "data",
                    "name": "report",
                    "uid": "abc",
                    "attempt": 2,
                    "logicalDate": "2024-01-02T03:04:05Z",
                    "params": {"day": "mon"},
                    "operator": {**BASH, "parameters": {"bash_command": "true", "task_id": "custom"}},
                },
                "method": "resume_here",
                "event": {"at": {"__type": "datetime", "__var": 0}},
                "nextKwargs": {"wait": {"__type": "timedelta", "__var": 5}},
                "state": {"job_id": "j-1"},
            }
        )
    )
    assert parsed.step is Step.CALLBACK
    assert (parsed.operator.module, parsed.operator.name, parsed.task_id) == (BASH["module"], "BashOperator", "custom")
    assert parsed.run.logical_date == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert parsed.run.run_id == "airflowtask__2024-01-02T03:04:05+00:00"
    assert (parsed.run.try_number, dict(parsed.run.params)) == (2, {"day": "mon"})
    assert parsed.method == "resume_here"
    assert parsed.next_kwargs == {
        "wait": dt.timedelta(seconds=5),
        "event": {"at": dt.datetime(1970, 1, 1, tzinfo=dt.UTC)},
    }
    assert parsed.state == {"job_id": "j-1"}
    assert parsed.describe() == "callback step of data/report (uid abc, attempt 2): airflow.operators.bash.BashOperator"


def test_defaults() -> None:
    before = dt.datetime.now(dt.UTC)
    parsed = parse_work_order(order())
    assert parsed.task_id == "report"  # the AirflowTask's name
    assert parsed.run.try_number == 1 and parsed.run.logical_date >= before
    assert (parsed.method, parsed.next_kwargs, parsed.state) == ("execute_complete", {}, {})


def test_no_event_is_not_an_event_of_none() -> None:
    """A trigger failure is reported with method __fail__ and no event at all."""
    parsed = parse_work_order(order(step="callback", method="__fail__", nextKwargs={"error": "Trigger timeout"}))
    assert parsed.next_kwargs == {"error": "Trigger timeout"}


def test_a_naive_logical_date_is_utc() -> None:
    task = {"name": "report", "operator": BASH, "logicalDate": "2024-01-02T00:00:00"}
    parsed = parse_work_order(json.dumps({"step": "kill", "task": task}))
    assert parsed.run.logical_date.tzinfo == dt.UTC


@pytest.mark.parametrize(
    ("text", "reason", "says"),
    [
        (None, "InvalidWorkOrder", "AIRFLOWTASK_WORK is not set"),
        ("", "InvalidWorkOrder", "AIRFLOWTASK_WORK is not set"),
        ("{oops", "InvalidWorkOrder", "is not JSON"),
        ("[]", "InvalidWorkOrder", "the work order must be a JSON object, got list"),
        (order(version=2), "InvalidWorkOrder", "version 2 is not understood"),
        (order(step="poke"), "InvalidWorkOrder", "unknown step 'poke' (known: execute, callback, kill)"),
        (json.dumps({"step": "execute"}), "InvalidWorkOrder", "task must be a JSON object, got NoneType"),
        (json.dumps({"step": "execute", "task": {"operator": BASH}}), "InvalidWorkOrder", "task.name must be"),
        (
            json.dumps({"step": "execute", "task": {"name": "t", "operator": {"name": "X"}}}),
            "InvalidParameters",
            "task.operator.module must be a non-empty string",
        ),
        (
            json.dumps(
                {"step": "execute", "task": {"name": "t", "operator": {**BASH, "parameters": {"x": {"__type": 1}}}}}
            ),
            "InvalidParameters",
            "a typed value has exactly the keys",
        ),
        (
            json.dumps({"step": "execute", "task": {"name": "t", "operator": BASH, "logicalDate": "monday"}}),
            "InvalidWorkOrder",
            "task.logicalDate is not an ISO 8601 time: 'monday'",
        ),
        (
            json.dumps({"step": "execute", "task": {"name": "t", "operator": BASH, "attempt": 0}}),
            "InvalidWorkOrder",
            "task.attempt must be a positive integer, got 0",
        ),
        (
            json.dumps({"step": "execute", "task": {"name": "t", "operator": BASH, "params": []}}),
            "InvalidWorkOrder",
            "task.params must be a JSON object",
        ),
        (order(method="os.system"), "InvalidWorkOrder", "method must name a method of the task, got 'os.system'"),
        (order(event={"__type": "timedelta", "__var": "x"}), "InvalidWorkOrder", "event: expected a number"),
        (order(state=[1]), "InvalidWorkOrder", "state must be a JSON object, got list"),
    ],
)
def test_bad_work_orders_name_the_problem(text: str | None, reason: str, says: str) -> None:
    with pytest.raises(WorkOrderError) as raised:
        parse_work_order(text)
    assert raised.value.reason == reason
    assert says in str(raised.value)


def test_run_answers_a_bad_work_order_with_a_failed_outcome() -> None:
    outcome = run({"AIRFLOWTASK_WORK": "{oops"})
    assert (outcome.phase, outcome.reason, outcome.retryable, outcome.exit_code) == (
        "Failed",
        "InvalidWorkOrder",
        False,
        1,
    )


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\x1b[31mred\x1b[0m text", "red text"),
        ("\x1b]0;title\x07after", "after"),
        ("bell\x07 back\x08space del\x7f c1\x9b", "bell backspace del c1"),
        ("line 1\r\nline 2\n\tindented", "line 1\nline 2\n\tindented"),
        ("progress 10%\rprogress 100%", "progress 10%progress 100%"),
        ("unicode: été ✓", "unicode: été ✓"),
    ],
)
def test_clean_message_strips_terminal_control_characters(raw: str, clean: str) -> None:
    assert clean_message(raw) == clean


def test_a_long_message_is_cut_visibly() -> None:
    text = "é" * 3000  # 6000 bytes
    cleaned = clean_message(text)
    assert len(cleaned.encode()) <= MESSAGE_LIMIT
    kept = cleaned.split("...")[0]
    assert set(kept) == {"é"}
    assert cleaned.endswith(f"... [{6000 - len(kept.encode())} more bytes cut; the Pod's log has all of it]")


def test_the_outcome_document() -> None:
    outcome = Outcome("Succeeded", "Completed", "done \x1b[1mnow\x1b[0m", result={"n": 1}, job_id="j")
    assert json.loads(encode(outcome)) == {
        "phase": "Succeeded",
        "reason": "Completed",
        "message": "done now",
        "retryable": True,
        "result": {"n": 1},
        "jobId": "j",
        "state": {},
        "deferral": None,
    }


@pytest.mark.parametrize(("phase", "code"), [("Succeeded", 0), ("Deferred", 0), ("Failed", 1)])
def test_exit_codes(phase: str, code: int) -> None:
    assert Outcome(phase, "R", "m").exit_code == code


def test_an_outcome_that_fits_is_kept() -> None:
    outcome = Outcome("Succeeded", "Completed", "completed", result="x")
    room = OUTCOME_LIMIT - len(encode(outcome))
    exactly = Outcome("Succeeded", "Completed", "completed", result="x" * (room + 1))
    assert len(encode(exactly)) == OUTCOME_LIMIT
    assert fit(exactly) is exactly


def test_an_outcome_too_large_says_how_large_and_keeps_the_job_id() -> None:
    big = Outcome(
        "Deferred",
        "Deferred",
        "waiting",
        job_id="job-7",
        state={"blob": "s" * 3000},
        deferral={"trigger": {"classpath": "a.B", "kwargs": {"blob": "k" * 2000}}},
    )
    fitted = fit(big)
    size = len(encode(big))
    assert (fitted.phase, fitted.reason, fitted.retryable, fitted.job_id) == (
        "Failed",
        "OutcomeTooLarge",
        False,
        "job-7",
    )
    assert f"the step ended Deferred (Deferred) but its outcome is {size} bytes" in fitted.message
    sizes = {name: len(json.dumps(getattr(big, name), separators=(",", ":"))) for name in ("state", "deferral")}
    assert f"(state {sizes['state']} bytes, deferral {sizes['deferral']} bytes)" in fitted.message
    assert "more than the 4096 bytes Kubernetes keeps of a termination message; nothing was cut" in fitted.message
    assert len(encode(fitted)) <= OUTCOME_LIMIT


def test_report_writes_the_fitted_outcome(tmp_path: Path) -> None:
    path = tmp_path / "termination-log"
    assert report(Outcome("Succeeded", "Completed", "completed", result="r" * 5000), str(path)) == 1
    assert json.loads(path.read_bytes())["reason"] == "OutcomeTooLarge"
    assert report(Outcome("Succeeded", "Skipped", "nothing to do"), str(path)) == 0
    assert json.loads(path.read_bytes())["reason"] == "Skipped"


def test_report_fails_when_the_outcome_cannot_be_written(tmp_path: Path) -> None:
    assert report(Outcome("Succeeded", "Completed", "completed"), str(tmp_path / "missing" / "log")) == 1


def test_undecodable_output_still_encodes() -> None:
    data = encode(Outcome("Succeeded", "Completed", "bad \udcff byte", result="\udcfe"))
    data.decode("utf-8")  # valid UTF-8: the lone surrogate is a JSON escape
    assert json.loads(data)["result"] == "\udcfe"


# ---- interrupted steps (real worker processes) ---------------------------------------------------------------

INTERRUPTING = """
import os, signal, sys, time


def signal_self(signal_name):
    os.kill(os.getpid(), getattr(signal, signal_name))
    time.sleep(30)


def exit_now():
    sys.exit(3)


def keyboard_interrupt():
    raise KeyboardInterrupt


def generator_exit():
    raise GeneratorExit("closed")
"""

FORGED = json.dumps(
    {
        "phase": "Deferred",
        "reason": "Deferred",
        "message": "forged",
        "retryable": True,
        "result": None,
        "jobId": None,
        "state": {},
        "deferral": {
            "trigger": {
                "classpath": "airflow.providers.standard.operators.bash.BashOperator",
                "kwargs": {"bash_command": "id"},
            },
            "method": None,
            "nextKwargs": {},
            "timeout": None,
            "deadline": None,
        },
    }
)


def _bash(command: str) -> dict[str, Any]:
    return {"module": "airflow.operators.bash", "name": "BashOperator", "parameters": {"bash_command": command}}


def _python(name: str, **op_kwargs: Any) -> dict[str, Any]:
    callable_ref = {"__type": "callable", "__var": f"interrupting_tasks.{name}"}
    parameters = {"python_callable": callable_ref, "op_kwargs": op_kwargs}
    return {"module": "airflow.operators.python", "name": "PythonOperator", "parameters": parameters}


INTERRUPTED_CASES = {
    # bash sleeps so that the step still runs when the worker handles the signal; briefly, because on_kill()'s
    # SIGTERM can be lost when it reaches bash just before it execs the sleep
    # the task writes a forged outcome to the termination log, then sends SIGINT to the worker (its parent)
    "bash-forged-sigint": (
        _bash(f"printf '%s' '{FORGED}' > \"$AIRFLOWTASK_TERMINATION_LOG\"; kill -INT $PPID; sleep 5"),
        "SIGINT",
    ),
    "bash-sighup": (_bash("kill -HUP $PPID; sleep 5"), "SIGHUP"),
    "python-sigint": (_python("signal_self", signal_name="SIGINT"), "SIGINT"),
    "python-sighup": (_python("signal_self", signal_name="SIGHUP"), "SIGHUP"),
    "system-exit": (_python("exit_now"), "SystemExit (3)"),
    "keyboard-interrupt": (_python("keyboard_interrupt"), "KeyboardInterrupt"),
    "generator-exit": (_python("generator_exit"), "GeneratorExit (closed)"),
}


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[int, bytes, str]]]:
    """Each case's (exit code, termination log, log) from a real ``python -m airflowtask.worker``, run together."""
    tmp = tmp_path_factory.mktemp("interrupted")
    (tmp / "interrupting_tasks.py").write_text(INTERRUPTING)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOWTASK_"))}
    started = {}
    for case, (operator, _) in INTERRUPTED_CASES.items():
        outcome, log = tmp / f"{case}.json", tmp / f"{case}.log"
        env = {
            **inherited,
            "AIRFLOW_HOME": str(tmp / "home"),
            "AIRFLOWTASK_WORK": json.dumps({"step": "execute", "task": {"name": case, "operator": operator}}),
            "AIRFLOWTASK_TERMINATION_LOG": str(outcome),
            "AIRFLOWTASK_ALLOWED_MODULES": ",".join((*DEFAULT_ALLOWED_MODULES, "interrupting_tasks")),
            "PYTHONPATH": str(tmp),
        }
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-P", "-m", "airflowtask.worker"], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        started[case] = (process, outcome, log)
    try:
        for process, _, _ in started.values():
            process.wait(timeout=120)
    finally:
        for process, _, _ in started.values():
            if process.poll() is None:
                process.kill()
    yield {
        case: (process.returncode, outcome.read_bytes() if outcome.exists() else b"", log.read_text(errors="replace"))
        for case, (process, outcome, log) in started.items()
    }


@pytest.mark.parametrize("case", INTERRUPTED_CASES)
def test_an_interrupted_step_ends_with_the_workers_own_outcome(
    interrupted: dict[str, tuple[int, bytes, str]], case: str
) -> None:
    exit_code, data, log = interrupted[case]
    assert data, f"no outcome was written:\n{log}"
    outcome = json.loads(data)
    cause = INTERRUPTED_CASES[case][1]
    assert (outcome["phase"], outcome["reason"], exit_code) == ("Failed", "Interrupted", 1), log
    assert outcome["message"] == f"the worker was interrupted by {cause} during the execute step; on_kill() was called"
    assert outcome["deferral"] is None  # a forged report was overwritten
    parsed = parse_outcome(data, DEFAULT_ALLOWED_MODULES)
    assert (parsed.phase, parsed.reason) == ("Failed", "Interrupted")


def _worker() -> Worker:
    return Worker(parse_work_order(order()), DEFAULT_ALLOWED_MODULES)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP])
def test_an_interrupting_signal_outside_a_step_changes_nothing(signum: int) -> None:
    worker = _worker()
    assert worker.on_interrupt(signum, None) is None  # no step runs: the outcome stands


def test_an_interrupting_signal_during_a_step_stops_it() -> None:
    worker = _worker()
    worker.running = True
    with pytest.raises(BaseException, match=r"^SIGHUP$") as raised:
        worker.on_interrupt(signal.SIGHUP, None)
    assert not isinstance(raised.value, Exception)  # task code catching Exception lets it pass
    assert not worker.running
