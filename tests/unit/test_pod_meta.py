"""status.resourceMeta of tasks run in Pods: what a restarted operator reads back, and only when it signed it."""

from __future__ import annotations

import json

import pytest
from airflowtask.pod_executor import PodMeta
from airflowtask.signing import RecordSigner

SIGNER = RecordSigner(b"unit-test-signing-key")
UID = "3f2a6c1e-0000-4000-8000-000000000001"


def _meta(**fields: object) -> PodMeta:
    defaults: dict[str, object] = {"uid": UID, "namespace": "data", "attempt": 2, "signer": SIGNER}
    return PodMeta(**{**defaults, **fields})  # type: ignore[arg-type]


def test_metadata_round_trips_as_readable_signed_json() -> None:
    meta = _meta(step="deferred", pod="job-2-execute", state={"job_id": "7"},
                 deferral={"trigger": {"classpath": "localjob.LocalJobTrigger", "kwargs": {}}}, job_id="7")
    text = meta.encode().decode()
    assert '"kind":"pods"' in text and '"pod":"job-2-execute"' in text and '"signature":' in text
    assert PodMeta.decode(text.encode(), SIGNER, UID) == meta


def _forged(change: dict[str, object]) -> bytes:
    raw = json.loads(_meta(pod="job-2-execute").encode())
    raw["record"].update(change)
    return json.dumps(raw).encode()


@pytest.mark.parametrize("change", [
    {"step": "deferred", "deferral": {"trigger": {"classpath": "airflow.providers.standard.operators.bash."
                                                                "BashOperator", "kwargs": {"bash_command": "id"}}}},
    {"namespace": "kube-system"},
    {"pod": "someone-elses-pod"},
    {"outcome": {"phase": "Succeeded", "reason": "Completed", "message": "", "result": 1, "retryable": False}},
], ids=["planted-deferral", "other-namespace", "other-pod", "planted-outcome"])
def test_a_record_changed_by_anyone_but_the_operator_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="signature does not match"):
        PodMeta.decode(_forged(change), SIGNER, UID)


def test_a_record_signed_for_another_task_or_with_another_key_is_refused() -> None:
    text = _meta().encode()
    with pytest.raises(ValueError, match="signature does not match"):
        PodMeta.decode(text, SIGNER, "another-uid")
    with pytest.raises(ValueError, match="signature does not match"):
        PodMeta.decode(text, RecordSigner(b"another-key-another-key"), UID)


@pytest.mark.parametrize(("text", "error"), [
    ("not json", "not JSON"),
    ("[" * 100000, "not JSON"),
    ('{"version": 2, "task_key": "x"}', "not the metadata of a task run in Pods"),
    ('{"version": 1, "kind": "pods", "namespace": "a", "attempt": 1}', "version 2"),
    ('{"version": 2, "kind": "pods", "record": {}, "signature": 7}', "record and signature expected"),
    ('{"version": 2, "kind": "pods", "record": {}, "signature": "00", "extra": 1}', "record and signature"),
])
def test_unreadable_metadata_is_a_clear_value_error(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        PodMeta.decode(text.encode(), SIGNER, UID)


def test_a_signed_record_with_unknown_fields_is_a_value_error() -> None:
    record = {**_meta().record(), "extra": 1}
    text = json.dumps({"version": 2, "kind": "pods", "record": record,
                       "signature": SIGNER.sign(UID, json.dumps(record, sort_keys=True,
                                                                separators=(",", ":")).encode())})
    with pytest.raises(ValueError, match="unexpected fields"):
        PodMeta.decode(text.encode(), SIGNER, UID)
