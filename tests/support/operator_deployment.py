"""The real operator as users run it: the Deployment of ``manifests/`` (probes, ServiceAccount, RBAC,
securityContext exactly as shipped), with the image set to the test image and a few settings added.
The Flyte connector of ``manifests/flyte-connector/`` is run the same way."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflowtask.controlplane import Kubectl as Cluster
from airflowtask.controlplane.teardown import container_processes
from airflowtask.install import DEPLOYMENT, MANIFESTS, NAMESPACE, install, write_overlay


class OperatorDeployment:
    """Deploy, kill, restart and read a Deployment of the shipped manifests running in the cluster."""

    def __init__(self, cluster: Cluster, image: str, workdir: Path, env: Mapping[str, str],
                 signing_key: str | None = None, base: Path = MANIFESTS, name: str = DEPLOYMENT,
                 component: str = "operator") -> None:
        self.cluster = cluster
        self.image = image
        self.workdir = workdir
        self.env = dict(env)
        self.signing_key = signing_key
        self.base = base
        self.name = name
        self.selector = f"app.kubernetes.io/name={name},app.kubernetes.io/component={component}"
        self._restarts = 0
        self._pod: dict[str, Any] = {}

    def kubectl(self, *args: str, check: bool = True) -> Any:
        return self.cluster.kubectl(*args, check=check)

    def deploy(self) -> None:
        """``kubectl apply -k`` an overlay of manifests/ and wait until the Deployment is Available."""
        self.kubectl("apply", "-f", str(MANIFESTS / "namespace.yaml"))
        if self.signing_key:  # as manifests/deployment.yaml says how to make it
            self.kubectl("create", "secret", "generic", "airflowtask-signing-key", "-n", NAMESPACE,
                         f"--from-literal=key={self.signing_key}", check=False)
        overlay = write_overlay(self.workdir / f"{self.name}-overlay", self.image, self.env, self.base, self.name)
        install(self.kubectl, overlay, self.name)
        self.start()

    def start(self, timeout: float = 180.0) -> None:
        """Make sure one operator Pod runs and is Ready (after a kill, the kubelet or the Deployment restarts it)."""
        self.kubectl("scale", f"deployment/{self.name}", "-n", NAMESPACE, "--replicas=1")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pod = self._ready_pod()
            if pod is not None:
                self._pod = pod
                self._restarts = _restarts(pod)
                return
            time.sleep(0.5)
        raise RuntimeError(f"the operator did not become Ready in {timeout}s:\n{self.describe()}")

    def kill(self) -> None:
        """SIGKILL the operator's processes, as an OOM kill would; its container is restarted by the kubelet."""
        pod = self._current_pod()
        pids = self._container_pids(pod)
        if pids:
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
        else:  # not our local node: the closest a client can do
            self.kubectl("delete", "pod", pod["metadata"]["name"], "-n", NAMESPACE, "--grace-period=0", "--force")
        self._pod = {}

    def delete_pod(self) -> str:
        """Delete the operator's Pod as `kubectl delete pod` does (graceful); return its name."""
        name = self._current_pod()["metadata"]["name"]
        self.kubectl("delete", "pod", name, "-n", NAMESPACE, "--wait=false")
        self._pod = {}
        return name

    def stop(self) -> None:
        self.kubectl("scale", f"deployment/{self.name}", "-n", NAMESPACE, "--replicas=0", check=False)

    @property
    def running(self) -> bool:
        """True while the Pod seen at the last start() is Ready and its container has not restarted since."""
        pod = self._ready_pod()
        return (pod is not None and bool(self._pod)
                and pod["metadata"]["uid"] == self._pod["metadata"]["uid"] and _restarts(pod) == self._restarts)

    def logs(self) -> str:
        """``kubectl logs`` of the current container."""
        result = self.kubectl("logs", "-n", NAMESPACE, f"deployment/{self.name}", "--tail=-1", check=False)
        return result.stdout

    def url(self, port: int) -> str:
        """``IP:port`` of the current Pod (this machine reaches Pod IPs)."""
        return f"{self._current_pod()['status']['podIP']}:{port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.url(9100)}/metrics"

    def pod(self) -> dict[str, Any]:
        return self._current_pod()

    def exec_python(self, code: str) -> str:
        """Run Python code in the current Pod's container (``kubectl exec``); return its output."""
        name = self._current_pod()["metadata"]["name"]
        return self.kubectl("exec", "-n", NAMESPACE, name, "--", "python", "-c", code).stdout

    def describe(self) -> str:
        return self.kubectl("describe", "pods", "-n", NAMESPACE, "-l", self.selector, check=False).stdout[-6000:]

    def _pods(self) -> list[dict[str, Any]]:
        raw = self.kubectl("get", "pods", "-n", NAMESPACE, "-l", self.selector, "-o", "json").stdout
        return [pod for pod in json.loads(raw)["items"] if not pod["metadata"].get("deletionTimestamp")]

    def _ready_pod(self) -> dict[str, Any] | None:
        for pod in self._pods():
            conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
            if conditions.get("Ready") == "True":
                return pod
        return None

    def _current_pod(self) -> dict[str, Any]:
        pods = self._pods()
        if not pods:
            raise RuntimeError(f"no operator Pod in {NAMESPACE}")
        return pods[0]

    def _container_pids(self, pod: dict[str, Any]) -> list[int]:
        layout = getattr(self.cluster, "layout", None)
        statuses = pod.get("status", {}).get("containerStatuses", [])
        if layout is None or not statuses or "containerID" not in statuses[0]:
            return []
        container_id = statuses[0]["containerID"].split("://", 1)[-1]
        return container_processes(layout, pod["metadata"]["uid"], container_id)


def _restarts(pod: dict[str, Any]) -> int:
    return sum(s.get("restartCount", 0) for s in pod.get("status", {}).get("containerStatuses", []))
