"""Host packages the local node needs from the machine's package manager (apt), installed when missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

Log = Callable[[str], None]

# What the node and the image builds need from the host: a file that proves it is there -> its apt package.
NODE_PACKAGES: Mapping[str, str] = {
    "/usr/lib/cni/bridge": "containernetworking-plugins",
    "iptables": "iptables",
    "conntrack": "conntrack",
    "socat": "socat",
    "ethtool": "ethtool",
    "ebtables": "ebtables",
    "ip": "iproute2",
    "mount": "mount",
    "nsenter": "util-linux",
}
IMAGE_PACKAGES: Mapping[str, str] = {
    "mmdebstrap": "mmdebstrap",
    "umoci": "umoci",
    "skopeo": "skopeo",
    "buildah": "buildah",
}
# runc is built with cgo against libseccomp.
BUILD_PACKAGES: Mapping[str, str] = {
    "pkg-config": "pkg-config",
    "/usr/include/seccomp.h": "libseccomp-dev",
    "gcc": "gcc",
}


class HostError(RuntimeError):
    """A host package is missing and cannot be installed here; the message says which and how."""


def _present(probe: str) -> bool:
    if probe.startswith("/"):
        return Path(probe).exists()
    return shutil.which(probe) is not None or any(
        Path(folder, probe).exists() for folder in ("/usr/sbin", "/sbin")
    )


def missing(packages: Mapping[str, str]) -> list[str]:
    """Return the apt packages of ``packages`` whose probe file is absent, in order, without repeats."""
    return list(dict.fromkeys(pkg for probe, pkg in packages.items() if not _present(probe)))


def ensure_packages(packages: Mapping[str, str], log: Log) -> None:
    """Install the missing ones with apt-get; raise :class:`HostError` naming them when that is impossible."""
    needed = missing(packages)
    if not needed:
        return
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *needed]
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        why = "not running as root" if os.geteuid() != 0 else "apt-get is not available"
        raise HostError(f"missing host packages: {' '.join(needed)} ({why}); install them with: "
                        f"sudo apt-get update && sudo {' '.join(command)}")
    log(f"installing host packages with apt-get: {' '.join(needed)}")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    for step in (["apt-get", "update", "-q"], command):
        result = subprocess.run(step, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
            raise HostError(f"`{' '.join(step)}` failed (exit {result.returncode}):\n{tail}")
    still = missing(packages)
    if still:
        raise HostError(f"apt-get installed {' '.join(needed)} but these are still missing: {' '.join(still)}")
