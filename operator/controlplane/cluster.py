"""A real local cluster: etcd, kube-apiserver (RBAC on), kube-controller-manager and, by default, a node.

The node (kube-scheduler, containerd + runc, kubelet, kube-proxy on a CNI bridge; see :mod:`.node`) runs
Pods from images built offline from the project's own Dockerfile (see :mod:`.images`). It needs root.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from . import host, node, process
from .build import ensure_binaries, ensure_node_binaries
from .kubectl import Kubectl, pem_data, write_kubeconfig
from .pki import CertPair, Pki, write_pki
from .teardown import NodeLayout, teardown

if TYPE_CHECKING:
    from . import images

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
KUBERNETES_SERVICE_IP = "10.0.0.1"
NODE_NAME = "airflowtask-node"
_SERVICE_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local")
_LOG_TAIL_LINES = 30


class ControlPlaneError(RuntimeError):
    """The cluster could not start; the message names the component and ends with its log."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stderr(line: str) -> None:
    print(f"controlplane: {line}", file=sys.stderr, flush=True)


def _tail(path: Path) -> str:
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(lines[-_LOG_TAIL_LINES:])


class LocalControlPlane(Kubectl):
    """A local cluster with an admin kubeconfig: the control plane and, with ``with_node``, one node.

    Without a node everything listens on 127.0.0.1; with one, the API server listens on the node's bridge
    gateway address, which Pods reach too. ``workdir`` holds keys, kubeconfigs, logs
    (``logs/<component>.log``) and etcd's data. A given one is kept, less etcd's data (every start makes new
    keys, so old data is of no use); a temporary one is made and removed when none is given. Use as a context
    manager, or call start() and stop(). Once started with a node, ``images`` names the images it holds.
    """

    def __init__(self, workdir: Path | None = None, bin_dir: Path | None = None, with_node: bool = True,
                 layout: NodeLayout | None = None) -> None:
        self._own_workdir = workdir is None
        self.workdir = workdir.resolve() if workdir else Path(tempfile.mkdtemp(prefix="airflowtask-cp-"))
        self.bin_dir = bin_dir or ensure_binaries()
        super().__init__(self.workdir / "kubeconfig", str(self.bin_dir / "kubectl"))
        self.with_node = with_node
        self.layout = layout or NodeLayout()
        self.address = self.layout.gateway if with_node else "127.0.0.1"
        self.port = _free_port()
        self.server = f"https://{self.address}:{self.port}"
        self.startup_seconds: float | None = None
        self.node_ready_seconds: float | None = None
        self.images: images.Images | None = None
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._commands: dict[str, tuple[list[str], dict[str, str] | None]] = {}
        self._pki: Pki | None = None
        self._etcd_dir = self.workdir / "etcd"
        self._machine_lock = node.MachineLock()
        self._node_started = False

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def env(self) -> dict[str, str]:
        """As :attr:`Kubectl.env`, plus ``AIRFLOWTASK_IMAGE`` naming the operator image on the node."""
        extra = {"AIRFLOWTASK_IMAGE": self.images.operator} if self.images else {}
        return super().env | extra

    def start(self, timeout: float = 120.0, log: node.Log = _stderr) -> None:
        """Start every component; return once /readyz is ok, controllers acted and the node (if any) is Ready."""
        started = time.monotonic()
        process.add_cleanup(self.stop)
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            (self.workdir / "logs").mkdir(exist_ok=True)
            node_bin = self._prepare_node(log) if self.with_node else None
            pki = write_pki(self.workdir / "pki", NODE_NAME, addresses=(self.address, "127.0.0.1",
                            KUBERNETES_SERVICE_IP), dns_names=("localhost", *_SERVICE_NAMES))
            self._write_kubeconfig(self.kubeconfig, pki, pki.admin)
            self._pki = pki
            etcd_url = self._start_etcd()
            self._start("kube-apiserver", self._apiserver_args(pki, etcd_url))
            self._wait_ready(pki, time.monotonic() + timeout)
            self.startup_seconds = time.monotonic() - started
            self._start("kube-controller-manager", self._controller_manager_args(pki))
            if node_bin is not None:
                self._start_node(pki, node_bin, timeout, log)
                self.node_ready_seconds = time.monotonic() - started
            self._wait_controllers(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every component (newest first), then remove what the class docstring says. Idempotent."""
        process.remove_cleanup(self.stop)
        while self._procs:
            _, proc = self._procs.pop()
            process.terminate(proc, grace=10.0)
        if self._node_started:
            teardown(self.layout, _stderr)
            self._node_started = False
        self._machine_lock.release()
        shutil.rmtree(self.workdir if self._own_workdir else self._etcd_dir, ignore_errors=True)

    def restart(self, name: str, down_seconds: float = 0.0, timeout: float = 120.0) -> None:
        """Kill one component (SIGKILL, as a crash would), keep it down ``down_seconds``, start it again with the
        same flags; for kube-apiserver, return once /readyz is ok again. Tests use it to make outages."""
        cmd, env = self._commands[name]
        index, proc = next((i, proc) for i, (n, proc) in enumerate(self._procs) if n == name)
        proc.kill()
        proc.wait()
        time.sleep(down_seconds)
        self._procs[index] = (name, process.spawn(cmd, self._log(name), env=env))
        if name == "kube-apiserver" and self._pki is not None:
            self._wait_ready(self._pki, time.monotonic() + timeout)

    # ---- the node ---------------------------------------------------------------------------------------

    def _prepare_node(self, log: node.Log) -> Path:
        """Check the machine, build what is missing, take the machine lock, make the Pod network."""
        if os.geteuid() != 0:
            raise ControlPlaneError("a local node needs root (it runs containerd, kubelet and iptables); "
                                    "run as root, or start the control plane without a node (--no-node)")
        host.ensure_packages({**host.NODE_PACKAGES, **host.IMAGE_PACKAGES}, log)
        node_bin = ensure_node_binaries(log)
        self._machine_lock.acquire()
        self._node_started = True
        node.prepare_network(self.layout, log)
        return node_bin

    def _start_node(self, pki: Pki, node_bin: Path, timeout: float, log: node.Log) -> None:
        layout = self.layout
        config = self.workdir / "node"
        self._start("kube-scheduler", [
            f"--kubeconfig={self._component_kubeconfig('scheduler', pki, pki.scheduler)}",
            "--leader-elect=false",
            "--secure-port=0",
        ], bin_dir=node_bin)
        node.write_json(layout.cni_conf_dir / "10-airflowtask.conflist", node.cni_config(layout))
        containerd_toml = config / "containerd.toml"
        containerd_toml.parent.mkdir(parents=True, exist_ok=True)
        containerd_toml.write_text(node.containerd_config(layout, node_bin / "runc"))
        containerd = self._start("containerd", [f"--config={containerd_toml}"], bin_dir=node_bin,
                                 env=os.environ | {"PATH": f"{node_bin}:{os.environ.get('PATH', '')}"})
        node.wait_for_socket(layout.containerd_socket, containerd, time.monotonic() + timeout, "containerd")
        from .images import ensure_images  # only a node needs the image tools

        self.images = ensure_images(ctr=node_bin / "ctr", address=str(layout.containerd_socket),
                                           runc=node_bin / "runc", log=log)
        self._ctr(node_bin, "images", "tag", "--force", self.images.pause, node.PAUSE_IMAGE)
        kubelet_yaml = node.write_json(config / "kubelet.json", node.kubelet_config(layout, pki.ca.cert))
        self._start("kubelet", [
            f"--config={kubelet_yaml}",
            f"--kubeconfig={self._component_kubeconfig('kubelet', pki, pki.kubelet)}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={layout.gateway}",
            f"--root-dir={layout.kubelet_dir}",
            f"--cert-dir={layout.kubelet_dir / 'pki'}",
        ], bin_dir=node_bin)
        proxy_kubeconfig = self._component_kubeconfig("kube-proxy", pki, pki.kube_proxy)
        proxy_json = node.write_json(config / "kube-proxy.json",
                                     node.kube_proxy_config(layout, proxy_kubeconfig, NODE_NAME,
                                                             (_free_port(), _free_port())))
        self._start("kube-proxy", [f"--config={proxy_json}"], bin_dir=node_bin)
        self._wait_node_ready(time.monotonic() + timeout)

    def _ctr(self, node_bin: Path, *args: str) -> None:
        cmd = [str(node_bin / "ctr"), f"--address={self.layout.containerd_socket}", "-n", "k8s.io", *args]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ControlPlaneError(f"`{shlex.join(cmd)}` failed: {result.stderr.strip()}")

    def _wait_node_ready(self, deadline: float) -> None:
        ready = "jsonpath={.status.conditions[?(@.type=='Ready')].status}"
        while time.monotonic() < deadline:
            self._check_running()
            if self.kubectl("get", "node", NODE_NAME, "-o", ready, check=False).stdout.strip() == "True":
                return
            time.sleep(0.3)
        raise ControlPlaneError(f"node {NODE_NAME} did not become Ready in time\n{_tail(self._log('kubelet'))}")

    # ---- the control plane ------------------------------------------------------------------------------

    def _start(self, name: str, args: list[str], bin_dir: Path | None = None,
               env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        cmd = [str((bin_dir or self.bin_dir) / name), *args]
        proc = process.spawn(cmd, self._log(name), env=env)
        self._procs.append((name, proc))
        self._commands[name] = (cmd, env)
        return proc

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
        args = [
            f"--etcd-servers={etcd_url}",
            f"--bind-address={self.address}",
            f"--secure-port={self.port}",
            f"--tls-cert-file={pki.serving.cert}",
            f"--tls-private-key-file={pki.serving.key}",
            f"--client-ca-file={pki.ca.cert}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.sa_public_key}",
            f"--service-account-signing-key-file={pki.sa_private_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
        ]
        if not self.with_node:
            return [*args, "--authorization-mode=RBAC", "--disable-admission-plugins=ServiceAccount",
                    "--endpoint-reconciler-type=none"]  # a loopback address is not a valid endpoint
        return [
            *args,
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--advertise-address={self.address}",
            f"--kubelet-client-certificate={pki.kubelet_client.cert}",
            f"--kubelet-client-key={pki.kubelet_client.key}",
            "--kubelet-preferred-address-types=InternalIP",
        ]

    def _controller_manager_args(self, pki: Pki) -> list[str]:
        return [
            f"--kubeconfig={self._component_kubeconfig('controller-manager', pki, pki.controller_manager)}",
            f"--service-account-private-key-file={pki.sa_private_key}",
            f"--root-ca-file={pki.ca.cert}",
            "--use-service-account-credentials=true",
            "--leader-elect=false",
            "--secure-port=0",
        ]

    def _component_kubeconfig(self, name: str, pki: Pki, identity: CertPair) -> Path:
        path = self.workdir / f"{name}.kubeconfig"
        self._write_kubeconfig(path, pki, identity)
        return path

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
