"""Task Pods vs WarmPool vs in-process on the local node: create -> Succeeded, throughput, the operator's cost.

    python -P bench/bench_pod_overhead.py [--sizes 1,20,100,200] [--singles 20] [--callbacks 10] [--creators 8]
                                          [--modes Pod,WarmPool,in-process]

Deploys the operator from manifests/ (as make run does) once per mode: task Pods, WarmPool (the task Pods' default
execution set to WarmPool) and in-process. After one warm-up task (the image is pulled; a WarmPool has its worker),
for each size it creates that many EmptyOperators at once, from ``--creators`` threads (size 1: ``--singles``
tasks one after another), and prints create -> Succeeded p50/p99 (from each create call's return to the watch event
that shows Succeeded), tasks/s (size / first create to last Succeeded), the operator containers' CPU per task (their
cgroups' cpuacct, both replicas) and peak memory, and the worker Pods created; then, per task, where the machine's
CPU went (the operator, the worker Pods, kube-apiserver, etcd, kubelet, containerd, this benchmark, the rest) and the
API requests the server counted (apiserver_request_total). Then ``--callbacks``
DateTimeSensorAsync due at one moment: from each trigger's fire (the triggerer's log line) to its callback starting
(the worker's log line: WarmPool only) and to Succeeded.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflowtask.controlplane import LocalControlPlane
from airflowtask.controlplane.teardown import cgroup_mounts
from airflowtask.install import DEPLOYMENT, NAMESPACE, install, write_overlay
from kubernetes import client, config, watch

GROUP, VERSION, PLURAL = "airflowtask.dev", "v1alpha1", "airflowtasks"
EMPTY = {"module": "airflow.providers.standard.operators.empty", "name": "EmptyOperator", "parameters": {}}
MODES = {
    "Pod": {"AIRFLOWTASK_EXECUTION": "pods"},
    "WarmPool": {"AIRFLOWTASK_EXECUTION": "pods", "AIRFLOWTASK_DEFAULT_EXECUTION": "WarmPool"},
    "in-process": {"AIRFLOWTASK_EXECUTION": "in-process"},
}


def _task(name: str, operator: dict[str, Any] = EMPTY) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AirflowTask", "metadata": {"name": name},
            "spec": {"operator": operator, "pollIntervalSeconds": 30}}


class Finishes:
    """Watches one namespace's AirflowTasks and notes when each is first seen finished (time.time())."""

    def __init__(self, api: client.CustomObjectsApi, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.at: dict[str, float] = {}
        self.failed: list[str] = []
        self._changed = threading.Condition()
        self._watch = watch.Watch()
        threading.Thread(target=self._follow, daemon=True).start()
        time.sleep(0.5)  # the watch is open before the first create

    def _follow(self) -> None:
        while not self._watch._stop:
            with contextlib.suppress(Exception):  # a watch the API server ends is opened again
                for event in self._watch.stream(self.api.list_namespaced_custom_object, GROUP, VERSION,
                                                self.namespace, PLURAL, timeout_seconds=300):
                    self._seen(event["object"], time.time())

    def _seen(self, obj: dict[str, Any], now: float) -> None:
        phase = (obj.get("status") or {}).get("phase")
        name = obj["metadata"]["name"]
        if phase in ("Succeeded", "Failed") and name not in self.at:
            with self._changed:
                self.at[name] = now
                if phase == "Failed":
                    self.failed.append(f"{name}: {obj['status'].get('reason')}: {obj['status'].get('message')}")
                self._changed.notify_all()

    def wait(self, names: list[str], timeout: float = 1800) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: all(n in self.at for n in names), timeout):
                raise TimeoutError(f"{sum(n not in self.at for n in names)} of {len(names)} tasks did not finish")
        if self.failed:
            raise RuntimeError(f"{len(self.failed)} tasks failed, e.g. {self.failed[0]}")

    def stop(self) -> None:
        self._watch.stop()


class Bench:
    def __init__(self, plane: LocalControlPlane, execution: str, creators: int) -> None:
        self.plane, self.execution, self.creators = plane, execution, creators
        self.api = client.CustomObjectsApi()
        self.core = client.CoreV1Api()
        self.namespace = f"bench-{execution.lower()}"  # one namespace: a WarmPool's worker serves every size
        self.core.create_namespace({"metadata": {"name": self.namespace}})
        for _ in range(100):  # the namespace's default ServiceAccount, which task Pods run as
            if self.core.list_namespaced_service_account(self.namespace).items:
                break
            time.sleep(0.1)
        self.finishes = Finishes(self.api, self.namespace)

    def close(self) -> None:
        self.finishes.stop()
        self.core.delete_namespace(self.namespace)

    def warm_up(self) -> None:
        self.create(_task("warm-up"))
        self.finishes.wait(["warm-up"], timeout=600)

    def create(self, body: dict[str, Any]) -> float:
        self.api.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, body)
        return time.time()

    def cgroup(self, name: str, combine: Any = sum, namespace: str = NAMESPACE,
               selector: str = "app.kubernetes.io/component=operator", container: str | None = "operator") -> int:
        """A counter of some containers' cgroups (v1): by default the operator's (both replicas)."""
        values = []
        for pod in self.core.list_namespaced_pod(namespace, label_selector=selector,
                                                 field_selector="status.phase=Running").items:
            for status in pod.status.container_statuses or []:
                if container not in (None, status.name) or not status.container_id:
                    continue
                cid = status.container_id.split("://")[-1]
                for mount in cgroup_mounts():
                    for path in (mount / self.plane.layout.cgroup_parent).rglob(f"pod{pod.metadata.uid}/{cid}/{name}"):
                        values.append(int(path.read_text()))
        return combine(values) if values else 0

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far: the operator's and the worker Pods' containers, the control plane's processes, this
        benchmark, and the whole machine (busy time)."""
        seconds = _process_cpu_seconds()
        seconds["operator"] = self.cgroup("cpuacct.usage") / 1e9
        seconds["workers"] = self.cgroup("cpuacct.usage", namespace=self.namespace, selector="airflowtask.dev/pool",
                                         container=None) / 1e9
        times = os.times()
        seconds["bench"] = times.user + times.system
        fields = [int(n) for n in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        seconds["machine"] = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait
        return seconds

    def requests(self) -> collections.Counter[str]:
        """The API server's request counts by verb, resource and subresource (from its metrics)."""
        counts: collections.Counter[str] = collections.Counter()
        api = self.core.api_client
        answer = api.call_api(*api.param_serialize(method="GET", resource_path="/metrics",
                                                   auth_settings=["BearerToken"]))
        answer.read()
        metrics = answer.data.decode()
        for match in re.finditer(r"^apiserver_request_total\{(.*)\} (\S+)$", metrics, re.MULTILINE):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            what = f"{labels.get('verb')} {labels.get('resource')}" + (
                f"/{labels['subresource']}" if labels.get("subresource") else "")
            counts[what] += float(match.group(2))
        return counts

    def workers_made(self) -> set[str]:
        return {pod.metadata.name for pod in self.core.list_pod_for_all_namespaces(
            label_selector="airflowtask.dev/pool").items}

    def idle(self, seconds: float) -> None:
        """Where the machine's CPU goes with nothing to do (the figures per task include it)."""
        before = self.cpu()
        time.sleep(seconds)
        spent = _spent_ms(before, self.cpu(), seconds)
        print(f"  {self.execution} idle: CPU ms per second of " + ", ".join(f"{name} {ms:.0f}" for name, ms in
                                                                         spent.items()), flush=True)

    def size(self, size: int, singles: int) -> None:
        finishes = self.finishes
        workers, requests, before = self.workers_made(), self.requests(), self.cpu()
        first = time.time()
        if size == 1:
            created = {}
            for i in range(singles):
                created[f"one-{i}"] = self.create(_task(f"one-{i}"))
                finishes.wait([f"one-{i}"])
        else:
            names = [f"at-once-{size}-{i}" for i in range(size)]
            with ThreadPoolExecutor(self.creators) as creators:  # one client alone creates about 30 objects/s here
                created = dict(zip(names, creators.map(lambda name: self.create(_task(name)), names), strict=True))
            finishes.wait(list(created))
        latencies = [finishes.at[name] - at for name, at in created.items()]
        count = len(created)
        elapsed = max(finishes.at[name] for name in created) - first
        spent = _spent_ms(before, self.cpu(), count)
        made = len(self.workers_made() - workers)
        p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else latencies[0]
        peak = self.cgroup("memory.max_usage_in_bytes", max)
        label = f"1 ({singles} one by one)" if size == 1 else str(size)
        print(f"| {self.execution} | {label} | {statistics.median(latencies):.3f} s | {p99:.3f} s | "
              f"{count / elapsed:.1f} | {spent['operator']:.1f} ms | {peak / 2**20:.0f} MiB | {made} |", flush=True)
        per_task = sorted(((n - requests[what]) / count, what) for what, n in self.requests().items())
        print(f"  {self.execution} {label}: per task, CPU of " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in
              spent.items()) + "; API requests " + ", ".join(f"{what} {n:.2f}" for n, what in
                                                           reversed(per_task) if n >= 0.05), flush=True)

    def callbacks(self, count: int) -> None:
        namespace, finishes = self.namespace, self.finishes
        due = datetime.now(UTC) + timedelta(seconds=8)
        sensor = {"module": "airflow.providers.standard.sensors.date_time", "name": "DateTimeSensorAsync",
                  "parameters": {"target_time": due.isoformat()}}
        names = [f"nap-{i}" for i in range(count)]
        for name in names:
            self.create(_task(name, sensor))
        finishes.wait(names, timeout=120)
        fired = self._log_stamps(NAMESPACE, "app.kubernetes.io/component=operator", "triggerer",
                                 rf"{namespace}/(\S+): trigger fired")
        started = self._log_stamps(namespace, "airflowtask.dev/pool", None,
                                   rf"warm_worker\S*:? {namespace}/(\S+) callback: started")
        to_start = [started[n] - fired[n] for n in names if n in started and n in fired]
        to_done = [finishes.at[n] - fired[n] for n in names if n in fired]
        print(f"{self.execution}: {count} DateTimeSensorAsync due at once, {len(fired)} fires seen; fired -> "
              f"callback started p50 / max: {_ms(to_start)}; fired -> Succeeded p50 / max: {_ms(to_done)}; due -> "
              f"Succeeded p50 / max: {_ms([finishes.at[n] - due.timestamp() for n in names])}", flush=True)

    def _log_stamps(self, namespace: str, selector: str, container: str | None, pattern: str) -> dict[str, float]:
        """When each task's line matching ``pattern`` (its group 1 is the task's name) was logged, first."""
        stamps: dict[str, float] = {}
        for pod in self.core.list_namespaced_pod(namespace, label_selector=selector).items:
            text = self.core.read_namespaced_pod_log(pod.metadata.name, namespace, container=container)
            for when, message in _log_lines(text):
                if match := re.search(pattern, message):
                    stamps.setdefault(match.group(1), when)
        return stamps


def _log_lines(text: str) -> list[tuple[float, str]]:
    """(time, message) of each log line: JSON (once Airflow has configured logging) or ``asctime level name``."""
    lines = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            if line.startswith("{"):
                record = json.loads(line)
                when = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
                lines.append((when.timestamp(), f"{record['logger']}: {record['event']}"))
            elif match := re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (.*)", line):
                when = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
                lines.append((when.timestamp(), match.group(2)))
    return lines


def _spent_ms(before: dict[str, float], after: dict[str, float], per: float) -> dict[str, float]:
    """CPU ms per ``per`` (tasks, or seconds) of each part between two ``Bench.cpu`` readings; "rest" is the
    machine's busy time less all the parts."""
    spent = {name: (seconds - before.get(name, 0.0)) * 1000 / per for name, seconds in after.items()}
    spent["rest"] = spent.pop("machine") - sum(spent.values())
    return spent


def _process_cpu_seconds() -> dict[str, float]:
    """CPU seconds of this machine's control plane processes (with their reaped children)."""
    seconds = dict.fromkeys(("kube-apiserver", "etcd", "kubelet", "containerd", "containerd-shim"), 0.0)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            name, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat.rpartition(")")[2].split()
            if name in seconds:
                seconds[name] += sum(int(n) for n in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return seconds


def _ms(seconds: list[float]) -> str:
    return f"{statistics.median(seconds) * 1000:.0f} / {max(seconds) * 1000:.0f} ms" if seconds else "-"


def _deploy(plane: LocalControlPlane, execution: str, work: Path) -> None:
    install(plane.kubectl, write_overlay(work / execution, plane.images.operator if plane.images else None,
                                         MODES[execution]))
    plane.kubectl("rollout", "restart", f"deployment/{DEPLOYMENT}", "-n", NAMESPACE)
    plane.kubectl("rollout", "status", f"deployment/{DEPLOYMENT}", "-n", NAMESPACE, "--timeout=300s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,20,100,200")
    parser.add_argument("--singles", type=int, default=20, help="tasks one after another for size 1")
    parser.add_argument("--callbacks", type=int, default=10)
    parser.add_argument("--creators", type=int, default=8, help="threads creating the tasks of one size")
    parser.add_argument("--modes", default=",".join(MODES), help="comma separated: " + ", ".join(MODES))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-pods-"))
    with LocalControlPlane(work / "cluster") as plane:
        config.load_kube_config(str(plane.kubeconfig))
        print("| execution | at once | create -> Succeeded p50 | p99 | tasks/s | operator CPU per task | "
              "operator peak memory | worker Pods made |")
        print("|---|---|---|---|---|---|---|---|")
        for execution in args.modes.split(","):
            _deploy(plane, execution, work)
            bench = Bench(plane, execution, args.creators)
            bench.warm_up()
            bench.idle(10)
            for size in (int(s) for s in args.sizes.split(",")):
                bench.size(size, args.singles)
            if args.callbacks:
                bench.callbacks(args.callbacks)
            bench.close()


if __name__ == "__main__":
    main()
