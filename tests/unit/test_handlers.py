"""The kopf glue that is pure logic: the diff-base storage that keeps nothing, the phase gauge's handler."""

from __future__ import annotations

import asyncio

import kopf
from airflowtask import handlers, metrics
from prometheus_client.parser import text_string_to_metric_families


def _body(uid: str = "u1", **status: str) -> kopf.Body:
    return kopf.Body({"metadata": {"namespace": "ns", "name": "t", "uid": uid, "annotations": {"a": "b"}},
                      "spec": {"operator": {"module": "m", "name": "Op"}}, "status": status})


def test_no_diff_base_sees_every_object_as_unchanged_and_writes_nothing() -> None:
    storage = handlers.NoDiffBase()
    body = _body(phase="Running")
    patch = kopf.Patch()
    assert storage.build(body=body) == storage.fetch(body=body) == {}
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    assert not patch


def _running() -> float:
    families = text_string_to_metric_families(metrics.METRICS.exposition())
    return next(sample.value for family in families for sample in family.samples
                if sample.name == "airflowtask_tasks" and sample.labels == {"phase": "Running"})


def test_the_phase_gauge_follows_watch_events_without_a_thread() -> None:
    assert asyncio.iscoroutinefunction(handlers.count_phase)
    before = _running()
    body = _body("gauge-1", phase="Running")
    asyncio.run(handlers.count_phase(type="MODIFIED", body=body, status=body.status))
    assert _running() == before + 1
    asyncio.run(handlers.count_phase(type="DELETED", body=body, status=body.status))
    assert _running() == before
