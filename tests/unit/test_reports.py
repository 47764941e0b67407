"""The outcome parser: every outcome the real worker writes is read; anything else is refused, by name."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from airflowtask import reports, worker
from airflowtask.connector_core.model import DEFAULT_ALLOWED_MODULES, Reason
from airflowtask.reports import (
    Deferral,
    InvalidReport,
    Outcome,
    ReportPhase,
    check_classpath,
    check_data,
    check_trigger_kwargs,
    parse_outcome,
)

ALLOWED = DEFAULT_ALLOWED_MODULES
FILE_TRIGGER = "airflow.providers.standard.triggers.file.FileTrigger"
CALLABLE = {"__type": "callable", "__var": "os.system"}


def deferred_document() -> dict[str, Any]:
    """A Deferred outcome as the worker's own Outcome writes it."""
    outcome = worker.Outcome(
        worker.DEFERRED,
        Reason.DEFERRED,
        "waiting for trigger FileTrigger",
        job_id="job-1",
        state={"job_id": "job-1", "wait": {"__type": "timedelta", "__var": 5.0}},
        deferral={
            "trigger": {"classpath": FILE_TRIGGER, "kwargs": {"filepath": "/data/x", "poke_interval": 30.0}},
            "method": "execute_complete",
            "nextKwargs": {"since": {"__type": "datetime", "__var": 1704153600.0}},
            "timeout": 120.0,
            "deadline": "2024-01-02T00:02:00+00:00",
        },
    )
    return json.loads(worker.encode(outcome))


def succeeded_document() -> dict[str, Any]:
    return json.loads(worker.encode(worker.Outcome("Succeeded", Reason.COMPLETED, "completed", result={"n": 1})))


def refused(document: Any) -> str:
    raw = json.dumps(document) if isinstance(document, dict) else document
    with pytest.raises(InvalidReport) as raised:
        parse_outcome(raw, ALLOWED)
    assert raised.value.message == str(raised.value)
    return raised.value.message


# ---- what the real worker writes -----------------------------------------------------------------------------


def _work(module: str, name: str, **parameters: Any) -> str:
    operator = {"module": module, "name": name, "parameters": parameters}
    return json.dumps({"step": "execute", "task": {"name": "task", "operator": operator}})


REAL_WORK = {
    "completed": _work("airflow.operators.bash", "BashOperator", bash_command="echo hi"),
    "skipped": _work("airflow.operators.bash", "BashOperator", bash_command="exit 99"),
    "failed": _work("airflow.operators.bash", "BashOperator", bash_command="exit 3"),
    "file-sensor": _work("airflow.sensors.filesystem", "FileSensor", filepath="/nonexistent/x", timeout=120),
    "date-sensor": _work("airflow.sensors.date_time", "DateTimeSensorAsync", target_time="2099-01-01T00:00:00+00:00"),
}


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, bytes]]:
    """The termination messages of real worker processes (started together), by case."""
    tmp = tmp_path_factory.mktemp("real-worker")
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOWTASK_"))}
    started: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    for case, work in REAL_WORK.items():
        path = tmp / f"{case}.json"
        env = {
            **inherited,
            "AIRFLOW_HOME": str(tmp / "home"),
            "AIRFLOWTASK_WORK": work,
            "AIRFLOWTASK_TERMINATION_LOG": str(path),
        }
        command = [sys.executable, "-P", "-m", "airflowtask.worker"]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started[case] = (process, path)
    for process, _ in started.values():
        process.wait(timeout=120)
    yield {case: path.read_bytes() for case, (_, path) in started.items()}


@pytest.mark.parametrize(
    ("case", "phase", "reason"),
    [
        ("completed", "Succeeded", "Completed"),
        ("skipped", "Succeeded", "Skipped"),
        ("failed", "Failed", "TaskFailed"),
    ],
)
def test_the_real_workers_finished_outcomes_parse(real: dict[str, bytes], case: str, phase: str, reason: str) -> None:
    outcome = parse_outcome(real[case], ALLOWED)
    assert (outcome.phase, outcome.reason, outcome.deferral, outcome.state) == (phase, reason, None, {})
    assert outcome.message == json.loads(real[case])["message"]
    assert parse_outcome(real[case].decode(), ALLOWED) == outcome  # the API hands over text


def test_the_real_workers_deferral_parses(real: dict[str, bytes]) -> None:
    outcome = parse_outcome(real["file-sensor"], ALLOWED)
    assert (outcome.phase, outcome.reason, outcome.message) == (
        "Deferred",
        "Deferred",
        "waiting for trigger FileTrigger",
    )
    deferral = outcome.deferral
    assert deferral is not None
    assert (deferral.classpath, deferral.method) == (FILE_TRIGGER, "execute_complete")
    assert deferral.kwargs["filepath"] == "/nonexistent/x"
    assert deferral.timeout == pytest.approx(120, abs=1)
    assert deferral.deadline is not None and deferral.deadline.tzinfo is not None
    assert deferral.document() == {**json.loads(real["file-sensor"])["deferral"], "timeout": deferral.timeout}


def test_the_real_workers_typed_trigger_kwargs_parse(real: dict[str, bytes]) -> None:
    outcome = parse_outcome(real["date-sensor"], ALLOWED)
    assert outcome.deferral is not None
    assert outcome.deferral.classpath == "airflow.providers.standard.triggers.temporal.DateTimeTrigger"
    assert outcome.deferral.kwargs["moment"]["__type"] == "datetime"


def test_a_deferred_outcome_of_the_workers_own_outcome_type() -> None:
    outcome = parse_outcome(json.dumps(deferred_document()), ALLOWED)
    assert outcome == Outcome(
        ReportPhase.DEFERRED,
        Reason.DEFERRED,
        "waiting for trigger FileTrigger",
        True,
        None,
        "job-1",
        {"job_id": "job-1", "wait": {"__type": "timedelta", "__var": 5.0}},
        Deferral(
            FILE_TRIGGER,
            {"filepath": "/data/x", "poke_interval": 30.0},
            "execute_complete",
            {"since": {"__type": "datetime", "__var": 1704153600.0}},
            120.0,
            datetime(2024, 1, 2, 0, 2, tzinfo=UTC),
        ),
    )
    assert outcome.deferral is not None and outcome.deferral.document() == deferred_document()["deferral"]


@pytest.mark.parametrize(
    "outcome",
    [
        worker.fit(worker.Outcome("Succeeded", Reason.COMPLETED, "completed", result="r" * 5000, job_id="j")),
        worker.run({"AIRFLOWTASK_WORK": "{oops"}),  # InvalidWorkOrder
        worker.Outcome("Failed", Reason.NOT_ALLOWED, "os.system is not allowed: ...", retryable=False),
        worker.Outcome("Failed", Reason.CANCELLED, "the Pod was terminated (SIGTERM)", job_id="j"),
        worker.Outcome("Failed", Reason.INTERRUPTED, "the worker was interrupted by SIGINT", retryable=False),
        worker.Outcome("Failed", Reason.TASK_FAILED, "\x1b[31mboom\x1b[0m\r\n" + "é" * 3000),  # cleaned, cut
        worker.Outcome("Succeeded", Reason.COMPLETED, "done", result=[[[["deep"]]]], job_id=None),
        worker.Outcome("Succeeded", Reason.COMPLETED, "bad \udcff byte", result="\udcfe"),
    ],
    ids=[
        "too-large",
        "bad-work-order",
        "not-allowed",
        "cancelled",
        "interrupted",
        "long-message",
        "nested-result",
        "lone-surrogate",
    ],
)
def test_outcomes_built_by_the_worker_parse(outcome: worker.Outcome) -> None:
    data = worker.encode(outcome)
    parsed = parse_outcome(data, ALLOWED)
    document = json.loads(data)
    assert (parsed.phase, parsed.reason, parsed.message, parsed.retryable) == (
        document["phase"],
        document["reason"],
        document["message"],
        document["retryable"],
    )
    assert (parsed.result, parsed.job_id) == (document["result"], document["jobId"])


def test_the_limits_are_the_workers() -> None:
    assert (reports.OUTCOME_LIMIT, reports.MESSAGE_LIMIT) == (worker.OUTCOME_LIMIT, worker.MESSAGE_LIMIT)


def test_every_reason_the_worker_writes_is_known() -> None:
    """The worker's docstring lists the reasons it writes; each parses with its phase."""
    for reason in ("Completed", "Skipped"):
        parse_outcome(json.dumps({**succeeded_document(), "reason": reason}), ALLOWED)
    failed = [
        "TaskFailed",
        "FailedNoRetry",
        "SensorTimeout",
        "Cancelled",
        "NotAllowed",
        "ImportFailed",
        "InvalidParameters",
        "InvalidConnection",
        "InvalidWorkOrder",
        "OutcomeTooLarge",
        "Interrupted",
    ]
    for reason in failed:
        parse_outcome(json.dumps({**succeeded_document(), "phase": "Failed", "reason": reason}), ALLOWED)


# ---- refusals ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (42, "the outcome must be text, got int"),
        (b"x" * 4097, "the outcome is 4097 bytes, more than the 4096 a worker writes"),
        ("é" * 2049, "the outcome is 4098 bytes, more than the 4096 a worker writes"),
        (b"\xff", "the outcome is not UTF-8 text (byte 0)"),
        ("[" * 33 + "]" * 33, "the outcome is nested deeper than 32 levels"),
        ('{"s": "[[[["}', "the outcome has an unknown key 's'"),  # brackets in strings are not nesting
        ("", "the outcome is not JSON: Expecting value at character 0"),
        ("{oops", "the outcome is not JSON: Expecting property name enclosed in double quotes at character 1"),
        ('{"a": NaN}', "the outcome holds NaN, which is not JSON"),
        ('{"a": -Infinity}', "the outcome holds -Infinity, which is not JSON"),
        ('{"phase": "Failed", "phase": "Succeeded"}', "the outcome repeats the key 'phase'"),
        ("[]", "the outcome must be a JSON object, got a list"),
        ('"Succeeded"', "the outcome must be a JSON object, got 'Succeeded'"),
    ],
)
def test_what_is_not_a_json_outcome_is_refused(raw: Any, message: str) -> None:
    assert refused(raw) == message


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split(".")

    def mutate(document: dict[str, Any]) -> None:
        for key in parents:
            document = document[key]
        document[last] = value

    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split(".")

    def mutate(document: dict[str, Any]) -> None:
        for key in parents:
            document = document[key]
        del document[last]

    return mutate


KWARGS = "deferral.trigger.kwargs"

DEFERRED_REFUSALS = [
    (_set("extra", 1), "the outcome has an unknown key 'extra'"),
    (_drop("phase"), "the outcome lacks the key 'phase'"),
    (_drop("deferral"), "the outcome lacks the key 'deferral'"),
    (_set("phase", "Running"), "phase must be one of Succeeded, Failed, Deferred, got 'Running'"),
    (_set("phase", ["Deferred"]), "phase must be one of Succeeded, Failed, Deferred, got a list"),
    (_set("reason", "Bogus"), "reason must be one of the reasons a worker reports, got 'Bogus'"),
    (_set("reason", "x" * 100), f"reason must be one of the reasons a worker reports, got {'x' * 40!r}..."),
    (_set("reason", "Completed"), "reason Completed does not go with phase Deferred"),
    (_set("message", 5), "message must be a string, got 5"),
    (_set("message", "m" * 1025), "message is 1025 bytes, more than the 1024 a worker writes"),
    (_set("message", "\x1b[31mred"), "message holds terminal control characters"),
    (_set("message", "a\rb"), "message holds terminal control characters"),
    (_set("retryable", "yes"), "retryable must be true or false, got 'yes'"),
    (_set("retryable", None), "retryable must be true or false, got None"),
    (_set("jobId", 5), "jobId must be a string or null, got 5"),
    (_set("jobId", "j" * 513), "jobId is longer than 512 characters"),
    (_set("jobId", "a\nb"), "jobId holds control characters"),
    (_set("state", []), "state must be a JSON object, got a list"),
    (_set("state.fn", CALLABLE), "state.fn: a callable reference is not data"),
    (_set("deferral", None), "deferral is required when phase is Deferred"),
    (_set("deferral", []), "deferral must be a JSON object, got a list"),
    (_set("deferral.extra", 1), "deferral has an unknown key 'extra'"),
    (_drop("deferral.method"), "deferral lacks the key 'method'"),
    (_set("deferral.trigger", "x.Y"), "deferral.trigger must be a JSON object, got 'x.Y'"),
    (_set("deferral.trigger.extra", 1), "deferral.trigger has an unknown key 'extra'"),
    (_drop("deferral.trigger.kwargs"), "deferral.trigger lacks the key 'kwargs'"),
    (_set("deferral.trigger.classpath", 5), "deferral.trigger.classpath must be a string, got 5"),
    (_set("deferral.trigger.classpath", "a." * 300 + "B"), "deferral.trigger.classpath is longer than 512 characters"),
    (
        _set("deferral.trigger.classpath", "os system"),
        "deferral.trigger.classpath must be a dotted Python path, got 'os system'",
    ),
    (
        _set("deferral.trigger.classpath", "Trigger"),
        "deferral.trigger.classpath must be a dotted Python path, got 'Trigger'",
    ),
    (_set("deferral.trigger.classpath", "a.b."), "deferral.trigger.classpath must be a dotted Python path, got 'a.b.'"),
    (
        _set("deferral.trigger.classpath", "airflow.providers.standard.operators.bash.BashOperator"),
        "deferral.trigger.classpath airflow.providers.standard.operators.bash.BashOperator is not a trigger",
    ),
    (
        _set("deferral.trigger.classpath", "airflow.providers.standard.sensors.filesystem.FileSensor"),
        "deferral.trigger.classpath airflow.providers.standard.sensors.filesystem.FileSensor is not a trigger",
    ),
    (
        _set("deferral.trigger.classpath", "airflow.providers.standard.hooks.subprocess.SubprocessHook"),
        "deferral.trigger.classpath airflow.providers.standard.hooks.subprocess.SubprocessHook is not a trigger",
    ),
    (
        _set("deferral.trigger.classpath", "airflow.operators.bash.BashOperator"),  # an Airflow 2 path
        "deferral.trigger.classpath airflow.operators.bash.BashOperator is not a trigger",
    ),
    (
        _set("deferral.trigger.classpath", "airflow.providers.standard.triggers.file.BaseOperator"),
        "deferral.trigger.classpath airflow.providers.standard.triggers.file.BaseOperator is not a trigger",
    ),
    (
        _set("deferral.trigger.classpath", "subprocess.Popen"),
        "deferral.trigger.classpath subprocess.Popen is not allowed: module subprocess matches none of the allowed "
        f"patterns {', '.join(ALLOWED)}",
    ),
    (_set(KWARGS, []), f"{KWARGS} must be a JSON object, got a list"),
    (_set(f"{KWARGS}.callback", CALLABLE), f"{KWARGS}.callback: a callable reference is not data"),
    (_set(f"{KWARGS}.cbs", [1, CALLABLE]), f"{KWARGS}.cbs[1]: a callable reference is not data"),
    (_set(f"{KWARGS}.t", {"__type": "tuple", "__var": [CALLABLE]}), f"{KWARGS}.t[0]: a callable reference is not data"),
    (
        _set(f"{KWARGS}.d", {"__type": "dict", "__var": {"k": {"x": CALLABLE}}}),
        f"{KWARGS}.d.k.x: a callable reference is not data",
    ),
    (_set(f"{KWARGS}.a b", CALLABLE), f"{KWARGS}['a b']: a callable reference is not data"),
    (_set(f"{KWARGS}.x", {"__type": "pickle", "__var": "gASV"}), f"{KWARGS}.x: unknown __type 'pickle'"),
    (_set(f"{KWARGS}.x", {"__type": 1, "__var": 1}), f"{KWARGS}.x: unknown __type 1"),
    (
        _set(f"{KWARGS}.x", {"__type": "timedelta", "__var": 1, "more": 2}),
        f"{KWARGS}.x: a typed value has exactly the keys '__type' and '__var'",
    ),
    (
        _set(f"{KWARGS}.x", {"__type": "timedelta"}),
        f"{KWARGS}.x: a typed value has exactly the keys '__type' and '__var'",
    ),
    (
        _set(f"{KWARGS}.x", {"__type": "timedelta", "__var": "x"}),
        f"{KWARGS}.x: a timedelta is a number of seconds, got 'x'",
    ),
    (
        _set(f"{KWARGS}.x", {"__type": "timedelta", "__var": True}),
        f"{KWARGS}.x: a timedelta is a number of seconds, got True",
    ),
    (
        _set(f"{KWARGS}.x", {"__type": "datetime", "__var": "monday"}),
        f"{KWARGS}.x: a datetime is a POSIX timestamp or an ISO 8601 time, got 'monday'",
    ),
    (
        _set(f"{KWARGS}.x", {"__type": "datetime", "__var": 1e20}),
        f"{KWARGS}.x: a datetime is a POSIX timestamp or an ISO 8601 time, got 1e+20",
    ),
    (_set(f"{KWARGS}.x", {"__type": "date", "__var": "x"}), f"{KWARGS}.x: a date is an ISO 8601 date, got 'x'"),
    (_set(f"{KWARGS}.x", {"__type": "time", "__var": 5}), f"{KWARGS}.x: a time is an ISO 8601 time of day, got 5"),
    (
        _set(f"{KWARGS}.x", {"__type": "timezone", "__var": "../etc/passwd"}),
        f"{KWARGS}.x: a timezone is 'UTC', '+HH:MM' or an IANA name, got '../etc/passwd'",
    ),
    (
        _set(f"{KWARGS}.x", {"__type": "relativedelta", "__var": []}),
        f"{KWARGS}.x: a relativedelta is an object, got a list",
    ),
    (
        _set(f"{KWARGS}.x", {"__type": "relativedelta", "__var": {"eons": 1}}),
        f"{KWARGS}.x: a relativedelta has no field 'eons'",
    ),
    (
        _set(f"{KWARGS}.x", {"__type": "relativedelta", "__var": {"days": "1"}}),
        f"{KWARGS}.x.days: a relativedelta field is a number, got '1'",
    ),
    (_set(f"{KWARGS}.x", {"__type": "set", "__var": 5}), f"{KWARGS}.x: a set is a list, got 5"),
    (_set(f"{KWARGS}.x", {"__type": "dict", "__var": []}), f"{KWARGS}.x: a dict is an object, got a list"),
    (_set("deferral.nextKwargs", None), "deferral.nextKwargs must be a JSON object, got None"),
    (_set("deferral.nextKwargs.event", CALLABLE), "deferral.nextKwargs.event: a callable reference is not data"),
    (_set("deferral.method", "os.system"), "deferral.method must be a method name or null, got 'os.system'"),
    (_set("deferral.method", 5), "deferral.method must be a method name or null, got 5"),
    (_set("deferral.timeout", -1), "deferral.timeout must be a number of seconds (at least 0) or null, got -1"),
    (_set("deferral.timeout", True), "deferral.timeout must be a number of seconds (at least 0) or null, got True"),
    (
        _set("deferral.deadline", "monday"),
        "deferral.deadline must be an ISO 8601 time with a timezone or null, got 'monday'",
    ),
    (
        _set("deferral.deadline", "2024-01-02T00:00:00"),
        "deferral.deadline must be an ISO 8601 time with a timezone or null, got '2024-01-02T00:00:00'",
    ),
    (_set("deferral.deadline", 5), "deferral.deadline must be an ISO 8601 time with a timezone or null, got 5"),
    (_set("deferral.deadline", None), "deferral.timeout and deferral.deadline must both be set or both be null"),
]


@pytest.mark.parametrize(("mutate", "message"), DEFERRED_REFUSALS, ids=[m for _, m in DEFERRED_REFUSALS])
def test_each_rule_of_a_deferred_outcome(mutate: Callable[[dict[str, Any]], None], message: str) -> None:
    document = deferred_document()
    mutate(document)
    assert refused(document) == message


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_set("deferral", deferred_document()["deferral"]), "deferral must be null when phase is Succeeded"),
        (_set("state", {"job_id": "j"}), "state must be empty when phase is Succeeded"),
        (_set("reason", "Deferred"), "reason Deferred does not go with phase Succeeded"),
        (_set("reason", "TaskFailed"), "reason TaskFailed does not go with phase Succeeded"),
        (_set("reason", "Executing"), "reason Executing does not go with phase Succeeded"),
    ],
)
def test_each_rule_of_a_finished_outcome(mutate: Callable[[dict[str, Any]], None], message: str) -> None:
    document = succeeded_document()
    mutate(document)
    assert refused(document) == message


def test_a_failed_outcome_cannot_claim_success_or_a_running_reason() -> None:
    for reason in ("Completed", "Skipped", "Deferred", "Executing", "Waiting"):
        document = {**succeeded_document(), "phase": "Failed", "reason": reason}
        assert refused(document) == f"reason {reason} does not go with phase Failed"


def test_only_the_first_problem_is_named() -> None:
    document = {**deferred_document(), "phase": "Running", "reason": "Bogus"}
    assert refused(document) == "phase must be one of Succeeded, Failed, Deferred, got 'Running'"


def test_a_module_level_function_passes_the_parser_for_the_triggerer_to_refuse() -> None:
    """Only an import can tell a function from a trigger class; the triggerer checks BaseTrigger at import."""
    document = deferred_document()
    document["deferral"]["trigger"]["classpath"] = "airflow.providers.standard.triggers.temporal.timezone"
    parsed = parse_outcome(json.dumps(document), ALLOWED)
    assert parsed.deferral is not None


def test_the_allowlist_is_the_one_given() -> None:
    document = deferred_document()
    assert parse_outcome(json.dumps(document), ("airflow.providers.standard.triggers.*",)).deferral is not None
    with pytest.raises(InvalidReport, match=r"matches none of the allowed patterns mine\.\*$"):
        parse_outcome(json.dumps(document), ("mine.*",))
    with pytest.raises(InvalidReport, match=r"matches none of the allowed patterns \(none\)$"):
        parse_outcome(json.dumps(document), ())


def test_the_whole_outcome_may_be_4096_bytes() -> None:
    document = succeeded_document()
    document["result"] = ""
    room = reports.OUTCOME_LIMIT - len(json.dumps(document).encode())
    document["result"] = "r" * room
    assert parse_outcome(json.dumps(document), ALLOWED).result == "r" * room
    document["result"] += "r"
    assert refused(document) == "the outcome is 4097 bytes, more than the 4096 a worker writes"


def test_nesting_up_to_the_limit_is_fine() -> None:
    document = succeeded_document()
    document["result"] = json.loads("[" * 31 + "]" * 31)  # the outcome itself is the first level
    assert parse_outcome(json.dumps(document), ALLOWED).result == document["result"]
    document["result"] = [document["result"]]
    assert refused(document) == "the outcome is nested deeper than 32 levels"


def test_long_keys_and_values_are_cut_in_messages() -> None:
    document = deferred_document()
    document["deferral"]["trigger"]["kwargs"] = {"k" * 100: CALLABLE}
    assert refused(document) == f"{KWARGS}[{'k' * 40!r}...]: a callable reference is not data"
    key = "\x1b[2J" + "x" * 100
    document = {**deferred_document(), key: 1}
    assert refused(document) == f"the outcome has an unknown key {key[:40]!r}..."


def test_parsing_imports_nothing() -> None:
    text = json.dumps(deferred_document())
    before = set(sys.modules)
    parse_outcome(text, ALLOWED)
    with pytest.raises(InvalidReport):
        parse_outcome(text.replace(FILE_TRIGGER, "airflow.providers.standard.operators.bash.BashOperator"), ALLOWED)
    assert set(sys.modules) == before


def test_the_module_imports_neither_airflow_nor_kopf() -> None:
    code = (
        "import sys, airflowtask.reports\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('airflow', 'kopf', 'kubernetes', 'pendulum')]\n"
        "print(bad)"
    )
    done = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# ---- the checks the triggerer reuses -------------------------------------------------------------------------


def test_check_trigger_kwargs() -> None:
    check_trigger_kwargs({"moment": {"__type": "datetime", "__var": "2024-01-02T00:00:00+00:00"}, "n": [1, None]})
    with pytest.raises(InvalidReport, match=r"^deferral\.trigger\.kwargs\.f: a callable reference is not data$"):
        check_trigger_kwargs({"f": CALLABLE})
    with pytest.raises(InvalidReport, match=r"^kwargs must be a JSON object, got a list$"):
        check_trigger_kwargs([], where="kwargs")


def test_check_data_refuses_python_values_json_cannot_hold() -> None:
    with pytest.raises(InvalidReport, match=r"^event\.f: a builtin_function_or_method is not JSON$"):
        check_data({"f": print}, "event")
    with pytest.raises(InvalidReport, match=r"^event\[0\]: nan is not JSON$"):
        check_data([float("nan")], "event")
    with pytest.raises(InvalidReport, match=r"^event: a tuple is not JSON$"):
        check_data((1,), "event")


def test_check_data_has_no_depth_limit_of_its_own() -> None:
    deep: Any = CALLABLE
    for _ in range(20000):
        deep = [deep]
    with pytest.raises(InvalidReport, match=r"a callable reference is not data$"):
        check_data(deep, "event")


@pytest.mark.parametrize(
    "value",
    [
        {"__type": "timedelta", "__var": 1.5},
        {"__type": "datetime", "__var": 0},
        {"__type": "datetime", "__var": "2024-01-02T00:00:00Z"},
        {"__type": "date", "__var": "2024-01-31"},
        {"__type": "time", "__var": "12:30:00+02:00"},
        {"__type": "timezone", "__var": "Europe/Paris"},
        {"__type": "timezone", "__var": "+02:00"},
        {"__type": "relativedelta", "__var": {"days": 1, "hours": 2.5}},
        {"__type": "tuple", "__var": [1, {"__type": "set", "__var": ["a"]}]},
        {"__type": "dict", "__var": {"a": {"__type": "timedelta", "__var": 1}}},
        {"__var": "a plain object with a __var key"},
    ],
)
def test_every_data_type_is_accepted(value: Any) -> None:
    check_data({"v": value}, "event")


def test_check_classpath() -> None:
    assert check_classpath(FILE_TRIGGER, ALLOWED) == FILE_TRIGGER
    with pytest.raises(InvalidReport, match=r"^classpath a\.operators\.B is not a trigger$"):
        check_classpath("a.operators.B", ["a.*"], where="classpath")


def test_an_outcome_is_frozen() -> None:
    outcome = parse_outcome(json.dumps(succeeded_document()), ALLOWED)
    with pytest.raises(AttributeError):
        outcome.phase = ReportPhase.FAILED  # type: ignore[misc]
    assert copy.copy(outcome) == outcome
