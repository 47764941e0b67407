"""A real local Kubernetes control plane built from source, for tests and local runs."""

from .build import BuildError, bin_dir, ensure_binaries
from .cluster import ControlPlaneError, LocalControlPlane
from .kubectl import Kubectl, KubectlError
from .versions import ETCD_VERSION, KUBERNETES_VERSION

__all__ = [
    "ETCD_VERSION",
    "KUBERNETES_VERSION",
    "BuildError",
    "ControlPlaneError",
    "Kubectl",
    "KubectlError",
    "LocalControlPlane",
    "bin_dir",
    "ensure_binaries",
]
