"""The triggerer container's process: ``airflowtask-operator triggerer --socket PATH``.

It holds no credential (no ServiceAccount token is mounted in its container, and nothing of the operator's
environment is passed to it). A supervisor imports Airflow once, then forks one child per connection; the
controller opens one connection per namespace, so one tenant's trigger that blocks its event loop or crashes its
process delays or takes down only that namespace's triggers.

Protocol: JSON lines over the Unix socket. Controller -> triggerer: ``hello {namespace, allowedModules}`` first,
then ``run {key, task, classpath, kwargs, connections}`` and ``cancel {key}``. Triggerer -> controller:
``fired {key, event}``, ``ended {key, phase, reason}``, ``failed {key, message}``, ``refused {key, reason,
message}``, ``blocked {key, task, seconds}`` (once per trigger that held the loop past the threshold).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import socket
import threading
import time
from typing import Any

from airflowtask.connector_core import secrets
from airflowtask.connector_core.allowlist import Allowlist
from airflowtask.connector_core.trigger_only import Refused, build_trigger, run_trigger
from airflowtask.connector_core.triggerer import AlarmClock

log = logging.getLogger(__name__)

LINE_LIMIT = 1 << 20
BLOCKED_AFTER_SECONDS = 1.0


def serve(path: str, blocked_after: float = BLOCKED_AFTER_SECONDS) -> None:
    """Accept connections on ``path`` forever; each is served by a child process of its own."""
    secrets.install()
    gc.collect()
    gc.freeze()  # what the supervisor imported stays shared with the children, untouched by their collections
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    if os.path.exists(path):
        os.unlink(path)
    old_umask = os.umask(0o077)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.umask(old_umask)
    listener.listen(64)
    log.info("triggerer listening on %s", path)
    while True:
        connection, _ = listener.accept()
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                _Child(connection, blocked_after).serve()
            finally:
                os._exit(0)
        connection.close()


class _Child:
    """One namespace's triggers, in one event loop of one process."""

    def __init__(self, connection: socket.socket, blocked_after: float) -> None:
        self.connection = connection
        self.blocked_after = blocked_after
        self.send_lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.names: dict[str, str] = {}
        self.allowlist = Allowlist(())
        self.namespace = ""
        self.beat = time.monotonic()

    def serve(self) -> None:
        reader = self.connection.makefile("rb")
        hello = _message(reader.readline(LINE_LIMIT))
        if hello is None or hello.get("type") != "hello":
            return
        self.namespace = str(hello.get("namespace", ""))
        self.allowlist = Allowlist(tuple(str(p) for p in hello.get("allowedModules") or ()))
        threading.Thread(target=self._read, args=(reader,), daemon=True).start()
        threading.Thread(target=self._watch, daemon=True).start()
        self.clock = AlarmClock(self.loop)
        self.loop.create_task(self._heartbeat())
        self.loop.run_forever()

    def send(self, **message: Any) -> None:
        line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        with self.send_lock:
            try:
                self.connection.sendall(line)
            except OSError:
                os._exit(0)  # the controller is gone: so are we

    def _read(self, reader: Any) -> None:
        """From a thread: hand each message to the loop; the controller closing the socket ends the process."""
        while line := reader.readline(LINE_LIMIT):
            if (message := _message(line)) is not None:
                self.loop.call_soon_threadsafe(self._handle, message)
        os._exit(0)

    def _handle(self, message: dict[str, Any]) -> None:
        key = str(message.get("key", ""))
        if message.get("type") == "run" and key not in self.tasks:
            self.names[key] = str(message.get("task", key))
            self.tasks[key] = self.loop.create_task(self._run(key, message), name=key)
        elif message.get("type") == "cancel" and (task := self.tasks.pop(key, None)) is not None:
            task.cancel()

    async def _run(self, key: str, message: dict[str, Any]) -> None:
        try:
            trigger = build_trigger(self.allowlist, str(message.get("classpath", "")), message.get("kwargs") or {})
            event = await run_trigger(trigger, dict(message.get("connections") or {}), self.clock, key)
        except Refused as refused:
            self.send(type="refused", key=key, reason=refused.reason, message=refused.message)
        except asyncio.CancelledError:
            return
        except Exception as error:
            self.send(type="failed", key=key, message=f"{type(error).__name__}: {error}"[:1024])
        else:
            if event.kind == "ended":
                self.send(type="ended", key=key, phase=event.phase, reason=event.reason)
            else:
                log.info("%s: trigger fired", self.names.get(key, key))
                self.send(type="fired", key=key, event=event.payload)
        finally:
            self.tasks.pop(key, None)
            self.names.pop(key, None)

    async def _heartbeat(self) -> None:
        while True:
            self.beat = time.monotonic()
            await asyncio.sleep(0.1)

    def _watch(self) -> None:
        """From a thread: tell the controller once about each trigger that holds the loop past the threshold."""
        told: set[str] = set()
        while True:
            time.sleep(0.2)
            held = time.monotonic() - self.beat
            if held < self.blocked_after:
                continue
            task = asyncio.tasks._current_tasks.get(self.loop)  # the task running now, read from outside the loop
            key = task.get_name() if task is not None else ""
            if key in self.names and key not in told:
                told.add(key)
                self.send(type="blocked", key=key, task=self.names[key], seconds=round(held, 1))


def _message(line: bytes) -> dict[str, Any] | None:
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None
