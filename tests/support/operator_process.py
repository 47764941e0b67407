"""The real operator, run as a separate process the way a Deployment runs it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from process_group import stop_group


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OperatorProcess:
    """``python -m airflowtask run`` with a given environment; logs go to a file."""

    def __init__(self, env: Mapping[str, str], log_path: Path, port: int | None = None, verbose: bool = True) -> None:
        self.env = dict(env)
        self.verbose = verbose
        self.log_path = log_path
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start and wait until the liveness endpoint answers."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-m", "airflowtask", "run", *(["--verbose"] if self.verbose else []),
             "--liveness", f"http://127.0.0.1:{self.port}/healthz"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.log_path.parent,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the operator exited with {self.process.returncode}:\n{self.logs()[-4000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the operator did not become live in {timeout}s:\n{self.logs()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL, as an OOM kill or a node loss would."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        stop_group(self.process)

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.env['AIRFLOWTASK_METRICS_PORT']}/metrics"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
