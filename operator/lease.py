"""Leader election on a ``coordination.k8s.io/v1`` Lease, with the semantics of client-go's leaderelection.

Every replica runs a :class:`LeaderElector` in a thread of its own (so that a busy event loop never delays a
renewal). A candidate reads the Lease every ``retry_period``; it takes the Lease when nobody holds it, or when
the record has not changed for ``lease_duration`` by the candidate's own clock (so clocks need not agree). The
holder renews every ``retry_period`` and stops leading when it has not renewed for ``renew_deadline``, which is
shorter than ``lease_duration``: it has stopped acting before anybody else may take over. :meth:`may_act` is
that fence; writes check it just before they are sent. Every write of the Lease is an update with the
resourceVersion that was read, so two candidates never both win. On a graceful stop the holder releases the
Lease (empty holder), and a candidate takes it at its next read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import kubernetes
from airflowtask.outage import OUTAGE
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timing:
    """Seconds; the defaults are client-go's (and kube-controller-manager's)."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(f"lease timing needs 0 < retry period < renew deadline < lease duration: {self}")


@dataclass(frozen=True)
class LeaseRecord:
    """The Lease's spec: who holds it, since when, and how often it changed hands."""

    holder: str
    duration_seconds: int
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    transitions: int = 0


class LeaseStore(Protocol):
    """Reads and writes one Lease; ``version`` is its resourceVersion (optimistic concurrency)."""

    def read(self) -> tuple[LeaseRecord, str] | None:
        """The record and its version, or None when the Lease does not exist."""

    def create(self, record: LeaseRecord) -> str | None:
        """Create the Lease; its version, or None when somebody else created it first."""

    def update(self, record: LeaseRecord, version: str) -> str | None:
        """Replace the record if the Lease is still at ``version``; the new version, or None on a conflict."""


class LeaderElector:
    """One replica's view of the Lease: acquire, renew, release; :meth:`may_act` fences writes."""

    def __init__(self, store: LeaseStore, identity: str, timing: Timing = Timing(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.identity, self.timing, self.clock = store, identity, timing, clock
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._renewed_at: float | None = None
        """Clock reading when the last successful acquire or renew started; None while not leading."""

    @property
    def leading(self) -> bool:
        return self._renewed_at is not None

    def may_act(self) -> bool:
        """True while this replica leads and renewed within ``renew_deadline``: the only time it may write."""
        renewed = self._renewed_at
        return renewed is not None and self.clock() < renewed + self.timing.renew_deadline

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this replica holds the Lease afterwards. API errors propagate."""
        started = self.clock()
        now = datetime.now(UTC)
        current = self.store.read()
        if current is None:
            record = LeaseRecord(self.identity, round(self.timing.lease_duration), now, now, 0)
            return self._won(record, self.store.create(record), started)
        record, version = current
        if record != self._observed:
            self._observed, self._observed_at = record, self.clock()
        ours = record.holder == self.identity
        if record.holder and not ours and self.clock() < self._observed_at + self.timing.lease_duration:
            self._renewed_at = None
            return False
        taken = replace(record, holder=self.identity, duration_seconds=round(self.timing.lease_duration),
                        renew_time=now)
        if not ours:
            taken = replace(taken, acquire_time=now, transitions=record.transitions + 1)
        return self._won(taken, self.store.update(taken, version), started)

    def _won(self, record: LeaseRecord, version: str | None, started: float) -> bool:
        if version is None:
            return False
        self._observed, self._observed_at, self._renewed_at = record, self.clock(), started
        return True

    def release(self) -> None:
        """Give the Lease up (empty holder) if this replica still holds it; stop acting at once."""
        if self._renewed_at is None:
            return
        self._renewed_at = None
        current = self.store.read()
        if current is not None and current[0].holder == self.identity:
            self.store.update(replace(current[0], holder="", duration_seconds=1), current[1])

    def run(self, stop: threading.Event, on_started: Callable[[], None], on_stopped: Callable[[], None]) -> None:
        """Lead whenever possible until ``stop`` is set; call back on every change. Blocks: run it in a thread."""
        while not stop.is_set():
            if not self._attempt():
                stop.wait(self.timing.retry_period)
                continue
            log.info("leading: %s holds Lease %s", self.identity, self.store)
            on_started()
            while not stop.wait(self.timing.retry_period):
                if not self._attempt() and not self.may_act():
                    self._renewed_at = None
                    break
            if stop.is_set():
                self._release_quietly()
                on_stopped()
                return
            log.log(logging.INFO if OUTAGE.ongoing else logging.WARNING,
                    "lost Lease %s (not renewed for %gs, or taken over): stopped acting, standing by",
                    self.store, self.timing.renew_deadline)
            on_stopped()

    def _attempt(self) -> bool:
        """One attempt; API trouble is logged once per outage (the renew deadline decides what it means)."""
        try:
            held = self.try_acquire_or_renew()
        except Exception as error:
            OUTAGE.failed(f"Lease {self.store}", error)
            return False
        OUTAGE.succeeded(f"Lease {self.store}")
        return held

    def _release_quietly(self) -> None:
        try:
            self.release()
        except Exception as error:
            log.warning("could not release Lease %s: %s", self.store, error)
        self._renewed_at = None


class KubeLeaseStore:
    """A Lease in the cluster, through its own API client and a short request timeout."""

    def __init__(self, api_client: kubernetes.client.ApiClient, namespace: str, name: str,
                 timeout: float = 5.0) -> None:
        self._api = kubernetes.client.CoordinationV1Api(api_client)
        self.namespace, self.name, self.timeout = namespace, name, timeout

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    def read(self) -> tuple[LeaseRecord, str] | None:
        try:
            lease = self._api.read_namespaced_lease(self.name, self.namespace, _request_timeout=self.timeout)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        spec = lease.spec
        record = LeaseRecord(holder=spec.holder_identity or "", duration_seconds=spec.lease_duration_seconds or 0,
                             acquire_time=spec.acquire_time, renew_time=spec.renew_time,
                             transitions=spec.lease_transitions or 0)
        return record, lease.metadata.resource_version

    def create(self, record: LeaseRecord) -> str | None:
        body = {"metadata": {"name": self.name, "namespace": self.namespace}, "spec": _spec(record)}
        return self._write(lambda: self._api.create_namespaced_lease(self.namespace, body,
                                                                     _request_timeout=self.timeout))

    def update(self, record: LeaseRecord, version: str) -> str | None:
        body = {"metadata": {"name": self.name, "namespace": self.namespace, "resourceVersion": version},
                "spec": _spec(record)}
        return self._write(lambda: self._api.replace_namespaced_lease(self.name, self.namespace, body,
                                                                      _request_timeout=self.timeout))

    @staticmethod
    def _write(call: Callable[[], Any]) -> str | None:
        try:
            return call().metadata.resource_version
        except ApiException as error:
            if error.status == 409:  # somebody else wrote it first
                return None
            raise


def _spec(record: LeaseRecord) -> dict[str, Any]:
    return {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": record.duration_seconds,
        "acquireTime": _micro(record.acquire_time),
        "renewTime": _micro(record.renew_time),
        "leaseTransitions": record.transitions,
    }


def _micro(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment else None
