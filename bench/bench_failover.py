"""Failover time of the operator's two replicas: the leader killed, or its Pod deleted, until the new leader writes.

    python -P bench/bench_failover.py [--rounds 3]

Deploys manifests/ (two replicas electing a leader on a Lease) on the local node. Each round removes the leader
one way: ``kill`` (SIGKILL to its processes, as an OOM kill or a lost node: the Lease is not released, the standby
waits until it expires) or ``delete`` (``kubectl delete pod``: SIGTERM, the leader stops and releases the Lease).
The clock runs until the Lease names a new holder, then a probe AirflowTask is created every 0.25 s (its Pod's
image does not exist, so no task work loads the node; only the new leader can write its status) and the clock
runs until the first probe has a status. Prints one line per round and the median per way.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "support")]

from airflowtask.controlplane import LocalControlPlane  # noqa: E402
from operator_deployment import OperatorDeployment  # noqa: E402

PROBE = {"module": "airflow.providers.standard.operators.empty", "name": "EmptyOperator", "parameters": {}}
NO_IMAGE = "localhost/airflowtask-failover-probe-no-such-image:0"


class Probes:
    """Creates a probe task every ``interval`` seconds and notes when the first one got a status."""

    def __init__(self, plane: LocalControlPlane, namespace: str, interval: float = 0.25) -> None:
        self.plane, self.namespace, self.interval = plane, namespace, interval
        self.first_status: float | None = None
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._create, daemon=True),
                         threading.Thread(target=self._look, daemon=True)]

    def start(self) -> Probes:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _create(self) -> None:
        index = 0
        while self.first_status is None and not self._stop.wait(self.interval):
            task = {"apiVersion": "airflowtask.dev/v1alpha1", "kind": "AirflowTask",
                    "metadata": {"name": f"probe-{index:04d}", "namespace": self.namespace},
                    "spec": {"operator": PROBE, "image": NO_IMAGE}}
            self.plane.kubectl("apply", "-f", "-", input=json.dumps(task), check=False)
            index += 1

    def _look(self) -> None:
        while not self._stop.wait(0.05) and self.first_status is None:
            raw = self.plane.kubectl("get", "aft", "-n", self.namespace, "-o", "json", check=False).stdout
            items = json.loads(raw or '{"items": []}')["items"]
            if any(item.get("status", {}).get("phase") for item in items):
                self.first_status = time.monotonic()


def _wait(predicate: Any, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout}s")
        time.sleep(0.05)
    return time.monotonic()


def failover_round(plane: LocalControlPlane, operator: OperatorDeployment, way: str, index: int) -> tuple[float, float]:
    """Seconds from removing the leader to (the Lease changing holder, the first status written after that)."""
    operator.start()
    namespace = f"failover-{way}-{index}"
    plane.kubectl("create", "namespace", namespace)
    leader = operator.holder()
    removed = time.monotonic()
    if way == "kill":
        operator.kill()
    else:
        operator.delete_pod()
    handed = _wait(lambda: operator.holder() not in ("", leader), 120)
    probes = Probes(plane, namespace).start()
    try:
        written = _wait(lambda: probes.first_status is not None, 120)
    finally:
        probes.stop()
        plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    return handed - removed, written - removed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per way of removing the leader")
    args = parser.parse_args()
    with ExitStack() as stack:
        plane = stack.enter_context(LocalControlPlane(Path(tempfile.mkdtemp(prefix="aft-failover-"))))
        assert plane.images is not None
        operator = OperatorDeployment(plane, plane.images.operator, Path(tempfile.mkdtemp()), {})
        operator.deploy()
        print(f"{'way':<7} {'round':>5} {'Lease handed over s':>20} {'first status by new leader s':>29}", flush=True)
        results: dict[str, list[float]] = {}
        for way in ("kill", "delete"):
            for index in range(args.rounds):
                handed, written = failover_round(plane, operator, way, index)
                results.setdefault(way, []).append(written)
                print(f"{way:<7} {index + 1:>5} {handed:>20.1f} {written:>29.1f}", flush=True)
        for way, times in results.items():
            print(f"{way}: median {statistics.median(times):.1f}s, max {max(times):.1f}s to the first status "
                  "written by the new leader", flush=True)


if __name__ == "__main__":
    main()
