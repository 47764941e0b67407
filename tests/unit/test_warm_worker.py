"""A real warm worker (``python -m airflowtask.warm_worker``) driven over its signed channel, as the operator does:
steps run in forked children with the cold worker's outcomes, a step never runs twice, only the pool's key is
obeyed, and a step can neither read a sibling's memory or files nor outlive its record."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflowtask import channel
from airflowtask.connector_core.model import DEFAULT_ALLOWED_MODULES
from airflowtask.reports import parse_outcome

KEY = os.urandom(32)
SLOTS = 4
EMPTY = {"module": "airflow.providers.standard.operators.empty", "name": "EmptyOperator", "parameters": {}}

WARM_TASKS = '''
import os, time
from pathlib import Path
from airflow.sdk import BaseOperator

class Holder(BaseOperator):
    """Keeps a secret in its memory, environment and directory until ``release`` exists."""
    def __init__(self, share, release, **kwargs):
        super().__init__(**kwargs)
        self.share, self.release = share, release
    def execute(self, context):
        secret = "holder-secret-" + "x" * 8
        os.environ["HOLDER_SECRET"] = secret
        Path("secret.txt").write_text(secret)
        Path(self.share).write_text(f"{os.getpid()} {os.getcwd()}")
        while not Path(self.release).exists():
            time.sleep(0.05)
        return secret[:6]

class Prober(BaseOperator):
    """Reports what it can read of the Holder's process and directory, and of its own heap (the control)."""
    def __init__(self, share, **kwargs):
        super().__init__(**kwargs)
        self.share = share
    def execute(self, context):
        pid = Path(self.share).read_text().split()[0]
        mine = "holder-secret-" + "y" * 8  # the probe must find this one in its own heap
        Path("mine.txt").write_text(mine)
        seen = {"self": _heap_has("self", mine.encode()), "mem": _heap_has(pid, b"holder-secret-xxxxxxxx"),
                "worker": _heap_has(os.getppid(), b"holder-secret-xxxxxxxx"), "own file": _read("mine.txt")}
        seen["environ"] = _read(f"/proc/{pid}/environ")
        seen["cwd"] = _read(f"/proc/{pid}/cwd/secret.txt")
        try:  # the holder's directory is a sibling of ours
            seen["list"] = "listed " + str(len(os.listdir("..")))
        except OSError as exc:
            seen["list"] = type(exc).__name__
        return seen

def _read(path):
    try:
        with open(path, "rb") as file:
            return "read" if b"-secret-" in file.read() else "no secret"
    except OSError as exc:
        return type(exc).__name__

def _heap_has(pid, needle):
    try:
        with open(f"/proc/{pid}/maps") as maps:
            regions = [line.split()[0] for line in maps if "[heap]" in line or " rw-p 00000000 00:00 0" in line]
        with open(f"/proc/{pid}/mem", "rb") as mem:
            for region in regions:
                start, end = (int(part, 16) for part in region.split("-"))
                mem.seek(start)
                try:
                    if needle in mem.read(end - start):
                        return "read"
                except OSError:
                    continue
        return "no secret"
    except OSError as exc:
        return type(exc).__name__
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Pool:
    """One warm worker process and a way to talk to it."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, output: Path, tmp: Path) -> None:
        self.process, self.port, self.output, self.tmp = process, port, output, tmp

    def call(self, request: dict[str, Any], key: bytes = KEY) -> dict[str, Any]:
        return asyncio.run(channel.call("127.0.0.1", self.port, key, request))

    def start(self, step_id: str, operator: dict[str, Any], name: str = "probe", step: str = "execute") -> dict:
        order = {"step": step, "task": {"namespace": "tenant-a", "name": name, "operator": operator}}
        return self.call({"op": "start", "id": step_id, "order": order})

    def finished(self, step_id: str, within: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while (answer := self.call({"op": "status", "id": step_id, "wait": 5}))["state"] != "done":
            assert time.monotonic() < deadline, f"step {step_id} still {answer}"
        return answer

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def until_started(self, within: float = 30.0) -> None:
        """Until a step has printed ``started`` (its execute() runs: a SIGTERM now calls on_kill)."""
        deadline = time.monotonic() + within
        while not self.log().rstrip().endswith("] started"):
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.05)


def spawn(tmp: Path, slots: int = SLOTS) -> Pool:
    """A warm worker process, ready and unlocked with KEY."""
    (tmp / "warm_tasks.py").write_text(WARM_TASKS)
    port = _free_port()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOWTASK_"))}
    env = {**inherited, "AIRFLOW_HOME": str(tmp / "home"), "PYTHONPATH": str(tmp), "_AIRFLOW__AS_LIBRARY": "1",
           "AIRFLOWTASK_POOL_KEY_SHA256": hashlib.sha256(KEY).hexdigest(), "AIRFLOWTASK_WARM_PORT": str(port),
           "AIRFLOWTASK_WARM_SLOTS": str(slots),
           "AIRFLOWTASK_ALLOWED_MODULES": ",".join((*DEFAULT_ALLOWED_MODULES, "warm_tasks"))}
    output = tmp / "worker.log"
    # Without capabilities, as in a task Pod (with CAP_SYS_PTRACE, root could read any process's memory).
    no_capabilities = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"] if os.geteuid() == 0 else []
    with output.open("wb") as out:
        process = subprocess.Popen([*no_capabilities, sys.executable, "-P", "-m", "airflowtask.warm_worker"],
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    warm = Pool(process, port, output, tmp)
    deadline = time.monotonic() + 120
    while "warm worker ready" not in warm.log():
        assert process.poll() is None and time.monotonic() < deadline, warm.log()
        time.sleep(0.1)
    return warm


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    warm = spawn(tmp_path_factory.mktemp("warm"))
    assert asyncio.run(channel.unlock("127.0.0.1", warm.port, KEY))["state"] == "ready"
    yield warm
    warm.process.terminate()
    warm.process.wait(timeout=30)


@pytest.fixture
def own_pool(tmp_path: Path) -> Iterator[Pool]:
    """A worker of the test's own (locked: the test unlocks it)."""
    warm = spawn(tmp_path, slots=2)
    yield warm
    if warm.process.poll() is None:
        warm.process.kill()
    warm.process.wait(timeout=30)


def outcome_of(answer: dict[str, Any]) -> Any:
    assert answer["outcome"], answer
    return parse_outcome(answer["outcome"], DEFAULT_ALLOWED_MODULES)


def test_a_step_runs_in_a_child_with_the_cold_workers_outcome_and_labelled_log(pool: Pool) -> None:
    assert pool.start("empty-1", EMPTY, name="empty")["state"] in ("running", "done")
    answer = pool.finished("empty-1")
    outcome = outcome_of(answer)
    assert (outcome.phase.value, outcome.reason.value, answer["exitCode"]) == ("Succeeded", "Completed", 0)
    assert any("outcome: Succeeded Completed" in line for line in answer["log"])
    assert "tenant-a/empty execute | " in pool.log()
    assert pool.call({"op": "forget", "id": "empty-1"})["state"] == "unknown"
    assert pool.call({"op": "status", "id": "empty-1"})["state"] == "unknown"


def test_a_step_named_twice_runs_once(pool: Pool) -> None:
    bash = {"module": "airflow.providers.standard.operators.bash", "name": "BashOperator",
            "parameters": {"bash_command": "echo ran-once-$((6*7))"}}
    first = pool.start("once", bash, name="once")
    second = pool.start("once", bash, name="once")
    assert first["pid"] == second["pid"]
    pool.finished("once")
    assert pool.start("once", bash, name="once")["state"] == "done"  # a late repeat finds the outcome
    assert pool.log().count("ran-once-42") == 1


@pytest.mark.parametrize(("key", "stamp", "refusal"), [
    (os.urandom(32), None, "signature does not match"),
    (KEY, time.time() - 120, "more than 30 s from the worker's"),
])
def test_only_a_fresh_request_signed_with_the_pools_key_is_obeyed(
    pool: Pool, key: bytes, stamp: float | None, refusal: str
) -> None:
    line = channel.sign(key, {"op": "start", "id": "forged", "order": {"step": "execute", "task": {}}}, now=stamp)
    with socket.create_connection(("127.0.0.1", pool.port)) as sock:
        sock.sendall(line)
        answer = json.loads(sock.makefile("rb").readline())
    assert refusal in answer["error"]
    assert pool.call({"op": "status", "id": "forged"})["state"] == "unknown"


def test_cancel_calls_on_kill_and_ends_the_step_cancelled(pool: Pool) -> None:
    sleeper = {"module": "airflow.providers.standard.operators.bash", "name": "BashOperator",
               "parameters": {"bash_command": "echo started; sleep 120"}}
    pool.start("cancel-me", sleeper, name="sleeper")
    pool.until_started()
    pool.call({"op": "cancel", "id": "cancel-me"})
    outcome = outcome_of(pool.finished("cancel-me", within=30))
    assert (outcome.phase.value, outcome.reason.value) == ("Failed", "Cancelled")
    assert outcome.message == (
        "the step's process was terminated (SIGTERM) during the execute step; on_kill() was called")


def test_a_step_cannot_read_a_siblings_memory_environment_or_files(pool: Pool) -> None:
    share, release = pool.tmp / "holder.share", pool.tmp / "holder.release"
    pool.start("holder", {"module": "warm_tasks", "name": "Holder",
                          "parameters": {"share": str(share), "release": str(release)}}, name="holder")
    deadline = time.monotonic() + 30
    while not share.exists():
        assert time.monotonic() < deadline, pool.log()
        time.sleep(0.05)
    pool.start("prober", {"module": "warm_tasks", "name": "Prober", "parameters": {"share": str(share)}},
               name="prober")
    seen = outcome_of(pool.finished("prober")).result
    release.touch()
    assert outcome_of(pool.finished("holder")).result == "holder"
    assert seen["self"] == seen["own file"] == "read"  # the probe finds a secret where it can look
    # not dumpable: /proc/<pid>/* of the holder and of the worker (which holds every step's directory) is root's
    assert seen["environ"] == seen["mem"] == seen["cwd"] == seen["worker"] == "PermissionError"
    assert seen["list"] == "PermissionError"  # the steps' parent cannot be listed, and names are unguessable
    holder_dir = Path(share.read_text().split()[1])
    assert not holder_dir.exists()  # removed when the holder ended


def test_a_killed_step_leaves_the_others_running_and_says_how_it_ended(pool: Pool) -> None:
    def sleeper(seconds: int) -> dict[str, Any]:
        return {"module": "airflow.providers.standard.operators.bash", "name": "BashOperator",
                "parameters": {"bash_command": f"sleep {seconds}"}}

    victim = pool.start("victim", sleeper(120), name="victim")
    pool.start("survivor", sleeper(2), name="survivor")
    os.kill(victim["pid"], signal.SIGKILL)  # as the OOM killer would
    killed = pool.finished("victim", within=30)
    assert (killed["signal"], killed["outcome"]) == ("SIGKILL", None)
    outcome = outcome_of(pool.finished("survivor"))
    assert outcome.phase.value == "Succeeded"
    assert pool.call({"op": "ping"})["state"] == "ready"


def test_a_locked_worker_obeys_only_an_unlock_with_its_pools_key(own_pool: Pool) -> None:
    with pytest.raises(channel.ChannelError, match="is locked"):
        own_pool.call({"op": "ping"})
    with pytest.raises(channel.ChannelError, match="not this pool's key"):
        asyncio.run(channel.unlock("127.0.0.1", own_pool.port, os.urandom(32)))
    with pytest.raises(channel.ChannelError, match="is locked"):
        own_pool.start("early", EMPTY)
    assert asyncio.run(channel.unlock("127.0.0.1", own_pool.port, KEY))["state"] == "ready"
    assert own_pool.call({"op": "status", "id": "early"})["state"] == "unknown"


def test_a_step_that_leaves_a_process_behind_retires_the_worker(own_pool: Pool) -> None:
    asyncio.run(channel.unlock("127.0.0.1", own_pool.port, KEY))
    marker = own_pool.tmp / "background.pid"
    bash = {"module": "airflow.providers.standard.operators.bash", "name": "BashOperator",
            "parameters": {"bash_command": f"sleep 300 >/dev/null 2>&1 & echo $! > {marker}"}}
    own_pool.start("leaver", bash, name="leaver")
    assert outcome_of(own_pool.finished("leaver")).phase.value == "Succeeded"  # the step's own outcome stands
    left = int(marker.read_text())
    deadline = time.monotonic() + 30
    while own_pool.call({"op": "ping"})["state"] != "retired":
        assert time.monotonic() < deadline, own_pool.log()
        time.sleep(0.1)
    assert own_pool.call({"op": "status", "id": "leaver"})["state"] == "done"  # kept until the operator forgets it
    own_pool.call({"op": "forget", "id": "leaver"})
    assert own_pool.process.wait(timeout=30) == 0  # retired, and with nothing left to run or tell it exited
    assert f"retiring: step leaver left process {left} running outside its process group" in own_pool.log()
    stat = Path(f"/proc/{left}/stat")
    assert not stat.exists() or stat.read_text().rpartition(")")[2].split()[0] == "Z", "it outlived the worker"


def test_an_idle_worker_retires_when_asked_but_not_while_a_step_runs_or_its_outcome_is_unread(own_pool: Pool) -> None:
    asyncio.run(channel.unlock("127.0.0.1", own_pool.port, KEY))
    sleeper = {"module": "airflow.providers.standard.operators.bash", "name": "BashOperator",
               "parameters": {"bash_command": "sleep 1"}}
    own_pool.start("busy", sleeper, name="busy")
    assert own_pool.call({"op": "retire"})["state"] == "ready"  # a step runs: not retired
    own_pool.finished("busy")
    refused = own_pool.call({"op": "retire"})  # its outcome is not forgotten: exiting would lose it
    assert (refused["state"], refused["running"], refused["unread"]) == ("ready", 0, 1)
    assert own_pool.call({"op": "status", "id": "busy"})["state"] == "done"
    own_pool.call({"op": "forget", "id": "busy"})
    assert own_pool.call({"op": "retire"})["state"] == "retired"
    assert own_pool.process.wait(timeout=30) == 0


def test_a_step_forgotten_while_it_runs_is_dropped_when_it_ends(own_pool: Pool) -> None:
    asyncio.run(channel.unlock("127.0.0.1", own_pool.port, KEY))
    sleeper = {"module": "airflow.providers.standard.operators.bash", "name": "BashOperator",
               "parameters": {"bash_command": "echo started; sleep 120"}}
    own_pool.start("deleted", sleeper, name="deleted")
    own_pool.until_started()  # (a SIGTERM before execute() lets the step run on)
    own_pool.call({"op": "cancel", "id": "deleted"})  # as for a deleted AirflowTask: cancel, then forget
    assert own_pool.call({"op": "forget", "id": "deleted"})["state"] in ("running", "unknown")
    deadline = time.monotonic() + 30
    while own_pool.call({"op": "status", "id": "deleted"})["state"] != "unknown":
        assert time.monotonic() < deadline, own_pool.log()
        time.sleep(0.1)
    assert "tenant-a/deleted execute: ended (" in own_pool.log()
    assert own_pool.call({"op": "retire"})["state"] == "retired"  # nothing kept it
    assert own_pool.process.wait(timeout=30) == 0


def test_a_full_pool_says_busy_and_starts_nothing(pool: Pool) -> None:
    sleeper = {"module": "airflow.providers.standard.operators.bash", "name": "BashOperator",
               "parameters": {"bash_command": "sleep 120"}}
    held = [f"slot-{n}" for n in range(SLOTS)]
    for step_id in held:
        assert pool.start(step_id, sleeper, name=step_id)["state"] == "running"
    assert pool.start("one-too-many", sleeper, name="extra")["state"] == "busy"
    assert pool.call({"op": "status", "id": "one-too-many"})["state"] == "unknown"
    for step_id in held:
        pool.call({"op": "cancel", "id": step_id})
    for step_id in held:
        pool.finished(step_id, within=30)


def test_a_deferral_is_reported_for_the_operator_to_run_its_trigger(pool: Pool) -> None:
    sensor = {"module": "airflow.providers.standard.sensors.date_time", "name": "DateTimeSensorAsync",
              "parameters": {"target_time": "2999-01-01T00:00:00+00:00"}}
    pool.start("defer", sensor, name="defer")
    outcome = outcome_of(pool.finished("defer"))
    assert (outcome.phase.value, outcome.deferral.classpath) == (
        "Deferred", "airflow.providers.standard.triggers.temporal.DateTimeTrigger")
