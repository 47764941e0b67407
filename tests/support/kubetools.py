"""kubectl, as a user would call it, for the end-to-end tests."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import yaml
from airflowtask.controlplane import Kubectl as Cluster

AFT = "airflowtasks.airflowtask.dev"


class Kubectl:
    """kubectl against one cluster, with the reads and waits the tests repeat."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def __call__(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run kubectl; raise KubectlError (with kubectl's stderr) on failure if ``check``."""
        return self.cluster.kubectl(*args, check=check, input=input)

    def apply(self, *manifests: Mapping[str, Any], check: bool = True) -> subprocess.CompletedProcess[str]:
        return self("apply", "-f", "-", input=yaml.safe_dump_all(list(manifests)), check=check)

    @contextlib.contextmanager
    def watching(self, *args: str) -> Iterator[list[str]]:
        """Run ``kubectl <args>`` (a ``--watch``) while the block runs; the list holds its output lines after it."""
        lines: list[str] = []
        command = self.cluster.command(*args)
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as watch:
            try:
                yield lines
            finally:
                watch.terminate()
                lines.extend(watch.communicate(timeout=30)[0].splitlines())

    def get_json(self, resource: str, name: str, namespace: str) -> dict[str, Any]:
        return json.loads(self("get", resource, name, "-n", namespace, "-o", "json").stdout)

    def exists(self, resource: str, name: str, namespace: str) -> bool:
        return self("get", resource, name, "-n", namespace, "--ignore-not-found", "-o", "name").stdout.strip() != ""

    def wait_task(
        self,
        name: str,
        namespace: str,
        until: Callable[[dict[str, Any]], bool],
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """Poll the AirflowTask until ``until(obj)`` holds; fail with its last status otherwise."""
        deadline, obj = time.monotonic() + timeout, {}
        while time.monotonic() < deadline:
            obj = self.get_json(AFT, name, namespace)
            if until(obj):
                return obj
            time.sleep(0.3)
        raise AssertionError(f"{namespace}/{name} did not get there in {timeout}s; status: {obj.get('status')}")

    def wait_phase(self, name: str, namespace: str, phase: str, timeout: float = 60.0) -> dict[str, Any]:
        return self.wait_task(name, namespace, lambda obj: obj.get("status", {}).get("phase") == phase, timeout)

    def wait_gone(self, resource: str, name: str, namespace: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.exists(resource, name, namespace):
                return
            time.sleep(0.3)
        raise AssertionError(f"{resource} {namespace}/{name} still exists after {timeout}s")

    def events(self, name: str, namespace: str) -> list[tuple[str, str, str]]:
        """(type, reason, message) of the events about one AirflowTask, oldest first."""
        raw = self("get", "events", "-n", namespace, "-o", "json",
                   "--field-selector", f"involvedObject.name={name},involvedObject.kind=AirflowTask").stdout
        items = sorted(json.loads(raw)["items"], key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        return [(e["type"], e["reason"], e.get("message", "")) for e in items]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> float:
    """Seconds until ``predicate()`` held; AssertionError naming ``what`` after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(interval)
    return time.monotonic() - started


def airflow_task(
    name: str,
    namespace: str,
    module: str,
    cls: str,
    parameters: Mapping[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """An AirflowTask manifest."""
    return {
        "apiVersion": "airflowtask.dev/v1alpha1",
        "kind": "AirflowTask",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"operator": {"module": module, "name": cls, "parameters": dict(parameters or {})}, **spec},
    }


def role(name: str, namespace: str, *rules: dict[str, Any]) -> dict[str, Any]:
    """A Role of ``namespace`` with ``rules``."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": namespace}, "rules": list(rules)}


def use_service_account_rule(*service_accounts: str) -> dict[str, Any]:
    """``use`` on ``serviceaccounts.airflowtask.dev`` (what admission asks to run as them or mount their token)."""
    return {"apiGroups": ["airflowtask.dev"], "resources": ["serviceaccounts"],
            "resourceNames": list(service_accounts), "verbs": ["use"]}


def use_service_account_role(name: str, namespace: str, *service_accounts: str) -> dict[str, Any]:
    """A Role granting ``use`` on the named ServiceAccounts."""
    return role(name, namespace, use_service_account_rule(*service_accounts))


def secret_reader_role(name: str, namespace: str, *secrets: str) -> dict[str, Any]:
    """A Role granting ``get`` on the named Secrets."""
    return role(name, namespace,
                {"apiGroups": [""], "resources": ["secrets"], "resourceNames": list(secrets), "verbs": ["get"]})
