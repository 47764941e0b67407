"""Install the operator on a cluster from the shipped kustomize base (``manifests/``), with an image override.

Used by ``airflowtask-operator dev`` and by the end-to-end tests: both deploy exactly what a user applies with
``kubectl apply -k manifests/``, through an overlay that only sets the image and, optionally, adds environment
variables to the operator's container.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from subprocess import CompletedProcess

REPO = Path(__file__).resolve().parent.parent
MANIFESTS = REPO / "manifests"
NAMESPACE = "airflowtask-system"
DEPLOYMENT = "airflowtask-operator"
SHIPPED_IMAGE = "airflowtask-operator"  # the image name manifests/deployment.yaml refers to

Kubectl = Callable[..., CompletedProcess[str]]


def write_overlay(folder: Path, image: str | None, env: Mapping[str, str] | None = None,
                  base: Path = MANIFESTS, deployment: str = DEPLOYMENT) -> Path:
    """Write a kustomization over ``base`` that sets the image and adds ``env`` to ``deployment``'s container."""
    folder.mkdir(parents=True, exist_ok=True)
    kustomization: dict[str, object] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(base, folder)],
    }
    if image:
        name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
        kustomization["images"] = [{"name": SHIPPED_IMAGE, "newName": name, **({"newTag": tag} if tag else {})}]
    if env:
        ops = [{"op": "add", "path": "/spec/template/spec/containers/0/env/-", "value": {"name": k, "value": v}}
               for k, v in env.items()]
        kustomization["patches"] = [{"target": {"kind": "Deployment", "name": deployment},
                                     "patch": json.dumps(ops)}]
    (folder / "kustomization.yaml").write_text(json.dumps(kustomization, indent=2) + "\n")
    return folder


def install(kubectl: Kubectl, overlay: Path, deployment: str = DEPLOYMENT, timeout: str = "300s") -> None:
    """Apply the overlay (the CRD first) and wait until ``deployment`` is Available."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds" / "airflowtask.yaml"))
    kubectl("wait", "--for=condition=Established", "crd/airflowtasks.airflowtask.dev", "--timeout=60s")
    kubectl("apply", "-k", str(overlay))
    wait_available(kubectl, deployment, timeout)


def wait_available(kubectl: Kubectl, deployment: str = DEPLOYMENT, timeout: str = "300s") -> None:
    """Wait until a Deployment in the operator's namespace has rolled out and is Available."""
    kubectl("rollout", "status", f"deployment/{deployment}", "-n", NAMESPACE, f"--timeout={timeout}")
    kubectl("wait", "--for=condition=Available", f"deployment/{deployment}", "-n", NAMESPACE, f"--timeout={timeout}")
