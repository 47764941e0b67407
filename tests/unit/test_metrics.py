"""airflowtask.metrics: every series, read back from the text exposition (and once over HTTP)."""

from __future__ import annotations

import asyncio
import math
import urllib.request
from pathlib import Path

import pytest
from airflowtask.metrics import Metrics
from prometheus_client.parser import text_string_to_metric_families


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics.exposition())
        for sample in family.samples
    }


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    return _samples(metrics)[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(process_metrics=False)


def test_every_phase_is_exported_at_zero(metrics: Metrics) -> None:
    for phase in ("Pending", "Running", "Succeeded", "Failed"):
        assert _value(metrics, "airflowtask_tasks", phase=phase) == 0


def test_a_task_counts_once_in_its_latest_phase(metrics: Metrics) -> None:
    metrics.observe_phase("a", None)
    metrics.observe_phase("b", "Running")
    assert _value(metrics, "airflowtask_tasks", phase="Pending") == 1
    metrics.observe_phase("a", "Running")
    metrics.observe_phase("a", "Running")
    assert _value(metrics, "airflowtask_tasks", phase="Pending") == 0
    assert _value(metrics, "airflowtask_tasks", phase="Running") == 2
    metrics.observe_phase("a", "Succeeded")
    metrics.forget("b")
    metrics.forget("never-seen")
    assert _value(metrics, "airflowtask_tasks", phase="Running") == 0
    assert _value(metrics, "airflowtask_tasks", phase="Succeeded") == 1


def test_connector_seconds_around_awaits_and_as_a_decorator(metrics: Metrics) -> None:
    @metrics.connector_call("get")
    async def get() -> str:
        await asyncio.sleep(0.02)
        return "state"

    async def main() -> None:
        with metrics.connector_call("create"):
            await asyncio.sleep(0.02)
        assert await asyncio.gather(get(), get()) == ["state", "state"]
        with pytest.raises(RuntimeError), metrics.connector_call("delete"):
            raise RuntimeError("cancel failed")

    asyncio.run(main())
    assert _value(metrics, "airflowtask_connector_seconds_count", call="create") == 1
    assert _value(metrics, "airflowtask_connector_seconds_sum", call="create") >= 0.02
    assert _value(metrics, "airflowtask_connector_seconds_count", call="get") == 2
    assert _value(metrics, "airflowtask_connector_seconds_count", call="delete") == 1
    assert _value(metrics, "airflowtask_connector_seconds_bucket", call="get", le="+Inf") == 2


def test_sync_functions_can_be_timed_too(metrics: Metrics) -> None:
    @metrics.connector_call("get")
    def get(value: int) -> int:
        return value + 1

    assert get(1) == 2
    assert _value(metrics, "airflowtask_connector_seconds_count", call="get") == 1


def test_failures_are_counted_by_reason(metrics: Metrics) -> None:
    metrics.count_failure("DeadlineExceeded")
    metrics.count_failure("DeadlineExceeded")
    metrics.count_failure("TaskFailed")
    assert _value(metrics, "airflowtask_task_failures_total", reason="DeadlineExceeded") == 2
    assert _value(metrics, "airflowtask_task_failures_total", reason="TaskFailed") == 1


def test_engine_gauges_read_the_bound_callables_at_scrape_time(metrics: Metrics) -> None:
    assert _value(metrics, "airflowtask_triggers_running") == 0
    running = [3]

    def broken() -> int:
        raise RuntimeError("engine closed")

    metrics.bind_engine(lambda: running[0], broken)
    assert _value(metrics, "airflowtask_triggers_running") == 3
    running[0] = 5
    assert _value(metrics, "airflowtask_triggers_running") == 5
    assert math.isnan(_value(metrics, "airflowtask_worker_pool_in_use"))


def test_serve_exposes_the_registry_over_http() -> None:
    metrics = Metrics()
    metrics.observe_phase("a", "Running")
    server, thread = metrics.serve(0, addr="127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    assert 'airflowtask_tasks{phase="Running"} 1.0' in text
    assert "process_resident_memory_bytes" in text
    assert "python_gc_objects_collected_total" in text


def test_only_documented_airflowtask_series() -> None:
    names = {family.name for family in text_string_to_metric_families(Metrics().exposition())}
    ours = {name for name in names if name.startswith("airflowtask_") and not name.endswith("_created")}
    assert ours == {
        "airflowtask_tasks",
        "airflowtask_connector_seconds",
        "airflowtask_task_failures",
        "airflowtask_triggers_running",
        "airflowtask_trigger_loop_blocked",
        "airflowtask_worker_pool_in_use",
    }


def test_a_blocked_triggerer_loop_is_counted_per_namespace() -> None:
    metrics = Metrics(process_metrics=False)
    metrics.count_blocked_loop("tenant-a")
    metrics.count_blocked_loop("tenant-a")
    assert 'airflowtask_trigger_loop_blocked_total{namespace="tenant-a"} 2.0' in metrics.exposition()


def test_every_series_is_documented() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    for family in text_string_to_metric_families(Metrics(process_metrics=False).exposition()):
        if family.name.startswith("airflowtask_") and not family.name.endswith("_created"):
            name = family.name + ("_total" if family.type == "counter" else "")
            assert f"`{name}`" in docs, name
