"""Child processes that cannot outlive us.

Every child runs in its own session (process group) and gets ``PR_SET_PDEATHSIG=SIGKILL``, so the
kernel kills it when its parent dies, even by SIGKILL. For orderly exits, registered cleanups run
at interpreter exit (atexit) and on SIGTERM/SIGHUP before the previous handler takes over.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
_cleanups: list[Callable[[], None]] = []
_previous_handlers: dict[int, object] = {}
_lock = threading.Lock()
_installed = False


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """Return a preexec_fn that makes the child die when ``parent_pid`` (its spawning thread) ends."""

    def preexec() -> None:
        if _libc is not None:
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def spawn(cmd: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in a new session, output appended to ``log_path``; it dies with this process."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )


def terminate(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the child's process group, then SIGKILL it if it has not exited after ``grace`` seconds."""
    for sig, timeout in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def add_cleanup(cleanup: Callable[[], None]) -> None:
    """Run ``cleanup`` at exit or on SIGTERM/SIGHUP unless it is removed first."""
    with _lock:
        _install_handlers()
        _cleanups.append(cleanup)


def remove_cleanup(cleanup: Callable[[], None]) -> None:
    """Forget a cleanup registered with :func:`add_cleanup`."""
    with _lock:
        if cleanup in _cleanups:
            _cleanups.remove(cleanup)


def _run_cleanups() -> None:
    while True:
        with _lock:
            if not _cleanups:
                return
            cleanup = _cleanups.pop()
        cleanup()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _run_cleanups()
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _install_handlers() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(_run_cleanups)
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGHUP):
        _previous_handlers[signum] = signal.signal(signum, _on_signal)
