"""What an engine tunes in its process so that its event loop keeps answering under load."""

from __future__ import annotations

import gc
import random
import sys

from airflowtask.connector_core import Engine, EngineConfig
from airflowtask.connector_core.engine import random_key


def test_an_engine_freezes_the_startup_heap_and_raises_the_gc_thresholds() -> None:
    """Full collections walk every live task; young ones every live young object."""
    Engine(EngineConfig())
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] >= 50_000


def test_an_engine_shortens_the_gil_switch_interval() -> None:
    """The event loop waits for the GIL behind each busy worker thread for a switch interval."""
    Engine(EngineConfig())
    assert sys.getswitchinterval() <= 0.001


def test_task_keys_are_unique_hex_without_a_system_call() -> None:
    keys = {random_key() for _ in range(10_000)}
    assert len(keys) == 10_000
    assert all(len(key) == 32 and int(key, 16) >= 0 for key in keys)


def test_task_keys_do_not_follow_pythons_prng() -> None:
    """A key names a task to get() and delete(): it must not be predictable from the keys seen before."""
    random.seed(1)
    first = random_key()
    random.seed(1)
    assert random_key() != first
    assert first != f"{random.Random(1).getrandbits(128):032x}"
