"""A tiny local job service, and a deferrable operator that submits jobs to it.

:class:`JobService` is an HTTP server in a thread: ``POST /jobs`` with ``{"duration": s, "result": x}``
returns ``{"id": ...}``; ``GET /jobs/<id>`` returns ``{"id", "state", "result"}`` where state is
``running``, ``succeeded`` or ``cancelled``; ``DELETE /jobs/<id>`` cancels a job.

:class:`LocalJobOperator` submits a job (through the Airflow connection ``service_conn_id``, an
``http://`` URI), stores ``job_id``, defers to :class:`LocalJobTrigger` (which polls the status, looking
the connection up itself), returns the job's result from ``execute_complete`` and cancels the job in
``on_kill``. :func:`hello` is a ``python_callable`` for PythonOperator tests.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from airflow.sdk import BaseHook, BaseOperator
from airflow.sdk.exceptions import AirflowException
from airflow.triggers.base import BaseTrigger, TriggerEvent
from local_http import JsonHandler, LocalServer


@dataclass
class Job:
    id: str
    ends_at: float
    result: Any
    cancelled: bool = False

    @property
    def state(self) -> str:
        if self.cancelled:
            return "cancelled"
        return "succeeded" if time.monotonic() >= self.ends_at else "running"


class JobService:
    """The job service; use as a context manager, or start() and stop()."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        service = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                job = Job(uuid.uuid4().hex[:8], time.monotonic() + float(body.get("duration", 0)), body.get("result"))
                service.jobs[job.id] = job
                self.reply(201, {"id": job.id})

            def do_GET(self) -> None:
                job = service.jobs.get(self.path.rsplit("/", 1)[-1])
                if job is None:
                    self.reply(404, {"error": "no such job"})
                else:
                    self.reply(200, {"id": job.id, "state": job.state, "result": job.result})

            def do_DELETE(self) -> None:
                job = service.jobs.get(self.path.rsplit("/", 1)[-1])
                if job is not None and job.state == "running":
                    job.cancelled = True
                self.reply(200 if job else 404, {"cancelled": bool(job and job.cancelled)})

        self.server = LocalServer(Handler)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> JobService:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> JobService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def hello(name: str) -> str:
    """A python_callable for PythonOperator tests (the Flyte fixtures name it ``localjob.hello``)."""
    return f"hello {name}"


def _base_url(conn: Any) -> str:
    return f"http://{conn.host}:{conn.port}"


def _request(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


class LocalJobTrigger(BaseTrigger):
    """Polls a job's status until it is no longer running."""

    def __init__(self, conn_id: str, job_id: str, poll_interval: float = 0.2) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.job_id = job_id
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__name__}",
            {"conn_id": self.conn_id, "job_id": self.job_id, "poll_interval": self.poll_interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        conn = await BaseHook.aget_connection(self.conn_id)
        url = f"{_base_url(conn)}/jobs/{self.job_id}"
        while True:
            status = await asyncio.to_thread(_request, "GET", url)
            if status["state"] != "running":
                yield TriggerEvent(status)
                return
            await asyncio.sleep(self.poll_interval)


class LocalJobOperator(BaseOperator):
    """Submits a job to the local job service and waits for it (deferred)."""

    template_fields = ("result",)

    def __init__(
        self,
        *,
        service_conn_id: str = "local_jobs",
        duration_seconds: float = 30,
        result: Any = None,
        poll_interval: float = 0.2,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.service_conn_id = service_conn_id
        self.duration_seconds = duration_seconds
        self.result = result
        self.poll_interval = poll_interval
        self.deferrable = deferrable
        self.job_id: str | None = None

    def _jobs_url(self) -> str:
        return f"{_base_url(BaseHook.get_connection(self.service_conn_id))}/jobs"

    def execute(self, context: Any) -> Any:
        self.job_id = _request("POST", self._jobs_url(), {"duration": self.duration_seconds, "result": self.result})[
            "id"
        ]
        self.log.info("submitted job %s", self.job_id)
        if not self.deferrable:
            while (status := _request("GET", f"{self._jobs_url()}/{self.job_id}"))["state"] == "running":
                time.sleep(self.poll_interval)
            return self.execute_complete(context, status)
        self.defer(
            trigger=LocalJobTrigger(self.service_conn_id, self.job_id, self.poll_interval),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        if event["state"] != "succeeded":
            raise AirflowException(f"job {event['id']} ended {event['state']}")
        return event["result"]

    def on_kill(self) -> None:
        if self.job_id:
            self.log.info("cancelling job %s", self.job_id)
            _request("DELETE", f"{self._jobs_url()}/{self.job_id}")
