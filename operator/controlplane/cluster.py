"""A real local control plane: etcd, kube-apiserver (RBAC on) and kube-controller-manager."""

from __future__ import annotations

import shlex
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

from . import process
from .build import ensure_binaries
from .kubectl import Kubectl, pem_data, write_kubeconfig
from .pki import CertPair, Pki, write_pki

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
_LOG_TAIL_LINES = 30


class ControlPlaneError(RuntimeError):
    """The control plane could not start; the message names the component and ends with its log."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path) -> str:
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(lines[-_LOG_TAIL_LINES:])


class LocalControlPlane(Kubectl):
    """etcd + kube-apiserver + kube-controller-manager on 127.0.0.1, with an admin kubeconfig.

    ``workdir`` holds keys, kubeconfigs, logs (``logs/<component>.log``) and etcd's data. A given one
    is kept, less etcd's data (every start makes new keys, so old data is of no use); a temporary
    one is made and removed when none is given. Use as a context manager, or call start() and stop().
    """

    def __init__(self, workdir: Path | None = None, bin_dir: Path | None = None) -> None:
        self._own_workdir = workdir is None
        self.workdir = workdir.resolve() if workdir else Path(tempfile.mkdtemp(prefix="airflowtask-cp-"))
        self.bin_dir = bin_dir or ensure_binaries()
        super().__init__(self.workdir / "kubeconfig", str(self.bin_dir / "kubectl"))
        self.port = _free_port()
        self.server = f"https://127.0.0.1:{self.port}"
        self.startup_seconds: float | None = None
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._controller_manager_kubeconfig = self.workdir / "controller-manager.kubeconfig"
        self._etcd_dir = self.workdir / "etcd"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self, timeout: float = 90.0) -> None:
        """Start all components and return once /readyz is ok and controllers have acted."""
        started = time.monotonic()
        process.add_cleanup(self.stop)
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            (self.workdir / "logs").mkdir(exist_ok=True)
            pki = write_pki(self.workdir / "pki")
            self._write_kubeconfig(self.kubeconfig, pki, pki.admin)
            self._write_kubeconfig(self._controller_manager_kubeconfig, pki, pki.controller_manager)
            etcd_url = self._start_etcd()
            self._start("kube-apiserver", self._apiserver_args(pki, etcd_url))
            self._wait_ready(pki, started + timeout)
            self.startup_seconds = time.monotonic() - started
            self._start("kube-controller-manager", self._controller_manager_args(pki))
            self._wait_controllers(started + timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every component (newest first), then remove what the class docstring says. Idempotent."""
        process.remove_cleanup(self.stop)
        while self._procs:
            _, proc = self._procs.pop()
            process.terminate(proc, grace=10.0)
        shutil.rmtree(self.workdir if self._own_workdir else self._etcd_dir, ignore_errors=True)

    def _start(self, name: str, args: list[str]) -> None:
        cmd = [str(self.bin_dir / name), *args]
        self._procs.append((name, process.spawn(cmd, self._log(name))))

    def _log(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def _start_etcd(self) -> str:
        client = f"http://127.0.0.1:{_free_port()}"
        peer = f"http://127.0.0.1:{_free_port()}"
        self._start("etcd", [
            "--name=default",
            f"--data-dir={self._etcd_dir}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ])
        return client

    def _apiserver_args(self, pki: Pki, etcd_url: str) -> list[str]:
        return [
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--tls-cert-file={pki.serving.cert}",
            f"--tls-private-key-file={pki.serving.key}",
            f"--client-ca-file={pki.ca.cert}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.sa_public_key}",
            f"--service-account-signing-key-file={pki.sa_private_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",  # a loopback address is not a valid endpoint
        ]

    def _controller_manager_args(self, pki: Pki) -> list[str]:
        return [
            f"--kubeconfig={self._controller_manager_kubeconfig}",
            f"--service-account-private-key-file={pki.sa_private_key}",
            f"--root-ca-file={pki.ca.cert}",
            "--use-service-account-credentials=true",
            "--leader-elect=false",
            "--secure-port=0",
        ]

    def _write_kubeconfig(self, path: Path, pki: Pki, identity: CertPair) -> None:
        cluster = {"server": self.server, "certificate-authority-data": pem_data(pki.ca.cert)}
        user = {"client-certificate-data": pem_data(identity.cert), "client-key-data": pem_data(identity.key)}
        write_kubeconfig(path, cluster, user)

    def _check_running(self) -> None:
        for name, proc in self._procs:
            if proc.poll() is not None:
                raise ControlPlaneError(
                    f"{name} exited with code {proc.returncode}\ncommand: {shlex.join(map(str, proc.args))}\n"
                    f"last lines of its log:\n{_tail(self._log(name))}"
                )

    def _wait_ready(self, pki: Pki, deadline: float) -> None:
        context = ssl.create_default_context(cafile=str(pki.ca.cert))
        context.load_cert_chain(str(pki.admin.cert), str(pki.admin.key))
        last = ""
        while time.monotonic() < deadline:
            self._check_running()
            try:
                with urllib.request.urlopen(f"{self.server}/readyz", context=context, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError) as error:
                last = str(error)
            time.sleep(0.2)
        raise ControlPlaneError(f"kube-apiserver not ready at {self.server}/readyz: {last}\n"
                                f"{_tail(self._log('kube-apiserver'))}")

    def _wait_controllers(self, deadline: float) -> None:
        """Wait until the controller manager has created the ``default`` ServiceAccount."""
        while time.monotonic() < deadline:
            self._check_running()
            if self.kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0:
                return
            time.sleep(0.3)
        raise ControlPlaneError("kube-controller-manager did not create the default ServiceAccount in time\n"
                                f"{_tail(self._log('kube-controller-manager'))}")
