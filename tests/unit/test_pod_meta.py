"""status.resourceMeta of tasks run in Pods: what a restarted operator reads back."""

from __future__ import annotations

import pytest
from airflowtask.pod_executor import PodMeta


def test_metadata_round_trips_as_readable_json() -> None:
    meta = PodMeta(namespace="data", attempt=2, step="deferred", pod="job-2-execute", state={"job_id": "7"},
                   deferral={"trigger": {"classpath": "localjob.LocalJobTrigger", "kwargs": {}}}, job_id="7")
    text = meta.encode().decode()
    assert '"kind":"pods"' in text and '"pod":"job-2-execute"' in text
    assert PodMeta.decode(text.encode()) == meta


@pytest.mark.parametrize(("text", "error"), [
    ("not json", "not JSON"),
    ('{"version": 1, "task_key": "x"}', "not the metadata of a task run in Pods"),
    ('{"version": 2, "kind": "pods", "namespace": "a", "attempt": 1}', "version 1"),
    ('{"version": 1, "kind": "pods", "namespace": "a", "attempt": 1, "extra": 1}', "unexpected fields"),
])
def test_unreadable_metadata_is_a_clear_value_error(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        PodMeta.decode(text.encode())
