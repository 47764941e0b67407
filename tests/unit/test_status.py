"""The status and event a user sees, computed from an outcome (pure logic)."""

from datetime import UTC, datetime, timedelta

from airflowtask.status import Event, log_tail, merge_patch, next_status, transition_event

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_running_then_succeeded_moves_the_condition_once() -> None:
    running = next_status({}, phase="Running", reason="Deferred", message="waiting", generation=1, now=T0)
    assert running["conditions"] == [
        {
            "type": "Succeeded",
            "status": "Unknown",
            "reason": "Deferred",
            "message": "waiting",
            "lastTransitionTime": "2026-01-01T12:00:00Z",
            "observedGeneration": 1,
        }
    ]
    still = next_status(running, phase="Running", reason="Waiting", message="poke", generation=1,
                        now=T0 + timedelta(seconds=5))
    assert still["conditions"][0]["lastTransitionTime"] == "2026-01-01T12:00:00Z"
    done = next_status(still, phase="Succeeded", reason="Completed", message="ok", generation=1,
                       now=T0 + timedelta(seconds=9))
    assert done["conditions"][0]["status"] == "True"
    assert done["conditions"][0]["lastTransitionTime"] == "2026-01-01T12:00:09Z"
    assert (done["phase"], done["reason"], done["observedGeneration"]) == ("Succeeded", "Completed", 1)


def test_failed_sets_condition_false_and_none_removes_fields() -> None:
    old = {"resourceMeta": "x", "attempts": 1}
    new = next_status(old, phase="Failed", reason="TaskFailed", message="exit 3", generation=2, now=T0,
                      resourceMeta=None)
    assert "resourceMeta" not in new
    assert new["attempts"] == 1
    assert new["conditions"][0]["status"] == "False"


def test_merge_patch_sends_only_changes_and_deletes() -> None:
    assert merge_patch({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 5}) == {"b": 5, "c": None}
    assert merge_patch({"a": 1}, {"a": 1}) == {}


def test_transition_event_only_on_change_and_warns_on_failure() -> None:
    running = {"phase": "Running", "reason": "Deferred", "message": "m"}
    assert transition_event(running, dict(running, message="other")) is None
    assert transition_event({}, running) == Event("Normal", "Deferred", "m")
    failed = {"phase": "Failed", "reason": "TaskFailed", "message": "exit 3"}
    assert transition_event(running, failed) == Event("Warning", "TaskFailed", "exit 3")
    retry = {"phase": "Pending", "reason": "Retrying", "message": "again"}
    assert transition_event(failed, retry).type == "Warning"


def test_log_tail_bounds_lines_and_characters() -> None:
    lines = [f"line {i}" for i in range(100)]
    assert log_tail(lines, 3) == "line 97\nline 98\nline 99"
    assert log_tail(lines, 100, max_chars=7) == "line 99"
    assert log_tail([], 10) is None
