"""The threat model of every security test: a tenant whose only right is AirflowTasks in its namespace."""

from __future__ import annotations

from pathlib import Path

from airflowtask.controlplane import Kubectl as Cluster
from kubetools import Kubectl

TENANT = "tenant"  # the tenant's ServiceAccount in its namespace


def as_tenant(cluster: Cluster, kubectl: Kubectl, namespace: str, workdir: Path, *extra: str) -> Kubectl:
    """kubectl as a tenant who may manage AirflowTasks in ``namespace`` (plus the ``extra`` resources) and nothing else.

    The tenant is the ServiceAccount ``tenant`` of the namespace, authenticated by a token of its own.
    """
    kubectl("create", "serviceaccount", TENANT, "-n", namespace)
    kubectl("create", "role", TENANT, "-n", namespace, "--verb=create,get,list,watch,delete,patch",
            f"--resource={','.join(['airflowtasks.airflowtask.dev', *extra])}")
    grant(kubectl, namespace, TENANT)
    token = cluster.mint_token(namespace, TENANT)
    return Kubectl(Cluster(cluster.kubeconfig_for_token(token, workdir / "tenant.kubeconfig"), cluster.kubectl_path))


def grant(kubectl: Kubectl, namespace: str, role: str) -> None:
    """Bind the Role ``role`` of ``namespace`` to the tenant."""
    kubectl("create", "rolebinding", role, "-n", namespace, f"--role={role}",
            f"--serviceaccount={namespace}:{TENANT}")
