"""Steps in a warm worker, on this machine, without Kubernetes: what a WarmPool Pod adds to a step.

    python -P bench/bench_warm_step.py [--at-once 1,20,100,200] [--slots 8] [--sequential 20]

Starts ``python -m airflowtask.warm_worker`` (as a WarmPool Pod runs it) and drives it over its signed channel as
the operator would: EmptyOperator steps, first ``--sequential`` one after another, then each ``--at-once`` count
submitted together (a step that finds every slot taken is submitted again when one frees). Prints start -> outcome
p50/p99, steps/s and the worker's CPU per step (the parent and its children), beside the worker's own start.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from airflowtask import channel

EMPTY = {"module": "airflow.providers.standard.operators.empty", "name": "EmptyOperator", "parameters": {}}


def _cpu_seconds(pid: int) -> float:
    """CPU of the process and its reaped children (utime, stime, cutime, cstime), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


class Driver:
    def __init__(self, port: int, key: bytes) -> None:
        self.port, self.key, self.count = port, key, 0

    async def call(self, request: dict) -> dict:
        return await channel.call("127.0.0.1", self.port, self.key, request, timeout=120)

    async def step(self) -> float:
        """One EmptyOperator step, submitted until a slot takes it; seconds from the first submission to done."""
        self.count += 1
        step_id = f"step-{self.count}"
        order = {"step": "execute", "task": {"namespace": "bench", "name": step_id, "operator": EMPTY}}
        started = time.perf_counter()
        while (await self.call({"op": "start", "id": step_id, "order": order}))["state"] == "busy":
            await asyncio.sleep(0.002)
        while (answer := await self.call({"op": "status", "id": step_id, "wait": 30}))["state"] != "done":
            pass
        took = time.perf_counter() - started
        if answer["exitCode"] != 0 or '"phase":"Succeeded"' not in (answer["outcome"] or ""):
            raise RuntimeError(f"{step_id} did not succeed: {answer}")
        await self.call({"op": "forget", "id": step_id})
        return took


def _line(label: str, took: list[float], wall: float, cpu: float) -> str:
    p99 = statistics.quantiles(took, n=100, method="inclusive")[98] if len(took) > 1 else took[0]
    return (f"{label:<22}{statistics.median(took) * 1000:>9.1f}{p99 * 1000:>9.1f}{len(took) / wall:>10.1f}"
            f"{cpu / len(took) * 1000:>12.1f}")


async def measure(driver: Driver, pid: int, sequential: int, at_once: list[int]) -> None:
    print(f"{'':<22}{'p50 ms':>9}{'p99 ms':>9}{'steps/s':>10}{'CPU ms/step':>12}")
    cpu, started = _cpu_seconds(pid), time.perf_counter()
    took = [await driver.step() for _ in range(sequential)]
    print(_line(f"{sequential} one by one", took, time.perf_counter() - started, _cpu_seconds(pid) - cpu))
    for count in at_once:
        cpu, started = _cpu_seconds(pid), time.perf_counter()
        took = list(await asyncio.gather(*(driver.step() for _ in range(count))))
        print(_line(f"{count} at once", took, time.perf_counter() - started, _cpu_seconds(pid) - cpu))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--at-once", default="1,20,100,200")
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--sequential", type=int, default=20)
    args = parser.parse_args()
    key = os.urandom(32)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
        env |= {"AIRFLOW_HOME": f"{tmp}/airflow", "HOME": tmp, "_AIRFLOW__AS_LIBRARY": "1",
                "AIRFLOWTASK_POOL_KEY_SHA256": hashlib.sha256(key).hexdigest(), "AIRFLOWTASK_WARM_PORT": str(port),
                "AIRFLOWTASK_WARM_SLOTS": str(args.slots), "AIRFLOWTASK_ALLOWED_MODULES": "airflow.providers.*"}
        started = time.perf_counter()
        worker = subprocess.Popen([sys.executable, "-P", "-m", "airflowtask.warm_worker"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        driver = Driver(port, key)
        try:
            while True:
                try:
                    asyncio.run(channel.unlock("127.0.0.1", port, key))
                    break
                except OSError:
                    time.sleep(0.02)
            print(f"warm worker ready in {time.perf_counter() - started:.2f}s "
                  f"(CPU {_cpu_seconds(worker.pid):.2f}s), {args.slots} slots")
            asyncio.run(measure(driver, worker.pid, args.sequential, [int(n) for n in args.at_once.split(",")]))
        finally:
            worker.terminate()
            worker.wait(timeout=30)


if __name__ == "__main__":
    main()
