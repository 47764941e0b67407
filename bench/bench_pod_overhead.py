"""Per-task overhead of task Pods, beside in-process execution, on the local node.

    python -P bench/bench_pod_overhead.py [--sequential 20] [--concurrent 200] [--modes Pod,WarmPool,in-process]

Deploys the operator from manifests/ (as make run does) once per mode: task Pods, WarmPool (task Pods' default
execution set to WarmPool) and in-process; for each prints EmptyOperator create -> Succeeded p50/p95 over tasks run
one after another, then the time until ``--concurrent`` tasks created at once are all Succeeded, the operator
container's CPU per task over those, its peak memory, and the worker Pods made for them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from airflowtask.controlplane import LocalControlPlane
from airflowtask.controlplane.teardown import cgroup_mounts
from airflowtask.install import DEPLOYMENT, NAMESPACE, install, write_overlay

EMPTY = {"module": "airflow.providers.standard.operators.empty", "name": "EmptyOperator", "parameters": {}}


def _task(name: str, namespace: str) -> dict[str, object]:
    return {"apiVersion": "airflowtask.dev/v1alpha1", "kind": "AirflowTask",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"operator": EMPTY, "pollIntervalSeconds": 1}}


def _phases(plane: LocalControlPlane, namespace: str) -> dict[str, str]:
    raw = plane.kubectl("get", "aft", "-n", namespace, "-o", "json").stdout
    return {o["metadata"]["name"]: o.get("status", {}).get("phase", "") for o in json.loads(raw)["items"]}


def _wait_all(plane: LocalControlPlane, namespace: str, count: int, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        phases = _phases(plane, namespace)
        if len(phases) == count and all(p in ("Succeeded", "Failed") for p in phases.values()):
            failed = [n for n, p in phases.items() if p == "Failed"]
            if failed:
                raise RuntimeError(f"{len(failed)} tasks failed, e.g. {failed[0]}")
            return
        time.sleep(0.2)
    raise TimeoutError(f"not all {count} tasks finished in {timeout}s")


def _operator_cgroup(plane: LocalControlPlane, name: str) -> int:
    """A counter of the operator's controller container, from its cgroup (v1: memory.max_usage_in_bytes, the peak
    memory; cpuacct.usage, CPU nanoseconds)."""
    pod = json.loads(plane.kubectl("get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=operator",
                                   "-o", "json").stdout)["items"][0]
    uid, cid = pod["metadata"]["uid"], pod["status"]["containerStatuses"][0]["containerID"].split("://")[-1]
    for mount in cgroup_mounts():
        for path in (mount / plane.layout.cgroup_parent).rglob(f"pod{uid}/{cid}/{name}"):
            return int(path.read_text())
    return 0


def _worker_pods(plane: LocalControlPlane) -> int:
    raw = plane.kubectl("get", "pods", "-A", "-l", "airflowtask.dev/pool", "-o", "name").stdout
    return len(raw.split())


MODES = {
    "Pod": {"AIRFLOWTASK_EXECUTION": "pods"},
    "WarmPool": {"AIRFLOWTASK_EXECUTION": "pods", "AIRFLOWTASK_DEFAULT_EXECUTION": "WarmPool"},
    "in-process": {"AIRFLOWTASK_EXECUTION": "in-process"},
}


def _run(plane: LocalControlPlane, execution: str, sequential: int, concurrent: int, work: Path) -> None:
    install(plane.kubectl, write_overlay(work / execution, plane.images.operator if plane.images else None,
                                         MODES[execution]))
    plane.kubectl("rollout", "restart", f"deployment/{DEPLOYMENT}", "-n", NAMESPACE)
    plane.kubectl("rollout", "status", f"deployment/{DEPLOYMENT}", "-n", NAMESPACE, "--timeout=300s")
    latencies = []
    namespace = f"bench-{execution.lower()}-seq"
    plane.kubectl("create", "namespace", namespace)
    for i in range(sequential):
        started = time.monotonic()
        plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(_task(f"empty-{i}", namespace)))
        _wait_all(plane, namespace, i + 1)
        latencies.append(time.monotonic() - started)
    namespace = f"bench-{execution.lower()}-many"
    plane.kubectl("create", "namespace", namespace)
    cpu, workers = _operator_cgroup(plane, "cpuacct.usage"), _worker_pods(plane)
    started = time.monotonic()
    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([_task(f"empty-{i}", namespace)
                                                                for i in range(concurrent)]))
    _wait_all(plane, namespace, concurrent)
    elapsed = time.monotonic() - started
    cpu_ms = (_operator_cgroup(plane, "cpuacct.usage") - cpu) / 1e6 / concurrent
    quantiles = statistics.quantiles(latencies, n=20)
    print(f"| {execution} | {statistics.median(latencies):.2f} s | {quantiles[18]:.2f} s | {concurrent} in "
          f"{elapsed:.1f} s ({concurrent / elapsed:.1f}/s) | {cpu_ms:.1f} ms | "
          f"{_operator_cgroup(plane, 'memory.max_usage_in_bytes') / 2**20:.0f} MiB | "
          f"{_worker_pods(plane) - workers} |", flush=True)
    for ns in (f"bench-{execution.lower()}-seq", namespace):
        plane.kubectl("delete", "namespace", ns, "--wait=false")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--modes", default=",".join(MODES), help="comma separated: " + ", ".join(MODES))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-pods-"))
    with LocalControlPlane(work / "cluster") as plane:
        print("| execution | create -> Succeeded p50 | p95 | concurrent | operator CPU per task | operator peak "
              "memory | worker Pods made |")
        print("|---|---|---|---|---|---|---|")
        for execution in args.modes.split(","):
            _run(plane, execution, args.sequential, args.concurrent, work)


if __name__ == "__main__":
    main()
