"""Build the local cluster's binaries from the Go module proxy, and cache them.

Two sets, each cached in a folder of its own keyed by its versions: the control plane (etcd, kube-apiserver,
kube-controller-manager, kubectl) and the node (kube-scheduler, kubelet, kube-proxy, containerd, its runc
shim, ctr, runc). Each upstream ``main`` package is built from a throw-away wrapper module whose go.mod is
derived from the upstream go.mod of the pinned version (see :mod:`.gomod`). A set's folder appears only once
every binary in it is built (rename).
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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import gomod, host
from .versions import (
    CONTAINERD_MODULE,
    CONTAINERD_VERSION,
    ETCD_MODULE,
    ETCD_VERSION,
    KUBERNETES_MODULE,
    KUBERNETES_VERSION,
    RUNC_MODULE,
    RUNC_VERSION,
    cache_key,
    node_cache_key,
    staging_version,
)

_HEARTBEAT_SECONDS = 60
_TAIL_LINES = 40

Log = Callable[[str], None]


class BuildError(RuntimeError):
    """A build step failed; carries the failing command and the tail of its output."""

    def __init__(self, message: str, command: Sequence[str] | None = None, output: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.command = list(command) if command else None
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
    cgo: bool = False


def _kubernetes_ldflags() -> str:
    major, minor, _ = KUBERNETES_VERSION.removeprefix("v").split(".")
    values = {"gitVersion": KUBERNETES_VERSION, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean"}
    pkgs = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
    return " ".join(["-s", "-w"] + [f"-X {pkg}.{key}={val}" for pkg in pkgs for key, val in values.items()])


def _kubernetes(*names: str) -> _Module:
    return _Module(
        path=KUBERNETES_MODULE,
        version=KUBERNETES_VERSION,
        sibling_version=staging_version(),
        ldflags=_kubernetes_ldflags(),
        tags="selinux,notest,grpcnotrace",
        binaries={name: f"{KUBERNETES_MODULE}/cmd/{name}" for name in names},
    )


@dataclass(frozen=True)
class BinarySet:
    """Binaries built and cached together, in ``cache_root()/<key>/bin``."""

    key: str
    modules: tuple[_Module, ...]
    host_packages: dict[str, str] = field(default_factory=dict)  # probe -> apt package, needed to build

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for module in self.modules for name in module.binaries)


CONTROL_PLANE = BinarySet(cache_key(), (
    _Module(
        path=ETCD_MODULE,
        version=ETCD_VERSION,
        sibling_version=ETCD_VERSION,
        ldflags="-s -w",
        tags="",
        binaries={"etcd": ETCD_MODULE},
    ),
    _kubernetes("kube-apiserver", "kube-controller-manager", "kubectl"),
))
NODE = BinarySet(node_cache_key(), (
    _kubernetes("kube-scheduler", "kubelet", "kube-proxy"),
    _Module(
        path=CONTAINERD_MODULE,
        version=CONTAINERD_VERSION,
        sibling_version=CONTAINERD_VERSION,
        ldflags=f"-s -w -X {CONTAINERD_MODULE}/version.Version={CONTAINERD_VERSION}",
        tags="no_btrfs,no_devmapper,no_zfs,no_aufs",
        binaries={name: f"{CONTAINERD_MODULE}/cmd/{name}" for name in ("containerd", "containerd-shim-runc-v2", "ctr")},
    ),
    _Module(
        path=RUNC_MODULE,
        version=RUNC_VERSION,
        sibling_version=RUNC_VERSION,
        ldflags=f"-s -w -X main.version={RUNC_VERSION.removeprefix('v')}",
        tags="seccomp,urfave_cli_no_docs",
        binaries={"runc": RUNC_MODULE},
        cgo=True,  # libseccomp
    ),
), host_packages=dict(host.BUILD_PACKAGES))
BINARIES = CONTROL_PLANE.names


def cache_root() -> Path:
    """Return the folder holding all cached control plane builds."""
    base = os.environ.get("AIRFLOWTASK_CACHE") or Path.home() / ".cache" / "airflowtask-operator"
    return Path(base) / "controlplane"


def bin_dir(binaries: BinarySet = CONTROL_PLANE) -> Path:
    """Return the folder a set's binaries live in once built."""
    return cache_root() / binaries.key / "bin"


def is_built(binaries: BinarySet = CONTROL_PLANE) -> bool:
    """True when every binary of the set is in the cache."""
    return all(os.access(bin_dir(binaries) / name, os.X_OK) for name in binaries.names)


def _stderr(line: str) -> None:
    print(f"controlplane: {line}", file=sys.stderr, flush=True)


def ensure_binaries(log: Log = _stderr, binaries: BinarySet = CONTROL_PLANE) -> Path:
    """Return the set's cached binaries folder, building the binaries first if they are missing."""
    if is_built(binaries):
        return bin_dir(binaries)
    host.ensure_packages(binaries.host_packages, log)
    cache_root().mkdir(parents=True, exist_ok=True)
    with _lock(cache_root() / f"{binaries.key}.lock"):
        if not is_built(binaries):
            _build(binaries, log)
    return bin_dir(binaries)


def ensure_node_binaries(log: Log = _stderr) -> Path:
    """Return the node's cached binaries folder, building them first if they are missing."""
    return ensure_binaries(log, NODE)


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


def _build(binaries: BinarySet, log: Log) -> None:
    root = cache_root()
    for stale in root.glob(f".{binaries.key}-*"):  # left by a killed build; we hold the lock
        shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f".{binaries.key}-", dir=root))
    started = time.monotonic()
    try:
        out = work / "bin"
        out.mkdir()
        env = _go_env()
        for module in binaries.modules:
            _build_module(module, work / module.path.replace("/", "_"), out, env, log)
        final = bin_dir(binaries)
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
        _run([*cmd, package], wrapper, env | {"CGO_ENABLED": "1" if module.cgo else "0"}, f"build {name}", log)


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
