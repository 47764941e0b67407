"""Build etcd, kube-apiserver, kube-controller-manager and kubectl from the Go module proxy, and cache them.

Each upstream ``main`` package is built from a throw-away wrapper module whose go.mod is derived from
the upstream go.mod of the pinned version (see :mod:`.gomod`). Binaries land in a per-version cache
folder outside the repository; the folder appears only once every binary is built (rename).
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import gomod
from .versions import (
    ETCD_MODULE,
    ETCD_VERSION,
    KUBERNETES_MODULE,
    KUBERNETES_VERSION,
    cache_key,
    staging_version,
)

KUBERNETES_BINARIES = ("kube-apiserver", "kube-controller-manager", "kubectl")
BINARIES = ("etcd", *KUBERNETES_BINARIES)
_HEARTBEAT_SECONDS = 60
_TAIL_LINES = 40

Log = Callable[[str], None]


class BuildError(RuntimeError):
    """A build step failed; carries the failing command and the tail of its output."""

    def __init__(self, message: str, command: list[str] | None = None, output: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.command = command
        self.output = output

    def __str__(self) -> str:
        parts = [self.message]
        if self.command:
            parts.append(f"command: {shlex.join(self.command)}")
        if self.output:
            tail = "\n".join(self.output.rstrip().splitlines()[-_TAIL_LINES:])
            parts.append(f"output (last {_TAIL_LINES} lines):\n{tail}")
        return "\n".join(parts)


@dataclass(frozen=True)
class _Module:
    """An upstream Go module whose ``main`` packages are built through one wrapper module."""

    path: str
    version: str
    sibling_version: str
    ldflags: str
    tags: str
    binaries: dict[str, str]  # binary name -> package path


def _kubernetes_ldflags() -> str:
    major, minor, _ = KUBERNETES_VERSION.removeprefix("v").split(".")
    values = {"gitVersion": KUBERNETES_VERSION, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean"}
    pkgs = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
    return " ".join(["-s", "-w"] + [f"-X {pkg}.{key}={val}" for pkg in pkgs for key, val in values.items()])


_MODULES = (
    _Module(
        path=ETCD_MODULE,
        version=ETCD_VERSION,
        sibling_version=ETCD_VERSION,
        ldflags="-s -w",
        tags="",
        binaries={"etcd": ETCD_MODULE},
    ),
    _Module(
        path=KUBERNETES_MODULE,
        version=KUBERNETES_VERSION,
        sibling_version=staging_version(),
        ldflags=_kubernetes_ldflags(),
        tags="selinux,notest,grpcnotrace",
        binaries={name: f"{KUBERNETES_MODULE}/cmd/{name}" for name in KUBERNETES_BINARIES},
    ),
)


def cache_root() -> Path:
    """Return the folder holding all cached control plane builds."""
    base = os.environ.get("AIRFLOWTASK_CACHE") or Path.home() / ".cache" / "airflowtask-operator"
    return Path(base) / "controlplane"


def bin_dir() -> Path:
    """Return the folder the pinned binaries live in once built."""
    return cache_root() / cache_key() / "bin"


def is_built() -> bool:
    """True when every pinned binary is in the cache."""
    return all(os.access(bin_dir() / name, os.X_OK) for name in BINARIES)


def _stderr(line: str) -> None:
    print(f"controlplane: {line}", file=sys.stderr, flush=True)


def ensure_binaries(log: Log = _stderr) -> Path:
    """Return the cached binaries folder, building the binaries first if they are missing."""
    if is_built():
        return bin_dir()
    cache_root().mkdir(parents=True, exist_ok=True)
    with _lock(cache_root() / f"{cache_key()}.lock"):
        if not is_built():
            _build(log)
    return bin_dir()


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    """Hold an exclusive file lock so concurrent callers build only once."""
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield


def _go_env() -> dict[str, str]:
    if shutil.which("go") is None:
        raise BuildError("the Go toolchain ('go') is not on PATH; it is needed to build the control plane")
    return os.environ | {
        "CGO_ENABLED": "0",
        "GOTOOLCHAIN": "local",
        "GOWORK": "off",
        "GOFLAGS": "-mod=mod -buildvcs=false",
    }


def _build(log: Log) -> None:
    root = cache_root()
    for stale in root.glob(f".{cache_key()}-*"):  # left by a killed build; we hold the lock
        shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f".{cache_key()}-", dir=root))
    started = time.monotonic()
    try:
        out = work / "bin"
        out.mkdir()
        env = _go_env()
        for module in _MODULES:
            _build_module(module, work / module.path.replace("/", "_"), out, env, log)
        final = bin_dir()
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            shutil.rmtree(final)
        os.rename(out, final)
        log(f"all binaries built in {_elapsed(started)}: {final}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _build_module(module: _Module, wrapper: Path, out: Path, env: dict[str, str], log: Log) -> None:
    wrapper.mkdir()
    log(f"fetching {module.path}@{module.version}")
    info = json.loads(_run(["go", "mod", "download", "-json", f"{module.path}@{module.version}"],
                           wrapper, env, f"fetch {module.path}", log))
    if info.get("Error") or not info.get("GoMod"):
        raise BuildError(f"cannot download {module.path}@{module.version}: {info.get('Error', 'no go.mod')}")
    upstream = gomod.parse(Path(info["GoMod"]).read_text())
    wrapper_text = gomod.wrapper_gomod(upstream, module.version, module.sibling_version,
                                       module="airflowtask/controlplane-build")
    (wrapper / "go.mod").write_text(wrapper_text)
    for name, package in module.binaries.items():
        cmd = ["go", "build", "-trimpath", f"-ldflags={module.ldflags}", "-o", str(out / name)]
        if module.tags:
            cmd.append(f"-tags={module.tags}")
        _run([*cmd, package], wrapper, env, f"build {name}", log)


def _run(cmd: list[str], cwd: Path, env: dict[str, str], label: str, log: Log) -> str:
    """Run ``cmd``, logging start, a heartbeat and the elapsed time; return its stdout."""
    started = time.monotonic()
    log(f"{label}: started")
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=stdout, stderr=stderr, start_new_session=True)
        try:
            while True:
                try:
                    proc.wait(timeout=_HEARTBEAT_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    log(f"{label}: running, {_elapsed(started)}")
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        stdout.seek(0)
        stderr.seek(0)
        out, err = stdout.read(), stderr.read()
    if proc.returncode != 0:
        raise BuildError(f"{label} failed (exit {proc.returncode})", cmd, out + err)
    log(f"{label}: done in {_elapsed(started)}")
    return out


def _elapsed(started: float) -> str:
    seconds = int(time.monotonic() - started)
    return f"{seconds // 60}m{seconds % 60:02d}s"
