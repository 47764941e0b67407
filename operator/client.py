"""A small Python client: submit an Airflow operator as an AirflowTask and wait for its result.

    client = AirflowTaskClient("data")
    result = client.run(BashOperator(task_id="hello", bash_command="echo hello"), timeout=300)

Tasks are an Airflow operator instance (see :func:`airflowtask.manifest.task_from_operator` for what is
captured, and its limits) or an :class:`AirflowObj`. ``**spec`` are the keyword options of
:func:`airflowtask.manifest.build_task` (connections, poll_interval_seconds, active_deadline_seconds, ...).
Kubernetes API errors propagate as ``kubernetes.client.ApiException``.
"""

from __future__ import annotations

import re
import time
from typing import Any

import kubernetes
from airflowtask.connector_core.spec import AirflowObj
from airflowtask.kube import load_client_config
from airflowtask.manifest import build_task, task_from_operator
from airflowtask.settings import GROUP, PLURAL, VERSION
from kubernetes.client.exceptions import ApiException


class AirflowTaskFailed(Exception):
    """The AirflowTask ended Failed (or disappeared while waited for)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class AirflowTaskClient:
    """AirflowTasks in one namespace; ``api_client`` defaults to in-cluster config, else the kubeconfig."""

    def __init__(self, namespace: str, api_client: kubernetes.client.ApiClient | None = None) -> None:
        self.namespace = namespace
        self._api = kubernetes.client.CustomObjectsApi(api_client or load_client_config())

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create an AirflowTask from a manifest (see build_task); returns the stored object."""
        return self._api.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, manifest)

    def get(self, name: str) -> dict[str, Any] | None:
        """The AirflowTask, or None when it does not exist."""
        try:
            return self._api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def submit(self, task: Any, name: str | None = None, **spec: Any) -> str:
        """Create an AirflowTask for an operator instance or AirflowObj; returns its name.

        Without ``name`` the server picks one from the task id (``<task-id>-<5 random characters>``).
        """
        obj = task if isinstance(task, AirflowObj) else task_from_operator(task)
        naming = {"name": name} if name else {"generate_name": _generate_name(obj)}
        return self.create(build_task(obj, namespace=self.namespace, **naming, **spec))["metadata"]["name"]

    def wait(self, name: str, timeout: float, poll_interval: float = 1.0) -> Any:
        """Poll until the task finishes: its ``status.result`` when Succeeded.

        Raises AirflowTaskFailed(reason, message) when it Failed or was deleted, TimeoutError after ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while True:
            obj = self.get(name)
            if obj is None:
                raise AirflowTaskFailed("NotFound", f"AirflowTask {self.namespace}/{name} no longer exists")
            status = obj.get("status") or {}
            if status.get("phase") == "Succeeded":
                return status.get("result")
            if status.get("phase") == "Failed":
                raise AirflowTaskFailed(status.get("reason") or "Failed", status.get("message") or "")
            if time.monotonic() >= deadline:
                state = f"{status.get('phase') or 'not started'} ({status.get('reason') or 'no reason yet'})"
                raise TimeoutError(f"AirflowTask {self.namespace}/{name} still {state} after {timeout}s")
            time.sleep(min(poll_interval, max(deadline - time.monotonic(), 0.0)))

    def run(self, task: Any, timeout: float, name: str | None = None, **spec: Any) -> Any:
        """submit() then wait(); on timeout the task is cancelled (like ``subprocess.run``) and TimeoutError raised."""
        submitted = self.submit(task, name=name, **spec)
        try:
            return self.wait(submitted, timeout)
        except TimeoutError:
            self.cancel(submitted)
            raise

    def cancel(self, name: str, uid: str | None = None) -> bool:
        """Delete the AirflowTask (the operator cancels its external job); False when it was already gone.

        With ``uid``, only that object is deleted, not a newer one with the same name.
        """
        preconditions = kubernetes.client.V1Preconditions(uid=uid)
        options = {"body": kubernetes.client.V1DeleteOptions(preconditions=preconditions)} if uid else {}
        try:
            self._api.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name, **options)
        except ApiException as error:
            if error.status == 404 or (error.status == 409 and uid):
                return False
            raise
        return True


def _generate_name(obj: AirflowObj) -> str:
    """A generateName prefix from the task id (or class name): lowercase DNS-1123, at most 57 characters."""
    base = str(obj.parameters.get("task_id") or obj.name).lower()
    return (re.sub(r"[^a-z0-9]+", "-", base)[:56].strip("-") or "task") + "-"
