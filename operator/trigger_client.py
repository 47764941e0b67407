"""The controller's side of the triggerer (:mod:`airflowtask.trigger_host`): hand triggers over, hear what they did.

No Airflow here. One connection per namespace; every message from the triggerer is checked (a known type, a key
handed over on that connection, typed-JSON data) since the triggerer runs tenants' code. A connection that drops
(the namespace's process crashed, the container restarted) is opened again and every trigger still waiting on it
is handed over again; a trigger that was running each of 3 times its process crashed fails with that said.
Without a socket (a local process, ``make run-local``) the client starts a triggerer subprocess itself, with an
environment stripped of everything but what Airflow needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflowtask.reports import InvalidReport, check_data

log = logging.getLogger(__name__)

LINE_LIMIT = 1 << 20
CRASH_LIMIT = 3
_KEPT_VARIABLES = ("PATH", "HOME", "AIRFLOW_HOME", "PYTHONPATH", "LANG", "TZ", "AIRFLOW__LOGGING__JSON_LOGS")


@dataclass(frozen=True)
class TriggerResult:
    """How a trigger ended: ``fired`` (``event`` for the callback), ``ended`` (the trigger ended the task:
    ``phase``, ``reason``), ``failed`` (``message``) or ``refused`` (``reason``, ``message``: nothing ran)."""

    kind: str
    event: Any = None
    phase: str | None = None
    reason: str | None = None
    message: str = ""


class TriggerClient:
    def __init__(self, socket_path: str | None, allowed_modules: tuple[str, ...],
                 on_blocked: Callable[[str, str, float], None]) -> None:
        self.socket_path = socket_path
        self.allowed_modules = allowed_modules
        self.on_blocked = on_blocked
        self._process: asyncio.subprocess.Process | None = None
        self._connections: dict[str, _Connection] = {}
        self._handed: dict[str, dict[str, Any]] = {}
        self._namespace_of: dict[str, str] = {}
        self._results: dict[str, TriggerResult] = {}
        self._news: dict[str, asyncio.Event] = {}
        self._crashes: dict[str, int] = {}

    async def start(self) -> None:
        """Start a local triggerer when no socket is configured."""
        if self.socket_path is not None:
            return
        self.socket_path = os.path.join(tempfile.mkdtemp(prefix="airflowtask-triggerer-"), "triggerer.sock")
        env = {name: os.environ[name] for name in _KEPT_VARIABLES if name in os.environ}
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-P", "-m", "airflowtask", "triggerer", f"--socket={self.socket_path}", env=env)

    def running(self) -> int:
        return sum(1 for key in self._handed if key not in self._results)

    async def run(self, namespace: str, key: str, task: str, classpath: str, kwargs: dict[str, Any],
                  connections: dict[str, str], deadline: Any = None) -> None:
        """Hand a trigger over (again, after a restart: a key already handed over is not run twice)."""
        self._results.pop(key, None)
        self._handed[key] = {"type": "run", "key": key, "task": task, "classpath": classpath, "kwargs": kwargs,
                             "connections": connections}
        self._namespace_of[key] = namespace
        self._news.setdefault(key, asyncio.Event()).clear()
        await self._connection(namespace).send(self._handed[key])

    def result(self, key: str) -> TriggerResult | None:
        return self._results.get(key)

    async def wait(self, key: str, timeout: float) -> None:
        if key in self._results:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._news.setdefault(key, asyncio.Event()).wait(), timeout)

    async def cancel(self, key: str) -> None:
        namespace = self._namespace_of.get(key)
        if namespace is not None and key not in self._results:
            await self._connection(namespace).send({"type": "cancel", "key": key})
        self.forget(key)

    def forget(self, key: str) -> None:
        for held in (self._handed, self._namespace_of, self._results, self._news, self._crashes):
            held.pop(key, None)

    async def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()

    # ---- connections ---------------------------------------------------------------------------------------

    def _connection(self, namespace: str) -> _Connection:
        if namespace not in self._connections:
            self._connections[namespace] = _Connection(self, namespace)
        return self._connections[namespace]

    def _keys_of(self, namespace: str) -> list[str]:
        return [key for key, ns in self._namespace_of.items() if ns == namespace and key not in self._results]

    def _hello(self, namespace: str) -> dict[str, Any]:
        return {"type": "hello", "namespace": namespace, "allowedModules": list(self.allowed_modules)}

    def _resend(self, namespace: str) -> list[dict[str, Any]]:
        return [self._handed[key] for key in self._keys_of(namespace)]

    def _crashed(self, namespace: str) -> None:
        """The namespace's process went away while these triggers ran."""
        for key in self._keys_of(namespace):
            self._crashes[key] = self._crashes.get(key, 0) + 1
            if self._crashes[key] >= CRASH_LIMIT:
                self._settle(key, TriggerResult("failed", message=f"the trigger's triggerer process crashed "
                                                                  f"{CRASH_LIMIT} times while it ran"))

    def _settle(self, key: str, result: TriggerResult) -> None:
        if key in self._handed and key not in self._results:
            self._results[key] = result
            self._news.setdefault(key, asyncio.Event()).set()

    def _receive(self, namespace: str, message: Any) -> None:
        """One message from the namespace's triggerer process, checked before it is believed."""
        kind, key = (message.get("type"), message.get("key")) if isinstance(message, dict) else (None, None)
        if not isinstance(key, str) or self._namespace_of.get(key) != namespace:
            log.warning("ignored a message from the triggerer of %s about no trigger of its own", namespace)
            return
        try:
            result = _result(kind, message)
        except (InvalidReport, TypeError, ValueError) as error:
            log.warning("ignored a message from the triggerer of %s: %s", namespace, error)
            return
        if result is None:  # blocked
            self.on_blocked(namespace, str(self._handed[key]["task"]), float(message.get("seconds") or 0))
        else:
            self._settle(key, result)


def _result(kind: Any, message: dict[str, Any]) -> TriggerResult | None:
    text = str(message.get("message", ""))[:1024]
    if kind == "fired":
        check_data(message.get("event"), "event")
        return TriggerResult("fired", event=message.get("event"))
    if kind == "ended":
        phase, reason = message.get("phase"), message.get("reason")
        if phase not in ("Succeeded", "Failed") or not isinstance(reason, str) or not reason.isalnum():
            raise ValueError(f"an ended trigger must say Succeeded or Failed and a reason, got {phase!r}")
        return TriggerResult("ended", phase=phase, reason=reason)
    if kind == "failed":
        return TriggerResult("failed", message=text)
    if kind == "refused":
        reason = message.get("reason")
        if reason not in ("InvalidOutcome", "ImportFailed", "InvalidParameters"):
            raise ValueError(f"unknown refusal {reason!r}")
        return TriggerResult("refused", reason=reason, message=text)
    if kind == "blocked":
        return None
    raise ValueError(f"unknown message type {kind!r}")


class _Connection:
    """One namespace's connection: sends in order, reads until it drops, then opens again and hands over again."""

    def __init__(self, client: TriggerClient, namespace: str) -> None:
        self.client, self.namespace = client, namespace
        self._writer: asyncio.StreamWriter | None = None
        self._opened = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._keep_open())

    async def send(self, message: dict[str, Any]) -> None:
        """Send now when open; otherwise it is sent with the rest when the connection opens."""
        if self._writer is not None:
            with contextlib.suppress(OSError):
                self._writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
                await self._writer.drain()

    def close(self) -> None:
        self._task.cancel()
        if self._writer is not None:
            self._writer.close()

    async def _keep_open(self) -> None:
        delay, opened_before = 0.1, False
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(self.client.socket_path, limit=LINE_LIMIT)
            except OSError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if opened_before:
                log.warning("the triggerer of namespace %s was reconnected; its triggers are handed over again",
                            self.namespace)
            opened_before, delay = True, 0.1
            lines = [self.client._hello(self.namespace), *self.client._resend(self.namespace)]
            writer.write(b"".join(json.dumps(m, separators=(",", ":")).encode() + b"\n" for m in lines))
            self._writer = writer
            try:
                while line := await reader.readline():
                    try:
                        message = json.loads(line)
                    except ValueError:
                        log.warning("ignored a line from the triggerer of %s that is not JSON", self.namespace)
                        continue
                    self.client._receive(self.namespace, message)
            except (OSError, ValueError, asyncio.LimitOverrunError):
                pass
            self._writer = None
            writer.close()
            self.client._crashed(self.namespace)
