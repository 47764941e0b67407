"""Command line: ``python -m airflowtask.controlplane {build,up,env}``."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time
from pathlib import Path

from .build import CONTROL_PLANE, NODE, BuildError, bin_dir, cache_root, ensure_binaries
from .cluster import ControlPlaneError, LocalControlPlane
from .host import HostError
from .images import ImageError
from .node import NodeError
from .versions import CONTAINERD_VERSION, ETCD_VERSION, KUBERNETES_VERSION, RUNC_VERSION


def _build(with_node: bool) -> None:
    for binaries in (CONTROL_PLANE, NODE) if with_node else (CONTROL_PLANE,):
        folder = ensure_binaries(binaries=binaries)
        for name in binaries.names:
            print(folder / name)


def _up(workdir: Path | None, with_node: bool) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):  # both stop like Ctrl-C, even when started in background
        signal.signal(signum, signal.default_int_handler)
    started = time.monotonic()
    with LocalControlPlane(workdir, with_node=with_node) as plane:
        node = f", node Ready after {plane.node_ready_seconds:.1f}s" if plane.node_ready_seconds else ""
        print(f"# {plane.server}: /readyz ok after {plane.startup_seconds:.1f}s{node}, all running after "
              f"{time.monotonic() - started:.1f}s; logs in {plane.workdir / 'logs'}")
        print(f"export KUBECONFIG={shlex.quote(str(plane.kubeconfig))}")
        print(f"export PATH={shlex.quote(str(plane.bin_dir))}:\"$PATH\"")
        if plane.images:
            print(f"export AIRFLOWTASK_IMAGE={shlex.quote(plane.images.operator)}")
        print("# Ctrl-C stops it", flush=True)
        signal.pause()  # until KeyboardInterrupt; leaving the block stops everything


def _env() -> None:
    print(f"KUBERNETES_VERSION={KUBERNETES_VERSION}")
    print(f"ETCD_VERSION={ETCD_VERSION}")
    print(f"CONTAINERD_VERSION={CONTAINERD_VERSION}")
    print(f"RUNC_VERSION={RUNC_VERSION}")
    print(f"CACHE_DIR={cache_root()}")
    print(f"BIN_DIR={bin_dir()}")
    print(f"NODE_BIN_DIR={bin_dir(NODE)}")


def main(argv: list[str] | None = None) -> int:
    """Run one command; on failure print the error (command, output tail) and return 1, no traceback."""
    parser = argparse.ArgumentParser(
        prog="python -m airflowtask.controlplane",
        description="A real local Kubernetes cluster: etcd, kube-apiserver, kube-controller-manager and a node "
        "(kube-scheduler, containerd, kubelet, kube-proxy).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build and cache the binaries, print their paths")
    up = commands.add_parser("up", help="start a local cluster in the foreground until Ctrl-C")
    up.add_argument("--dir", type=Path, help="work folder to use and keep (default: a temporary one)")
    for command in (build, up):
        command.add_argument("--no-node", dest="with_node", action="store_false",
                             help="only the control plane: no node, so Pods stay Pending (needs no root)")
    commands.add_parser("env", help="print versions and cache folders")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            _build(args.with_node)
        elif args.command == "up":
            _up(args.dir, args.with_node)
        else:
            _env()
    except (BuildError, ControlPlaneError, HostError, ImageError, NodeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; everything started was stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
