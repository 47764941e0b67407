"""Property tests of the outcome parser: whatever a Pod writes, parse_outcome returns an Outcome or raises
InvalidReport (nothing else), imports nothing, and what it accepts keeps the promises the operator relies on."""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import Any

from airflowtask import worker
from airflowtask.connector_core.model import DEFAULT_ALLOWED_MODULES, Reason
from airflowtask.reports import (
    DATA_TYPES,
    MESSAGE_LIMIT,
    NOT_TRIGGER_PACKAGES,
    InvalidReport,
    Outcome,
    ReportPhase,
    parse_outcome,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ALLOWED = DEFAULT_ALLOWED_MODULES
FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
typed_values = st.fixed_dictionaries(
    {"__type": st.sampled_from(sorted(DATA_TYPES | {"callable", "pickle"})) | json_values, "__var": json_values}
)
"""Typed-looking values: data types with any ``__var``, callables, unknown types."""


def _documents() -> list[dict[str, Any]]:
    """Valid outcomes, built with the worker's own Outcome."""
    deferred = worker.Outcome(
        worker.DEFERRED,
        Reason.DEFERRED,
        "waiting for trigger FileTrigger",
        job_id="job-1",
        state={"job_id": "job-1", "wait": {"__type": "timedelta", "__var": 5.0}},
        deferral={
            "trigger": {
                "classpath": "airflow.providers.standard.triggers.file.FileTrigger",
                "kwargs": {"filepath": "/data/x", "at": {"__type": "datetime", "__var": 0}, "n": [1, 2]},
            },
            "method": "execute_complete",
            "nextKwargs": {"since": {"__type": "tuple", "__var": [1, "a"]}},
            "timeout": 120.0,
            "deadline": "2024-01-02T00:02:00+00:00",
        },
    )
    finished = [
        worker.Outcome("Succeeded", Reason.COMPLETED, "completed", result={"rows": [1, 2], "ok": True}),
        worker.Outcome("Failed", Reason.TASK_FAILED, "boom", job_id="j-2"),
    ]
    return [json.loads(worker.encode(outcome)) for outcome in (deferred, *finished)]


DOCUMENTS = _documents()


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into ``value`` (dict keys and list indexes), the root included."""
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*path, index))


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


def _nested(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid outcome with one thing changed: a key removed, a value replaced (another type, a huge string,
    deep nesting, a typed value), or an unknown key added."""
    document = copy.deepcopy(draw(st.sampled_from(DOCUMENTS)))
    path = draw(st.sampled_from(list(_paths(document))))
    replacement = draw(
        st.one_of(
            json_values,
            typed_values,
            st.text(min_size=1000, max_size=5000),
            st.integers(0, 80).map(lambda depth: _nested(1, depth)),
            st.sampled_from(["Deferred", "Succeeded", "Failed", "Completed", "Interrupted", "InvalidOutcome"]),
            st.sampled_from(
                [
                    "airflow.providers.standard.operators.bash.BashOperator",
                    "airflow.providers.standard.triggers.temporal.timezone",
                    "subprocess.Popen",
                    "airflow.providers.standard.triggers.temporal.DateTimeTrigger",
                ]
            ),
        )
    )
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    if not path:
        return document if action != "add" else {**document, draw(st.text(max_size=8)): replacement}
    parent, key = _at(document, path[:-1]), path[-1]
    target = _at(document, path)
    if action == "remove":
        del parent[key]
    elif action == "add" and isinstance(target, dict):
        target[draw(st.text(max_size=8))] = replacement
    else:
        parent[key] = replacement
    return document


def _contains_callable(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("__type") == "callable":
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parses_or_refuses(raw: str | bytes) -> Outcome | None:
    """The property: an Outcome or InvalidReport, nothing else, no module imported; accepted outcomes hold."""
    before = set(sys.modules)
    try:
        outcome = parse_outcome(raw, ALLOWED)
    except InvalidReport as refused:
        assert refused.message and len(refused.message.encode(errors="surrogatepass")) <= MESSAGE_LIMIT
        outcome = None
    assert set(sys.modules) == before
    if outcome is not None:
        _holds(outcome)
    return outcome


def _holds(outcome: Outcome) -> None:
    assert isinstance(outcome.phase, ReportPhase) and isinstance(outcome.reason, Reason)
    assert (outcome.deferral is not None) == (outcome.phase is ReportPhase.DEFERRED)
    assert not _contains_callable(outcome.state)
    if outcome.deferral is not None:
        module = outcome.deferral.classpath.rsplit(".", 1)[0]
        assert any(fnmatchcase(module, pattern) for pattern in ALLOWED)
        assert not NOT_TRIGGER_PACKAGES.intersection(module.split("."))
        assert not _contains_callable(outcome.deferral.kwargs)
        assert not _contains_callable(outcome.deferral.next_kwargs)


@FUZZ
@given(st.text(max_size=5000))
def test_any_text(raw: str) -> None:
    parses_or_refuses(raw)


@FUZZ
@given(st.binary(max_size=5000))
def test_any_bytes(raw: bytes) -> None:
    parses_or_refuses(raw)


@FUZZ
@given(json_values)
def test_any_json(value: Any) -> None:
    parses_or_refuses(json.dumps(value))


@settings(FUZZ, max_examples=600)
@given(mutated())
def test_mutated_valid_outcomes(document: dict[str, Any]) -> None:
    parses_or_refuses(json.dumps(document, ensure_ascii=False))


@FUZZ
@given(st.sampled_from(DOCUMENTS), st.data())
def test_text_level_mutations(document: dict[str, Any], data: st.DataObject) -> None:
    """A character inserted, deleted or replaced anywhere in a valid outcome's text."""
    text = json.dumps(document)
    at = data.draw(st.integers(0, len(text) - 1))
    piece = data.draw(st.sampled_from(['"', "{", "}", "[", "]", ",", ":", "\\", "0", "e", "NaN", "\x00", "é", ""]))
    cut = data.draw(st.integers(0, 3))
    parses_or_refuses(text[:at] + piece + text[at + cut :])


@FUZZ
@given(st.integers(0, 20000), st.sampled_from(["[", "{", '{"a":']))
def test_deep_nesting(depth: int, opening: str) -> None:
    closing = {"[": "]", "{": "}", '{"a":': "}"}[opening]
    body = "1" if opening != "{" else ""
    assert parses_or_refuses(opening * depth + body + closing * depth) is None


@FUZZ
@given(st.sampled_from(DOCUMENTS), typed_values, st.sampled_from(["state", "kwargs", "nextKwargs"]))
def test_typed_values_in_data(document: dict[str, Any], value: dict[str, Any], where: str) -> None:
    document = copy.deepcopy(document)
    if document["deferral"] is None:
        return
    target = {
        "state": document["state"],
        "kwargs": document["deferral"]["trigger"]["kwargs"],
        "nextKwargs": document["deferral"]["nextKwargs"],
    }[where]
    target["x"] = {"list": [value]}
    outcome = parses_or_refuses(json.dumps(document))
    if value["__type"] == "callable":
        assert outcome is None


def test_the_valid_documents_parse() -> None:
    for document in DOCUMENTS:
        assert parses_or_refuses(json.dumps(document)) is not None
