"""Trigger latency at scale: 1000 deferred tasks whose triggers fire at the same moment.

Run: ``.venv/bin/python bench/bench_trigger_latency.py [N]``. Each task is a DeferringOperator (tests/support)
that defers to an AtTimeTrigger set a few seconds ahead; when it fires, execute_complete runs in the
worker pool. A front-end-like loop per task calls get() and wait() until the task is finished.
Prints p50/p99/max of (get() reports Succeeded) - (the trigger's scheduled time), and the RSS.
Target: p99 below 1 s.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from airflowtask.connector_core import AirflowMetadata, AirflowObj, Engine, EngineConfig, Phase, RunInfo
from airflowtask.connector_core.model import DEFAULT_ALLOWED_MODULES


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def follow(engine: Engine, meta: AirflowMetadata, run: RunInfo) -> float:
    """Poll like a front end: get(), then wait() for news; return when get() reports Succeeded."""
    while not (state := await engine.get(meta, run=run)).finished:
        await engine.wait(meta, timeout=30)
    assert state.phase is Phase.SUCCEEDED, state.message
    return time.time()


async def measure(count: int) -> list[float]:
    """Seconds from the scheduled firing time to get() reporting Succeeded, per task."""
    engine = Engine(EngineConfig(allowed_modules=(*DEFAULT_ALLOWED_MODULES, "task_callables")))
    run = RunInfo(run_id="bench", logical_date=datetime.now(UTC))
    fire_at = time.time() + 3 + count / 250
    task = AirflowObj("task_callables", "DeferringOperator", {"trigger": "at", "at": fire_at})
    started = time.perf_counter()
    created = await asyncio.gather(*(engine.create(task, task_id=f"t{i}", run=run) for i in range(count)))
    while engine.running_triggers < count:  # create() returns Executing for tasks still queued in the pool
        await asyncio.sleep(0.05)
    create_seconds = time.perf_counter() - started
    assert time.time() < fire_at, "creating took longer than the lead time"
    running = engine.running_triggers
    rss_deferred = rss_mb()
    done = await asyncio.gather(*(follow(engine, meta, run) for meta, _ in created))
    await engine.close()
    print(f"{count} tasks created and deferred in {create_seconds:.1f}s; {running} triggers running")
    print(f"RSS with {count} deferred tasks: {rss_deferred:.0f} MB")
    return [at - fire_at for at in done]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rss_start = rss_mb()
    latencies = asyncio.run(measure(count))
    latencies.sort()
    p99 = latencies[max(int(len(latencies) * 0.99) - 1, 0)]
    print(
        f"trigger fired -> get() Succeeded: p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"RSS: {rss_start:.0f} MB after importing Airflow, peak {peak:.0f} MB")


if __name__ == "__main__":
    main()
