"""The operator process: probes and metrics always, kopf's handlers only while this replica holds the Lease.

Replicas start the same way: import everything, serve ``/healthz`` and the metrics, and stand by. The one whose
:class:`~airflowtask.lease.LeaderElector` acquires the Lease runs kopf (``airflowtask.handlers``), with a
fence on every write it makes itself (:meth:`LeaderElector.may_act`). When it cannot renew, kopf is stopped
(all its handlers and timers, the executor with its triggers and Pod watch) and the replica stands by again;
Pods keep running and whoever leads next adopts them from status. SIGTERM stops kopf, then releases the
Lease, so that a standby takes over within one retry period.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import threading
import uuid
from urllib.parse import urlparse

import kopf
from aiohttp import web
from airflowtask import metrics
from airflowtask.kube import load_client_config
from airflowtask.lease import KubeLeaseStore, LeaderElector
from airflowtask.settings import Settings

log = logging.getLogger(__name__)


def identity() -> str:
    """This process's name in the Lease: its Pod (or host) and a random suffix, unique per process."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


async def serve(settings: Settings, liveness: str | None) -> None:
    """Run until SIGTERM/SIGINT: stand by, lead while the Lease is ours, stand by again when it is lost."""
    elector = LeaderElector(
        KubeLeaseStore(load_client_config(), settings.lease_namespace, settings.lease_name),
        identity(), settings.lease_timing,
    )
    probes = await _serve_probes(liveness, elector) if liveness else None
    if settings.metrics_port:
        metrics.serve(settings.metrics_port)
    loop = asyncio.get_running_loop()
    leading, lost, shutdown, term_over = (asyncio.Event() for _ in range(4))

    def started() -> None:
        lost.clear()
        term_over.clear()
        leading.set()

    def stopped() -> None:
        leading.clear()
        lost.set()
        term_over.set()

    def on_signal() -> None:
        shutdown.set()
        term_over.set()

    def take_signals() -> None:
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, on_signal)

    stop_electing = threading.Event()
    thread = threading.Thread(
        target=elector.run, name="lease", daemon=True,
        args=(stop_electing, lambda: loop.call_soon_threadsafe(started), lambda: loop.call_soon_threadsafe(stopped)),
    )
    thread.start()
    try:
        while True:
            take_signals()
            log.info("standing by for Lease %s/%s as %s", settings.lease_namespace, settings.lease_name,
                     elector.identity)
            await _first(leading.wait(), shutdown.wait())
            if shutdown.is_set():
                break
            if not leading.is_set():  # won and lost again meanwhile
                continue
            existing = asyncio.all_tasks()
            tasks = await kopf.spawn_tasks(
                standalone=True, clusterwide=not settings.namespaces, namespaces=list(settings.namespaces),
                stop_flag=term_over, memo=kopf.Memo(may_act=elector.may_act),
            )
            take_signals()  # over kopf's own handlers: stopping through them waits 5 s on kopf's flag waiter
            await kopf.run_tasks(tasks, ignored=existing)
            if shutdown.is_set() or not lost.is_set():  # a signal, or kopf stopped on its own (an error)
                break
    finally:
        stop_electing.set()  # releases the Lease if held
        await asyncio.to_thread(thread.join, 10)
        if probes is not None:
            await probes.cleanup()


async def _first(*waits: object) -> None:
    tasks = [asyncio.ensure_future(wait) for wait in waits]  # type: ignore[arg-type]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


async def _serve_probes(endpoint: str, elector: LeaderElector) -> web.AppRunner:
    """``GET <path>``: 200 while the event loop answers, in standby as when leading (the body says which)."""
    url = urlparse(endpoint)

    async def health(_: web.Request) -> web.Response:
        body = {"identity": elector.identity, "leading": elector.may_act()}
        return web.Response(text=json.dumps(body), content_type="application/json")

    app = web.Application()
    app.router.add_get(url.path or "/", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, url.hostname or "0.0.0.0", url.port or 8080).start()
    return runner
