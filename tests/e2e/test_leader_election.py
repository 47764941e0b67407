"""Leader election on a real Lease: never two leaders, a cut-off leader stops before another starts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import kubernetes
from airflowtask.controlplane import Kubectl as Cluster
from airflowtask.lease import KubeLeaseStore, LeaderElector, LeaseRecord, Timing
from kubetools import wait_until

TIMING = Timing(lease_duration=3.0, renew_deadline=2.0, retry_period=0.2)


class Partitionable:
    """A real Lease store that can be cut off from the API server, as a network partition would."""

    def __init__(self, store: KubeLeaseStore) -> None:
        self.store = store
        self.cut = False

    def __str__(self) -> str:
        return str(self.store)

    def _check(self) -> None:
        if self.cut:
            raise ConnectionRefusedError("partitioned from the API server")

    def read(self) -> tuple[LeaseRecord, str] | None:
        self._check()
        return self.store.read()

    def create(self, record: LeaseRecord) -> str | None:
        self._check()
        return self.store.create(record)

    def update(self, record: LeaseRecord, version: str) -> str | None:
        self._check()
        return self.store.update(record, version)


class Replica:
    """One elector running in its own thread, as in an operator process."""

    def __init__(self, cluster: Cluster, namespace: str, name: str) -> None:
        client = kubernetes.config.new_client_from_config(str(cluster.kubeconfig))
        self.store = Partitionable(KubeLeaseStore(client, namespace, "election"))
        self.elector = LeaderElector(self.store, name, TIMING)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.elector.run, args=(self.stop, lambda: None, lambda: None))

    def crash(self) -> None:
        """Stop without releasing the Lease, as a killed process does."""
        self.store.cut = True
        self.stop.set()
        self.thread.join(5)


@contextmanager
def replicas(cluster: Cluster, namespace: str, count: int) -> Iterator[list[Replica]]:
    started = [Replica(cluster, namespace, f"replica-{i}") for i in range(count)]
    for replica in started:
        replica.thread.start()
    try:
        yield started
    finally:
        for replica in started:
            replica.stop.set()
        for replica in started:
            replica.thread.join(5)


@contextmanager
def sampled(electors: list[Replica]) -> Iterator[list[list[str]]]:
    """Every 5 ms, who may act; yields the samples (lists of names)."""
    samples: list[list[str]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append([r.elector.identity for r in electors if r.elector.may_act()])
            time.sleep(0.005)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        yield samples
    finally:
        done.set()
        thread.join()


def wait_for(predicate: Any, timeout: float) -> float:
    return wait_until(predicate, timeout, "the election", interval=0.01)


def holder(cluster: Cluster, namespace: str) -> str:
    return cluster.kubectl("get", "lease", "election", "-n", namespace, "-o",
                           "jsonpath={.spec.holderIdentity}").stdout.strip()


def test_three_replicas_never_lead_at_once_through_a_partition_a_crash_and_a_release(
    cluster: Cluster, namespace: str
) -> None:
    with replicas(cluster, namespace, 3) as group, sampled(group) as samples:
        wait_for(lambda: any(r.elector.may_act() for r in group), 10)
        first = next(r for r in group if r.elector.may_act())
        assert holder(cluster, namespace) == first.elector.identity

        first.store.cut = True  # the leader loses the API server; the others still reach it
        stopped = wait_for(lambda: not first.elector.may_act(), 10)
        assert stopped <= TIMING.renew_deadline + 0.5
        wait_for(lambda: any(r.elector.may_act() for r in group if r is not first), 10)
        second = next(r for r in group if r.elector.may_act())
        assert holder(cluster, namespace) == second.elector.identity
        first.store.cut = False  # back: it stands by, the new leader keeps the Lease
        time.sleep(1)
        assert not first.elector.may_act() and second.elector.may_act()

        second.crash()  # killed: no release, the others wait out the lease duration
        crashed = time.monotonic()
        wait_for(lambda: any(r.elector.may_act() for r in group if r is not second), 10)
        assert time.monotonic() - crashed >= TIMING.lease_duration - TIMING.retry_period - 0.05
        third = next(r for r in group if r.elector.may_act())

        (last,) = (r for r in group if r not in (second, third))
        third.stop.set()  # a graceful stop releases: the last one takes over within about a retry period
        released = time.monotonic()
        third.thread.join(5)
        wait_for(last.elector.may_act, 10)
        assert time.monotonic() - released < 1.5
        assert holder(cluster, namespace) == last.elector.identity
    leaders = [sample for sample in samples if sample]
    assert len(leaders) > 100
    assert all(len(sample) <= 1 for sample in samples), [s for s in samples if len(s) > 1][:5]
    transitions = cluster.kubectl("get", "lease", "election", "-n", namespace, "-o",
                                  "jsonpath={.spec.leaseTransitions}").stdout.strip()
    assert transitions == "3"


def test_a_leader_that_finds_its_lease_taken_stops_at_once(cluster: Cluster, namespace: str) -> None:
    with replicas(cluster, namespace, 1) as (only,), sampled([only]):
        wait_for(only.elector.may_act, 10)
        lease = cluster.kubectl("get", "lease", "election", "-n", namespace, "-o", "json").stdout
        assert only.elector.identity in lease
        cluster.kubectl("patch", "lease", "election", "-n", namespace, "--type=merge",
                        "-p", '{"spec": {"holderIdentity": "usurper"}}')
        assert wait_for(lambda: not only.elector.may_act(), 5) < TIMING.retry_period + 1
        time.sleep(TIMING.retry_period * 3)
        assert holder(cluster, namespace) == "usurper"
