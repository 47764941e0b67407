"""``spec.execution: WarmPool`` on the real node: steps run in forked children of warm worker Pods, one pool per
identity (namespace, ServiceAccount, image, podTemplate, connections), and a tenant reaches nothing of another's."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflowtask.controlplane import Kubectl as Cluster
from kubetools import Kubectl, airflow_task, wait_until
from tenants import as_tenant

BASH = ("airflow.providers.standard.operators.bash", "BashOperator")
POOL = "airflowtask.dev/pool"
FINISHED = ("Succeeded", "Failed")

# From inside a step: what another pool's worker answers to a forged start and to an unlock with a guessed key.
KNOCK = r"""python3 - <<'EOF'
import json, os, socket
answers = []
forged = {"op": "start", "id": "x", "order": {}, "ts": 0, "mac": "00"}
for line in (forged, {"op": "unlock", "key": os.urandom(32).hex()}):
    with socket.create_connection(("{ip}", 8790), timeout=10) as sock:
        sock.sendall(json.dumps(line).encode() + b"\n")
        answers.append(json.loads(sock.makefile().readline()))
print(json.dumps(answers))
EOF"""


def warm_task(name: str, namespace: str, command: str, **spec: Any) -> dict[str, Any]:
    return airflow_task(name, namespace, *BASH, {"bash_command": command}, execution="WarmPool", **spec)


def workers(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    raw = kubectl("get", "pods", "-n", namespace, "-l", POOL, "-o", "json").stdout
    return [pod for pod in json.loads(raw)["items"] if "deletionTimestamp" not in pod["metadata"]]


def worker_logs(kubectl: Kubectl, namespace: str) -> str:
    return "".join(kubectl("logs", pod["metadata"]["name"], "-n", namespace, check=False).stdout
                   for pod in workers(kubectl, namespace))


def finished(kubectl: Kubectl, name: str, namespace: str, timeout: float = 180) -> dict[str, Any]:
    return kubectl.wait_task(name, namespace, lambda o: o.get("status", {}).get("phase") in FINISHED, timeout)["status"]


def test_steps_of_one_identity_share_a_warm_worker_pod_hardened_like_a_task_pod(
    kubectl: Kubectl, operator: Any, namespace: str
) -> None:
    kubectl("create", "serviceaccount", "etl", "-n", namespace)
    kubectl.apply(warm_task("first", namespace, "echo $HOSTNAME as $(id -u)", serviceAccountName="etl"))
    first = finished(kubectl, "first", namespace)
    assert first["phase"] == "Succeeded", first
    kubectl.apply(warm_task("second", namespace, "echo $HOSTNAME as $(id -u)", serviceAccountName="etl"))
    second = finished(kubectl, "second", namespace)
    assert second["phase"] == "Succeeded", second
    [pod] = workers(kubectl, namespace)
    name = pod["metadata"]["name"]
    assert first["result"] == second["result"] == f"{name} as 10001"
    assert first["podName"] == second["podName"] == name
    assert pod["spec"]["serviceAccountName"] == "etl" and pod["spec"]["automountServiceAccountToken"] is False
    assert "ownerReferences" not in pod["metadata"]
    container = pod["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    log = kubectl("logs", name, "-n", namespace).stdout
    assert f"{namespace}/first execute | " in log and f"{namespace}/second execute | " in log
    assert "Running command" in second["logs"]
    row = kubectl("get", "aft", "second", "-n", namespace, "-o", "wide", "--no-headers").stdout
    assert name in row


def test_another_identity_gets_another_worker_and_a_step_cannot_drive_a_pool_not_its_own(
    cluster: Cluster, kubectl: Kubectl, operator: Any, namespace: str, tmp_path: Path
) -> None:
    tenant = as_tenant(cluster, kubectl, namespace, tmp_path)
    victim = f"{namespace}-b"[:63]
    kubectl("create", "namespace", victim)
    try:
        kubectl.apply(warm_task("own", victim, "echo $HOSTNAME"))
        assert finished(kubectl, "own", victim)["phase"] == "Succeeded"
        [other] = workers(kubectl, victim)
        tenant.apply(warm_task("knock", namespace, KNOCK.replace("{ip}", other["status"]["podIP"])))
        status = finished(kubectl, "knock", namespace)
        assert status["phase"] == "Succeeded", status
        forged, unlock = json.loads(status["result"])
        assert "signature does not match" in forged["error"]
        assert unlock == {"error": "that is not this pool's key"}
        [mine] = workers(kubectl, namespace)
        assert mine["metadata"]["name"] != other["metadata"]["name"]
        assert mine["metadata"]["labels"][POOL] != other["metadata"]["labels"][POOL]
        assert "refused an unlock" in kubectl("logs", other["metadata"]["name"], "-n", victim).stdout
    finally:
        kubectl("delete", "namespace", victim, "--wait=false", check=False)


def test_deleting_a_task_cancels_its_running_step_in_the_pool(kubectl: Kubectl, operator: Any, namespace: str) -> None:
    kubectl.apply(warm_task("long", namespace, "echo started; sleep 300"))
    wait_until(lambda: f"{namespace}/long execute | " in worker_logs(kubectl, namespace)
               and "] started" in worker_logs(kubectl, namespace), 120, "the step runs")
    [pod] = workers(kubectl, namespace)
    kubectl("delete", "aft", "long", "-n", namespace, "--wait=true", "--timeout=60s")
    log = kubectl("logs", pod["metadata"]["name"], "-n", namespace).stdout
    assert f"{namespace}/long execute | " in log
    assert "SIGTERM: stopping the execute step" in log
    assert "outcome: Failed Cancelled" in log


def test_a_worker_pod_killed_mid_step_retries_only_its_steps(kubectl: Kubectl, operator: Any, namespace: str) -> None:
    kubectl.apply(warm_task("victim", namespace, "echo attempt; sleep 30; echo done", backoffLimit=1))
    wait_until(lambda: workers(kubectl, namespace) and kubectl.get_json("aft", "victim", namespace)
               .get("status", {}).get("reason") == "Executing", 120, "the step runs in a worker")
    [pod] = workers(kubectl, namespace)
    kubectl("delete", "pod", pod["metadata"]["name"], "-n", namespace, "--grace-period=0", "--force")
    status = finished(kubectl, "victim", namespace, timeout=240)
    assert status["phase"] == "Succeeded", status
    assert status["attempts"] == 2
    assert any("attempt 1 failed (WorkerLost: " in message for _, _, message in kubectl.events("victim", namespace))
    [replacement] = workers(kubectl, namespace)
    assert replacement["metadata"]["name"] != pod["metadata"]["name"]


def test_an_idle_pool_goes_to_zero_pods_and_comes_back(kubectl: Kubectl, operator: Any, namespace: str) -> None:
    """Whatever its steps did (succeed, defer, fail and retry, be cancelled), each outcome is forgotten once it is in
    the status: a worker keeps one it has not been told to forget, and such a worker is never retired. A task
    deferred for an hour keeps no worker meanwhile."""
    due = datetime.now(UTC) + timedelta(hours=1)
    kubectl.apply(warm_task("before", namespace, "true"))
    kubectl.apply(airflow_task("deferred", namespace, "airflow.providers.standard.sensors.date_time",
                               "DateTimeSensorAsync", {"target_time": due.isoformat()}, execution="WarmPool"))
    kubectl.apply(warm_task("retried", namespace, "test {{ ti.try_number }} -ge 2", backoffLimit=1))
    kubectl.apply(warm_task("deleted", namespace, "echo started; sleep 300"))
    wait_until(lambda: "] started" in worker_logs(kubectl, namespace), 120, "the step to delete runs")
    kubectl("delete", "aft", "deleted", "-n", namespace, "--wait=true", "--timeout=60s")
    for name, attempts in (("before", 1), ("retried", 2)):
        status = finished(kubectl, name, namespace)
        assert (status["phase"], status["attempts"]) == ("Succeeded", attempts), status
    wait_until(lambda: not workers(kubectl, namespace), 120, "the idle pool is scaled to zero")
    assert kubectl.get_json("aft", "deferred", namespace)["status"]["reason"] == "Deferred"
    kubectl.apply(warm_task("after", namespace, "echo back"))
    status = finished(kubectl, "after", namespace)
    assert (status["phase"], status["result"]) == ("Succeeded", "back")


def test_a_deferred_tasks_callback_runs_in_the_pool(kubectl: Kubectl, operator: Any, namespace: str) -> None:
    due = datetime.now(UTC) + timedelta(seconds=5)
    kubectl.apply(airflow_task("nap", namespace, "airflow.providers.standard.sensors.date_time", "DateTimeSensorAsync",
                               {"target_time": due.isoformat()}, execution="WarmPool"))
    status = finished(kubectl, "nap", namespace)
    assert status["phase"] == "Succeeded", status
    assert datetime.now(UTC) >= due
    log = worker_logs(kubectl, namespace)
    assert f"{namespace}/nap execute | " in log, log
    assert f"{namespace}/nap callback | " in log, log
    assert status["podName"] in {pod["metadata"]["name"] for pod in workers(kubectl, namespace)}


def test_a_step_past_the_workers_memory_limit_is_killed_alone(kubectl: Kubectl, operator: Any, namespace: str) -> None:
    limited = {"spec": {"resources": {"limits": {"memory": "600Mi"}}}}
    kubectl.apply(warm_task("modest", namespace, "echo begun; sleep 10; echo fine", podTemplate=limited))
    wait_until(lambda: "] begun" in worker_logs(kubectl, namespace), 120, "the modest step runs")
    kubectl.apply(airflow_task("hungry", namespace, "airflow.providers.standard.operators.python", "PythonOperator",
                               {"python_callable": {"__type": "callable", "__var": "task_callables.allocate"},
                                "op_args": [2048]}, execution="WarmPool", podTemplate=limited))
    hungry = finished(kubectl, "hungry", namespace)
    assert (hungry["phase"], hungry["reason"]) == ("Failed", "StepKilled"), hungry
    assert "killed by SIGKILL" in hungry["message"]
    modest = finished(kubectl, "modest", namespace)
    assert (modest["phase"], modest["result"]) == ("Succeeded", "fine"), modest
    [pod] = workers(kubectl, namespace)
    assert pod["metadata"]["name"] == hungry["podName"] == modest["podName"]
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0


def test_every_state_a_watcher_sees_is_guarded_by_the_finalizer(kubectl: Kubectl, operator: Any,
                                                                 namespace: str) -> None:
    names = [f"guarded-{i}" for i in range(4)]
    states = '{.metadata.name} {.metadata.finalizers[*]} {.status.phase}/{.status.reason}{"\\n"}'
    with kubectl.watching("get", "airflowtasks", "-n", namespace, "--watch", "-o", f"jsonpath={states}") as lines:
        time.sleep(2)  # the watch is open
        kubectl.apply(*(warm_task(name, namespace, "true") for name in names))
        for name in names:
            assert finished(kubectl, name, namespace)["phase"] == "Succeeded"
        time.sleep(1)
    seen = [line.split() for line in lines if line.strip()]
    assert {fields[0] for fields in seen if fields[-1] == "Succeeded/Completed"} == set(names), lines
    # Nothing is submitted before a deletion would be stopped to cancel it.
    assert [f for f in seen if f[-1] != "/" and "airflowtask.dev/cancel-external-job" not in f] == [], lines


def test_an_operator_killed_with_steps_in_flight_adopts_them_and_runs_nothing_twice(
    kubectl: Kubectl, operator: Any, namespace: str
) -> None:
    names = [f"inflight-{i}" for i in range(3)]
    kubectl.apply(*(warm_task(name, namespace, f"echo ran-{name}-$((6*7)); sleep 8") for name in names))
    wait_until(lambda: all(f"ran-{name}-42" in worker_logs(kubectl, namespace) for name in names), 120,
               "every step runs")
    operator.kill()
    operator.start()
    for name in names:
        status = finished(kubectl, name, namespace)
        assert (status["phase"], status["attempts"]) == ("Succeeded", 1), status
    log = worker_logs(kubectl, namespace)
    assert [log.count(f"ran-{name}-42\n") for name in names] == [1, 1, 1], log
    assert len(workers(kubectl, namespace)) == 1
