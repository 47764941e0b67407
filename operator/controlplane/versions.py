"""Pinned versions of the local control plane: the one place to change them."""

KUBERNETES_VERSION = "v1.37.2"
ETCD_VERSION = "v3.6.16"
CONTAINERD_VERSION = "v2.3.7"
RUNC_VERSION = "v1.5.3"

KUBERNETES_MODULE = "k8s.io/kubernetes"
ETCD_MODULE = "go.etcd.io/etcd/server/v3"
CONTAINERD_MODULE = "github.com/containerd/containerd/v2"
RUNC_MODULE = "github.com/opencontainers/runc"


def staging_version(kubernetes_version: str = KUBERNETES_VERSION) -> str:
    """Return the staging module version (``k8s.io/api`` etc.) paired with a Kubernetes release."""
    _, minor, patch = kubernetes_version.removeprefix("v").split(".")
    return f"v0.{minor}.{patch}"


def cache_key() -> str:
    """Return the cache folder name that identifies this set of binaries."""
    return f"k8s-{KUBERNETES_VERSION}-etcd-{ETCD_VERSION}"


def node_cache_key() -> str:
    """Return the cache folder name of the node's binaries (kubelet, containerd, runc, ...)."""
    return f"node-k8s-{KUBERNETES_VERSION}-containerd-{CONTAINERD_VERSION}-runc-{RUNC_VERSION}"
