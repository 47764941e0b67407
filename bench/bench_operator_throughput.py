"""Operator throughput against its ceiling, and the memory of many deferred tasks.

    .venv/bin/python -P bench/bench_operator_throughput.py --n 200 --n 1000 [--deferred 1000]

For each N: N trivial AirflowTasks (EmptyOperator) are created at once and the clock runs until all are
Succeeded; it prints tasks per second, the operator's peak RSS and CPU seconds, and the writes per
object it saw on a watch. The ceiling: this script alone creates N objects and makes the same number
of status writes per object (Succeeded at the end), with no operator; the ratio is operator/ceiling.
With --deferred M: M LocalJobOperator tasks deferred at once (jobs that run for minutes) and the
operator's RSS once all are Deferred.

Uses the cluster of $KUBECONFIG when set, else a local control plane (cached binaries).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import kubernetes

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "support"), str(REPO / "bench")]

from airflowtask.controlplane import Kubectl  # noqa: E402
from benchcluster import open_cluster  # noqa: E402
from localjob import JobService  # noqa: E402
from operator_process import OperatorProcess  # noqa: E402

GROUP, VERSION, PLURAL = "airflowtask.dev", "v1alpha1", "airflowtasks"
EMPTY = {"module": "airflow.providers.standard.operators.empty", "name": "EmptyOperator", "parameters": {}}


def _task(name: str, operator: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AirflowTask",
        "metadata": {"name": name},
        "spec": {"operator": operator, **spec},
    }


class Watcher:
    """Counts writes per object and the objects in each phase, from a watch on one namespace."""

    def __init__(self, api: kubernetes.client.CustomObjectsApi, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.writes: Counter[str] = Counter()
        self.phase: dict[str, str] = {}
        self.reason: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        resource_version = None
        while not self._stop.is_set():
            try:
                resource_version = self._watch(resource_version)
            except Exception as error:  # the stream broke: resume from the last event seen
                print(f"  (watch resumed after {type(error).__name__})", flush=True)

    def _watch(self, resource_version: str | None) -> str | None:
        watch = kubernetes.watch.Watch()
        kwargs = {"resource_version": resource_version} if resource_version else {}
        for event in watch.stream(self.api.list_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL,
                                  timeout_seconds=3600, **kwargs):
            obj = event["object"]
            resource_version = obj["metadata"]["resourceVersion"]
            name = obj["metadata"]["name"]
            if event["type"] in ("ADDED", "MODIFIED"):
                self.writes[name] += 1
                status = obj.get("status") or {}
                self.phase[name] = status.get("phase", "")
                self.reason[name] = status.get("reason", "")
            if self._stop.is_set():
                watch.stop()
        return resource_version

    def count(self, field: dict[str, str], value: str) -> int:
        return sum(1 for v in list(field.values()) if v == value)

    def stop(self) -> None:
        self._stop.set()


def _create_all(api: kubernetes.client.CustomObjectsApi, namespace: str, bodies: list[dict[str, Any]]) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda b: api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, b), bodies))


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _proc(pid: int) -> tuple[float, float]:
    """Peak RSS (MiB) and CPU seconds of a process and its children so far."""
    peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return peak, cpu


def _rss(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_operator_round(
    cluster: Kubectl, api: kubernetes.client.CustomObjectsApi, n: int, env: dict[str, str], workdir: Path
) -> tuple[float, float, float, float]:
    namespace = f"bench-op-{n}"
    cluster.kubectl("create", "namespace", namespace)
    operator = OperatorProcess(env, workdir / f"operator-{n}.log", verbose=False)
    operator.start()
    try:
        watcher = Watcher(api, namespace)
        bodies = [_task(f"t{i:05d}", EMPTY) for i in range(n)]
        started = time.monotonic()
        _create_all(api, namespace, bodies)
        done = _wait(lambda: watcher.count(watcher.phase, "Succeeded") >= n, timeout=max(120.0, n * 0.5))
        elapsed = time.monotonic() - started
        time.sleep(2)  # let trailing writes (none expected) show up in the watch
        assert operator.process is not None
        peak, cpu = _proc(operator.process.pid)
        writes = sum(watcher.writes.values()) / n
        watcher.stop()
        if not done:
            print(f"  N={n}: only {watcher.count(watcher.phase, 'Succeeded')} succeeded in {elapsed:.0f}s", flush=True)
    finally:
        operator.stop()
    return n / elapsed, peak, cpu, writes


def run_ceiling_round(cluster: Kubectl, api: kubernetes.client.CustomObjectsApi, n: int, writes: int) -> float:
    """Create N objects and make ``writes - 1`` status writes to each, as fast as 16 threads can."""
    namespace = f"bench-ceiling-{n}"
    cluster.kubectl("create", "namespace", namespace)
    started = time.monotonic()

    def one(i: int) -> None:
        name = f"t{i:05d}"
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _task(name, EMPTY))
        for step in range(writes - 1):
            phase = "Succeeded" if step == writes - 2 else "Pending"
            api.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, {"status": {"phase": phase, "reason": f"Step{step}"}}
            )

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(n)))
    return n / (time.monotonic() - started)


def run_deferred_round(
    cluster: Kubectl, api: kubernetes.client.CustomObjectsApi, m: int, env: dict[str, str], workdir: Path
) -> None:
    namespace = f"bench-deferred-{m}"
    cluster.kubectl("create", "namespace", namespace)
    with JobService() as jobs:
        kubernetes.client.CoreV1Api(api.api_client).create_namespaced_secret(
            namespace, {"metadata": {"name": "jobs"}, "stringData": {"uri": jobs.url}}
        )
        operator = OperatorProcess(env, workdir / f"operator-deferred-{m}.log", verbose=False)
        operator.start()
        try:
            watcher = Watcher(api, namespace)
            job = {
                "module": "localjob",
                "name": "LocalJobOperator",
                "parameters": {"service_conn_id": "jobs", "duration_seconds": 600, "poll_interval": 5},
            }
            conn = [{"connId": "jobs", "secretRef": {"name": "jobs"}}]
            started = time.monotonic()
            _create_all(
                api, namespace, [_task(f"d{i:05d}", job, connections=conn, pollIntervalSeconds=300) for i in range(m)]
            )
            ok = _wait(lambda: watcher.count(watcher.reason, "Deferred") >= m, timeout=max(300.0, m * 0.6))
            elapsed = time.monotonic() - started
            assert operator.process is not None
            rss = _rss(operator.process.pid)
            print(
                f"deferred M={m}: {watcher.count(watcher.reason, 'Deferred')} deferred in {elapsed:.1f}s "
                f"({'all' if ok else 'NOT all'}); operator RSS with all deferred: {rss:.0f} MiB "
                f"({len(jobs.jobs)} jobs submitted)",
                flush=True,
            )
            watcher.stop()
        finally:
            operator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="tasks per round (repeatable)")
    parser.add_argument("--deferred", type=int, default=0, help="deferred tasks to hold (0: skip)")
    args = parser.parse_args()
    sizes = args.n or [200, 1000]
    workdir = Path(tempfile.mkdtemp(prefix="aft-bench-"))
    with ExitStack() as stack:
        cluster = open_cluster(stack, workdir)
        api_client = kubernetes.config.new_client_from_config(str(cluster.kubeconfig))
        api_client.configuration.connection_pool_maxsize = 32
        api = kubernetes.client.CustomObjectsApi(api_client)
        env = cluster.env | {
            "PYTHONPATH": str(REPO / "tests" / "support"),
            "AIRFLOWTASK_ALLOWED_MODULES": "airflow.providers.*,localjob",
            "AIRFLOW_HOME": str(workdir / "airflow"),
        }
        print(
            f"{'N':>6} {'tasks/s':>8} {'writes/obj':>10} {'peak RSS MiB':>12} {'CPU s':>7} "
            f"{'ceiling/s':>9} {'ratio':>6}",
            flush=True,
        )
        for n in sizes:
            rate, peak, cpu, writes = run_operator_round(cluster, api, n, env, workdir)
            ceiling = run_ceiling_round(cluster, api, n, max(round(writes), 2))
            print(
                f"{n:>6} {rate:>8.1f} {writes:>10.2f} {peak:>12.0f} {cpu:>7.1f} {ceiling:>9.1f} {rate / ceiling:>6.2f}",
                flush=True,
            )
        if args.deferred:
            run_deferred_round(cluster, api, args.deferred, env, workdir)


if __name__ == "__main__":
    main()
