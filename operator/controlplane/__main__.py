"""Command line: ``python -m airflowtask.controlplane {build,up,env}``."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time
from pathlib import Path

from .build import BINARIES, BuildError, bin_dir, cache_root, ensure_binaries
from .cluster import ControlPlaneError, LocalControlPlane
from .versions import ETCD_VERSION, KUBERNETES_VERSION


def _build() -> None:
    folder = ensure_binaries()
    for name in BINARIES:
        print(folder / name)


def _up(workdir: Path | None) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):  # both stop like Ctrl-C, even when started in background
        signal.signal(signum, signal.default_int_handler)
    started = time.monotonic()
    with LocalControlPlane(workdir) as plane:
        print(f"# {plane.server}: /readyz ok after {plane.startup_seconds:.1f}s, controllers running after "
              f"{time.monotonic() - started:.1f}s; logs in {plane.workdir / 'logs'}")
        print(f"export KUBECONFIG={shlex.quote(str(plane.kubeconfig))}")
        print(f"export PATH={shlex.quote(str(plane.bin_dir))}:\"$PATH\"")
        print("# Ctrl-C stops it", flush=True)
        signal.pause()  # until KeyboardInterrupt; leaving the block stops everything


def _env() -> None:
    print(f"KUBERNETES_VERSION={KUBERNETES_VERSION}")
    print(f"ETCD_VERSION={ETCD_VERSION}")
    print(f"CACHE_DIR={cache_root()}")
    print(f"BIN_DIR={bin_dir()}")


def main(argv: list[str] | None = None) -> int:
    """Run one command; on failure print the error (command, output tail) and return 1, no traceback."""
    parser = argparse.ArgumentParser(
        prog="python -m airflowtask.controlplane",
        description="A real local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build and cache the binaries, print their paths")
    up = commands.add_parser("up", help="start a local control plane in the foreground until Ctrl-C")
    up.add_argument("--dir", type=Path, help="work folder to use and keep (default: a temporary one)")
    commands.add_parser("env", help="print versions and cache folders")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            _build()
        elif args.command == "up":
            _up(args.dir)
        else:
            _env()
    except (BuildError, ControlPlaneError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; everything started was stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
