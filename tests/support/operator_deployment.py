"""The real operator as users run it: the Deployment of ``manifests/`` (two replicas electing a leader on a Lease,
probes, ServiceAccount, RBAC, securityContext exactly as shipped), with the image set to the test image and a few
settings added. The Flyte connector of ``manifests/flyte-connector/`` is run the same way (one replica, no Lease).

"The operator" below is the replica that leads (holds the Lease); the others stand by."""

from __future__ import annotations

import contextlib
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

LEASE = "airflowtask-operator"  # manifests/rbac.yaml, airflowtask.settings


class OperatorDeployment:
    """Deploy, kill, restart and read a Deployment of the shipped manifests running in the cluster."""

    def __init__(self, cluster: Cluster, image: str, workdir: Path, env: Mapping[str, str],
                 signing_key: str | None = None, base: Path = MANIFESTS, name: str = DEPLOYMENT,
                 component: str = "operator", lease: str | None = LEASE) -> None:
        self.cluster = cluster
        self.image = image
        self.workdir = workdir
        self.env = dict(env)
        self.signing_key = signing_key
        self.base = base
        self.name = name
        self.lease = lease
        self.selector = f"app.kubernetes.io/name={name},app.kubernetes.io/component={component}"
        self.replicas = 1
        self._leader: dict[str, Any] = {}

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
        deployment = json.loads(self.kubectl("get", f"deployment/{self.name}", "-n", NAMESPACE, "-o", "json").stdout)
        self.replicas = deployment["spec"]["replicas"]  # as shipped
        self.start()

    def start(self, timeout: float = 180.0) -> None:
        """Make sure every replica runs and is Ready and one of them leads (after a kill, the kubelet restarts it)."""
        self.kubectl("scale", f"deployment/{self.name}", "-n", NAMESPACE, f"--replicas={self.replicas}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = self._ready_pods()
            leader = self._leader_among(ready)
            if len(ready) == self.replicas and leader is not None:
                self._leader = leader
                return
            time.sleep(0.5)
        raise RuntimeError(f"the operator did not become Ready in {timeout}s:\n{self.describe()}")

    def kill(self) -> None:
        """SIGKILL the leader's processes, as an OOM kill would; its container is restarted by the kubelet."""
        pod = self.pod()
        pids = self._container_pids(pod)
        if pids:
            # All stopped first, then all killed (as runc freezes a container before killing it): no process of the
            # container can react to another one's death, e.g. fail a task whose command was killed first.
            for sig in (signal.SIGSTOP, signal.SIGKILL):
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
        else:  # not our local node: the closest a client can do
            self.kubectl("delete", "pod", pod["metadata"]["name"], "-n", NAMESPACE, "--grace-period=0", "--force")
        self._leader = {}

    def delete_pod(self) -> str:
        """Delete the leader's Pod as `kubectl delete pod` does (graceful); return its name."""
        name = self.pod()["metadata"]["name"]
        self.kubectl("delete", "pod", name, "-n", NAMESPACE, "--wait=false")
        self._leader = {}
        return name

    def stop(self) -> None:
        self.kubectl("scale", f"deployment/{self.name}", "-n", NAMESPACE, "--replicas=0", check=False)

    @property
    def running(self) -> bool:
        """True while the leader seen at the last start() still leads, is Ready and has not restarted since."""
        pod = self._leader_among(self._ready_pods())
        return (pod is not None and bool(self._leader) and pod["metadata"]["uid"] == self._leader["metadata"]["uid"]
                and _restarts(pod) == _restarts(self._leader))

    def holder(self) -> str:
        """The Lease's holder identity (``<pod>_<process>``), or "" when nobody holds it."""
        if self.lease is None:
            return ""
        result = self.kubectl("get", "lease", self.lease, "-n", NAMESPACE, "-o", "jsonpath={.spec.holderIdentity}",
                              check=False)
        return result.stdout.strip() if result.returncode == 0 else ""

    def logs(self) -> str:
        """``kubectl logs`` of the leader's current container."""
        result = self.kubectl("logs", "-n", NAMESPACE, self.pod()["metadata"]["name"], "--tail=-1", check=False)
        return result.stdout

    def url(self, port: int) -> str:
        """``IP:port`` of the leader's Pod (this machine reaches Pod IPs)."""
        return f"{self.pod()['status']['podIP']}:{port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.url(9100)}/metrics"

    def pod(self) -> dict[str, Any]:
        """The leader's Pod (with one replica and no Lease: the one Pod)."""
        pods = self._pods()
        leader = self._leader_among(pods)
        if leader is None:
            raise RuntimeError(f"no operator Pod in {NAMESPACE} leads (Lease holder {self.holder()!r})")
        return leader

    def pods(self) -> list[dict[str, Any]]:
        """Every replica's Pod that is not being deleted."""
        return self._pods()

    def exec_python(self, code: str, container: str = "operator") -> str:
        """Run Python code in a container of the leader's Pod (``kubectl exec``); return its output."""
        name = self.pod()["metadata"]["name"]
        return self.kubectl("exec", "-n", NAMESPACE, name, "-c", container, "--", "python", "-c", code).stdout

    def kill_triggerer(self) -> None:
        """SIGKILL the leader's triggerer container (the kubelet restarts it)."""
        pids = self._container_pids(self.pod(), "triggerer")
        if not pids:
            raise RuntimeError("the triggerer container's processes cannot be found on this node")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)

    def container_restarts(self, container: str) -> int:
        statuses = self.pod().get("status", {}).get("containerStatuses", [])
        return next((s.get("restartCount", 0) for s in statuses if s["name"] == container), 0)

    def describe(self) -> str:
        return self.kubectl("describe", "pods", "-n", NAMESPACE, "-l", self.selector, check=False).stdout[-6000:]

    def _pods(self) -> list[dict[str, Any]]:
        raw = self.kubectl("get", "pods", "-n", NAMESPACE, "-l", self.selector, "-o", "json").stdout
        return [pod for pod in json.loads(raw)["items"] if not pod["metadata"].get("deletionTimestamp")]

    def _ready_pods(self) -> list[dict[str, Any]]:
        return [pod for pod in self._pods()
                if {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}.get("Ready") == "True"]

    def _leader_among(self, pods: list[dict[str, Any]]) -> dict[str, Any] | None:
        if self.lease is None:
            return pods[0] if pods else None
        name = self.holder().rpartition("_")[0]
        return next((pod for pod in pods if pod["metadata"]["name"] == name), None)

    def _container_pids(self, pod: dict[str, Any], container: str = "operator") -> list[int]:
        layout = getattr(self.cluster, "layout", None)
        statuses = pod.get("status", {}).get("containerStatuses", [])
        status = next((s for s in statuses if s["name"] == container), statuses[0] if statuses else {})
        if layout is None or "containerID" not in status:
            return []
        container_id = status["containerID"].split("://", 1)[-1]
        return container_processes(layout, pod["metadata"]["uid"], container_id)


def _restarts(pod: dict[str, Any]) -> int:
    """Restarts of the controller container (the triggerer's own restarts are not the operator's)."""
    statuses = pod.get("status", {}).get("containerStatuses", [])
    return sum(s.get("restartCount", 0) for s in statuses if s["name"] in ("operator", "connector"))
