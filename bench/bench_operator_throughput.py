"""Operator throughput against its ceiling, and the memory and latency of many deferred tasks.

    .venv/bin/python -P bench/bench_operator_throughput.py --n 200 --n 1000 [--deferred 1000] [--sensors 10000]

The operator runs as a local process with task work in its own process (``AIRFLOWTASK_EXECUTION=in-process``):
task Pods cannot scale to thousands on one machine.

For each N: N trivial AirflowTasks (EmptyOperator) are created at once and the clock runs until all are
Succeeded; it prints tasks per second, the operator's peak RSS and CPU seconds, and the writes per
object beyond its creation that it saw on a watch (and which parts of the object they changed). The
ceiling: this script alone creates N objects and makes the same number of status writes per object
(Succeeded at the end), with no operator; the ratio is operator/ceiling.
With --deferred M: M LocalJobOperator tasks deferred at once (jobs that run for minutes) and the
operator's RSS once all are Deferred.
With --sensors M: M DateTimeSensorAsync tasks whose target times are spread over ``--window`` seconds,
starting ``--lead`` seconds after their creation began (so that all are Deferred first): seconds from the
end of creation until all are Deferred, each task's creation -> Deferred (p50/p99/max), the operator's RSS
then, and, per task, the time a watch saw Succeeded minus its target time (p50/p99/max; DateTimeTrigger
itself checks the clock once a second, so up to 1 s of it is the trigger's).

Uses the cluster of $KUBECONFIG when set, else a local control plane without a node (cached binaries).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
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
SENSOR = {"module": "airflow.providers.standard.sensors.date_time", "name": "DateTimeSensorAsync"}
FINALIZER_KEY, ANNOTATION_PREFIX = "finalizers", "airflowtask.dev/"


def _task(name: str, operator: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AirflowTask",
        "metadata": {"name": name},
        "spec": {"operator": operator, **spec},
    }


def _changed_parts(old: dict[str, Any] | None, new: dict[str, Any]) -> tuple[str, ...]:
    """Which parts of the object one write changed: finalizers, kopf's annotations, status."""
    if old is None:
        return ("creation",)
    parts = []
    if old["metadata"].get(FINALIZER_KEY) != new["metadata"].get(FINALIZER_KEY):
        parts.append("finalizers")
    if old["metadata"].get("annotations") != new["metadata"].get("annotations"):
        parts.append("annotations")
    if old.get("status") != new.get("status"):
        parts.append("status")
    return tuple(parts) or ("other",)


class Watcher:
    """Counts writes per object, what they changed, the objects in each phase and when each was first
    seen Deferred and Succeeded, from a watch on one namespace."""

    def __init__(self, api: kubernetes.client.CustomObjectsApi, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.writes: Counter[str] = Counter()
        self.parts: Counter[str] = Counter()
        self.phase: dict[str, str] = {}
        self.reason: dict[str, str] = {}
        self.first_seen: dict[tuple[str, str], float] = {}
        """(name, phase or reason) -> wall-clock time the watch first saw it."""
        self._last: dict[str, dict[str, Any]] = {}
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
            if event["type"] in ("ADDED", "MODIFIED"):
                self._record(obj)
            if self._stop.is_set():
                watch.stop()
        return resource_version

    def _record(self, obj: dict[str, Any]) -> None:
        now, name = time.time(), obj["metadata"]["name"]
        self.writes[name] += 1
        self.parts.update(_changed_parts(self._last.get(name), obj))
        self._last[name] = obj
        status = obj.get("status") or {}
        self.phase[name] = status.get("phase", "")
        self.reason[name] = status.get("reason", "")
        for state in (self.phase[name], self.reason[name]):
            self.first_seen.setdefault((name, state), now)

    def count(self, field: dict[str, str], value: str) -> int:
        return sum(1 for v in list(field.values()) if v == value)

    def writes_beyond_creation(self, n: int) -> float:
        """Writes per object after the one that created it."""
        return sum(self.writes.values()) / n - 1

    def parts_per_object(self, n: int) -> str:
        """E.g. ``finalizers 1.00, annotations 1.00, status 2.00`` (a write may change several parts)."""
        return ", ".join(f"{part} {count / n:.2f}" for part, count in sorted(self.parts.items()) if part != "creation")

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


def _start_operator(env: dict[str, str], log: Path) -> OperatorProcess:
    operator = OperatorProcess(env, log, verbose=False)
    operator.start()
    assert operator.process is not None
    print(f"  operator pid {operator.process.pid}, log {log}", flush=True)
    return operator


def run_operator_round(
    cluster: Kubectl, api: kubernetes.client.CustomObjectsApi, n: int, env: dict[str, str], workdir: Path
) -> tuple[float, float, float, float, str]:
    namespace = f"bench-op-{n}"
    cluster.kubectl("create", "namespace", namespace)
    operator = _start_operator(env, workdir / f"operator-{n}.log")
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
        writes, parts = watcher.writes_beyond_creation(n), watcher.parts_per_object(n)
        watcher.stop()
        if not done:
            print(f"  N={n}: only {watcher.count(watcher.phase, 'Succeeded')} succeeded in {elapsed:.0f}s", flush=True)
    finally:
        operator.stop()
    return n / elapsed, peak, cpu, writes, parts


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
        operator = _start_operator(env, workdir / f"operator-deferred-{m}.log")
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
                f"({len(jobs.jobs)} jobs submitted); writes/object beyond creation "
                f"{watcher.writes_beyond_creation(m):.2f} ({watcher.parts_per_object(m)})",
                flush=True,
            )
            watcher.stop()
        finally:
            operator.stop()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(max(round(len(ordered) * fraction) - 1, 0), len(ordered) - 1)]


def run_sensor_round(
    cluster: Kubectl,
    api: kubernetes.client.CustomObjectsApi,
    m: int,
    env: dict[str, str],
    workdir: Path,
    *,
    lead: float,
    window: float,
    poll_interval: int,
) -> None:
    """M DateTimeSensorAsync tasks, all Deferred before the first target time, then fired over ``window``."""
    namespace = f"bench-sensors-{m}"
    cluster.kubectl("create", "namespace", namespace)
    operator = _start_operator(env, workdir / f"operator-sensors-{m}.log")
    assert operator.process is not None
    try:
        watcher = Watcher(api, namespace)
        first_target = time.time() + lead
        targets = {f"s{i:05d}": first_target + window * i / m for i in range(m)}
        bodies = [
            _task(name, SENSOR | {"parameters": {"target_time": datetime.fromtimestamp(at, UTC).isoformat()}},
                  pollIntervalSeconds=poll_interval)
            for name, at in targets.items()
        ]
        started = time.monotonic()
        _create_all(api, namespace, bodies)
        created = time.monotonic()
        all_deferred = _wait(lambda: watcher.count(watcher.reason, "Deferred") >= m,
                             timeout=max(first_target - time.time(), 1.0))
        to_deferred = time.monotonic() - created
        rss_deferred = _rss(operator.process.pid)
        print(
            f"sensors M={m}: targets from {first_target:.3f} (epoch) over {window:.0f}s; "
            f"created in {created - started:.1f}s; "
            f"{'all' if all_deferred else 'NOT all'} Deferred {to_deferred:.1f}s after creation ended "
            f"({watcher.count(watcher.reason, 'Deferred')} Deferred); operator RSS then {rss_deferred:.0f} MiB",
            flush=True,
        )
        waits = [watcher.first_seen[(name, "Deferred")] - watcher.first_seen[(name, "")] for name in targets
                 if (name, "Deferred") in watcher.first_seen and (name, "") in watcher.first_seen]
        if waits:
            print(f"sensors M={m}: each task's creation -> Deferred (as the watch saw them): p50 "
                  f"{statistics.median(waits):.1f}s p99 {_percentile(waits, 0.99):.1f}s max {max(waits):.1f}s",
                  flush=True)
        if not all_deferred:
            print("  the first targets came before all were Deferred: latencies below include that wait", flush=True)
        last_target = first_target + window
        done = _wait(lambda: watcher.count(watcher.phase, "Succeeded") >= m,
                     timeout=max(last_target - time.time(), 0.0) + 120.0)
        time.sleep(2)  # trailing writes (none expected)
        latencies = [watcher.first_seen[(name, "Succeeded")] - at for name, at in targets.items()
                     if (name, "Succeeded") in watcher.first_seen]
        peak, cpu = _proc(operator.process.pid)
        print(
            f"sensors M={m}: {len(latencies)} Succeeded ({'all' if done else 'NOT all'}); target -> watch saw "
            f"Succeeded: p50 {statistics.median(latencies):.2f}s p99 {_percentile(latencies, 0.99):.2f}s "
            f"max {max(latencies):.2f}s; operator peak RSS {peak:.0f} MiB, CPU {cpu:.0f}s; writes/object beyond "
            f"creation {watcher.writes_beyond_creation(m):.2f} ({watcher.parts_per_object(m)})",
            flush=True,
        )
        watcher.stop()
    finally:
        operator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="tasks per round (repeatable)")
    parser.add_argument("--deferred", type=int, default=0, help="LocalJob tasks to hold deferred (0: skip)")
    parser.add_argument("--sensors", type=int, default=0, help="DateTimeSensorAsync tasks to defer and fire (0: skip)")
    parser.add_argument("--lead", type=float, default=300.0,
                        help="seconds from the start of creating the sensors to the first target time")
    parser.add_argument("--window", type=float, default=100.0, help="seconds over which the sensors' targets spread")
    parser.add_argument("--poll-interval", type=int, default=10, help="the sensors' pollIntervalSeconds")
    args = parser.parse_args()
    sizes = args.n if args.n is not None else ([] if args.sensors or args.deferred else [200, 1000])
    workdir = Path(tempfile.mkdtemp(prefix="aft-bench-"))
    with ExitStack() as stack:
        cluster = open_cluster(stack, workdir, with_node=False)
        config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(str(cluster.kubeconfig), client_configuration=config)
        config.connection_pool_maxsize = 32  # the 16 creating threads and the watch, without discarding connections
        api = kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient(config))
        env = cluster.env | {
            "PYTHONPATH": str(REPO / "tests" / "support"),
            "AIRFLOWTASK_ALLOWED_MODULES": "airflow.providers.*,localjob",
            "AIRFLOWTASK_EXECUTION": "in-process",
            "AIRFLOW_HOME": str(workdir / "airflow"),
        }
        print(f"load average at start: {os.getloadavg()}", flush=True)
        if sizes:
            print(
                f"{'N':>6} {'tasks/s':>8} {'writes/obj':>10} {'peak RSS MiB':>12} {'CPU s':>7} "
                f"{'ceiling/s':>9} {'ratio':>6}  (writes/obj: beyond creation)",
                flush=True,
            )
        for n in sizes:
            rate, peak, cpu, writes, parts = run_operator_round(cluster, api, n, env, workdir)
            ceiling = run_ceiling_round(cluster, api, n, max(round(writes) + 1, 2))
            print(
                f"{n:>6} {rate:>8.1f} {writes:>10.2f} {peak:>12.0f} {cpu:>7.1f} {ceiling:>9.1f} {rate / ceiling:>6.2f}"
                f"  ({parts})",
                flush=True,
            )
        if args.deferred:
            run_deferred_round(cluster, api, args.deferred, env, workdir)
        if args.sensors:
            run_sensor_round(cluster, api, args.sensors, env, workdir, lead=args.lead, window=args.window,
                             poll_interval=args.poll_interval)
        print(f"load average at end: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
