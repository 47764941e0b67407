"""Fixtures shared by the end-to-end tests: a cluster, kubectl, the CRD, a namespace, the operator.

The operator runs as users run it: the Deployment of ``manifests/`` on the cluster's node, from the test image
(the project's image plus tests/support). ``AIRFLOWTASK_TEST_OPERATOR=process`` runs it as a local process
instead (as its ServiceAccount, bound to exactly manifests/rbac.yaml, running tasks in-process), for a quick
loop while developing.
On a cluster of ``$KUBECONFIG``, ``AIRFLOWTASK_TEST_IMAGE`` names the test image and
``AIRFLOWTASK_TEST_SERVICE_HOST`` an address of this machine that Pods reach (for the tests' local services).
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflowtask.controlplane import Kubectl as Cluster
from cluster import open_cluster
from kubetools import Kubectl
from operator_deployment import OperatorDeployment
from operator_process import OperatorProcess, free_port

REPO = Path(__file__).resolve().parents[2]
SUPPORT = REPO / "tests" / "support"
TEST_SIGNING_KEY = "e2e-signing-key-not-secret"
OPERATOR_NAMESPACE = "airflowtask-system"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The Kubernetes cluster of this test session (see tests/support/cluster.py).

    The tests' local services (HTTP, the job service) listen where the cluster's Pods reach them.
    """
    with open_cluster(tmp_path_factory.mktemp("controlplane")) as ready:
        address = getattr(ready, "address", None)
        if address and "AIRFLOWTASK_TEST_SERVICE_HOST" not in os.environ:
            os.environ["AIRFLOWTASK_TEST_SERVICE_HOST"] = address
        yield ready


@pytest.fixture(scope="session")
def kubectl(cluster: Cluster) -> Kubectl:
    return Kubectl(cluster)


@pytest.fixture(scope="session")
def crd(kubectl: Kubectl) -> None:
    """The AirflowTask CRD, installed from crds/ and established."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds" / "airflowtask.yaml"))
    kubectl("wait", "--for=condition=Established", "crd/airflowtasks.airflowtask.dev", "--timeout=60s")


@pytest.fixture
def namespace(kubectl: Kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting)."""
    name = f"t-{request.node.name[:40].lower().strip('_')}-{uuid.uuid4().hex[:6]}"
    name = "".join(c if c.isalnum() else "-" for c in name).strip("-")
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def _port_8080_free() -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", 8080)) != 0


def operator_env(kubeconfig: str, base: dict[str, str]) -> dict[str, str]:
    """The environment the operator runs with in the tests."""
    return base | {
        "KUBECONFIG": kubeconfig,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SUPPORT), base.get("PYTHONPATH", "")])),
        "AIRFLOWTASK_ALLOWED_MODULES": "airflow.providers.*,airflow.sensors.*,airflow.operators.*,"
        "airflow.hooks.*,airflow.triggers.*,localjob",
        "AIRFLOWTASK_SIGNING_KEY": TEST_SIGNING_KEY,
        "AIRFLOWTASK_RETRY_BACKOFF_SECONDS": "2",
        "AIRFLOWTASK_EXECUTION": "in-process",  # a local process has no image for task Pods
        "AIRFLOW_HOME": tempfile.mkdtemp(prefix="aft-airflow-home-"),
    }


def operator_kubeconfig(cluster: Cluster, workdir: Path) -> Path:
    """A kubeconfig for the operator's ServiceAccount, bound to exactly the RBAC in manifests/.

    ``AIRFLOWTASK_TEST_OPERATOR_IDENTITY=admin`` runs the operator as the cluster admin instead.
    """
    if os.environ.get("AIRFLOWTASK_TEST_OPERATOR_IDENTITY") == "admin":
        return cluster.kubeconfig
    for manifest in ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml"):
        cluster.kubectl("apply", "-n", OPERATOR_NAMESPACE, "-f", str(REPO / "manifests" / manifest))
    token = cluster.mint_token(OPERATOR_NAMESPACE, "airflowtask-operator", duration="6h")
    return cluster.kubeconfig_for_token(token, workdir / "operator.kubeconfig")


def operator_image(cluster: Cluster) -> str | None:
    """The image with the project and tests/support in it: built by the local cluster, or named by the user."""
    images = getattr(cluster, "images", None)
    return os.environ.get("AIRFLOWTASK_TEST_IMAGE") or (images.test if images else None)


# What the test operator adds to the shipped Deployment: the tests' own operator module and fast retries.
DEPLOYMENT_ENV = {
    "AIRFLOWTASK_ALLOWED_MODULES": "airflow.providers.*,airflow.sensors.*,airflow.operators.*,"
    "airflow.hooks.*,airflow.triggers.*,localjob,task_callables",
    "AIRFLOWTASK_RETRY_BACKOFF_SECONDS": "2",
    "AIRFLOWTASK_WARM_IDLE_SECONDS": "10",  # WarmPool: scale-to-zero within a test
}


@pytest.fixture(scope="session")
def operator_process(
    cluster: Cluster, crd: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorDeployment | OperatorProcess]:
    """The operator for the whole session: its Deployment (default), or a local process (see the docstring)."""
    workdir = tmp_path_factory.mktemp("operator")
    image = operator_image(cluster)
    if os.environ.get("AIRFLOWTASK_TEST_OPERATOR", "deployment") == "deployment":
        if image is None:
            raise RuntimeError("no test image: use the local cluster, set AIRFLOWTASK_TEST_IMAGE, "
                               "or AIRFLOWTASK_TEST_OPERATOR=process")
        deployment = OperatorDeployment(cluster, image, workdir, DEPLOYMENT_ENV, TEST_SIGNING_KEY)
        deployment.deploy()
        yield deployment
        deployment.stop()
        return
    env = operator_env(str(operator_kubeconfig(cluster, workdir)), cluster.env)
    env["AIRFLOWTASK_METRICS_PORT"] = str(free_port())
    process = OperatorProcess(env, workdir / "operator.log", port=8080 if _port_8080_free() else None)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def operator(operator_process: OperatorDeployment | OperatorProcess) -> Iterator[OperatorDeployment | OperatorProcess]:
    """The running operator; restarted if a test killed it. Its log is printed when a test fails."""
    if not operator_process.running:
        operator_process.start()
    offset = len(operator_process.logs())
    yield operator_process
    if not operator_process.running:
        operator_process.start()
    print(operator_process.logs()[offset:][-20000:])
