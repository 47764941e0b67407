"""Kubernetes API calls the operator makes itself: status patches, Secret reads, TTL deletes.

kopf watches, runs timers and keeps finalizers; status is written here, in order, so that a
submission marker is on the server before an external job is started.
"""

from __future__ import annotations

import asyncio
import base64
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kubernetes
from airflowtask.settings import GROUP, PLURAL, VERSION
from kubernetes.client.exceptions import ApiException


class SecretError(Exception):
    """A Secret or key named in ``spec.connections`` cannot be read."""


def load_client_config() -> kubernetes.client.ApiClient:
    """An API client for the in-cluster service account, else the current kubeconfig."""
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    return kubernetes.client.ApiClient()


class Kube:
    """Async wrappers over the blocking Kubernetes client, run in a small thread pool."""

    def __init__(self, api_client: kubernetes.client.ApiClient, workers: int) -> None:
        self._custom = kubernetes.client.CustomObjectsApi(api_client)
        self._core = kubernetes.client.CoreV1Api(api_client)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kube-api")

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> bool:
        """Merge-patch the status subresource; False when the object is already gone."""
        try:
            await self._call(
                self._custom.patch_namespaced_custom_object_status,
                GROUP, VERSION, namespace, PLURAL, name, {"status": patch},
            )
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    async def delete_task(self, namespace: str, name: str) -> None:
        """Delete an AirflowTask; deleting one that is already gone is fine."""
        try:
            await self._call(self._custom.delete_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as error:
            if error.status != 404:
                raise

    async def read_secret_key(self, namespace: str, name: str, key: str) -> str:
        """The decoded value of one key of a Secret, or SecretError naming what is missing."""
        try:
            secret = await self._call(self._core.read_namespaced_secret, name, namespace)
        except ApiException as error:
            if error.status == 404:
                raise SecretError(f"Secret {namespace}/{name} not found") from None
            if error.status == 403:
                raise SecretError(f"the operator may not read Secret {namespace}/{name}") from None
            raise
        data = secret.data or {}
        if key not in data:
            raise SecretError(f"Secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(data[key]).decode()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
