"""Final GetTask phase of every Flyte fixture: the Kubernetes connector beside the in-process one.

    .venv/bin/python -P bench/flyte_phases.py

For every TaskTemplate of tests/fixtures/flyte (made by flytekitplugins-airflow), CreateTask is sent over
gRPC to two real ``pyflyte serve connector`` processes, then GetTask is polled (every second, as a faster
FlytePropeller) until the phase is terminal or 120 s have passed:

- ``airflowtask.flyte.connector``: creates an AirflowTask that the operator (a separate process) runs;
- ``airflowtask.connector_core.flyte``: runs the task inside the connector process.

Both get the connections the fixtures need: a Secret mapped with AIRFLOWTASK_FLYTE_CONNECTIONS, and
AIRFLOW_CONN_* variables. Prints a Markdown table: per connector the final phase and, in parentheses, the
seconds from the batch's first CreateTask until GetTask reported it (all fixtures are created at once, then
polled); the seed's outcome is from index.json. Uses the cluster of $KUBECONFIG when set, else a local
control plane (cached binaries).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import grpc

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "support"), str(REPO / "bench")]

from benchcluster import open_cluster  # noqa: E402
from flyte_grpc import (  # noqa: E402
    TERMINAL_PHASES,
    ConnectorClient,
    ConnectorServer,
    execution_metadata,
    fixture_index,
    phase_name,
)
from flyte_services import FixtureServices  # noqa: E402
from operator_process import OperatorProcess  # noqa: E402

NAMESPACE = "flyte-phases"
SECRET = "airflow-connections"
ALLOWED = "airflow.providers.*,airflow.sensors.*,airflow.operators.*,airflow.hooks.*,airflow.triggers.*,localjob"
TIMEOUT = 120.0


def final_phases(client: ConnectorClient, names: list[str], run: str) -> dict[str, tuple[str, float]]:
    """CreateTask for every fixture, then GetTask until each is terminal: name -> (phase or error, seconds)."""
    started = time.monotonic()
    metas: dict[str, bytes] = {}
    results: dict[str, tuple[str, float]] = {}
    for node, name in enumerate(names):  # one workflow execution, a node per fixture
        metadata = execution_metadata(name, execution=run, node_id=f"n{node}")
        try:
            metas[name] = client.create(name, task_execution_metadata=metadata)
        except grpc.RpcError as error:
            results[name] = (f"CreateTask {error.code().name}", time.monotonic() - started)
    while metas and time.monotonic() - started < TIMEOUT:
        for name, meta in list(metas.items()):
            try:
                resource = client.get(meta)
            except grpc.RpcError as error:
                results[name] = (f"GetTask {error.code().name}", time.monotonic() - started)
                del metas[name]
                continue
            if resource.phase in TERMINAL_PHASES:
                results[name] = (phase_name(resource), time.monotonic() - started)
                del metas[name]
        time.sleep(1)
    for name in metas:
        results[name] = (f"{phase_name(client.get(metas[name]))} after {TIMEOUT:.0f}s", TIMEOUT)
    return results


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="aft-flyte-phases-"))
    fixtures = fixture_index()["fixtures"]
    names = [entry["name"] for entry in fixtures]
    with ExitStack() as stack:
        cluster = open_cluster(stack, workdir)
        services = stack.enter_context(FixtureServices())
        cluster.kubectl("create", "namespace", NAMESPACE, check=False)
        cluster.kubectl("apply", "-f", "-", input=json.dumps(services.secret(NAMESPACE, SECRET)))
        base = cluster.env | {"PYTHONPATH": str(REPO / "tests" / "support"), "AIRFLOWTASK_ALLOWED_MODULES": ALLOWED}
        operator = OperatorProcess(base | {"AIRFLOW_HOME": str(workdir / "airflow")}, workdir / "operator.log",
                                   verbose=False)
        operator.start()
        stack.callback(operator.stop)
        kube = stack.enter_context(ConnectorServer(["airflowtask.flyte.connector"], env=base | {
            "AIRFLOWTASK_FLYTE_NAMESPACE": NAMESPACE,
            "AIRFLOWTASK_FLYTE_CONNECTIONS": ",".join(f"{c}={SECRET}/{c}" for c in services.connections),
        }))
        inproc = stack.enter_context(ConnectorServer(["airflowtask.connector_core.flyte"],
                                                     env=base | services.airflow_env()))
        run = f"bench{int(time.time())}"
        with ConnectorClient(kube.address) as client:
            on_kube = final_phases(client, names, run)
        with ConnectorClient(inproc.address) as client:
            in_process = final_phases(client, names, run)
    print("| fixture | expected | AirflowTask connector (s) | in-process connector_core (s) | seed (index.json) |")
    print("| --- | --- | --- | --- | --- |")
    for entry in fixtures:
        name = entry["name"]
        cells = [f"{phase} ({seconds:.1f})" for phase, seconds in (on_kube[name], in_process[name])]
        print(f"| {name} | {entry['expected_phase']} | {cells[0]} | {cells[1]} | {entry['seed']} |")


if __name__ == "__main__":
    main()
