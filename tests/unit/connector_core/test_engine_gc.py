"""The engine keeps full garbage collections rare: they walk every live task and stall the event loop."""

from __future__ import annotations

import gc

from airflowtask.connector_core import Engine, EngineConfig


def test_an_engine_freezes_the_startup_heap_and_raises_the_thresholds() -> None:
    Engine(EngineConfig())
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] >= 50_000
