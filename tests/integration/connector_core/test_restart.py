"""Restarts: a new Engine continues from decoded metadata alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflowtask.connector_core import AirflowMetadata, Phase
from conftest import Harness, run_info

KEY = b"0123456789abcdef0123456789abcdef"


def test_deferred_task_finishes_after_a_restart(harness: Harness) -> None:
    run = run_info(logical_date=datetime.now(UTC))
    first = harness.engine()
    target = {"__type": "datetime", "__var": (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()}
    meta, state = harness.create(first, "airflow.sensors.date_time", "DateTimeSensorAsync", run, target_time=target)
    assert state.reason == "Deferred"
    data = meta.encode()
    harness.run(first.close())

    second = harness.engine()
    restored = AirflowMetadata.decode(data)
    state = harness.run(second.get(restored, run=run))
    assert (state.phase, state.reason) == (Phase.RUNNING, "Deferred")
    assert second.running_triggers == 1
    assert harness.finish(second, restored, run).reason == "Completed"


def test_execute_in_progress_is_reported_interrupted(harness: Harness) -> None:
    first = harness.engine(create_wait_seconds=0.1)
    meta, state = harness.create(first, "airflow.operators.bash", "BashOperator", bash_command="sleep 2")
    assert state.reason == "Executing"
    data = meta.encode()

    second = harness.engine()
    state = harness.run(second.get(AirflowMetadata.decode(data), run=run_info()))
    assert (state.phase, state.reason, state.retryable) == (Phase.FAILED, "Interrupted", True)
    assert "may have submitted" in state.message


def test_finished_outcome_survives_a_restart(harness: Harness) -> None:
    first = harness.engine()
    meta, _ = harness.create(first, "airflow.operators.bash", "BashOperator", bash_command="echo 7")
    state = harness.run(harness.engine().get(AirflowMetadata.decode(meta.encode()), run=run_info()))
    assert (state.reason, state.result) == ("Completed", "7")


def test_waiting_sensor_pokes_again_after_a_restart(harness: Harness, tmp_path: Path) -> None:
    target = tmp_path / "flag"
    meta, state = harness.create(
        harness.engine(), "airflow.sensors.filesystem", "FileSensor", filepath=str(target), deferrable=False
    )
    assert state.reason == "Waiting"
    target.write_text("x")
    second = harness.engine()
    assert harness.finish(second, AirflowMetadata.decode(meta.encode())).reason == "Completed"


def test_trigger_classpath_in_metadata_is_checked_against_the_allowlist(harness: Harness) -> None:
    run = run_info(logical_date=datetime.now(UTC))
    target = {"__type": "datetime", "__var": (datetime.now(UTC) + timedelta(seconds=30)).isoformat()}
    meta, _ = harness.create(
        harness.engine(), "airflow.sensors.date_time", "DateTimeSensorAsync", run, target_time=target
    )
    document = json.loads(meta.encode())
    document["trigger"]["classpath"] = "subprocess.Popen"
    state = harness.run(harness.engine().get(AirflowMetadata.decode(json.dumps(document).encode()), run=run))
    assert (state.phase, state.reason) == (Phase.FAILED, "NotAllowed")


def test_sealed_operator_state_is_restored_with_the_key_for_on_kill(harness: Harness, tmp_path: Path) -> None:
    """execute() left a Path (not JSON): sealed with HMAC, restored after a restart, used by on_kill."""
    marker = tmp_path / "killed"
    first = harness.engine(signing_key=KEY)
    meta, state = harness.create(first, "task_callables", "DeferringOperator", kill_marker=str(marker))
    assert state.reason == "Deferred" and meta.sealed is not None
    data = meta.encode()
    harness.run(first.close())

    second = harness.engine(signing_key=KEY)
    harness.run(second.delete(AirflowMetadata.decode(data), run=run_info()))
    assert marker.read_text() == "killed"


def test_sealed_state_with_a_bad_signature_is_refused(harness: Harness, tmp_path: Path) -> None:
    first = harness.engine(signing_key=KEY)
    meta, _ = harness.create(first, "task_callables", "DeferringOperator", kill_marker=str(tmp_path / "k"))
    harness.run(first.close())
    for engine in (harness.engine(signing_key=b"another key"), harness.engine()):
        state = harness.run(engine.get(AirflowMetadata.decode(meta.encode()), run=run_info()))
        assert (state.phase, state.reason) == (Phase.FAILED, "InvalidParameters")
        assert "signature" in state.message or "no signing key" in state.message
