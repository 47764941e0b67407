"""Exceptions and return values -> phase, reason, result (pure logic)."""

from __future__ import annotations

import datetime as dt

import pytest
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferralTimeout,
)
from airflowtask.connector_core.model import Phase, Reason
from airflowtask.connector_core.outcomes import find_job_id, from_exception, jsonable, result_of


@pytest.mark.parametrize(
    ("exc", "phase", "reason", "retryable"),
    [
        (AirflowSkipException("no"), Phase.SUCCEEDED, Reason.SKIPPED, True),
        (AirflowFailException("bad"), Phase.FAILED, Reason.FAILED_NO_RETRY, False),
        (AirflowSensorTimeout("late"), Phase.FAILED, Reason.SENSOR_TIMEOUT, False),
        (AirflowException("boom"), Phase.FAILED, Reason.TASK_FAILED, True),
        (TaskDeferralTimeout("Trigger timeout"), Phase.FAILED, Reason.TASK_FAILED, True),
        (ValueError("x"), Phase.FAILED, Reason.TASK_FAILED, True),
    ],
)
def test_from_exception(exc: BaseException, phase: Phase, reason: Reason, retryable: bool) -> None:
    verdict = from_exception(exc)
    assert (verdict.phase, verdict.reason, verdict.retryable) == (phase, reason, retryable)
    assert verdict.message == str(exc)


def test_result_is_the_return_value_or_all_xcoms() -> None:
    assert result_of({"a": 1}, {}) == {"a": 1}
    assert result_of("r", {"k": 2}) == {"k": 2, "return_value": "r"}
    assert result_of(None, {"k": 2}) == {"k": 2}
    assert result_of("r", {}, push_return=False) is None


def test_jsonable() -> None:
    when = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    assert jsonable({"t": when, "d": dt.timedelta(seconds=2), "s": {1}, 3: object}) == {
        "t": "2024-01-02T00:00:00+00:00",
        "d": 2.0,
        "s": [1],
        "3": "<class 'object'>",
    }
    assert jsonable(float("nan")) == "nan"


def test_find_job_id() -> None:
    assert find_job_id({"job_id": None}, {"job_id": 42}) == "42"
    assert find_job_id({}, {"job_id": True}) is None
