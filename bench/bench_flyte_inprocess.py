"""The Flyte in-process face under load: N DateTimeSensorAsync tasks polled every 0.5 s with encode/decode.

Run: ``.venv/bin/python -P bench/bench_flyte_inprocess.py [--n 5000] [--mixed] [--lead S] [--create-concurrency C]``;
the original side by side: ``.bench-venv/bin/python -P bench/bench_flyte_inprocess.py --original ...``
(flytekitplugins-airflow 1.16.31 with the Airflow 2 it supports; ``hack/bench-venv.sh`` makes that venv).
(Airflow's log lines go to stdout too: redirect it to a file and read the last two lines).

It drives the ``AirflowConnector`` registered in flytekit's ``ConnectorRegistry`` exactly as flytekit's
``AsyncConnectorService`` does: ``create(task_template)`` returns metadata that is ``encode()``d to bytes;
every poll decodes those bytes (``AirflowMetadata.decode``), calls ``get()`` and turns the Resource into its
protobuf. The templates are the fixture flytekitplugins-airflow made (tests/fixtures/flyte), with
``target_time`` set to one due time for all tasks, ``--lead`` seconds after the start (creation must end
before it). One asyncio task per Flyte task creates it, then polls every 0.5 s until get() reports SUCCEEDED;
at most ``--create-concurrency`` CreateTask calls are in flight at once (FlytePropeller rate-limits its calls
to a connector; 0: all N at once).

Prints (get() first reports SUCCEEDED) - (due time) as p50/p99/max, the event-loop lag seen by a ticker
(10 ms sleeps) over the whole run (and from the moment all are deferred), and the RSS. ``--mixed``: 200
deferred tasks plus 10 BashOperator tasks printing a line a second for the whole run; there the loop lag is
the figure that matters.
Targets: 5000 deferred with p99 <= 1 s and lag <= 250 ms; mixed with lag < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

if "--original" in sys.argv:  # flytekitplugins-airflow's connector (in .bench-venv), registered on import
    from flytekitplugins.airflow.connector import AirflowMetadata
else:  # ours (registers the connector, as --modules does)
    import airflowtask.connector_core.flyte  # noqa: F401
    from airflowtask.connector_core import AirflowMetadata
from flyte_grpc import load_template
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.core.tasks_pb2 import TaskTemplate as TaskTemplateProto
from flytekit.extend.backend.base_connector import AsyncConnectorBase, ConnectorRegistry
from flytekit.models.task import TaskTemplate

POLL_SECONDS = 0.5
TICK = 0.01
MIXED_DEFERRED = 200
MIXED_BASH = 10


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sensor_template(task_id: str, due: dt.datetime) -> TaskTemplateProto:
    """The date_time_sensor_async fixture, with its own task_id and ``target_time`` = ``due`` (jsonpickle form)."""
    proto = load_template("date_time_sensor_async")
    config = json.loads(proto.custom["task_config_pkl"])
    state = config["parameters"]["target_time"]["__reduce__"][1]
    state[0] = base64.b64encode(due.__reduce__()[1][0]).decode()  # datetime's pickled fields; tzinfo stays UTC
    config["parameters"]["task_id"] = task_id
    proto.custom["task_config_pkl"] = json.dumps(config)
    proto.id.name = task_id
    return proto


def bash_template(task_id: str, seconds: int) -> TaskTemplateProto:
    """The bash_ok fixture, running ``seconds`` seconds and printing a line each second."""
    proto = load_template("bash_ok")
    config = json.loads(proto.custom["task_config_pkl"])
    command = f"for i in $(seq {seconds}); do sleep 1; echo x $i; done"
    config["parameters"] = {"task_id": task_id, "bash_command": command}
    proto.custom["task_config_pkl"] = json.dumps(config)
    proto.id.name = task_id
    return proto


async def ticker(lags: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(TICK)
        lags.append(time.perf_counter() - before - TICK)


async def flyte_task(connector: AsyncConnectorBase, template: TaskTemplateProto, creating: asyncio.Semaphore,
                     created: list[int]) -> float:
    """CreateTask, then GetTask every 0.5 s as the connector service serves them; when SUCCEEDED (time.time())."""
    async with creating:
        meta = await connector.create(task_template=TaskTemplate.from_flyte_idl(template), inputs=None)
    created[0] += 1
    blob = meta.encode()
    while True:
        found = await connector.get(resource_meta=AirflowMetadata.decode(blob))
        idl = await found.to_flyte_idl()
        if idl.phase == TaskExecution.SUCCEEDED:
            return time.time()
        if idl.phase in (TaskExecution.FAILED, TaskExecution.ABORTED):
            raise RuntimeError(f"task failed: {idl.message}")
        await asyncio.sleep(POLL_SECONDS)


@dataclass
class Figures:
    latencies: list[float]
    """Seconds from the due time to get() first reporting SUCCEEDED, per deferred task."""
    lags: list[float]
    lags_deferred: list[float]
    """The lags from the moment all tasks are deferred."""
    created: float
    """Seconds until all tasks were deferred."""
    rss_deferred: float


async def measure(deferred: int, bash: int, lead: float, create_concurrency: int) -> Figures:
    connector = ConnectorRegistry.get_connector("airflow", 0)
    lags: list[float] = []
    stop = asyncio.Event()
    tick = asyncio.create_task(ticker(lags, stop))
    started = time.time()
    due = dt.datetime.fromtimestamp(started + lead, dt.UTC)
    templates = [bash_template(f"bash-{i}", int(lead) + 5) for i in range(bash)]
    templates += [sensor_template(f"sensor-{i}", due) for i in range(deferred)]
    creating = asyncio.Semaphore(create_concurrency or len(templates))
    returned = [0]
    tasks = [asyncio.create_task(flyte_task(connector, template, creating, returned)) for template in templates]
    engine = getattr(connector, "engine", None)  # the original has none: then wait for every CreateTask to return
    while (engine.running_triggers if engine else returned[0] - bash) < deferred and time.time() < due.timestamp():
        await asyncio.sleep(0.05)
    created = time.time() - started
    ticks_while_creating = len(lags)
    rss_deferred = rss_mb()
    done = await asyncio.gather(*tasks)
    stop.set()
    await tick
    latencies = [at - due.timestamp() for at in done[bash:]]
    return Figures(latencies, lags, lags[ticks_while_creating:], created, rss_deferred)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(int(len(ordered) * q) - 1, 0)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="deferred DateTimeSensorAsync tasks (default 5000)")
    parser.add_argument("--mixed", action="store_true", help=f"{MIXED_DEFERRED} deferred + {MIXED_BASH} Bash tasks")
    parser.add_argument("--lead", type=float, help="seconds from start to the due time (default 5 + n/250)")
    parser.add_argument("--create-concurrency", type=int, default=100, help="CreateTask calls in flight (default 100)")
    parser.add_argument("--original", action="store_true",
                        help="flytekitplugins-airflow's connector instead of ours (run with .bench-venv's python)")
    args = parser.parse_args()
    deferred, bash = (MIXED_DEFERRED, MIXED_BASH) if args.mixed else (args.n, 0)
    lead = args.lead if args.lead is not None else 5 + deferred / 250
    rss_start = rss_mb()
    run = asyncio.run(measure(deferred, bash, lead, args.create_concurrency))
    late = " (LATE: creation overran the lead; raise --lead)" if run.created > lead else ""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"created {deferred} deferred + {bash} bash in {run.created:.1f}s (lead {lead:.0f}s){late}; "
        f"RSS {rss_start:.0f} MB at start, {run.rss_deferred:.0f} MB all deferred, peak {peak:.0f} MB"
    )
    print(
        f"{deferred} deferred + {bash} bash: due -> SUCCEEDED p50 {ms(statistics.median(run.latencies))}, "
        f"p99 {ms(quantile(run.latencies, 0.99))}, max {ms(max(run.latencies))} | "
        f"loop lag p99 {ms(quantile(run.lags, 0.99))}, max {ms(max(run.lags))} "
        f"(all deferred: p99 {ms(quantile(run.lags_deferred, 0.99))}, max {ms(max(run.lags_deferred))}) "
        f"| RSS peak {peak:.0f} MB"
    )


if __name__ == "__main__":
    main()
