"""The triggerer process and the controller's client, over a real Unix socket with real Airflow triggers."""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from airflowtask.trigger_client import TriggerClient, TriggerResult

SUPPORT = str(Path(__file__).resolve().parents[1] / "support")
ALLOWED = ("airflow.providers.*", "airflow.triggers.*", "task_callables")
TIME_DELTA = "airflow.providers.standard.triggers.temporal.DateTimeTrigger"


def _start(path: Path) -> subprocess.Popen[bytes]:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": SUPPORT, "AIRFLOW_HOME": str(path.parent / "airflow")}
    process = subprocess.Popen([sys.executable, "-P", "-m", "airflowtask", "triggerer", f"--socket={path}"],
                               env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return process


@pytest.fixture
def socket_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "triggerer.sock"
    process = _start(path)
    yield path
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


Blocked = list[tuple[str, str, float]]


def with_client(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async test with a client of the triggerer at ``socket_path`` (and the blocked reports it got)."""

    @functools.wraps(test)
    def run(socket_path: Path, **kwargs: Any) -> None:
        async def main() -> None:
            blocked: Blocked = []
            triggers = TriggerClient(str(socket_path), ALLOWED, lambda *report: blocked.append(report))
            await triggers.start()
            try:
                await test(triggers, blocked, socket_path, **kwargs)
            finally:
                await triggers.close()

        asyncio.run(main())

    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("socket_path", inspect.Parameter.POSITIONAL_OR_KEYWORD),
         *list(inspect.signature(test).parameters.values())[3:]])
    return run


def _moment(seconds: float) -> dict[str, object]:
    return {"moment": {"__type": "datetime", "__var": time.time() + seconds}, "end_from_trigger": False}


async def _result(triggers: TriggerClient, key: str, timeout: float = 30) -> TriggerResult:
    deadline = time.monotonic() + timeout
    while (result := triggers.result(key)) is None and time.monotonic() < deadline:
        await triggers.wait(key, 1.0)
    assert result is not None, f"{key} did not end"
    return result


@with_client
async def test_a_trigger_fires_with_its_event(
    triggers: TriggerClient, blocked: Blocked, socket_path: Path
) -> None:
    await triggers.run("a", "k1", "a/t1", TIME_DELTA, _moment(0.5), {})
    result = await _result(triggers, "k1")
    assert result.kind == "fired" and result.event["__type"] == "datetime"


@pytest.mark.parametrize(("classpath", "kwargs", "message"), [
    ("airflow.providers.standard.operators.bash.BashOperator", {"task_id": "x", "bash_command": "touch /tmp/pwn"},
     "deferral.trigger.classpath airflow.providers.standard.operators.bash.BashOperator is not a trigger"),
    ("airflow.providers.standard.sensors.bash.BashSensor", {"task_id": "x", "bash_command": "id"}, "not a trigger"),
    ("airflow.providers.standard.hooks.subprocess.SubprocessHook", {}, "not a trigger"),
    ("task_callables.forge_outcome", {"outcome": "x"}, "task_callables.forge_outcome is not a trigger"),
    ("subprocess.Popen", {"args": "id"}, "is not allowed"),
    (TIME_DELTA, {"moment": {"__type": "callable", "__var": "os.system"}}, "a callable reference is not data"),
], ids=["operator", "sensor", "hook", "function", "outside-allowlist", "callable-kwarg"])
@with_client
async def test_anything_but_a_trigger_is_refused_and_never_built(
    triggers: TriggerClient, blocked: Blocked, socket_path: Path, classpath: str, kwargs: dict[str, object],
    message: str,
) -> None:
    await triggers.run("a", "bad", "a/bad", classpath, kwargs, {})
    result = await _result(triggers, "bad")
    assert (result.kind, result.reason) == ("refused", "InvalidOutcome") and message in result.message
    assert not Path("/tmp/pwn").exists()


@with_client
async def test_a_blocking_trigger_delays_only_its_own_namespace(
    triggers: TriggerClient, blocked: Blocked, socket_path: Path
) -> None:
    await triggers.run("a", "hog", "a/hog", "task_callables.LoopBlockingTrigger", {"seconds": 6}, {})
    await asyncio.sleep(0.5)
    due = time.time() + 2
    await triggers.run("b", "punctual", "b/punctual", "task_callables.AtTimeTrigger", {"at": due}, {})
    result = await _result(triggers, "punctual")
    assert result.kind == "fired" and result.event - due < 1.0
    assert (await _result(triggers, "hog")).event == "woke"
    assert [(namespace, task) for namespace, task, _ in blocked] == [("a", "a/hog")]


@with_client
async def test_a_trigger_that_kills_its_process_takes_only_its_namespace_down_and_others_resume(
    triggers: TriggerClient, blocked: Blocked, socket_path: Path
) -> None:
    await triggers.run("a", "waiter", "a/waiter", "task_callables.AtTimeTrigger", {"at": time.time() + 3}, {})
    await triggers.run("b", "other", "b/other", "task_callables.AtTimeTrigger", {"at": time.time() + 1}, {})
    await asyncio.sleep(0.5)
    killer = subprocess.run(["pkill", "-KILL", "-f", "-n", f"triggerer --socket={socket_path}"], check=False)
    assert killer.returncode == 0  # the newest process: a child (namespace b's)
    assert (await _result(triggers, "waiter")).kind == "fired"
    assert (await _result(triggers, "other")).kind == "fired"  # handed over again to a new child


def test_a_restarted_triggerer_gets_every_waiting_trigger_again(tmp_path: Path) -> None:
    asyncio.run(_restarted(tmp_path))


async def _restarted(tmp_path: Path) -> None:
    path = tmp_path / "triggerer.sock"
    process = _start(path)
    triggers = TriggerClient(str(path), ALLOWED, lambda *_: None)
    await triggers.start()
    try:
        await triggers.run("a", "k", "a/k", "task_callables.AtTimeTrigger", {"at": time.time() + 4}, {})
        await asyncio.sleep(1)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        process = _start(path)
        assert (await _result(triggers, "k")).kind == "fired"
    finally:
        await triggers.close()
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@with_client
async def test_cancel_stops_a_trigger(
    triggers: TriggerClient, blocked: Blocked, socket_path: Path
) -> None:
    await triggers.run("a", "never", "a/never", "task_callables.NeverTrigger", {}, {})
    await asyncio.sleep(0.5)
    await triggers.cancel("never")
    assert triggers.result("never") is None and triggers.running() == 0


def test_the_client_imports_no_airflow() -> None:
    code = "import sys, airflowtask.trigger_client, airflowtask.pod_executor; print('airflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
