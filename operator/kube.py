"""Kubernetes API calls the operator makes itself: status patches, Secret reads, TTL deletes, task Pods.

kopf watches, runs timers and keeps finalizers; status is written here, in order, so that a
submission marker is on the server before an external job is started. Task Pods are created, read and
deleted here, and one watch (server-side label selector) reports every change to them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kubernetes
import kubernetes.watch
from airflowtask.outage import OUTAGE, describe, is_api_trouble
from airflowtask.settings import GROUP, PLURAL, VERSION
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)


class SecretError(Exception):
    """A Secret or key named in ``spec.connections`` cannot be read."""


class NotLeading(Exception):
    """A write refused because this replica does not (or no longer) hold the Lease."""


def load_client_config(pool_size: int | None = None) -> kubernetes.client.ApiClient:
    """An API client for the in-cluster service account, else the current kubeconfig.

    ``pool_size``: connections kept open for reuse (the client's default is 5 per CPU); give at least the number
    of threads that call at once, or connections beyond it are closed after each request and opened again.
    """
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    configuration = kubernetes.client.Configuration.get_default_copy()
    if pool_size is not None:
        configuration.connection_pool_maxsize = pool_size
    return kubernetes.client.ApiClient(configuration)


class Kube:
    """Async wrappers over the blocking Kubernetes client, run in a small thread pool.

    Every write first asks ``may_write`` (the Lease's fence), in the thread that sends it, and raises
    :class:`NotLeading` instead of sending when this replica may no longer act.
    """

    def __init__(self, api_client: kubernetes.client.ApiClient, workers: int,
                 may_write: Callable[[], bool] = lambda: True, timeout: float = 30.0) -> None:
        self._custom = kubernetes.client.CustomObjectsApi(api_client)
        self._core = kubernetes.client.CoreV1Api(api_client)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kube-api")
        self._may_write = may_write
        self._timeout = timeout

    def leading(self) -> bool:
        """True while this replica may act (holds the Lease)."""
        return self._may_write()

    async def _call(self, fn: Any, *args: Any, write: bool = False, plain: bool = False, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in the pool; a ``write`` first checks the fence (NotLeading). API trouble
        and recovery are reported to the outage record, under the kind of object asked for. ``plain``: the
        answer as parsed JSON, not as the client's models (building those costs about a millisecond a Pod)."""
        part = _outage_part(fn)
        kwargs.setdefault("_request_timeout", self._timeout)
        if plain:
            kwargs["_preload_content"] = False

        def call() -> Any:
            if write and not self._may_write():
                raise NotLeading("this replica does not hold the Lease")
            answer = fn(*args, **kwargs)
            return json.loads(answer.data) if plain else answer

        try:
            result = await asyncio.get_running_loop().run_in_executor(self._pool, call)
        except Exception as error:
            if part and is_api_trouble(error) and not service_account_missing(error):
                OUTAGE.failed(part, error)
            raise
        if part:
            OUTAGE.succeeded(part)
        return result

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> bool:
        """Merge-patch the status subresource; False when the object is already gone."""
        try:
            await self._call(
                self._custom.patch_namespaced_custom_object_status,
                GROUP, VERSION, namespace, PLURAL, name, {"status": patch}, write=True,
            )
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    async def delete_task(self, namespace: str, name: str) -> None:
        """Delete an AirflowTask; deleting one that is already gone is fine."""
        try:
            await self._call(self._custom.delete_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name,
                             write=True)
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

    async def ensure_secret_key(self, namespace: str, name: str, key: str, value: str) -> str:
        """The value of one key of a Secret; the Secret is created with ``value`` when it does not exist (a
        concurrent creator wins: its value is read back)."""
        try:
            return await self.read_secret_key(namespace, name, key)
        except SecretError:
            body = {"metadata": {"name": name, "namespace": namespace}, "type": "Opaque", "stringData": {key: value}}
            try:
                await self._call(self._core.create_namespaced_secret, namespace, body, write=True)
            except ApiException as error:
                if error.status != 409:
                    raise
            return await self.read_secret_key(namespace, name, key)

    async def own_image(self) -> str | None:
        """The image of this process's own Pod (POD_NAME, POD_NAMESPACE from the downward API), if in one."""
        name, namespace = os.environ.get("POD_NAME"), os.environ.get("POD_NAMESPACE")
        if not name or not namespace:
            return None
        pod = await self.read_pod(namespace, name)
        return pod["spec"]["containers"][0]["image"] if pod else None

    async def create_pod(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any] | None:
        """Create a Pod; None when one of that name exists already (the caller adopts it)."""
        try:
            return await self._call(self._core.create_namespaced_pod, namespace, manifest, write=True, plain=True)
        except ApiException as error:
            if error.status == 409:
                return None
            raise

    async def read_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Pod as the API returns it (plain JSON), or None when it is gone."""
        try:
            return await self._call(self._core.read_namespaced_pod, name, namespace, plain=True)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def delete_pod(self, namespace: str, name: str) -> None:
        """Delete a Pod gracefully (its container gets SIGTERM); a Pod already gone is fine."""
        try:
            await self._call(self._core.delete_namespaced_pod, name, namespace, write=True, plain=True)
        except ApiException as error:
            if error.status != 404:
                raise

    async def pod_log_tail(self, namespace: str, name: str, lines: int) -> list[str]:
        """The last ``lines`` lines of a Pod's log; empty when it cannot be read."""
        try:
            text = await self._call(self._core.read_namespaced_pod_log, name, namespace, tail_lines=lines)
        except ApiException:
            return []
        return str(text).splitlines()

    async def release_pod(self, namespace: str, name: str) -> None:
        """Drop a Pod's ownerReferences, so that deleting its owner leaves it running."""
        try:
            await self._call(self._core.patch_namespaced_pod, name, namespace,
                             {"metadata": {"ownerReferences": None}}, write=True)
        except ApiException as error:
            if error.status != 404:
                raise

    def watch_pods(self, selector: str, namespaces: Sequence[str], on_change: Callable[[str, dict[str, Any]], None],
                   on_listed: Callable[[], None] = lambda: None) -> threading.Event:
        """Watch the Pods matching ``selector`` (in ``namespaces``, or all) from daemon threads.

        ``on_change`` gets each event's type and Pod (plain JSON) in the watching thread; ``on_listed`` is called
        once per watched namespace, after ``on_change`` has had every Pod of its first listing. Set the returned
        event to stop.
        """
        stop = threading.Event()
        for namespace in namespaces or (None,):
            thread = threading.Thread(target=self._watch_pods, args=(selector, namespace, on_change, on_listed, stop),
                                      name=f"pod-watch-{namespace or 'all'}", daemon=True)
            thread.start()
        return stop

    def _watch_pods(self, selector: str, namespace: str | None, on_change: Callable[[str, dict[str, Any]], None],
                    on_listed: Callable[[], None], stop: threading.Event) -> None:
        """List, then watch from the list's version; list again after the watch ends or breaks."""
        lister = (self._core.list_pod_for_all_namespaces if namespace is None
                  else lambda **kw: self._core.list_namespaced_pod(namespace, **kw))
        part = f"the Pod watch ({namespace or 'all namespaces'})"
        listed_once = False
        while not stop.is_set():
            try:
                listed = json.loads(lister(label_selector=selector, _request_timeout=self._timeout,
                                           _preload_content=False).data)
                OUTAGE.succeeded(part)
                for pod in listed["items"]:
                    on_change("MODIFIED", pod)
                if not listed_once:
                    listed_once = True
                    on_listed()
                watch = kubernetes.watch.Watch()
                for event in watch.stream(lister, label_selector=selector, timeout_seconds=300, _request_timeout=330,
                                          resource_version=listed["metadata"]["resourceVersion"], deserialize=False):
                    on_change(event["type"], event["object"])
                    if stop.is_set():
                        watch.stop()
            except Exception as error:
                if is_api_trouble(error):
                    OUTAGE.failed(part, error)
                else:  # e.g. 410 Gone: the version expired, list again
                    log.debug("%s restarts: %s", part, describe(error))
                time.sleep(0.5)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def service_account_missing(error: BaseException) -> bool:
    """A Pod refused (403) because its ServiceAccount does not exist (yet: a new namespace gets ``default`` a
    moment after it is made). Retried like API trouble for a short grace, but it is no outage of the API."""
    return isinstance(error, ApiException) and "error looking up service account" in str(error.body or "")


def _outage_part(fn: Any) -> str | None:
    """The outage part an API call reports under: AirflowTask or Pod requests; None for Secrets (a refused
    Secret is the task's MissingSecret, not an outage)."""
    name = getattr(fn, "__name__", "")
    if "custom_object" in name:
        return "AirflowTask requests"
    return "Pod requests" if "pod" in name else None
