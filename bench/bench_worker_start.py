"""The cold start of one task step: the worker process a task Pod runs, on this machine, without Kubernetes.

    python -P bench/bench_worker_start.py [--runs 10]

Runs ``python -P -m airflowtask.worker`` for an EmptyOperator step ``--runs`` times in each mode, alternating, and
prints wall and CPU time p50/p90: ``as shipped`` (the task Pod's environment, ``_AIRFLOW__AS_LIBRARY=1``) beside
``settings.initialize`` (what ``import airflow`` does without it). The Pod adds its own start (sandbox, image,
kubelet) to these; bench/bench_pod_overhead.py measures create -> Succeeded on the node.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORK = {"step": "execute", "task": {
    "namespace": "bench", "name": "empty", "uid": "0000-1111", "attempt": 1,
    "logicalDate": "2024-01-02T00:00:00+00:00", "params": {},
    "operator": {"module": "airflow.providers.standard.operators.empty", "name": "EmptyOperator", "parameters": {}},
}}
MODES = {"as shipped": {"_AIRFLOW__AS_LIBRARY": "1"}, "settings.initialize": {}}


def _step(workdir: Path, extra: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one worker process; raises unless it reported Succeeded."""
    outcome = workdir / "outcome.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "_AIRFLOW"))}
    env |= {"AIRFLOW_HOME": str(workdir / "airflow"), "HOME": str(workdir), "PYTHONUNBUFFERED": "1",
            "AIRFLOWTASK_WORK": json.dumps(WORK), "AIRFLOWTASK_ALLOWED_MODULES": "airflow.providers.*",
            "AIRFLOWTASK_TERMINATION_LOG": str(outcome), **extra}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-P", "-m", "airflowtask.worker"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    phase = json.loads(outcome.read_text())["phase"]
    if phase != "Succeeded":
        raise RuntimeError(f"the step ended {phase}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[int(q * 10) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    samples: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            for mode, extra in MODES.items():
                samples[mode].append(_step(Path(tmp), extra))
    print(f"EmptyOperator step, worker process only, {args.runs} runs per mode")
    print(f"{'mode':<22}{'wall p50':>10}{'wall p90':>10}{'CPU p50':>10}{'CPU p90':>10}")
    for mode, values in samples.items():
        walls, cpus = [w for w, _ in values], [c for _, c in values]
        print(f"{mode:<22}{_quantile(walls, 0.5):>9.2f}s{_quantile(walls, 0.9):>9.2f}s"
              f"{_quantile(cpus, 0.5):>9.2f}s{_quantile(cpus, 0.9):>9.2f}s")


if __name__ == "__main__":
    main()
