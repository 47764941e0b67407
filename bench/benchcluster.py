"""The cluster a benchmark runs on: the one of $KUBECONFIG, else a local control plane; CRD and the operator's
namespace (its Lease lives there) installed."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

from airflowtask.controlplane import Kubectl, LocalControlPlane

REPO = Path(__file__).resolve().parents[1]


def open_cluster(stack: ExitStack, workdir: Path, with_node: bool = True) -> Kubectl:
    """A ready cluster with the AirflowTask CRD established; a local one is stopped by ``stack``.

    ``with_node=False`` starts the control plane alone (no root, no machine lock, a faster start): enough for
    benchmarks that run task work in the operator process.
    """
    if os.environ.get("KUBECONFIG"):
        cluster = Kubectl(Path(os.environ["KUBECONFIG"]))
    else:
        cluster = stack.enter_context(LocalControlPlane(workdir / "controlplane", with_node=with_node))
    cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds" / "airflowtask.yaml"),
                    "-f", str(REPO / "manifests" / "namespace.yaml"))
    cluster.kubectl("wait", "--for=condition=Established", "crd/airflowtasks.airflowtask.dev")
    return cluster
