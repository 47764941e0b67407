"""AirflowMetadata: readable JSON, decoding without running code, signed sealed state."""

from __future__ import annotations

import datetime as dt
import json
import pickle
import sys

import cloudpickle
import pytest
from airflowtask.connector_core.encoding import AirflowMetadata, MetadataError, Sealed, SignatureError
from airflowtask.connector_core.spec import AirflowObj
from airflowtask.connector_core.typed import CallableRef

KEY = b"k" * 32


def full_metadata() -> AirflowMetadata:
    return AirflowMetadata(
        airflow_operator=AirflowObj(
            "airflow.providers.standard.operators.python",
            "PythonOperator",
            {"python_callable": CallableRef("never_imported_module.f"), "retry_delay": dt.timedelta(seconds=5)},
        ),
        airflow_trigger=AirflowObj(
            "airflow.providers.standard.triggers.temporal",
            "DateTimeTrigger",
            {"moment": dt.datetime(2030, 1, 1, tzinfo=dt.UTC), "end_from_trigger": False},
        ),
        airflow_trigger_callback="execute_complete",
        job_id="job-1",
        task_key="abc",
        task_id="t1",
        kind="operator",
        run_id="run-1",
        logical_date=dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
        started_at=dt.datetime(2024, 1, 2, 0, 0, 1, tzinfo=dt.UTC),
        next_kwargs={"attempt": 2, "since": dt.time(1, 2)},
        trigger_deadline=dt.datetime(2030, 1, 2, tzinfo=dt.UTC),
        operator_state={"job_id": "job-1", "submitted": (1, 2)},
        sealed=Sealed.seal({"operator_state": {"client": b"x"}}, KEY, "abc"),
    )


def test_roundtrip() -> None:
    meta = full_metadata()
    assert AirflowMetadata.decode(meta.encode()) == meta


def test_encoding_is_readable_json() -> None:
    document = json.loads(full_metadata().encode())
    assert document["operator"]["module"] == "airflow.providers.standard.operators.python"
    assert document["operator"]["task_id"] == "t1"
    assert document["operator"]["parameters"]["retry_delay"] == {"__type": "timedelta", "__var": 5.0}
    assert document["trigger"] == {
        "classpath": "airflow.providers.standard.triggers.temporal.DateTimeTrigger",
        "kwargs": {"moment": {"__type": "datetime", "__var": 1893456000.0}, "end_from_trigger": False},
    }
    assert document["callback"] == "execute_complete"


def test_decode_imports_nothing() -> None:
    AirflowMetadata.decode(full_metadata().encode())
    assert "never_imported_module" not in sys.modules


def test_seed_pickles_are_refused() -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, ...]:
            return (print, ("pwned",))

    for data in (cloudpickle.dumps(full_metadata()), pickle.dumps(Evil())):
        with pytest.raises(MetadataError, match="not JSON"):
            AirflowMetadata.decode(data)


@pytest.mark.parametrize(
    "data",
    [b"{}", b'{"version": 1}', b'{"version": 1, "task_key": 3, "operator": {}}', b"[1]"],
)
def test_malformed_metadata_is_refused(data: bytes) -> None:
    with pytest.raises(MetadataError):
        AirflowMetadata.decode(data)


def test_sealed_state_opens_with_the_key() -> None:
    meta = AirflowMetadata.decode(full_metadata().encode())
    assert meta.sealed is not None
    assert meta.sealed.open(KEY, "abc") == {"operator_state": {"client": b"x"}}


def test_tampered_sealed_state_is_refused() -> None:
    document = json.loads(full_metadata().encode())
    document["sealed"]["data"] = __import__("base64").b64encode(pickle.dumps({"operator_state": {}})).decode()
    meta = AirflowMetadata.decode(json.dumps(document).encode())
    assert meta.sealed is not None
    with pytest.raises(SignatureError, match="invalid signature"):
        meta.sealed.open(KEY, "abc")


def test_sealed_state_is_bound_to_its_task_and_key() -> None:
    sealed = full_metadata().sealed
    assert sealed is not None
    with pytest.raises(SignatureError):
        sealed.open(KEY, "another-task")
    with pytest.raises(SignatureError):
        sealed.open(b"another key", "abc")
    with pytest.raises(SignatureError, match="no signing key"):
        sealed.open(None, "abc")


def test_decoding_the_same_bytes_again_gives_an_equal_metadata_of_its_own() -> None:
    data = full_metadata().encode()
    first = AirflowMetadata.decode(data)
    first.operator_state["job_id"] = "changed"
    first.airflow_operator.parameters["extra"] = 1
    assert first.next_kwargs is not None
    first.next_kwargs["attempt"] = 3
    first.job_id = "changed"
    again = AirflowMetadata.decode(data)
    assert again == full_metadata()
    assert again is not first


def test_the_decoded_parses_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflowtask.connector_core import encoding

    monkeypatch.setattr(encoding, "DECODED_KEPT", 3)
    monkeypatch.setattr(encoding, "_decoded", {})
    for key in "abcde":
        meta = full_metadata()
        meta.task_key = key
        assert AirflowMetadata.decode(meta.encode()).task_key == key
    assert len(encoding._decoded) == 3
