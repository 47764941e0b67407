"""A real node for the local cluster: containerd + runc, kubelet and kube-proxy on a CNI bridge.

One node per machine: it takes a machine-wide lock, keeps its files in ``NodeLayout.root`` and names the
bridge, the cgroup parent and iptables chains after itself. Pods reach the API server (on the bridge's
gateway address, also through the ``kubernetes`` Service) and each other; a FORWARD rule keeps them off
every other network. :mod:`.teardown` removes all of it on stop and before a start.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .teardown import NodeLayout, cgroup_mounts, leftovers, teardown

Log = Callable[[str], None]
Start = Callable[[str, list[str]], subprocess.Popen[bytes]]

PAUSE_IMAGE = "localhost/airflowtask-pause:local"  # the alias containerd's CRI uses for Pod sandboxes
_LOCK = Path("/run/airflowtask-node.lock")


class NodeError(RuntimeError):
    """The node cannot start; the message says why."""


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def _checked(*cmd: str) -> None:
    result = _run(*cmd)
    if result.returncode != 0:
        raise NodeError(f"`{' '.join(cmd)}` failed: {result.stderr.strip()}")


class MachineLock:
    """The machine-wide lock a node holds while it runs (a second node would fight over iptables)."""

    def __init__(self) -> None:
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        handle = _LOCK.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise NodeError(f"a local node is already running on this machine ({owner}); "
                            "stop it first (one node per machine)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def prepare_network(layout: NodeLayout, log: Log) -> None:
    """Clean what a dead node left, then make the bridge (with the gateway address) and the FORWARD rule."""
    if found := leftovers(layout):
        log(f"removing what an earlier node left ({len(found)} items)")
        teardown(layout, log)
    prefix = layout.subnet.split("/")[1]
    _checked("ip", "link", "add", layout.bridge, "type", "bridge")
    _checked("ip", "addr", "add", f"{layout.gateway}/{prefix}", "dev", layout.bridge)
    _checked("ip", "link", "set", layout.bridge, "up")
    _checked("iptables", "-I", *layout.forward_rule)
    for folder in (layout.root, layout.cni_conf_dir, layout.cni_data_dir, layout.pod_logs):
        folder.mkdir(parents=True, exist_ok=True)
    make_cgroup_parent(layout)


def make_cgroup_parent(layout: NodeLayout) -> None:
    """Create the kubelet's cgroupRoot in every hierarchy (the kubelet insists that it exists)."""
    for mount in cgroup_mounts():
        folder = mount / layout.cgroup_parent
        folder.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):  # cgroup v1 cpuset: a new group starts empty
            if (folder / name).exists() and not (folder / name).read_text().strip():
                (folder / name).write_text((mount / name).read_text())


def containerd_config(layout: NodeLayout, runc: Path) -> str:
    """containerd's config (version 3): own paths and socket, runc as the runtime, CNI from our folder."""
    cri_runtime = "plugins.'io.containerd.cri.v1.runtime'"
    return f"""version = 3
root = '{layout.containerd_root}'
state = '{layout.containerd_state}'
disabled_plugins = ['io.containerd.snapshotter.v1.btrfs', 'io.containerd.snapshotter.v1.zfs',
                    'io.containerd.snapshotter.v1.devmapper', 'io.containerd.tracing.processor.v1.otlp']

[grpc]
  address = '{layout.containerd_socket}'

[ttrpc]
  address = '{layout.containerd_socket}.ttrpc'

[debug]
  level = 'warn'

[plugins.'io.containerd.internal.v1.opt']
  path = '{layout.root / "opt"}'

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '{PAUSE_IMAGE}'

[{cri_runtime}]
  enable_selinux = false
  # no CAP_SYS_RESOURCE on these machines: never lower a process's oom_score_adj
  restrict_oom_score_adj = true
  # network namespaces under our state folder, so that teardown finds and unmounts them
  netns_mounts_under_state_dir = true
  [{cri_runtime}.containerd]
    default_runtime_name = 'runc'
    [{cri_runtime}.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [{cri_runtime}.containerd.runtimes.runc.options]
        BinaryName = '{runc}'
        SystemdCgroup = false
  [{cri_runtime}.cni]
    bin_dirs = ['/usr/lib/cni']
    conf_dir = '{layout.cni_conf_dir}'

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
"""


def cni_config(layout: NodeLayout) -> dict[str, object]:
    """The Pod network: our bridge, addresses from host-local, no masquerading (Pods stay local)."""
    return {
        "cniVersion": "1.0.0",
        "name": "airflowtask",
        "plugins": [
            {
                "type": "bridge",
                "bridge": layout.bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": layout.subnet, "gateway": layout.gateway}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.cni_data_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(layout: NodeLayout, ca: Path) -> dict[str, object]:
    """KubeletConfiguration for cgroup v1 hosts without CAP_SYS_RESOURCE, with its own folders."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{layout.cgroup_parent}",
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "address": layout.gateway,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(ca)}},
        "authorization": {"mode": "Webhook"},
        "failSwapOn": False,
        "podLogsDir": str(layout.pod_logs),
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 99,
        "imageGCLowThresholdPercent": 98,
        "maxPods": 250,
        "serializeImagePulls": False,
        "resolvConf": "",
        "shutdownGracePeriod": "0s",
    }


def kube_proxy_config(layout: NodeLayout, kubeconfig: Path, node_name: str,
                      ports: tuple[int, int]) -> dict[str, object]:
    """KubeProxyConfiguration: iptables mode, no NodePorts off the bridge, no conntrack sysctls."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": node_name,
        "clusterCIDR": layout.subnet,
        "bindAddress": "127.0.0.1",
        "healthzBindAddress": f"127.0.0.1:{ports[0]}",
        "metricsBindAddress": f"127.0.0.1:{ports[1]}",
        "nodePortAddresses": [f"{layout.gateway}/32"],
        "conntrack": {"maxPerCore": 0},
    }


def wait_for_socket(path: Path, proc: subprocess.Popen[bytes], deadline: float, name: str) -> None:
    while not path.exists():
        if proc.poll() is not None:
            raise NodeError(f"{name} exited with code {proc.returncode} before creating {path}")
        if time.monotonic() > deadline:
            raise NodeError(f"{name} did not create {path} in time")
        time.sleep(0.1)


def write_json(path: Path, value: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")
    return path
