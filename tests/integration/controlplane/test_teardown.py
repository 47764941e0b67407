"""teardown() removes what a dead node leaves behind: processes, cgroups, mounts, the bridge, iptables rules.

Each test makes such leftovers for a layout of its own (own folder, bridge, cgroup parent and chain names),
so it never touches a node that runs beside it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflowtask.controlplane.node import make_cgroup_parent
from airflowtask.controlplane.teardown import NodeLayout, cgroup_mounts, leftovers, teardown

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="making bridges, mounts and cgroups needs root")


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[NodeLayout]:
    tag = uuid.uuid4().hex[:6]
    made = NodeLayout(root=tmp_path / "node", bridge=f"afttd{tag[:4]}", subnet="10.199.0.0/16",
                      gateway="10.199.0.1", cgroup_parent=f"airflowtask-test-{tag}", chain_prefixes=(f"AFT{tag}-",))
    yield made
    teardown(made, print)


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def test_teardown_removes_everything_a_dead_node_left(layout: NodeLayout) -> None:
    (layout.kubelet_dir / "pods" / "x").mkdir(parents=True)
    _run("mount", "-t", "tmpfs", "tmpfs", str(layout.kubelet_dir / "pods" / "x"))
    _run("ip", "link", "add", layout.bridge, "type", "bridge")
    _run("iptables", "-I", *layout.forward_rule)
    chain = f"{layout.chain_prefixes[0]}SERVICES"
    _run("iptables", "-t", "nat", "-N", chain)
    _run("iptables", "-t", "nat", "-A", chain, "-d", "10.199.0.5/32", "-j", "RETURN")
    _run("iptables", "-t", "nat", "-I", "OUTPUT", "-m", "comment", "--comment", "a test portal", "-j", chain)
    daemon = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", str(layout.root)])
    make_cgroup_parent(layout)
    container = subprocess.Popen(["sleep", "300"])
    pods = cgroup_mounts()[0] / layout.cgroup_parent / "kubepods" / "podx" / "c1"
    pods.mkdir(parents=True)
    (pods / "cgroup.procs").write_text(str(container.pid))

    found = "\n".join(leftovers(layout))
    for what in (f"process {daemon.pid}", f"process {container.pid}", "cgroup", "mount",
                 f"network interface {layout.bridge}", chain, "folder"):
        assert what in found
    teardown(layout, print)

    assert leftovers(layout) == []
    assert daemon.wait(timeout=10) == -9 and container.wait(timeout=10) == -9
    saved = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    assert chain not in saved and layout.bridge not in saved
    assert not Path("/sys/class/net", layout.bridge).exists()
    assert not layout.root.exists()


def test_teardown_of_nothing_is_quiet(layout: NodeLayout) -> None:
    said: list[str] = []
    teardown(layout, said.append)
    assert said == [] and leftovers(layout) == []
