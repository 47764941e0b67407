"""kopf registrations: thin glue from watch events to ``reconcile.Reconciler``.

- a timer per unfinished AirflowTask that has our finalizer follows it (submit, wait for news, record status)
  until it finished;
- a deletion handler cancels the external job before kopf removes the finalizer;
- a daemon per finished AirflowTask with ``ttlSecondsAfterFinished`` deletes it when due.

Run with ``airflowtask-operator run``: kopf runs these only while the replica holds the Lease
(``airflowtask.runner``), and every write of our own is fenced by it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import kopf
from airflowtask import metrics
from airflowtask.executors import Executor, InProcessExecutor
from airflowtask.kube import Kube, NotLeading, load_client_config
from airflowtask.log_setup import KOPF_RETRY_SECONDS
from airflowtask.outage import describe, is_api_trouble
from airflowtask.pod_executor import PodExecutor
from airflowtask.reconcile import Reconciler, TaskMemory
from airflowtask.resource import FINISHED_PHASES, AirflowTaskResource
from airflowtask.settings import FINALIZER, GROUP, PLURAL, VERSION, Settings
from airflowtask.signing import load_signer
from airflowtask.status import Event
from airflowtask.trigger_client import TriggerClient

RESOURCE = (GROUP, VERSION, PLURAL)


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Configure kopf once, before any watch starts, and build the reconciler."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.posting.level = logging.WARNING
    settings.background.cancellation_polling = 1.0
    # A finished task's timer stops (its filter no longer matches) once its last step returned; waiting up to a
    # second for that, instead of kopf's ten zero-time loop turns, spares the "touch" write kopf makes otherwise.
    settings.background.instant_exit_timeout = 1.0
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    # Retry kopf's own requests every second (not kopf's growing backoff): after a short outage the watch is
    # back within a second; a long one costs the Lease anyway, and the next term starts afresh.
    settings.networking.error_backoffs = (0.5, *[KOPF_RETRY_SECONDS] * 20)
    config = Settings.from_env()
    pool = config.api_workers + max(len(config.namespaces), 1)  # the workers' requests and the Pod watches
    kube = Kube(load_client_config(pool), workers=config.api_workers, may_write=memo.get("may_act", lambda: True))
    memo.reconciler = Reconciler(await _executor(config, kube), kube, config)


async def _executor(config: Settings, kube: Kube) -> Executor:
    """Task Pods (the default), or the engine in this process (AIRFLOWTASK_EXECUTION=in-process)."""
    if config.execution == "in-process":
        from airflowtask.connector_core import Engine  # Airflow is imported only where Airflow code runs here

        engine = Engine(config.engine)
        metrics.bind_engine(lambda: engine.running_triggers, engine.pool_in_use)
        return InProcessExecutor(engine, config.log_tail_lines)
    image = config.task_image or await kube.own_image()
    if not image:
        raise kopf.PermanentError("task Pods need an image: set AIRFLOWTASK_TASK_IMAGE (outside a Pod the "
                                  "operator cannot use its own image)")
    signer = await load_signer(kube, config.engine.signing_key, config.lease_namespace)
    triggers = TriggerClient(config.triggerer_socket, config.engine.allowed_modules, _blocked_trigger)
    await triggers.start()
    executor = PodExecutor(kube, triggers, config, image, signer)
    executor.start()
    metrics.bind_engine(triggers.running, lambda: 0)
    return executor


def _blocked_trigger(namespace: str, task: str, seconds: float) -> None:
    """The triggerer says a trigger holds its namespace's event loop: told once per trigger."""
    logging.getLogger(__name__).warning(
        "the trigger of AirflowTask %s blocked the triggerer's event loop of namespace %s for %.1fs; other triggers "
        "of that namespace wait while it does", task, namespace, seconds)
    metrics.count_blocked_loop(namespace)


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    reconciler: Reconciler = memo.reconciler
    await reconciler.executor.close()
    reconciler.kube.close()


class NoDiffBase(kopf.DiffBaseStorage):
    """Keeps no last-handled configuration: nothing here reacts to a change of the spec (there are no create,
    update or resume handlers; the timer and daemon filters read the object itself), so every object's essence is
    empty and kopf never writes the ``last-handled-configuration`` annotation (one write per object less) nor copies
    the body to compare it on every event. Deletion is told by ``deletionTimestamp``, not by a diff."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        """Nothing to keep."""


def _to_follow(meta: kopf.Meta, status: kopf.Status, **_: Any) -> bool:
    """Unfinished, and guarded by our finalizer: nothing is submitted that a deletion could leave running
    uncancelled. (kopf starts timers on the first event, before its own finalizer patch is echoed; a status write
    then would make kopf patch the finalizer a second time.)"""
    return FINALIZER in (meta.get("finalizers") or ()) and status.get("phase") not in FINISHED_PHASES


def _expiring(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") in FINISHED_PHASES and spec.get("ttlSecondsAfterFinished") is not None


def _memory(memo: kopf.Memo) -> TaskMemory:
    if "task" not in memo:
        memo["task"] = TaskMemory()
    return memo["task"]


def _post(body: kopf.Body, events: list[Event]) -> None:
    for event in events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


@kopf.timer(*RESOURCE, id="advance", interval=1.0, when=_to_follow)
async def advance(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any) -> None:
    """Submit, then wait for news (at most pollIntervalSeconds at a time) and record it, until the task finished
    or kopf stops us; kopf calls again a second after an error or a step that neither wrote nor waited."""
    reconciler: Reconciler = memo.reconciler
    stop: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    watcher = asyncio.ensure_future(stopped.wait())
    watcher.add_done_callback(lambda _: stop.done() or stop.set_result(None))
    try:
        await reconciler.follow(body, _memory(memo), stop, lambda events: _post(body, events))
    except NotLeading:
        return  # the Lease is lost: kopf is being stopped
    except Exception as error:
        if not is_api_trouble(error):
            raise
        return  # Kube told the outage record; this timer runs again in a second
    finally:
        watcher.cancel()


@kopf.on.event(*RESOURCE, id="metrics")
async def count_phase(type: str, body: kopf.Body, status: kopf.Status, **_: Any) -> None:
    """Keep the tasks-by-phase gauge current, from every watch event (the initial listing included)."""
    if type == "DELETED":
        metrics.forget(body.metadata.uid)
    else:
        metrics.observe_phase(body.metadata.uid, status.get("phase"))


@kopf.on.delete(*RESOURCE, id="cancel")
async def cancel(body: kopf.Body, status: kopf.Status, memo: kopf.Memo, **_: Any) -> None:
    """Cancel the external job (deletionPolicy Delete) before the finalizer is removed."""
    reconciler: Reconciler = memo.reconciler
    while True:
        try:
            events = await reconciler.cancel(AirflowTaskResource.parse(body), dict(status), _memory(memo))
        except NotLeading:
            await asyncio.Event().wait()  # kopf is being stopped; the finalizer stays for the next leader
        except Exception as error:
            if is_api_trouble(error):  # Kube told the outage record: try again in a second
                await asyncio.sleep(1.0)
                continue
            kopf.warn(body, reason="CancelFailed", message=f"cancelling the external job failed: {describe(error)}")
            raise kopf.TemporaryError(f"cancelling failed: {describe(error)}", delay=10) from error
        _post(body, events)
        return


@kopf.daemon(*RESOURCE, id="expire", when=_expiring, cancellation_timeout=1.0)
async def expire(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any) -> None:
    """Delete a finished AirflowTask ``ttlSecondsAfterFinished`` after it finished."""
    reconciler: Reconciler = memo.reconciler
    while not stopped:
        remaining = Reconciler.ttl_remaining(AirflowTaskResource.parse(body))
        if remaining is None:
            return
        if remaining <= 0:
            try:
                await reconciler.kube.delete_task(body["metadata"]["namespace"], body["metadata"]["name"])
            except Exception as error:
                if not is_api_trouble(error):
                    raise
                await stopped.wait(1.0)  # Kube told the outage record
                continue
            return
        await stopped.wait(min(remaining, 30.0))
