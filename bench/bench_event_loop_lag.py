"""Event-loop lag while 20 two-second pokes run: is the loop still free for other tasks?

Run: ``.venv/bin/python bench/bench_event_loop_lag.py``. Twenty PythonSensors whose poke takes 2 s are
created and then polled with get(), as a front end would; meanwhile a ticker measures how late the
event loop wakes up from 10 ms sleeps. Two kinds of poke: sleeping (I/O-like, releases the GIL) and
busy (pure-Python work, holds the GIL). Target: max lag below 100 ms.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from airflowtask.connector_core import AirflowObj, Engine, EngineConfig, RunInfo
from airflowtask.connector_core.model import DEFAULT_ALLOWED_MODULES

SENSORS = 20
POKE_SECONDS = 2.0
TICK = 0.01


async def ticker(lags: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(TICK)
        lags.append(time.perf_counter() - before - TICK)


async def measure(poke: str) -> tuple[list[float], int]:
    engine = Engine(EngineConfig(allowed_modules=(*DEFAULT_ALLOWED_MODULES, "task_callables"), max_workers=SENSORS))
    run = RunInfo(run_id="bench", logical_date=datetime.now(UTC))
    sensor = AirflowObj(
        "airflow.sensors.python",
        "PythonSensor",
        {"python_callable": {"__type": "callable", "__var": f"task_callables.{poke}"}, "op_args": [POKE_SECONDS]},
    )
    lags: list[float] = []
    stop = asyncio.Event()
    tick = asyncio.create_task(ticker(lags, stop))
    created = await asyncio.gather(*(engine.create(sensor, task_id=f"s{i}", run=run) for i in range(SENSORS)))
    for _ in range(3):  # then rounds of pokes started by get(), as a front end polls
        while engine.pool_in_use():
            await asyncio.sleep(0.05)
        await asyncio.gather(*(engine.get(meta, run=run) for meta, _ in created))
    while engine.pool_in_use():
        await asyncio.sleep(0.05)
    stop.set()
    await tick
    pokes = sum(int(engine.metrics(meta).get("pokes", 0)) for meta, _ in created)
    await engine.close()
    return lags, pokes


def main() -> None:
    for poke in ("slow_poke", "busy_poke"):
        started = time.perf_counter()
        lags, pokes = asyncio.run(measure(poke))
        lags.sort()
        p99 = lags[int(len(lags) * 0.99) - 1]
        seconds = time.perf_counter() - started
        print(
            f"{SENSORS} sensors, {pokes} pokes of {POKE_SECONDS:.0f}s ({poke}) in {seconds:.1f}s: "
            f"event-loop lag max {lags[-1] * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
            f"median {statistics.median(lags) * 1000:.2f} ms over {len(lags)} ticks"
        )


if __name__ == "__main__":
    main()
