"""The cluster is real: API server ready, controllers running, RBAC enforced."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from airflowtask.controlplane import Kubectl


def _eventually(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        time.sleep(0.3)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_api_server_is_ready(cluster: Kubectl) -> None:
    assert cluster.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"


def test_deleted_namespace_and_its_content_disappear(cluster: Kubectl) -> None:
    namespace = _name("cp-ns")
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("create", "configmap", "content", "-n", namespace, "--from-literal=k=v")
    cluster.kubectl("delete", "namespace", namespace, "--wait=false")

    def gone() -> bool:
        result = cluster.kubectl("get", "namespace", namespace, check=False)
        return result.returncode != 0 and "NotFound" in result.stderr

    _eventually(gone, f"namespace {namespace} being finalized by the namespace controller")


def test_dependents_are_garbage_collected(cluster: Kubectl) -> None:
    namespace = _name("cp-gc")
    cluster.kubectl("create", "namespace", namespace)
    try:
        cluster.kubectl("create", "configmap", "owner", "-n", namespace)
        uid = cluster.kubectl("get", "cm/owner", "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout
        owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}
        dependent = {"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "dependent", "ownerReferences": [owner]}}
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(dependent))
        cluster.kubectl("delete", "configmap", "owner", "-n", namespace)
        _eventually(
            lambda: cluster.kubectl("get", "cm/dependent", "-n", namespace, check=False).returncode != 0,
            "garbage collection of the dependent ConfigMap",
        )
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false")


def test_service_account_without_rbac_is_forbidden(cluster: Kubectl, tmp_path: Path) -> None:
    namespace = _name("cp-rbac")
    cluster.kubectl("create", "namespace", namespace)
    try:
        cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
        token = cluster.mint_token(namespace, "reader")
        kubeconfig = cluster.kubeconfig_for_token(token, tmp_path / "reader.kubeconfig")
        reader = Kubectl(kubeconfig, cluster.kubectl_path)

        denied = reader.kubectl("get", "secrets", "-n", namespace, check=False)
        assert denied.returncode != 0
        assert "Forbidden" in denied.stderr
        assert f"system:serviceaccount:{namespace}:reader" in denied.stderr

        cluster.kubectl("create", "role", "read-secrets", "-n", namespace, "--verb=list", "--resource=secret")
        cluster.kubectl(
            "create", "rolebinding", "reader", "-n", namespace, "--role=read-secrets",
            f"--serviceaccount={namespace}:reader",
        )
        _eventually(
            lambda: reader.kubectl("get", "secrets", "-n", namespace, check=False).returncode == 0,
            "the RoleBinding taking effect",
        )
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false")
