"""Fixtures for the worker's integration tests: ``python -P -m airflowtask.worker`` as a real subprocess.

Each run gets a work order in AIRFLOWTASK_WORK, its own termination log and log file under ``tmp_path``, a
temporary AIRFLOW_HOME, ``tests/support`` on PYTHONPATH, and no AIRFLOW_CONN_*/AIRFLOWTASK_* variables of this
process: only those a test passes.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from airflowtask.connector_core.model import DEFAULT_ALLOWED_MODULES
from localjob import JobService
from process_group import stop_group

SUPPORT = Path(__file__).resolve().parents[2] / "support"
ALLOWED_MODULES = ",".join((*DEFAULT_ALLOWED_MODULES, "localjob", "task_callables"))
LOGICAL_DATE = "2024-01-02T00:00:00+00:00"


@dataclass
class Finished:
    """What a user of the Pod would see: the termination message, the exit code, the log."""

    outcome: dict[str, Any]
    exit_code: int
    log: str
    seconds: float


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    outcome_path: Path
    log_path: Path
    started: float

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared in the worker's log:\n{self.log()}")
            time.sleep(0.05)

    def wait(self, timeout: float = 90) -> Finished:
        exit_code = self.process.wait(timeout=timeout)
        seconds = time.monotonic() - self.started
        data = self.outcome_path.read_bytes() if self.outcome_path.exists() else b""
        assert data, f"no outcome was written (exit code {exit_code}):\n{self.log()}"
        assert len(data) <= 4096
        return Finished(json.loads(data), exit_code, self.log(), seconds)


@dataclass
class Workers:
    """Starts worker processes; ``env`` is added to every one (connections, say)."""

    tmp_path: Path
    env: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _numbers: Iterator[int] = field(default_factory=itertools.count)

    def start(
        self, order: dict[str, Any] | str, *, env: Mapping[str, str] = {}, pythonpath: tuple[Path, ...] = ()
    ) -> WorkerProcess:
        number = next(self._numbers)
        outcome_path = self.tmp_path / f"outcome-{number}.json"
        log_path = self.tmp_path / f"worker-{number}.log"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOWTASK_"))}
        env = {
            **inherited,
            "AIRFLOW_HOME": str(self.tmp_path / "airflow-home"),
            "AIRFLOWTASK_WORK": order if isinstance(order, str) else json.dumps(order),
            "AIRFLOWTASK_TERMINATION_LOG": str(outcome_path),
            "AIRFLOWTASK_ALLOWED_MODULES": ALLOWED_MODULES,
            "PYTHONPATH": os.pathsep.join(map(str, (SUPPORT, *pythonpath))),
            **self.env,
            **env,
        }
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-P", "-m", "airflowtask.worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return WorkerProcess(process, outcome_path, log_path, time.monotonic())

    def run(self, order: dict[str, Any] | str, **kwargs: Any) -> Finished:
        return self.start(order, **kwargs).wait()


def work(module: str, name: str, step: str = "execute", **parameters: Any) -> dict[str, Any]:
    """A work order for an AirflowTask ``task`` in namespace ``data`` with the logical date 2024-01-02."""
    return {
        "step": step,
        "task": {
            "namespace": "data",
            "name": "task",
            "uid": "0000-1111",
            "attempt": 1,
            "logicalDate": LOGICAL_DATE,
            "params": {},
            "operator": {"module": module, "name": name, "parameters": parameters},
        },
    }


@pytest.fixture(scope="session")
def order() -> Callable[..., dict[str, Any]]:
    """``order(module, name, step="execute", **parameters)``: a work order (see :func:`work`)."""
    return work


def _workers(tmp_path: Path) -> Iterator[Workers]:
    workers = Workers(tmp_path)
    yield workers
    for process in workers.processes:
        stop_group(process, grace=5)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    yield from _workers(tmp_path)


@pytest.fixture(scope="module")
def module_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    """Workers for a module's tests that start their processes together (to save the startup time)."""
    yield from _workers(tmp_path_factory.mktemp("workers"))


@pytest.fixture
def service(workers: Workers) -> Iterator[JobService]:
    """The local job service, reachable by the workers as connection ``local_jobs``."""
    with JobService() as service:
        workers.env["AIRFLOW_CONN_LOCAL_JOBS"] = service.url
        yield service
