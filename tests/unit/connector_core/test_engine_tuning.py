"""What an engine tunes in its process so that its event loop keeps answering under load."""

from __future__ import annotations

import gc
import sys

from airflowtask.connector_core import Engine, EngineConfig


def test_an_engine_freezes_the_startup_heap_and_raises_the_gc_thresholds() -> None:
    """Full collections walk every live task; young ones every live young object."""
    Engine(EngineConfig())
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] >= 50_000


def test_an_engine_shortens_the_gil_switch_interval() -> None:
    """The event loop waits for the GIL behind each busy worker thread for a switch interval."""
    Engine(EngineConfig())
    assert sys.getswitchinterval() <= 0.001
