"""The cluster a benchmark runs on: the one of $KUBECONFIG, else a local control plane; CRD installed."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

from airflowtask.controlplane import Kubectl, LocalControlPlane

REPO = Path(__file__).resolve().parents[1]


def open_cluster(stack: ExitStack, workdir: Path) -> Kubectl:
    """A ready cluster with the AirflowTask CRD established; a local one is stopped by ``stack``."""
    if os.environ.get("KUBECONFIG"):
        cluster = Kubectl(Path(os.environ["KUBECONFIG"]))
    else:
        cluster = stack.enter_context(LocalControlPlane(workdir / "controlplane"))
    cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds" / "airflowtask.yaml"))
    cluster.kubectl("wait", "--for=condition=Established", "crd/airflowtasks.airflowtask.dev")
    return cluster
