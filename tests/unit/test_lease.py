"""The Lease elector's rules, on an in-memory Lease and a hand-moved clock."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from airflowtask.lease import LeaderElector, LeaseRecord, Timing

TIMING = Timing(lease_duration=15, renew_deadline=10, retry_period=2)


class MemoryLease:
    """One Lease with a resourceVersion, as the API server keeps it."""

    def __init__(self) -> None:
        self.record: LeaseRecord | None = None
        self.version = 0
        self.failing = False

    def read(self) -> tuple[LeaseRecord, str] | None:
        if self.failing:
            raise ConnectionRefusedError("the API server is away")
        return (self.record, str(self.version)) if self.record else None

    def create(self, record: LeaseRecord) -> str | None:
        if self.record is not None:
            return None
        return self._store(record)

    def update(self, record: LeaseRecord, version: str) -> str | None:
        if self.failing:
            raise ConnectionRefusedError("the API server is away")
        return self._store(record) if version == str(self.version) else None

    def _store(self, record: LeaseRecord) -> str:
        self.record, self.version = record, self.version + 1
        return str(self.version)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lease() -> MemoryLease:
    return MemoryLease()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def elector(lease: MemoryLease, clock: Clock, name: str) -> LeaderElector:
    return LeaderElector(lease, name, TIMING, clock=clock)


def test_the_first_candidate_creates_the_lease_and_leads(lease: MemoryLease, clock: Clock) -> None:
    a = elector(lease, clock, "a")
    assert a.try_acquire_or_renew()
    assert a.may_act()
    assert lease.record is not None
    assert (lease.record.holder, lease.record.duration_seconds, lease.record.transitions) == ("a", 15, 0)


def test_a_held_lease_is_not_taken_while_its_holder_renews(lease: MemoryLease, clock: Clock) -> None:
    a, b = elector(lease, clock, "a"), elector(lease, clock, "b")
    assert a.try_acquire_or_renew()
    for _ in range(20):  # 40 s of renewals every 2 s: b never gets it
        assert not b.try_acquire_or_renew()
        clock.now += 2
        assert a.try_acquire_or_renew()
        assert a.may_act() and not b.may_act()
    assert lease.record is not None and lease.record.holder == "a"


def test_a_silent_holder_loses_the_lease_after_the_lease_duration_by_the_candidates_clock(
    lease: MemoryLease, clock: Clock
) -> None:
    a, b = elector(lease, clock, "a"), elector(lease, clock, "b")
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()  # b sees the record now
    clock.now += 14.9
    assert not b.try_acquire_or_renew()
    clock.now += 0.2
    assert b.try_acquire_or_renew()
    assert lease.record is not None
    assert (lease.record.holder, lease.record.transitions) == ("b", 1)


def test_the_holder_stops_acting_before_anyone_else_may_take_over(lease: MemoryLease, clock: Clock) -> None:
    a, b = elector(lease, clock, "a"), elector(lease, clock, "b")
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    lease.failing = True  # a cannot renew from now on
    clock.now += TIMING.renew_deadline
    assert not a.may_act()  # at the renew deadline ...
    lease.failing = False
    clock.now += TIMING.lease_duration - TIMING.renew_deadline - 0.1
    assert not b.try_acquire_or_renew()  # ... well before the lease duration has passed for b
    clock.now += 0.2
    assert b.try_acquire_or_renew()


def test_the_fence_closes_at_the_renew_deadline_even_while_a_renewal_hangs(lease: MemoryLease, clock: Clock) -> None:
    a = elector(lease, clock, "a")
    assert a.try_acquire_or_renew()
    clock.now += TIMING.renew_deadline - 0.01
    assert a.may_act()
    clock.now += 0.02
    assert not a.may_act()


def test_a_holder_that_sees_another_holder_stops_at_once(lease: MemoryLease, clock: Clock) -> None:
    a = elector(lease, clock, "a")
    assert a.try_acquire_or_renew()
    assert lease.record is not None
    lease._store(replace(lease.record, holder="intruder"))
    assert not a.try_acquire_or_renew()
    assert not a.may_act()


def test_two_candidates_racing_on_one_version_never_both_win(lease: MemoryLease, clock: Clock) -> None:
    a, b = elector(lease, clock, "a"), elector(lease, clock, "b")
    assert a.try_acquire_or_renew()
    a.release()
    read = lease.read
    seen = read()  # both read the released record at the same version ...
    lease.read = lambda: seen  # type: ignore[method-assign]
    results = [b.try_acquire_or_renew(), elector(lease, clock, "c").try_acquire_or_renew()]
    assert results == [True, False]  # ... and only the first update at that version lands
    lease.read = read  # type: ignore[method-assign]
    assert lease.record is not None and lease.record.holder == "b"


def test_release_empties_the_holder_so_a_candidate_takes_over_at_once(lease: MemoryLease, clock: Clock) -> None:
    a, b = elector(lease, clock, "a"), elector(lease, clock, "b")
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    a.release()
    assert not a.may_act()
    assert lease.record is not None and lease.record.holder == ""
    assert b.try_acquire_or_renew()
    assert lease.record.holder == "b" and lease.record.transitions == 1


def test_timing_must_leave_the_holder_time_to_stop() -> None:
    with pytest.raises(ValueError, match="renew deadline < lease duration"):
        Timing(lease_duration=10, renew_deadline=10, retry_period=2)


def test_run_leads_stands_by_after_losing_and_reports_each_change(lease: MemoryLease) -> None:
    timing = Timing(lease_duration=0.6, renew_deadline=0.4, retry_period=0.05)
    a = LeaderElector(lease, "a", timing)
    changes: list[str] = []
    started, lost = threading.Event(), threading.Event()
    stop = threading.Event()

    def on_started() -> None:
        changes.append("started")
        started.set()

    def on_stopped() -> None:
        changes.append("stopped")
        lost.set()

    thread = threading.Thread(target=a.run, args=(stop, on_started, on_stopped))
    thread.start()
    try:
        assert started.wait(2)
        started.clear()
        lease.failing = True
        assert lost.wait(2)
        assert not a.may_act()
        lease.failing = False
        assert started.wait(2)  # its own lease again, once the API server answers
    finally:
        stop.set()
        thread.join(2)
    assert changes == ["started", "stopped", "started", "stopped"]
    assert lease.record is not None and lease.record.holder == ""  # released on stop
