"""The cluster the e2e tests run against: a fresh LocalControlPlane, or the one named by $KUBECONFIG.

``AIRFLOWTASK_TEST_CLUSTER=kubeconfig`` selects the cluster of ``$KUBECONFIG`` (e.g. a kind cluster made by
``hack/kind/up.sh``) with ``kubectl`` from PATH; unset or ``local`` starts a LocalControlPlane with its node,
building its binaries and images first if they are not cached, and checks on exit that it left nothing behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from airflowtask.controlplane import Kubectl, LocalControlPlane
from airflowtask.controlplane.teardown import leftovers

MODE_VARIABLE = "AIRFLOWTASK_TEST_CLUSTER"


@contextmanager
def open_cluster(workdir: Path) -> Iterator[Kubectl]:
    """Yield a ready cluster; a local one keeps its data, keys and logs in ``workdir``."""
    mode = os.environ.get(MODE_VARIABLE, "local")
    if mode == "local":
        with LocalControlPlane(workdir) as plane:
            yield plane
        if found := leftovers(plane.layout):  # stopping the node removes all it made
            raise RuntimeError(f"the local node left things behind: {found}")
    elif mode == "kubeconfig":
        yield _existing_cluster()
    else:
        raise RuntimeError(f"{MODE_VARIABLE}={mode!r}: expected 'local' or 'kubeconfig'")


def _existing_cluster() -> Kubectl:
    kubeconfig = os.environ.get("KUBECONFIG", "")
    if not kubeconfig or os.pathsep in kubeconfig:
        raise RuntimeError(f"{MODE_VARIABLE}=kubeconfig needs KUBECONFIG naming one file, got {kubeconfig!r}")
    cluster = Kubectl(Path(kubeconfig))
    ready = cluster.kubectl("get", "--raw", "/readyz", check=False)
    if ready.returncode != 0:
        raise RuntimeError(f"the cluster of KUBECONFIG={kubeconfig} is not ready: {ready.stderr.strip()}")
    return cluster
