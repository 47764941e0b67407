"""Remove everything a local node made: processes, containers, cgroups, mounts, netns, bridge, iptables rules.

Runs when a node stops and before one starts (a node that died left all of it). Every step is idempotent
and keeps going past failures, so a half-made or half-removed node is cleaned as well as a whole one.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

Log = Callable[[str], None]

@dataclass(frozen=True)
class NodeLayout:
    """Where a local node keeps its files, and the names it gives to machine-wide things."""

    root: Path = Path("/var/lib/airflowtask-node")
    bridge: str = "aft0"
    subnet: str = "10.88.0.0/16"
    gateway: str = "10.88.0.1"
    cgroup_parent: str = "airflowtask"  # kubelet's cgroupRoot: every Pod's cgroup is below it
    chain_prefixes: tuple[str, ...] = ("KUBE-", "CNI-")  # iptables chains of kubelet, kube-proxy, CNI plugins

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd"

    @property
    def containerd_state(self) -> Path:
        return self.root / "containerd-state"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd_state / "containerd.sock"

    @property
    def kubelet_dir(self) -> Path:
        return self.root / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_data_dir(self) -> Path:
        return self.root / "cni" / "ipam"

    @property
    def forward_rule(self) -> list[str]:
        """The FORWARD rule that keeps Pods off every network but their bridge."""
        return ["FORWARD", "-i", self.bridge, "!", "-o", self.bridge, "-j", "DROP"]


def teardown(layout: NodeLayout, log: Log) -> None:
    """Remove everything listed in the module docstring; ``layout.root`` is emptied too."""
    _kill_processes(layout, log)
    _remove_cgroups(layout)
    _unmount_below(layout.root, log)
    _delete_bridge(layout)
    _remove_iptables_rules(layout, log)
    shutil.rmtree(layout.root, ignore_errors=True)


def leftovers(layout: NodeLayout) -> list[str]:
    """Describe what a node left on the machine; empty when teardown() did its job."""
    found = [f"process {pid}: {cmd}" for pid, cmd in _node_processes(layout)]
    found += [f"cgroup {path}" for path in _cgroup_dirs(layout)]
    found += [f"mount {point}" for point in _mounts_below(layout.root)]
    if Path("/sys/class/net", layout.bridge).exists():
        found.append(f"network interface {layout.bridge}")
    found += [f"iptables {rule}" for rule in _our_iptables_rules(layout)]
    if layout.root.exists():
        found.append(f"folder {layout.root}")
    return found


def container_processes(layout: NodeLayout, pod_uid: str, container_id: str) -> list[int]:
    """The processes of one container of a Pod on this node (from its cgroup), to kill it as the OOM killer would."""
    found: set[int] = set()
    for folder in _cgroup_dirs(layout):
        if folder.name == container_id and folder.parent.name == f"pod{pod_uid}":
            found.update(int(line) for line in _read(folder / "cgroup.procs").split())
    return sorted(found)


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def _proc_cmdlines() -> Iterator[tuple[int, str]]:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if raw:
            yield int(entry.name), raw.replace(b"\0", b" ").decode(errors="replace").strip()


def _node_processes(layout: NodeLayout) -> list[tuple[int, str]]:
    """Processes that name the node's folder (containerd, kubelet, kube-proxy, shims) or live in its cgroups."""
    marker = str(layout.root)
    own = {os.getpid()}
    found = {pid: cmd for pid, cmd in _proc_cmdlines() if marker in cmd and pid not in own}
    for folder in _cgroup_dirs(layout):
        for line in _read(folder / "cgroup.procs").split():
            pid = int(line)
            if pid not in own:
                found.setdefault(pid, _cmdline(pid))
    return sorted(found.items())


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def _read(path: Path) -> str:
    """A kernel file's text, or "" when it is gone (a process or cgroup may vanish while we look)."""
    try:
        return path.read_text()
    except OSError:
        return ""


def _kill_processes(layout: NodeLayout, log: Log) -> None:
    """SIGKILL the node's processes and every container process, until none is left (at most 20 s)."""
    deadline = time.monotonic() + 20
    reported = False
    while (processes := _node_processes(layout)) and time.monotonic() < deadline:
        if not reported:
            log(f"stopping {len(processes)} leftover node processes")
            reported = True
        for pid, _ in processes:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def cgroup_mounts() -> list[Path]:
    """The mount points of every cgroup hierarchy (one per controller on cgroup v1, one on v2)."""
    points = []
    for line in _read(Path("/proc/mounts")).splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] in ("cgroup", "cgroup2"):
            points.append(Path(fields[1]))
    return points


def _cgroup_dirs(layout: NodeLayout) -> list[Path]:
    """Every cgroup folder below the node's cgroup parent, in every hierarchy, deepest first."""
    found: list[Path] = []
    for mount in cgroup_mounts():
        top = mount / layout.cgroup_parent
        if top.is_dir():
            found += [Path(folder) for folder, _, _ in os.walk(top)]
    return sorted(found, key=lambda path: len(path.parts), reverse=True)


def _remove_cgroups(layout: NodeLayout) -> None:
    for folder in _cgroup_dirs(layout):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _mounts_below(root: Path) -> list[str]:
    prefix = str(root).rstrip("/") + "/"
    points = []
    for line in _read(Path("/proc/self/mountinfo")).splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix) or point == str(root):
            points.append(point)
    return sorted(set(points), key=len, reverse=True)


def _unmount_below(root: Path, log: Log) -> None:
    for _ in range(5):  # a mount can hide another one at the same place
        points = _mounts_below(root)
        if not points:
            return
        for point in points:
            if _run("umount", point).returncode != 0:
                _run("umount", "-l", point)
    if remaining := _mounts_below(root):
        log(f"could not unmount: {' '.join(remaining)}")


def _delete_bridge(layout: NodeLayout) -> None:
    if Path("/sys/class/net", layout.bridge).exists():
        _run("ip", "link", "delete", layout.bridge)


def _iptables_tools() -> list[str]:
    return [tool for tool in ("iptables", "ip6tables") if shutil.which(tool)]


def _our_iptables_rules(layout: NodeLayout) -> list[str]:
    """Rules and chains the node added (kubelet, kube-proxy, CNI plugins, our FORWARD rule), as text."""
    found = []
    for tool in _iptables_tools():
        dump = _run(f"{tool}-save").stdout
        for line in dump.splitlines():
            if _is_ours(line, layout):
                found.append(f"{tool}: {line}")
    return found


def _is_ours(line: str, layout: NodeLayout) -> bool:
    prefixes = layout.chain_prefixes
    if line.startswith(":"):
        return line[1:].startswith(prefixes)
    if not line.startswith("-A "):
        return False
    words = shlex.split(line)
    return (words[1].startswith(prefixes)
            or any(target.startswith(prefixes) for flag, target in itertools.pairwise(words)
                   if flag in ("-j", "-g"))
            or layout.bridge in words)


def _remove_iptables_rules(layout: NodeLayout, log: Log) -> None:
    """Delete every rule that is ours or jumps to our chains, then flush and delete our chains."""
    for tool in _iptables_tools():
        table = ""
        chains: list[tuple[str, str]] = []
        for line in _run(f"{tool}-save").stdout.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":") and line[1:].startswith(layout.chain_prefixes):
                chains.append((table, line[1:].split()[0]))
            elif (line.startswith("-A ") and _is_ours(line, layout)
                  and not line.split()[1].startswith(layout.chain_prefixes)):
                _run(tool, "-t", table, "-D", *shlex.split(line)[1:])
        for table, chain in chains:
            _run(tool, "-t", table, "-F", chain)
        for table, chain in chains:
            _run(tool, "-t", table, "-X", chain)
    if remaining := _our_iptables_rules(layout):
        log(f"could not remove iptables rules: {remaining}")
