"""WarmPool (``spec.execution: WarmPool``): worker Pods per identity, and handing steps to them.

A pool is named after everything the kubelet would hand the task's own Pod (namespace, ServiceAccount, image,
podTemplate, the Secrets of ``spec.connections``): two tasks share a worker only when each could be given all the
other is (DESIGN.md). Its workers are the task's own Pod (:func:`airflowtask.pods.build_pod`: same hardening, same
Pod Security check) running ``python -m airflowtask.warm_worker``, labelled with the pool, owned by no task (a
worker outlives the task that made it) and made by the operator when steps wait: at most
``Settings.warm.max_workers`` per pool. A worker idle for ``Settings.warm.idle_seconds`` is retired and its Pod
deleted, so an unused pool has no Pod.

Steps are handed over :mod:`airflowtask.channel`, under a key derived from the operator's signing key for the pool
(every replica derives the same one; the worker's Pod holds only its hash). A step is named
``<task uid>/<attempt>/<step>``: handing it again after a restart finds it instead of running it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from airflowtask import channel
from airflowtask.kube import Kube
from airflowtask.pod_security import check_pod
from airflowtask.pods import (
    INVALID_OUTCOME,
    LABEL_ATTEMPT,
    LABEL_STEP,
    LABEL_TASK_NAME,
    LABEL_TASK_UID,
    PodOutcome,
    build_pod,
    pod_outcome,
)
from airflowtask.reports import InvalidReport, parse_outcome
from airflowtask.resource import AirflowTaskResource
from airflowtask.settings import Settings
from airflowtask.signing import RecordSigner

log = logging.getLogger(__name__)

LABEL_POOL = "airflowtask.dev/pool"
WORKER_STEP = "warm"
"""The ``airflowtask.dev/step`` label of worker Pods."""
_CALL_SECONDS = 10.0
_SCALE_SECONDS = 5.0
_MAX_WAIT_SECONDS = 30.0
_CREATE_GRACE_SECONDS = 60.0
"""A worker Pod asked for and not ready after this long (and not failing visibly) is asked for again."""


class WorkerRefused(Exception):
    """The pool's worker Pod cannot be made (Pod Security) or cannot run (its image, a Secret); ``reason`` is the
    task's reason."""

    def __init__(self, reason: str, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.reason, self.message, self.retryable = reason, message, retryable


# ---- pure parts ------------------------------------------------------------------------------------------------


def pool_name(task: AirflowTaskResource, image: str) -> str:
    """``warm-<hash>`` of everything a worker of the task is given (identity, image, Pod settings, Secrets)."""
    identity = {
        "namespace": task.namespace,
        "serviceAccountName": task.service_account_name or "default",
        "image": image,
        "podTemplate": {"labels": dict(task.pod_template.labels), "annotations": dict(task.pod_template.annotations),
                        "spec": dict(task.pod_template.spec)},
        "connections": sorted((ref.conn_id, ref.secret_name, ref.secret_key) for ref in task.connections),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"warm-{digest[:16]}"


def worker_pod(task: AirflowTaskResource, *, pool: str, image: str, allowed_modules: str, key: bytes,
               slots: int) -> dict[str, Any]:
    """The manifest of one worker Pod of ``pool``: the task's own Pod, serving steps instead of running one."""
    env = {channel.KEY_SHA256_ENV: hashlib.sha256(key).hexdigest(), channel.SLOTS_ENV: str(slots)}
    manifest = build_pod(task, step=WORKER_STEP, attempt=0, work={}, image=image, allowed_modules=allowed_modules,
                         extra_env=env)
    metadata = manifest["metadata"]
    del metadata["name"], metadata["ownerReferences"]
    metadata["generateName"] = f"{pool}-"
    for label in (LABEL_TASK_UID, LABEL_TASK_NAME, LABEL_ATTEMPT):
        metadata["labels"].pop(label, None)
    metadata["labels"] |= {LABEL_STEP: WORKER_STEP, LABEL_POOL: pool}
    container = manifest["spec"]["containers"][0]
    container["command"] = ["python", "-P", "-m", "airflowtask.warm_worker"]
    container["env"] = [item for item in container["env"] if item["name"] != "AIRFLOWTASK_WORK"]
    container["ports"] = [{"name": "warm", "containerPort": channel.PORT, "protocol": "TCP"}]
    container["readinessProbe"] = {"tcpSocket": {"port": channel.PORT}, "periodSeconds": 1, "failureThreshold": 1}
    return manifest


def step_outcome(answer: dict[str, Any], allowlist: tuple[str, ...]) -> PodOutcome:
    """What a worker's ``done`` answer says about its step, read as a Pod's status is: the outcome is untrusted
    (:func:`~airflowtask.reports.parse_outcome`), and a step that left none says how its process ended."""
    raw, code, killed = answer.get("outcome"), answer.get("exitCode"), answer.get("signal")
    if raw:
        try:
            return PodOutcome("Terminated", outcome=parse_outcome(str(raw), allowlist), exit_code=code)
        except InvalidReport as error:
            return PodOutcome("Terminated", INVALID_OUTCOME,
                              f"the step's report was refused, nothing of it was acted on: {error.message}", True,
                              exit_code=code)
    if killed:
        return PodOutcome("Terminated", "StepKilled", f"the step's process was killed by {killed} before it reported "
                          "an outcome (SIGKILL: most often the worker Pod's memory limit)", True)
    return PodOutcome("Terminated", "NoOutcome",
                      f"the step's process exited with code {code} without reporting an outcome", True, exit_code=code)


# ---- the pools ---------------------------------------------------------------------------------------------------


@dataclass
class Worker:
    """One worker Pod as the watch last saw it."""

    namespace: str
    name: str
    pool: str
    ip: str | None = None
    ready: bool = False
    ended: bool = False
    unlocked: bool = False
    problem: tuple[str, str] | None = None
    """Why the Pod cannot run (reason, message), as for a task Pod that never starts."""


class WarmPools:
    """The operator's side of every pool: which workers exist, handing steps to them, scaling them."""

    def __init__(self, kube: Kube, settings: Settings, signer: RecordSigner) -> None:
        self.kube, self.settings, self.signer = kube, settings, signer
        self.workers: dict[tuple[str, str], Worker] = {}
        self._creating: dict[tuple[str, str], float] = {}
        """(namespace, pool) -> loop time a worker Pod was asked for and has not become ready yet."""
        self._waiting: dict[tuple[str, str], deque[asyncio.Future[None]]] = {}
        """Steps waiting for room in a pool, first come first served: a freed slot wakes one, not all."""
        self._scaler: asyncio.Task[None] | None = None
        self._connections = channel.Connections()
        self._listed = asyncio.Event()
        """Set once the Pod watch has listed every worker Pod there was: until then, a step handed over by an
        earlier leader may be on a worker this process does not know."""

    def start(self) -> None:
        self._scaler = asyncio.create_task(self._scale_down_forever())

    async def close(self) -> None:
        if self._scaler is not None:
            self._scaler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scaler
        self._connections.close()

    def key(self, namespace: str, pool: str) -> bytes:
        return self.signer.derive(f"warm-pool/{namespace}/{pool}")

    # ---- what the watch says ---------------------------------------------------------------------------------

    def listed(self) -> None:
        """The Pod watch has listed every worker Pod (in the event loop, after their :meth:`on_pod`)."""
        self._listed.set()
        for namespace, pool in list(self._waiting):
            self._wake(namespace, pool, everyone=True)

    def on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        """A worker Pod changed (from the executor's Pod watch, in the event loop)."""
        meta, status = pod["metadata"], pod.get("status") or {}
        pool = (meta.get("labels") or {}).get(LABEL_POOL, "")
        key = (meta["namespace"], meta["name"])
        if kind == "DELETED":
            if (gone := self.workers.pop(key, None)) is not None and gone.ip:
                self._connections.drop(gone.ip)
            self._wake(meta["namespace"], pool, everyone=True)
            return
        worker = self.workers.setdefault(key, Worker(meta["namespace"], meta["name"], pool))
        worker.ip = status.get("podIP") or None
        worker.ended = status.get("phase") in ("Succeeded", "Failed") or "deletionTimestamp" in meta
        worker.ready = not worker.ended and any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())
        waiting = pod_outcome(pod)
        if waiting.state == "Pending" and waiting.failed:
            reason, message = waiting.reason or "PodFailed", waiting.message or f"Pod {worker.name} cannot run"
            if reason == "CreateContainerConfigError" and "secret" in message.lower():
                reason, message = "MissingSecret", f"{message}; it is named in spec.connections"
            worker.problem = (reason, f"warm worker Pod {worker.name}: {message}")
        if worker.ready or worker.ended or worker.problem:
            self._creating.pop((worker.namespace, pool), None)
            self._wake(worker.namespace, pool, count=self.settings.warm.slots, everyone=not worker.ready)

    def _wake(self, namespace: str, pool: str, count: int = 1, everyone: bool = False) -> None:
        """Wake the first ``count`` steps waiting for room in the pool (``everyone``: all of them)."""
        waiting = self._waiting.get((namespace, pool)) or deque()
        while waiting and (count > 0 or everyone):
            if not (waiter := waiting.popleft()).done():
                waiter.set_result(None)
                count -= 1

    async def wait_for_worker(self, namespace: str, pool: str, timeout: float) -> None:
        """Return when a worker of the pool may have room for this step, at most after ``timeout`` seconds."""
        waiter = asyncio.get_running_loop().create_future()
        waiting = self._waiting.setdefault((namespace, pool), deque())
        waiting.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            with contextlib.suppress(ValueError):
                waiting.remove(waiter)

    # ---- steps -------------------------------------------------------------------------------------------------

    async def submit(self, task: AirflowTaskResource, image: str, step_id: str, order: dict[str, Any]) -> str | None:
        """Hand the step to a ready worker of its pool; that worker's name, or None when none has room (then one
        is made, up to the pool's limit, and :meth:`wait_for_worker` wakes when it is ready)."""
        pool = pool_name(task, image)
        if not await self._know_every_worker():
            return None
        ready = self._ready(task.namespace, pool)
        # Handed over before (an interrupted submission, a restart)? Never a second time. ``start`` answers for
        # the first ready worker (it never starts a step it knows); every other worker with an address is asked,
        # ready or not.
        for worker in self._of(task.namespace, pool):
            if worker.ip and worker not in ready[:1]:
                with contextlib.suppress(OSError, TimeoutError, channel.ChannelError):
                    if (await self._call(worker, {"op": "status", "id": step_id})).get("state") in ("running", "done"):
                        return worker.name
        for worker in ready:
            try:
                answer = await self._call(worker, {"op": "start", "id": step_id, "order": order})
            except (OSError, TimeoutError, channel.ChannelError) as error:
                log.warning("worker %s/%s did not take step %s: %s", worker.namespace, worker.name, step_id, error)
                continue
            if answer.get("state") in ("running", "done"):
                return worker.name
            if answer.get("state") == "retired":
                worker.ready = False
        for worker in self._of(task.namespace, pool):
            if worker.problem:  # the steps fail as a task Pod would; the next one tries a new Pod
                await self.kube.delete_pod(worker.namespace, worker.name)
                worker.ended = True
                raise WorkerRefused(*worker.problem)
        await self._grow(task, image, pool)
        return None

    async def _know_every_worker(self) -> bool:
        """Wait (a little) for the Pod watch's first listing; False when it has not come."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listed.wait(), _CALL_SECONDS)
        return self._listed.is_set()

    async def status(self, namespace: str, name: str, step_id: str, wait: float = 0.0) -> dict[str, Any] | None:
        """How the step stands on its worker; None when the worker is gone or no longer knows it."""
        worker = self.workers.get((namespace, name))
        if worker is None or worker.ended or not worker.ip:
            pod = await self.kube.read_pod(namespace, name)
            if pod is None:
                return None
            self.on_pod("MODIFIED", pod)
            worker = self.workers[(namespace, name)]
            if worker.ended or not worker.ip:
                return None
        request = {"op": "status", "id": step_id, "wait": min(wait, _MAX_WAIT_SECONDS)}
        try:
            answer = await self._call(worker, request, timeout=_CALL_SECONDS + request["wait"])
        except (OSError, TimeoutError, channel.ChannelError) as error:
            pod = await self.kube.read_pod(namespace, name)
            if pod is None or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return None
            raise ConnectionError(f"worker {namespace}/{name} does not answer: {error}") from error
        if answer.get("state") == "unknown":
            return None
        if answer.get("state") == "done":
            self._wake(namespace, worker.pool)
        return answer

    async def cancel(self, namespace: str, name: str, step_id: str) -> None:
        """SIGTERM to the step (on_kill); nothing when its worker is gone."""
        if (worker := self.workers.get((namespace, name))) is not None and worker.ip:
            with contextlib.suppress(OSError, TimeoutError, channel.ChannelError):
                await self._call(worker, {"op": "cancel", "id": step_id})

    async def forget(self, namespace: str, name: str, step_id: str) -> None:
        if (worker := self.workers.get((namespace, name))) is not None and worker.ip:
            with contextlib.suppress(OSError, TimeoutError, channel.ChannelError):
                await self._call(worker, {"op": "forget", "id": step_id})

    def pool_of(self, namespace: str, name: str) -> str | None:
        worker = self.workers.get((namespace, name))
        return worker.pool if worker else None

    # ---- workers -------------------------------------------------------------------------------------------

    def _of(self, namespace: str, pool: str) -> list[Worker]:
        return [w for w in self.workers.values() if w.namespace == namespace and w.pool == pool and not w.ended]

    def _ready(self, namespace: str, pool: str) -> list[Worker]:
        return [w for w in self._of(namespace, pool) if w.ready and w.ip]

    async def _call(self, worker: Worker, request: dict[str, Any], timeout: float = _CALL_SECONDS) -> dict[str, Any]:
        key = self.key(worker.namespace, worker.pool)
        if not worker.unlocked:
            await self._connections.unlock(worker.ip or "", channel.PORT, key, timeout)
            worker.unlocked = True
        try:
            return await self._connections.call(worker.ip or "", channel.PORT, key, request, timeout)
        except channel.ChannelError as error:
            if "is locked" in str(error):  # a new Pod behind a reused address
                worker.unlocked = False
            raise

    async def _grow(self, task: AirflowTaskResource, image: str, pool: str) -> None:
        """Ask for one more worker Pod of the pool, unless one is on its way or the pool is at its limit."""
        namespace, now = task.namespace, asyncio.get_running_loop().time()
        if now - self._creating.get((namespace, pool), -_CREATE_GRACE_SECONDS) < _CREATE_GRACE_SECONDS:
            return
        if len(self._of(namespace, pool)) >= self.settings.warm.max_workers:
            return
        key = self.key(namespace, pool)
        allowed = ",".join(self.settings.engine.allowed_modules)
        manifest = worker_pod(task, pool=pool, image=image, allowed_modules=allowed, key=key,
                              slots=self.settings.warm.slots)
        if violations := check_pod(manifest, self.settings.pod_security_level):
            raise WorkerRefused("PodSecurity", "; ".join(str(violation) for violation in violations), retryable=False)
        self._creating[(namespace, pool)] = now
        try:
            created = await self.kube.create_pod(namespace, manifest)
        except BaseException:
            self._creating.pop((namespace, pool), None)
            raise
        if created is not None:
            log.info("made worker Pod %s/%s of pool %s", namespace, created["metadata"]["name"], pool)
            self.on_pod("ADDED", created)

    async def _scale_down_forever(self) -> None:
        while True:
            await asyncio.sleep(_SCALE_SECONDS)
            try:
                await self._scale_down()
            except Exception:
                log.exception("scaling the warm pools down failed; trying again in %.0fs", _SCALE_SECONDS)

    async def _scale_down(self) -> None:
        """Retire workers idle longer than the setting; delete the Pods of workers that ended."""
        if not self.kube.leading():
            return
        for worker in list(self.workers.values()):
            if worker.ended:
                await self.kube.delete_pod(worker.namespace, worker.name)
                continue
            if not worker.ready:
                continue
            try:
                state = await self._call(worker, {"op": "ping"})
                idle = (state.get("running") == 0 and state.get("unread") == 0  # (its exit would lose an outcome)
                        and state.get("idleSeconds", 0) >= self.settings.warm.idle_seconds)
                if idle and (await self._call(worker, {"op": "retire"})).get("state") == "retired":
                    log.info("retired idle worker %s/%s of pool %s", worker.namespace, worker.name, worker.pool)
                    worker.ready = False
                    await self.kube.delete_pod(worker.namespace, worker.name)
            except (OSError, TimeoutError, channel.ChannelError) as error:
                log.warning("worker %s/%s does not answer: %s", worker.namespace, worker.name, error)
