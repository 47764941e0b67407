"""How fast the operator resumes after API trouble, and how much it logs about it.

    python -P bench/bench_outage.py [--rounds 3] [--down 30]

Deploys manifests/ (two replicas) on the local node, then, per round and per kind of trouble, keeps tasks running
across it: ``apiserver`` kills kube-apiserver for ``--down`` seconds; ``rbac`` deletes the operator's
ClusterRoleBinding for as long (and creates a task meanwhile). When the API answers again (or the binding is back)
a task is created, and the clock runs until the operator wrote the first status of each. Prints, per round: those
seconds, and the WARNING/ERROR lines and tracebacks the operator's replicas logged from the start of the trouble.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "support")]

from airflowtask.controlplane import LocalControlPlane  # noqa: E402
from airflowtask.install import NAMESPACE  # noqa: E402
from operator_deployment import OperatorDeployment  # noqa: E402

EMPTY = {"module": "airflow.providers.standard.operators.empty", "name": "EmptyOperator", "parameters": {}}
BASH = {"module": "airflow.providers.standard.operators.bash", "name": "BashOperator"}


def _task(name: str, namespace: str, operator: dict[str, object]) -> str:
    return json.dumps({"apiVersion": "airflowtask.dev/v1alpha1", "kind": "AirflowTask",
                       "metadata": {"name": name, "namespace": namespace}, "spec": {"operator": operator}})


def _first_status(plane: LocalControlPlane, name: str, namespace: str, since: float | None = None,
                  timeout: float = 300) -> float:
    """Seconds from ``since`` (default: now) until the task has a status."""
    started = since if since is not None else time.monotonic()
    while time.monotonic() - started < timeout:
        raw = plane.kubectl("get", "aft", name, "-n", namespace, "-o", "json", check=False).stdout
        if raw and json.loads(raw).get("status", {}).get("phase"):
            return time.monotonic() - started
        time.sleep(0.05)
    raise TimeoutError(f"{namespace}/{name}: no status within {timeout}s")


def _loud_lines(plane: LocalControlPlane, pods: list[str], since: str) -> tuple[list[str], int]:
    """WARNING-or-worse messages and the number of tracebacks in the replicas' logs since ``since``."""
    loud, tracebacks = [], 0
    for pod in pods:
        text = plane.kubectl("logs", "-n", NAMESPACE, pod, f"--since-time={since}", check=False).stdout
        for line in text.splitlines():
            tracebacks += "Traceback" in line
            record = json.loads(line) if line.startswith("{") else {}
            if record.get("severity") in ("warn", "error", "fatal"):
                loud.append(f"{pod[-5:]}: {record['message'][:150]}")
    return loud, tracebacks


def outage_round(plane: LocalControlPlane, operator: OperatorDeployment, kind: str, index: int,
                 trouble: Callable[[str], list[str]]) -> tuple[float, list[str], int]:
    operator.start()
    namespace = f"outage-{kind}-{index}"
    plane.kubectl("create", "namespace", namespace)
    for i in range(5):  # work that runs across the trouble
        plane.kubectl("apply", "-f", "-", input=_task(f"across-{i}", namespace, {**BASH, "parameters": {
            "bash_command": "sleep 20"}}))
    for i in range(5):
        _first_status(plane, f"across-{i}", namespace)
    pods = [pod["metadata"]["name"] for pod in operator.pods()]
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    during = trouble(namespace)  # the tasks it created while the operator could not act, if any
    back = time.monotonic()
    plane.kubectl("apply", "-f", "-", input=_task("after", namespace, EMPTY))
    resumed = max(_first_status(plane, name, namespace, since=back) for name in [*during, "after"])
    time.sleep(30)  # let the replicas log whatever they log about it
    loud, tracebacks = _loud_lines(plane, pods, since)
    plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    return resumed, loud, tracebacks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--down", type=float, default=30.0, help="seconds of trouble")
    args = parser.parse_args()
    with ExitStack() as stack:
        plane = stack.enter_context(LocalControlPlane(Path(tempfile.mkdtemp(prefix="aft-outage-"))))
        assert plane.images is not None
        operator = OperatorDeployment(plane, plane.images.operator, Path(tempfile.mkdtemp()), {})
        operator.deploy()
        binding = json.loads(plane.kubectl("get", "clusterrolebinding", "airflowtask-operator", "-o", "json").stdout)
        binding["metadata"] = {k: v for k, v in binding["metadata"].items() if k in ("name", "labels")}

        def remove_rbac(namespace: str) -> list[str]:
            plane.kubectl("delete", "clusterrolebinding", "airflowtask-operator")
            time.sleep(2)  # then work the operator sees through its open watches but may not act on
            plane.kubectl("apply", "-f", "-", input=_task("during", namespace, EMPTY))
            time.sleep(args.down - 2)
            plane.kubectl("create", "-f", "-", input=json.dumps(binding))
            return ["during"]

        def kill_api_server(namespace: str) -> list[str]:
            plane.restart("kube-apiserver", down_seconds=args.down)
            return []

        troubles = {"apiserver": kill_api_server, "rbac": remove_rbac}
        print(f"{'trouble':<10} {'round':>5} {'first status after it s':>24} {'WARNING+ lines':>15} "
              f"{'tracebacks':>11}", flush=True)
        for kind, trouble in troubles.items():
            for index in range(args.rounds):
                resumed, loud, tracebacks = outage_round(plane, operator, kind, index, trouble)
                print(f"{kind:<10} {index + 1:>5} {resumed:>24.1f} {len(loud):>15} {tracebacks:>11}", flush=True)
                for line in loud:
                    print(f"    {line}", flush=True)


if __name__ == "__main__":
    main()
