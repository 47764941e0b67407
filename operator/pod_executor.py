"""Task work in Pods: the controller follows them, the triggerer container runs deferrals (DESIGN.md).

Each step of an attempt is a Pod in the task's namespace, under the task's ServiceAccount, running
``python -m airflowtask.worker`` (see :mod:`airflowtask.worker` for the work order and the outcome it
leaves in its termination message)::

    execute Pod --outcome--> Succeeded / Failed
         '--Deferred--> the trigger runs in the triggerer (no credentials) --event--> callback Pod --> ...
    cancel: delete the step's Pod (SIGTERM -> on_kill); deferred: a kill Pod restores the state, calls on_kill

Pods are named after (task, attempt, step) and owned by their AirflowTask: a restarted operator finds and
adopts the Pod it made instead of making a second one. The operator reads Secrets only to run a trigger,
and only those the task names. One watch (server-side label selector) wakes whoever waits on a Pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflowtask.connector_core.model import Phase, Reason, RunInfo, TaskState
from airflowtask.kube import Kube, service_account_missing
from airflowtask.pod_security import check_pod
from airflowtask.pods import INVALID_OUTCOME, MANAGED_BY_SELECTOR, PodOutcome, build_pod, pod_name, pod_outcome
from airflowtask.resource import AirflowTaskResource, format_time
from airflowtask.settings import Settings
from airflowtask.signing import RecordSigner
from airflowtask.trigger_client import TriggerClient
from airflowtask.warm_pools import LABEL_POOL, WarmPools, WorkerRefused, pool_name, step_outcome

log = logging.getLogger(__name__)

_KILL_WAIT_SECONDS = 60.0
_NO_EVENT = object()  # a failed or timed-out trigger: the callback gets no ``event``
_KIND = "pods"


@dataclass
class PodMeta:
    """``status.resourceMeta`` of a task whose work runs in Pods: where the attempt stands.

    Written as ``{"version": 2, "kind": "pods", "record": {...}, "signature": "<hex>"}``: the record signed for
    the task's uid (:mod:`airflowtask.signing`); a record whose signature does not match is never acted on.
    """

    uid: str
    namespace: str
    attempt: int
    signer: RecordSigner = field(repr=False, compare=False)
    step: str = "execute"
    """``execute``, ``deferred`` (the trigger runs in the triggerer) or ``callback-<n>``."""
    pod: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    deferral: dict[str, Any] | None = None
    trigger: str | None = None
    """The key the deferral's trigger runs under in the triggerer (it runs again after a restart)."""
    job_id: str | None = None
    callbacks: int = 0
    outcome: dict[str, Any] | None = None
    warm: bool = False
    """``spec.execution: WarmPool``: steps run in a worker of the task's pool instead of Pods of their own."""
    worker: str | None = None
    """WarmPool: the worker Pod the step was handed to (None until one took it)."""
    order: dict[str, Any] | None = None
    """WarmPool: the step's work order, until a worker took it."""
    pool: str | None = None
    """WarmPool: the task's pool (:func:`airflowtask.warm_pools.pool_name`)."""

    def record(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if name not in ("uid", "signer")}

    def encode(self) -> bytes:
        record = self.record()
        signature = self.signer.sign(self.uid, _canonical(record))
        return json.dumps({"version": 2, "kind": _KIND, "record": record, "signature": signature},
                          separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes, signer: RecordSigner, uid: str) -> PodMeta:
        try:
            raw = json.loads(data)
        except (ValueError, RecursionError) as error:
            raise ValueError(f"not JSON: {error}") from None
        if not isinstance(raw, dict) or raw.get("kind") != _KIND or raw.get("version") != 2:
            raise ValueError("not the metadata of a task run in Pods (kind 'pods', version 2)")
        record, signature = raw.get("record"), raw.get("signature")
        if set(raw) != {"kind", "version", "record", "signature"} or not isinstance(record, dict) \
                or not isinstance(signature, str):
            raise ValueError("not the metadata of a task run in Pods (record and signature expected)")
        if not signer.verify(uid, _canonical(record), signature):
            raise ValueError("its signature does not match: it was not written by this operator for this task; "
                             "nothing in it was acted on")
        try:
            return cls(uid=uid, signer=signer, **record)
        except TypeError as error:
            raise ValueError(f"unexpected fields: {error}") from None


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


class PodExecutor:
    """Creates and follows task Pods; hands deferrals' triggers to the triggerer."""

    needs_connections = False
    idempotent_create = True  # Pods are named after (task, attempt, step): a second create adopts the first

    def __init__(self, kube: Kube, triggers: TriggerClient, settings: Settings, image: str,
                 signer: RecordSigner) -> None:
        self.kube, self.triggers, self.settings, self.image, self.signer = kube, triggers, settings, image, signer
        self._pods: dict[tuple[str, str], dict[str, Any]] = {}
        self._changed: dict[tuple[str, str], asyncio.Event] = {}
        self._logs: dict[tuple[str, str], list[str]] = {}
        self._launched: set[str] = set()
        """Keys of the triggers handed to the triggerer by this process."""
        self._unrecorded: dict[tuple[str, str], list[tuple[str, str]]] = {}
        """Per warm task: (worker, step id) of the steps whose outcome was read and is not in the status yet."""
        self._missing_accounts: dict[str, float] = {}
        """Steps whose Pod was refused for want of its ServiceAccount: since when (loop time)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_watch: Any = None
        self._unlisted = 0
        """Watched namespaces whose first Pod listing has not been seen yet."""
        self.pools = WarmPools(kube, settings, signer)

    def start(self) -> None:
        """Start the Pod watch (call from the event loop)."""
        self._loop = asyncio.get_running_loop()
        self._unlisted = len(self.settings.namespaces) or 1
        self._stop_watch = self.kube.watch_pods(MANAGED_BY_SELECTOR, self.settings.namespaces, self._on_pod_event,
                                                self._on_pods_listed)
        self.pools.start()

    async def close(self) -> None:
        if self._stop_watch is not None:
            self._stop_watch.set()
        await self.pools.close()
        await self.triggers.close()

    def _on_pod_event(self, kind: str, pod: dict[str, Any]) -> None:
        """From the watch thread: remember the Pod's latest state and wake whoever waits on it."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._changed_pod, kind, pod)

    def _on_pods_listed(self) -> None:
        """From the watch thread, after the Pods of its first listing (queued behind them)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._listed_namespace)

    def _listed_namespace(self) -> None:
        self._unlisted -= 1
        if self._unlisted == 0:
            self.pools.listed()

    def _changed_pod(self, kind: str, pod: dict[str, Any]) -> None:
        if LABEL_POOL in (pod["metadata"].get("labels") or {}):
            self.pools.on_pod(kind, pod)
            return
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        if kind == "DELETED":
            self._pods.pop(key, None)
        elif key in self._changed:  # only Pods someone follows are kept
            self._pods[key] = pod
        if event := self._changed.get(key):
            event.set()

    # ---- the Executor interface ----------------------------------------------------------------------------

    def decode(self, text: str, task: AirflowTaskResource) -> PodMeta:
        return PodMeta.decode(text.encode(), self.signer, task.uid)

    async def create(self, task: AirflowTaskResource, attempt: int, run: RunInfo) -> tuple[PodMeta, TaskState]:
        meta = PodMeta(uid=task.uid, namespace=task.namespace, attempt=attempt, signer=self.signer,
                       warm=(task.execution or self.settings.default_execution) == "WarmPool")
        return meta, await self._start_step(task, meta, "execute", {})

    async def get(self, task: AirflowTaskResource, meta: Any, run: RunInfo) -> TaskState:
        assert isinstance(meta, PodMeta)
        if meta.outcome is not None:
            return _final(meta)
        if meta.step == "deferred":
            return await self._follow_trigger(task, meta)
        if meta.warm:
            return await self._follow_warm_step(task, meta)
        return await self._follow_pod(task, meta)

    async def wait(self, meta: Any, timeout: float) -> None:
        assert isinstance(meta, PodMeta)
        if meta.outcome is not None:
            return
        if meta.step == "deferred" and meta.trigger in self._launched:
            await self.triggers.wait(meta.trigger or "", timeout)
            return
        if meta.warm and meta.step != "deferred":
            await self._wait_warm_step(meta, timeout)
            return
        event = self._changed.get(self._key_of(meta))
        if event is None:
            await asyncio.sleep(timeout)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    async def delete(self, task: AirflowTaskResource, meta: Any, run: RunInfo | None) -> None:
        assert isinstance(meta, PodMeta)
        if meta.outcome is not None:
            return
        if meta.step != "deferred":
            if meta.warm and meta.worker:
                await self.pools.cancel(task.namespace, meta.worker, _step_id(meta))  # SIGTERM -> on_kill
            elif meta.pod:
                await self.kube.delete_pod(task.namespace, meta.pod)  # SIGTERM: the worker calls on_kill
            return
        if meta.trigger:
            await self.triggers.cancel(meta.trigger)
            self._drop_trigger(meta)
        await self._kill(task, meta)

    async def orphan(self, task: AirflowTaskResource, meta: Any) -> None:
        """deletionPolicy Orphan: leave the step's Pod running after its AirflowTask is gone."""
        assert isinstance(meta, PodMeta)
        if meta.outcome is None and meta.step != "deferred" and meta.pod and not meta.warm:
            await self.kube.release_pod(task.namespace, meta.pod)  # (a warm step simply goes on)

    def status_fields(self, meta: Any) -> dict[str, Any]:
        assert isinstance(meta, PodMeta)
        fields: dict[str, Any] = {"podName": meta.worker if meta.warm else meta.pod}
        if logs := self._logs.get(self._key_of(meta)):
            fields["logs"] = "\n".join(logs[-self.settings.log_tail_lines:])
        return fields

    def recorded(self, meta: Any) -> None:
        """Workers forget the steps whose outcome the status now holds (a worker keeping one cannot retire)."""
        assert isinstance(meta, PodMeta)
        for worker, step_id in self._unrecorded.pop(self._key_of(meta), ()):
            self._forget_step(meta.namespace, worker, step_id)

    def forget(self, meta: Any) -> None:
        assert isinstance(meta, PodMeta)
        self.recorded(meta)
        self._unfollow(meta)
        self._drop_trigger(meta)
        if meta.warm and meta.worker:
            self._forget_step(meta.namespace, meta.worker, _step_id(meta))

    def _forget_step(self, namespace: str, worker: str, step_id: str) -> None:
        if self._loop is not None:
            self._loop.create_task(self.pools.forget(namespace, worker, step_id))

    # ---- steps ---------------------------------------------------------------------------------------------

    @staticmethod
    def _key_of(meta: PodMeta) -> tuple[str, str]:
        return (meta.namespace, f"warm/{meta.uid}" if meta.warm else meta.pod or "")

    def _follow(self, meta: PodMeta) -> tuple[str, str]:
        """Start following the step's Pod (wake-ups from the watch, its latest state)."""
        key = self._key_of(meta)
        self._changed.setdefault(key, asyncio.Event())
        return key

    def _unfollow(self, meta: PodMeta) -> None:
        key = self._key_of(meta)
        for held in (self._pods, self._changed, self._logs):
            held.pop(key, None)

    async def _latest_pod(self, meta: PodMeta) -> dict[str, Any] | None:
        """The step's Pod as the watch last saw it, else as the API has it; later changes wake wait()."""
        key = self._follow(meta)
        self._changed[key].clear()
        return self._pods.get(key) or await self.kube.read_pod(meta.namespace, meta.pod or "")

    async def _start_step(self, task: AirflowTaskResource, meta: PodMeta, step: str,
                          order: dict[str, Any]) -> TaskState:
        """Create (or adopt) the Pod of one step; the log tail of the steps before it is kept."""
        earlier = self._logs.get(self._key_of(meta), [])
        self._unfollow(meta)
        meta.step = step
        meta.pod = None if meta.warm else pod_name(task.name, task.uid, meta.attempt, step)
        self._logs[self._follow(meta)] = earlier
        work = {"version": 1, "step": step.split("-")[0], "task": self._task_order(task, meta), **order}
        if meta.warm:
            meta.worker, meta.order = None, work
            return await self._hand_over(task, meta)
        allowed = ",".join(self.settings.engine.allowed_modules)
        manifest = build_pod(task, step=step, attempt=meta.attempt, work=work, image=task.image or self.image,
                             allowed_modules=allowed)
        if violations := check_pod(manifest, self.settings.pod_security_level):
            return self._fail(meta, "PodSecurity", "; ".join(str(violation) for violation in violations),
                              retryable=False)
        try:
            created = await self.kube.create_pod(task.namespace, manifest)
        except Exception as error:
            if not service_account_missing(error) or self._waiting_for_service_account(meta):
                raise  # retried in a second (kopf), told to the outage record unless the ServiceAccount is missing
            account = task.service_account_name or "default"
            return self._fail(meta, "ServiceAccountNotFound",
                              f"ServiceAccount {task.namespace}/{account} does not exist (waited "
                              f"{self.settings.service_account_grace_seconds:.0f}s); create it, or set "
                              "spec.serviceAccountName to one that exists", retryable=False)
        self._missing_accounts.pop(meta.pod, None)
        if created is None:
            existing = await self.kube.read_pod(task.namespace, meta.pod)
            if existing is not None and not _owned_by(existing, task.uid):
                return self._fail(meta, "PodConflict", f"Pod {task.namespace}/{meta.pod} exists and is not this "
                                  "AirflowTask's; delete it or rename the AirflowTask", retryable=False)
            log.info("adopted Pod %s/%s", task.namespace, meta.pod)
        return TaskState(Phase.RUNNING, Reason.EXECUTING, f"Pod {meta.pod} runs {_what(step)}", job_id=meta.job_id,
                         meta=None)

    def _waiting_for_service_account(self, meta: PodMeta) -> bool:
        """True while the step's ServiceAccount has been missing for less than the grace (from the first refusal)."""
        now = asyncio.get_running_loop().time()
        step = meta.pod or _step_id(meta)
        since = self._missing_accounts.setdefault(step, now)
        if now - since < self.settings.service_account_grace_seconds:
            return True
        del self._missing_accounts[step]
        return False

    def _task_order(self, task: AirflowTaskResource, meta: PodMeta) -> dict[str, Any]:
        obj = task.operator
        return {
            "operator": {"module": obj.module, "name": obj.name, "parameters": obj.parameters},
            "name": task.task_id, "namespace": task.namespace, "uid": task.uid, "attempt": meta.attempt,
            "logicalDate": format_time(task.logical_date), "params": dict(task.params),
        }

    async def _follow_pod(self, task: AirflowTaskResource, meta: PodMeta) -> TaskState:
        key = self._follow(meta)
        pod = await self._latest_pod(meta)
        if pod is None:
            return self._fail(meta, "PodDeleted", f"Pod {meta.pod} was deleted before it reported an outcome")
        if not _owned_by(pod, task.uid):
            return self._fail(meta, "PodConflict", f"Pod {meta.pod} is not this AirflowTask's", retryable=False)
        outcome = pod_outcome(pod, self.settings.engine.allowed_modules)
        if outcome.state == "Terminated":
            tail = await self.kube.pod_log_tail(task.namespace, meta.pod or "", self.settings.log_tail_lines)
            self._logs[key] = [*self._logs.get(key, []), *tail]
            return await self._finished_step(task, meta, outcome)
        if outcome.failed:  # a Pod that will never run: say why, and remove it
            await self.kube.delete_pod(task.namespace, meta.pod or "")
            reason, message = outcome.reason or "PodFailed", outcome.message or f"Pod {meta.pod} cannot run"
            if reason == "CreateContainerConfigError" and "secret" in message.lower():
                reason, message = "MissingSecret", f"{message}; it is named in spec.connections"
            return self._fail(meta, reason, message)
        if outcome.state == "Pending":
            return TaskState(Phase.PENDING, "PodPending", outcome.message or f"Pod {meta.pod} is pending",
                             job_id=meta.job_id)
        return TaskState(Phase.RUNNING, Reason.EXECUTING, f"Pod {meta.pod} runs {_what(meta.step)}",
                         job_id=meta.job_id)

    async def _finished_step(self, task: AirflowTaskResource, meta: PodMeta, outcome: PodOutcome) -> TaskState:
        report = outcome.outcome
        if outcome.failed or report is None:
            return self._fail(meta, outcome.reason or "NoOutcome",
                              outcome.message or f"Pod {meta.pod} ended without an outcome",
                              retryable=outcome.reason != INVALID_OUTCOME)
        meta.job_id = report.job_id or meta.job_id
        if report.deferral is not None:
            meta.state = report.state
            meta.deferral = report.deferral.document()
            meta.step = "deferred"
            return await self._start_trigger(task, meta)
        meta.outcome = {"phase": report.phase.value, "reason": report.reason.value, "message": report.message,
                        "result": report.result, "retryable": report.retryable}
        return _final(meta)

    # ---- WarmPool steps ------------------------------------------------------------------------------------

    async def _hand_over(self, task: AirflowTaskResource, meta: PodMeta) -> TaskState:
        """Hand the step to a worker of the task's pool (one is made when none has room)."""
        image = task.image or self.image
        meta.pool = pool_name(task, image)
        try:
            worker = await self.pools.submit(task, image, _step_id(meta), meta.order or {})
        except WorkerRefused as refused:
            return self._fail(meta, refused.reason, refused.message, retryable=refused.retryable)
        except Exception as error:
            if not service_account_missing(error) or self._waiting_for_service_account(meta):
                raise
            return self._fail(meta, "ServiceAccountNotFound",
                              f"ServiceAccount {task.namespace}/{task.service_account_name or 'default'} does not "
                              f"exist (waited {self.settings.service_account_grace_seconds:.0f}s); create it, or set "
                              "spec.serviceAccountName to one that exists", retryable=False)
        self._missing_accounts.pop(_step_id(meta), None)
        if worker is None:
            return TaskState(Phase.PENDING, "WaitingForWorker", f"waiting for a worker of warm pool {meta.pool}",
                             job_id=meta.job_id)
        meta.worker, meta.order = worker, None
        return TaskState(Phase.RUNNING, Reason.EXECUTING, f"warm worker {worker} runs {_what(meta.step)}",
                         job_id=meta.job_id)

    async def _follow_warm_step(self, task: AirflowTaskResource, meta: PodMeta) -> TaskState:
        if meta.worker is None:
            return await self._hand_over(task, meta)
        answer = await self.pools.status(task.namespace, meta.worker, _step_id(meta))
        if answer is None:
            return self._fail(meta, "WorkerLost", f"warm worker Pod {meta.worker} ended (or no longer knows the "
                              f"{meta.step} step) before the step reported an outcome")
        if answer.get("state") != "done":
            return TaskState(Phase.RUNNING, Reason.EXECUTING, f"warm worker {meta.worker} runs {_what(meta.step)}",
                             job_id=meta.job_id)
        key = self._key_of(meta)
        if (meta.worker, _step_id(meta)) not in (unrecorded := self._unrecorded.setdefault(key, [])):
            unrecorded.append((meta.worker, _step_id(meta)))
        lines = [str(line) for line in answer.get("log") or []]
        self._logs[key] = [*self._logs.get(key, []), *lines[-self.settings.log_tail_lines:]]
        return await self._finished_step(task, meta, step_outcome(answer, self.settings.engine.allowed_modules))

    async def _wait_warm_step(self, meta: PodMeta, timeout: float) -> None:
        """Until the warm step may have ended (or a worker may have room for it), at most ``timeout`` seconds."""
        if meta.worker is None:
            await self.pools.wait_for_worker(meta.namespace, meta.pool or "", timeout)
            return
        try:
            await self.pools.status(meta.namespace, meta.worker, _step_id(meta), wait=timeout)
        except ConnectionError:
            await asyncio.sleep(min(timeout, 1.0))

    # ---- triggers ------------------------------------------------------------------------------------------

    async def _connections(self, task: AirflowTaskResource) -> dict[str, str]:
        """The connections the task names, read from its Secrets now, for its trigger alone."""
        return {ref.conn_id: await self.kube.read_secret_key(task.namespace, ref.secret_name, ref.secret_key)
                for ref in task.connections}

    async def _start_trigger(self, task: AirflowTaskResource, meta: PodMeta) -> TaskState:
        meta.trigger = f"{task.uid}/{meta.attempt}/{meta.callbacks}"
        await self._launch_trigger(task, meta)
        return TaskState(Phase.RUNNING, Reason.DEFERRED, f"waiting for trigger {_trigger_name(meta)}",
                         job_id=meta.job_id)

    async def _launch_trigger(self, task: AirflowTaskResource, meta: PodMeta) -> None:
        """Hand the deferral's trigger to the triggerer (again after a restart: it is rebuilt from its serialized
        form, as Airflow's triggerer does)."""
        trigger = (meta.deferral or {}).get("trigger") or {}
        await self.triggers.run(task.namespace, meta.trigger or "", f"{task.namespace}/{task.name}",
                                str(trigger.get("classpath", "")), dict(trigger.get("kwargs") or {}),
                                await self._connections(task), None)
        self._launched.add(meta.trigger or "")

    async def _follow_trigger(self, task: AirflowTaskResource, meta: PodMeta) -> TaskState:
        if not meta.deferral or not meta.trigger:
            return self._fail(meta, "InvalidResourceMeta", "a deferred task without its trigger", retryable=False)
        if meta.trigger not in self._launched:  # after a restart: run it again from its serialized form
            await self._launch_trigger(task, meta)
        result = self.triggers.result(meta.trigger)
        deadline = meta.deferral.get("deadline")
        if result is None and deadline and datetime.fromisoformat(deadline) <= datetime.now(UTC):
            await self.triggers.cancel(meta.trigger)
            self._drop_trigger(meta)
            return await self._callback(task, meta, "__fail__", _NO_EVENT, {"error": "Trigger timeout"})
        if result is None:
            return TaskState(Phase.RUNNING, Reason.DEFERRED, f"waiting for trigger {_trigger_name(meta)}",
                             job_id=meta.job_id)
        self._drop_trigger(meta)
        if result.kind == "refused":
            await self._kill(task, meta)
            return self._fail(meta, result.reason or "InvalidOutcome", f"the trigger cannot run: {result.message}",
                              retryable=False)
        if result.kind == "fired":
            return await self._callback(task, meta, meta.deferral.get("method") or "execute_complete", result.event,
                                        dict(meta.deferral.get("nextKwargs") or {}))
        if result.kind == "ended":  # a task-end event (TaskSuccessEvent, TaskFailedEvent...): no callback runs
            succeeded = result.phase == "Succeeded"
            meta.outcome = {"phase": result.phase, "reason": result.reason,
                            "message": "the trigger ended the task" + ("" if succeeded else " as failed"),
                            "result": None, "retryable": False}
            return _final(meta)
        return await self._callback(task, meta, "__fail__", _NO_EVENT,
                                    {"error": "Trigger failure", "traceback": [result.message]})

    def _drop_trigger(self, meta: PodMeta) -> None:
        if meta.trigger:
            self._launched.discard(meta.trigger)
            self.triggers.forget(meta.trigger)

    async def _callback(self, task: AirflowTaskResource, meta: PodMeta, method: str, event: Any,
                        next_kwargs: dict[str, Any]) -> TaskState:
        """The trigger fired (or failed): hand the callback to a new Pod, as Airflow hands it to a worker."""
        meta.callbacks += 1
        meta.trigger = None
        order = {"method": method, "nextKwargs": next_kwargs, "state": meta.state}
        if event is not _NO_EVENT:  # a trigger that fired always passes its event, even a null one
            order["event"] = event
        return await self._start_step(task, meta, f"callback-{meta.callbacks}", order)

    async def _kill(self, task: AirflowTaskResource, meta: PodMeta) -> None:
        """A short Pod that restores the deferred task's state and calls on_kill (cancels its external job)."""
        await self._start_step(task, meta, "kill", {"state": meta.state})
        deadline = asyncio.get_running_loop().time() + _KILL_WAIT_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            if meta.warm:
                state = await self._follow_warm_step(task, meta)
                if meta.outcome is not None or state.phase in (Phase.SUCCEEDED, Phase.FAILED):
                    return
                await self.wait(meta, 2.0)
                continue
            pod = await self._latest_pod(meta)
            if pod is None or pod_outcome(pod).state == "Terminated":
                return
            await self.wait(meta, 2.0)
        log.warning("the kill Pod %s/%s did not finish in %.0fs", task.namespace, meta.pod, _KILL_WAIT_SECONDS)

    def _fail(self, meta: PodMeta, reason: str, message: str, retryable: bool = True) -> TaskState:
        meta.outcome = {"phase": "Failed", "reason": reason, "message": message, "result": None,
                        "retryable": retryable}
        return _final(meta)


def _final(meta: PodMeta) -> TaskState:
    outcome = meta.outcome or {}
    phase = Phase.SUCCEEDED if outcome.get("phase") == "Succeeded" else Phase.FAILED
    return TaskState(phase, str(outcome.get("reason") or "NoOutcome"), str(outcome.get("message") or ""),
                     result=outcome.get("result"), retryable=bool(outcome.get("retryable", True)),
                     job_id=meta.job_id)


def _step_id(meta: PodMeta) -> str:
    """The name a WarmPool worker knows the current step by."""
    return f"{meta.uid}/{meta.attempt}/{meta.step}"


def _trigger_name(meta: PodMeta) -> str:
    return str(((meta.deferral or {}).get("trigger") or {}).get("classpath", "")).rpartition(".")[2]


def _owned_by(pod: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in pod["metadata"].get("ownerReferences") or [])


def _what(step: str) -> str:
    return {"execute": "execute()", "kill": "on_kill()"}.get(step, "the callback")
