"""A warm worker: one Pod of a WarmPool, running many steps, each in a fresh child forked from a warm interpreter.

Run as ``python -m airflowtask.warm_worker``. It imports Airflow (and the modules in ``AIRFLOWTASK_WARM_IMPORTS``)
once, then serves :mod:`airflowtask.channel` requests; each step is :func:`airflowtask.worker.run` in its own
forked child, so a step gets the cold worker's outcome contract (``on_kill`` on SIGTERM, ``execution_timeout``)
in a few milliseconds instead of a Pod's start.

A child, before any task code runs, becomes its own process group, is made non-dumpable (no other process of
the Pod, a sibling step included, can read its memory or ``/proc`` files), raises its own OOM score (the kernel
kills the largest step, not the worker), drops the pool's key from its memory and works in a fresh directory of
an unguessable name, inside one no step can list, removed after it (the worker itself is non-dumpable too). When
it ends, what it left running is killed: its process group at once, and the processes that left the group (the
worker is their subreaper) when they carry the step's mark in their environment, or else as soon as no step runs.
Its output goes to the worker's stdout with ``<namespace>/<name> <step> | `` before each line (``kubectl logs``
of the worker Pod), and the last lines are kept for the step's status.

Environment: ``AIRFLOWTASK_POOL_KEY_SHA256`` (the SHA-256 of the pool's key: the worker starts locked and learns
the key from the first ``unlock`` that carries it), ``AIRFLOWTASK_WARM_PORT`` (default 8790),
``AIRFLOWTASK_WARM_SLOTS`` (steps at once, default 8), ``AIRFLOWTASK_WARM_IMPORTS`` (comma separated modules
imported at start; the operator's setting, never the tenant's), plus what a cold worker reads.

Requests (``id`` is the caller's name for a step; every answer carries ``state``):

- ``{"op": "start", "id", "order": <work order object>}``: runs the step unless ``id`` is known (then it is
  reported as it stands: a step never runs twice); ``{"state": "busy"}`` when every slot is taken.
- ``{"op": "status", "id", "wait": <seconds>}``: ``unknown``, ``running``, or ``done`` with ``outcome`` (the
  termination log's text, or null), ``exitCode``/``signal`` and ``log`` (the last lines). With ``wait``, the answer
  waits until the step is done, at most that long (and at most MAX_WAIT_SECONDS).
- ``{"op": "cancel", "id"}``: SIGTERM to a running step (it calls ``on_kill()`` and ends Cancelled).
- ``{"op": "forget", "id"}``: drop a finished step's record; a running step's is dropped once it ends (the
  operator forgets a step it has cancelled for good: nobody will read its outcome).
- ``{"op": "unlock", "key": <hex>}`` (unsigned, once), ``{"op": "ping"}``: ``ready`` or ``retired``, with
  ``running``, ``unread`` (finished steps not forgotten), ``slots`` and ``idleSeconds``. ``{"op": "retire"}``: an
  idle worker takes no more steps and exits; one with a step running or an outcome not yet forgotten says so and
  goes on (its exit would lose an outcome the operator has not written). A worker also retires itself when a step
  leaves a process running outside its process group. A retired worker answers ``start`` with ``retired`` and
  exits once no step runs and every outcome has been forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import hashlib
import hmac
import importlib
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflowtask import channel, worker
from airflowtask.connector_core.context import new_dag

log = logging.getLogger("airflowtask.warm_worker")

KEY_SHA256_ENV = channel.KEY_SHA256_ENV
PORT_ENV = "AIRFLOWTASK_WARM_PORT"
SLOTS_ENV = channel.SLOTS_ENV
IMPORTS_ENV = "AIRFLOWTASK_WARM_IMPORTS"
DEFAULT_PORT = channel.PORT
DEFAULT_SLOTS = 8
LOG_LINES = 200
"""Lines of a step's output kept for its status."""
KEEP_SECONDS = 3600.0
"""How long a finished step's record is kept when nobody forgets it."""
MAX_WAIT_SECONDS = 60.0
CHILD_OOM_SCORE_ADJ = 500
STEP_ENV = "AIRFLOWTASK_STEP_ID"
"""Set in a step's environment, so that what it leaves running can be told apart."""
SWEEP_SECONDS = 5.0
LEFTOVER_GRACE_SECONDS = 1.0
"""How long after a step ended what it left running is looked for."""
STOP_SECONDS = 20.0
"""How long a stopping worker waits for its steps' on_kill."""
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36


@dataclass
class Step:
    """One step's child process and what it left."""

    id: str
    label: str
    pid: int
    output: int
    directory: Path
    log: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    pending: bytes = b""
    exit_code: int | None = None
    signal: str | None = None
    outcome: str | None = None
    ended: float | None = None
    forgotten: bool = False
    """Asked to forget while it ran: dropped once it ends."""
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def answer(self) -> dict[str, Any]:
        if self.ended is None:
            return {"state": "running", "id": self.id, "pid": self.pid}
        return {"state": "done", "id": self.id, "pid": self.pid, "exitCode": self.exit_code, "signal": self.signal,
                "outcome": self.outcome, "log": list(self.log)}


class WarmWorker:
    """Serves the channel; forks one child per step (from the event loop's thread, the only thread).

    It starts locked: it knows only the SHA-256 of its pool's key (the Pod's spec may be read by anyone allowed to
    read Pods, the key must not be), and learns the key from the first ``unlock`` that carries a key of that hash.
    """

    def __init__(self, key_sha256: str, slots: int = DEFAULT_SLOTS, workdir: Path | None = None) -> None:
        self.key_sha256 = key_sha256.lower()
        self._key = bytearray()
        self.slots = slots
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="airflowtask-warm-"))
        self.workdir.chmod(0o300)  # enter and create, never list: a step cannot find a sibling's directory
        self.steps: dict[str, Step] = {}
        self.retired = ""
        """Why this worker takes no more steps (empty while it does); it exits when its last step ends."""
        self.last_step = time.monotonic()
        self.stopped = asyncio.Event()

    @property
    def running(self) -> int:
        return sum(step.ended is None for step in self.steps.values())

    def state(self) -> dict[str, Any]:
        idle = 0.0 if self.running else time.monotonic() - self.last_step
        return {"state": "retired" if self.retired else "ready", "running": self.running,
                "unread": len(self.steps) - self.running, "slots": self.slots, "idleSeconds": round(idle, 3),
                "retired": self.retired}

    async def serve(self, port: int, host: str = "0.0.0.0") -> asyncio.Server:
        return await asyncio.start_server(self._serve_one, host, port, limit=channel.LINE_LIMIT)

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():  # one request at a time, for as long as the operator keeps it open
                answer = await self.handle(line)
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, ValueError, asyncio.LimitOverrunError) as exc:
            log.warning("dropped a connection: %s", exc)
        finally:
            writer.close()

    async def handle(self, line: bytes) -> dict[str, Any]:
        """The answer to one request line."""
        if not self._key or line.startswith(b'{"op": "unlock"'):  # (again after the operator restarted)
            return self._unlock(line)
        try:
            request = channel.verify(self._key, line)
        except channel.ChannelError as exc:
            log.warning("refused a request: %s", exc)
            return {"error": str(exc)}
        self._prune()
        op, step_id = request.get("op"), request.get("id")
        if op in ("ping", "unlock"):
            return self.state()
        if op == "retire":
            if not self.steps and not self.retired:
                self._retire("the operator retired it (idle)")
            return self.state()
        if not isinstance(step_id, str) or not step_id:
            return {"error": f"{op!r} needs a step id (a non-empty string)"}
        if op == "start":
            return self._start_once(step_id, request.get("order"))
        step = self.steps.get(step_id)
        if step is None:
            return {"state": "unknown", "id": step_id}
        if op == "status":
            wait = request.get("wait", 0)
            if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(step.done.wait(), min(wait, MAX_WAIT_SECONDS))
            return step.answer()
        if op == "cancel":
            if step.ended is None:
                log.info("%s: cancelled, sending SIGTERM", step.label)
                os.kill(step.pid, signal.SIGTERM)
            return step.answer()
        if op == "forget":
            if step.ended is not None:
                self._drop(step_id)
                return {"state": "unknown", "id": step_id}
            step.forgotten = True
            return step.answer()
        return {"error": f"unknown op {op!r} (known: unlock, ping, start, status, cancel, forget, retire)"}

    def _unlock(self, line: bytes) -> dict[str, Any]:
        """Learn the pool's key from an ``unlock`` request carrying a key of the expected hash."""
        try:
            request = json.loads(line)
            key = bytearray.fromhex(request["key"]) if request.get("op") == "unlock" else None
        except (ValueError, TypeError, KeyError, AttributeError):
            key = None
        if key is None:
            return {"error": "this worker is locked: unlock it with its pool's key first"}
        if not hmac.compare_digest(hashlib.sha256(key).hexdigest(), self.key_sha256):
            log.warning("refused an unlock with a key that is not this pool's")
            return {"error": "that is not this pool's key"}
        self._key = key
        log.info("unlocked with the pool's key")
        return self.state()

    def _start_once(self, step_id: str, order: Any) -> dict[str, Any]:
        """Start the step unless it is known (then say how it stands: a step never runs twice)."""
        if (step := self.steps.get(step_id)) is not None:
            return step.answer()
        if not isinstance(order, dict):
            return {"error": "start needs the work order (a JSON object) in order"}
        if self.retired:
            return {"state": "retired", "id": step_id, "retired": self.retired}
        if self.running >= self.slots:
            return {"state": "busy", "id": step_id}
        return self._start(step_id, order).answer()

    def _retire(self, why: str) -> None:
        log.warning("retiring: %s", why)
        self.retired = why
        if not self.steps:
            self.stopped.set()

    def _drop(self, step_id: str) -> None:
        """Forget a finished step; a retired worker exits once it has nothing left to run or to tell."""
        del self.steps[step_id]
        if self.retired and not self.steps:
            self.stopped.set()

    def _prune(self) -> None:
        now = time.monotonic()
        for step_id in [i for i, s in self.steps.items() if s.ended is not None and now - s.ended > KEEP_SECONDS]:
            self._drop(step_id)

    # ---- a step's child ---------------------------------------------------------------------------------------

    def _start(self, step_id: str, order: dict[str, Any]) -> Step:
        task = order.get("task") if isinstance(order.get("task"), dict) else {}
        where = "/".join(str(part) for part in (task.get("namespace"), task.get("name")) if part)
        label = f"{where or '?'} {order.get('step', '?')}"
        directory = self.workdir / secrets.token_hex(16)  # unguessable, in a directory nobody can list
        directory.mkdir(mode=0o700)
        read_end, write_end = os.pipe()
        if threading.active_count() > 1:
            log.warning("forking with %d threads alive", threading.active_count())
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read_end)
            _run_child(step_id, json.dumps(order), directory, write_end, self._key)
        os.close(write_end)
        os.set_blocking(read_end, False)
        step = Step(step_id, label, pid, read_end, directory)
        self.steps[step_id] = step
        loop = asyncio.get_running_loop()
        loop.add_reader(read_end, self._read_output, step)
        pidfd = os.pidfd_open(pid)
        loop.add_reader(pidfd, self._on_exit, step, pidfd)
        log.info("%s: started as process %d (step %s)", label, pid, step_id)
        return step

    def _read_output(self, step: Step) -> bool:
        """Copy what the child wrote to stdout, each line labelled; False when nothing more is there now."""
        try:
            data = os.read(step.output, 65536)
        except BlockingIOError:
            return False
        if not data:
            asyncio.get_running_loop().remove_reader(step.output)
            return False
        *lines, step.pending = (step.pending + data).split(b"\n")
        for line in lines:
            self._emit(step, line)
        return True

    def _emit(self, step: Step, line: bytes) -> None:
        text = line.decode(errors="replace")
        step.log.append(text)
        sys.stdout.write(f"{step.label} | {text}\n")

    def _on_exit(self, step: Step, pidfd: int) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(pidfd)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(step.pid, signal.SIGKILL)  # what the step left running (the child is a zombie: no reuse)
        os.close(pidfd)
        _, status = os.waitpid(step.pid, 0)
        while self._read_output(step):  # what is left in the pipe (not waiting for anything the kill missed)
            pass
        if step.pending:
            self._emit(step, step.pending)
        loop.remove_reader(step.output)
        os.close(step.output)
        if os.WIFSIGNALED(status):
            step.signal = signal.Signals(os.WTERMSIG(status)).name
        else:
            step.exit_code = os.WEXITSTATUS(status)
        outcome = step.directory / "outcome.json"
        with contextlib.suppress(OSError, UnicodeDecodeError):
            step.outcome = outcome.read_bytes()[: worker.OUTCOME_LIMIT].decode()
        shutil.rmtree(step.directory, ignore_errors=True)
        step.ended = self.last_step = time.monotonic()
        step.done.set()
        if step.forgotten:
            self._drop(step.id)
        how = f"signal {step.signal}" if step.signal else f"exit code {step.exit_code}"
        log.info("%s: ended (%s)", step.label, how)
        sys.stdout.flush()
        # What the step left is judged a moment later: a process its on_kill signalled may still be dying.
        loop.call_later(LEFTOVER_GRACE_SECONDS, self.sweep, step.id)

    def sweep(self, ended: str | None = None) -> None:
        """Reap what was left to this process (it is their subreaper) and kill what a step left running outside its
        process group: the processes marked with step ``ended``, and every one once no step runs (an unmarked
        process cannot be told apart). A step that left one behind retires the worker."""
        steps = {step.pid for step in self.steps.values() if step.ended is None}
        for pid, state in _orphans():
            if pid in steps:
                continue
            if state == "Z":
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                continue
            marked = ended is not None and _step_of(pid) == ended
            if marked and not self.retired:
                self._retire(f"step {ended} left process {pid} running outside its process group")
            if marked or not steps:
                log.info("killing process %d, left running by %s", pid, f"step {ended}" if marked else "a step")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    async def sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            self.sweep()


def _run_child(step_id: str, order: str, directory: Path, output: int, key: bytearray) -> None:
    """In the forked child: isolate, run the step, write its outcome, exit (never returns)."""
    code = 1
    try:
        key[:] = bytes(len(key))
        asyncio.events._set_running_loop(None)  # the parent's loop is not this process's
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        os.setsid()
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
        with contextlib.suppress(OSError):
            Path("/proc/self/oom_score_adj").write_text(str(CHILD_OOM_SCORE_ADJ))
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        os.chdir(directory)
        environ = dict(os.environ, TMPDIR=str(directory), **{worker.WORK_ENV: order})
        os.environ.update(TMPDIR=str(directory), **{STEP_ENV: step_id})
        code = worker.report(worker.run(environ, host="the step's process"), str(directory / "outcome.json"))
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _orphans() -> Iterator[tuple[int, str]]:
    """(pid, state) of this process's children (what it forked, and what was left to it as a subreaper)."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if int(ppid) == me:
            yield int(entry), state


def _step_of(pid: int) -> str | None:
    """The step a process was started by (from its environment; None when it cannot be read)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    prefix = STEP_ENV.encode() + b"="
    for item in environ.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix):].decode(errors="replace")
    return None


def _warm_imports(names: str) -> None:
    for name in filter(None, (part.strip() for part in names.split(","))):
        try:
            importlib.import_module(name)
        except Exception as exc:  # a missing provider makes its steps cold, nothing worse
            log.warning("cannot import %s ahead of steps: %s", name, exc)


DEFAULT_IMPORTS = ",".join((
    "airflow.providers.standard.operators.empty",
    "airflow.providers.standard.operators.bash",
    "airflow.providers.standard.operators.python",
    "airflow.providers.standard.sensors.time_delta",
    "airflow.providers.standard.sensors.date_time",
    "airflow.providers.standard.sensors.filesystem",
))


async def _serve(warm: WarmWorker, port: int) -> None:
    """Serve until SIGTERM (then stop the running steps: SIGTERM, on_kill) or until a retired worker is empty."""
    server = await warm.serve(port)
    sweeper = asyncio.create_task(warm.sweep_forever())
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, warm.stopped.set)
    log.info("warm worker ready on port %d, %d slots", port, warm.slots)
    sys.stdout.flush()
    async with server:
        await warm.stopped.wait()
        running = [step for step in warm.steps.values() if step.ended is None]
        for step in running:
            log.warning("%s: stopping (the worker stops)", step.label)
            os.kill(step.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(step.done.wait() for step in running)), STOP_SECONDS)
    sweeper.cancel()
    log.info("warm worker stopped%s", f" (retired: {warm.retired})" if warm.retired else "")


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s [%(name)s] %(message)s"
    )
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)  # a step cannot read the key or its siblings' names in our memory
    key_sha256 = os.environ.get(KEY_SHA256_ENV, "")
    if len(key_sha256) != 64:
        log.error("%s must hold the SHA-256 of the pool's key (64 hex digits)", KEY_SHA256_ENV)
        return 2
    _warm_imports(os.environ.get(IMPORTS_ENV, DEFAULT_IMPORTS))
    new_dag().get_template_env()  # a task's DAG imports its timetable and template modules on first use
    gc.collect()
    gc.freeze()  # the warm heap stays shared with the children (no copy-on-write from the collector)
    warm = WarmWorker(key_sha256, int(os.environ.get(SLOTS_ENV, DEFAULT_SLOTS)))
    asyncio.run(_serve(warm, int(os.environ.get(PORT_ENV, DEFAULT_PORT))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
