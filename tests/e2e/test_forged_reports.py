"""The operator believes nothing a task Pod says (issue 18): forged outcomes and forged status records.

A hostile tenant's task writes its own "outcome" to the termination log and ends the worker before it reports.
Each forgery asks the operator to run something where the operator's power is (an operator, a sensor, a hook, a
function, a class outside the allowlist, a callable in a trigger's kwargs); the forged command is a canary that,
had it run with the operator's ServiceAccount, would have created an Event in the tenant's namespace (which the
tenant itself cannot) and a file in the container's /tmp. The task must end Failed/InvalidOutcome and the canary
must not exist.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from airflowtask.controlplane import Kubectl as Cluster
from kubetools import Kubectl, airflow_task
from tenants import as_tenant

PYTHON = ("airflow.providers.standard.operators.python", "PythonOperator")
FORGE = {"__type": "callable", "__var": "task_callables.forge_outcome"}

# With the operator's token this creates Event <canary> in <namespace>; anywhere it leaves /tmp/<canary>.
CANARY = r"""python3 -c '
import json, os, ssl, urllib.request
open("/tmp/{canary}", "w").close()
token = open("/var/run/secrets/kubernetes.io/serviceaccount/token").read()
url = "https://%s:%s/api/v1/namespaces/{namespace}/events" % (os.environ["KUBERNETES_SERVICE_HOST"],
                                                               os.environ["KUBERNETES_SERVICE_PORT"])
body = {{"metadata": {{"name": "{canary}"}}, "reason": "Canary", "message": "forged code ran as the operator",
         "involvedObject": {{"kind": "Pod", "namespace": "{namespace}", "name": "x"}}}}
request = urllib.request.Request(url, json.dumps(body).encode(), {{"Authorization": "Bearer " + token,
                                                                   "Content-Type": "application/json"}})
urllib.request.urlopen(request, context=ssl._create_unverified_context(), timeout=10)
'"""


def _deferred(classpath: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    return {"phase": "Deferred", "reason": "Deferred", "message": "waiting", "retryable": True, "result": None,
            "jobId": None, "state": {},
            "deferral": {"trigger": {"classpath": classpath, "kwargs": kwargs}, "method": "execute_complete",
                         "nextKwargs": {}, "timeout": None, "deadline": None}}


def _bash(command: str) -> dict[str, Any]:
    return {"bash_command": command}


# (id, forged outcome (with {canary} and {namespace} filled in later), what the message must name)
CASES: list[tuple[str, Any, str]] = [
    ("operator", lambda cmd: _deferred("airflow.providers.standard.operators.bash.BashOperator", _bash(cmd)),
     "airflow.providers.standard.operators.bash.BashOperator is not a trigger"),
    ("sensor", lambda cmd: _deferred("airflow.providers.standard.sensors.bash.BashSensor", _bash(cmd)),
     "airflow.providers.standard.sensors.bash.BashSensor is not a trigger"),
    ("hook", lambda cmd: _deferred("airflow.providers.standard.hooks.subprocess.SubprocessHook", {}),
     "SubprocessHook is not a trigger"),
    ("function", lambda cmd: _deferred("task_callables.forge_outcome", {"outcome": cmd}),
     "task_callables.forge_outcome is not a trigger"),
    ("outside-allowlist", lambda cmd: _deferred("subprocess.Popen", {"args": cmd, "shell": True}),
     "subprocess"),
    ("callable-kwarg", lambda cmd: _deferred(
        "airflow.providers.standard.triggers.temporal.TimeDeltaTrigger",
        {"delta": {"__type": "callable", "__var": "os.system"}}), "callable"),
    ("unknown-key", lambda cmd: {**_deferred("airflow.providers.standard.triggers.temporal.DateTimeTrigger",
                                             {}), "command": cmd}, "command"),
    ("not-a-phase", lambda cmd: {"phase": "Run", "reason": "Completed", "message": cmd, "retryable": False,
                                 "result": None, "jobId": None, "state": {}, "deferral": None}, "phase"),
    ("not-json", lambda cmd: "{" + cmd, "not"),
]


def _assert_no_canary(kubectl: Kubectl, operator: Any, namespace: str, canary: str) -> None:
    events = kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    assert canary not in events, "the forged command ran with the operator's rights"
    check = f"import os; print(os.path.exists('/tmp/{canary}'))"
    for container in ("operator", "triggerer"):
        assert operator.exec_python(check, container).strip() == "False", f"the forged command ran in {container}"


@pytest.mark.parametrize(("case", "forge", "named"), CASES, ids=[case[0] for case in CASES])
def test_a_forged_outcome_ends_invalid_and_runs_nothing(
    cluster: Cluster, kubectl: Kubectl, operator: Any, namespace: str, tmp_path: Path,
    case: str, forge: Any, named: str,
) -> None:
    tenant = as_tenant(cluster, kubectl, namespace, tmp_path)
    canary = f"canary-{case}-{uuid.uuid4().hex[:6]}"
    forged = forge(CANARY.format(canary=canary, namespace=namespace))
    text = forged if isinstance(forged, str) else json.dumps(forged)  # a string: the API server keeps its nulls
    tenant.apply(airflow_task("forger", namespace, *PYTHON, {"python_callable": FORGE, "op_args": [text]}))
    status = kubectl.wait_task("forger", namespace, lambda o: o.get("status", {}).get("phase") == "Failed",
                               timeout=120)["status"]
    assert status["reason"] == "InvalidOutcome", status
    assert named in status["message"], status["message"]
    time.sleep(2)  # anything the operator would run after it gave the verdict has had its chance
    _assert_no_canary(kubectl, operator, namespace, canary)
    print(f"| {case} | {status['reason']} | {status['message']} | no Event, no file |")


def test_a_forged_status_record_ends_invalid_and_runs_nothing(
    cluster: Cluster, kubectl: Kubectl, operator: Any, namespace: str, tmp_path: Path,
) -> None:
    """A user granted patch on airflowtasks/status plants a deferral while the operator is down."""
    tenant = as_tenant(cluster, kubectl, namespace, tmp_path, "airflowtasks.airflowtask.dev/status")
    canary = f"canary-meta-{uuid.uuid4().hex[:6]}"
    tenant.apply(airflow_task("sleeper", namespace, "airflow.providers.standard.operators.bash", "BashOperator",
                              {"bash_command": "sleep 600"}))
    status = kubectl.wait_task("sleeper", namespace, lambda o: bool(o.get("status", {}).get("resourceMeta")),
                               timeout=120)["status"]
    real = json.loads(status["resourceMeta"])
    assert real["kind"] == "pods" and real["signature"]
    deferral = _deferred("airflow.providers.standard.operators.bash.BashOperator",
                         _bash(CANARY.format(canary=canary, namespace=namespace)))["deferral"]
    planted = {**real["record"], "step": "deferred", "pod": None, "deferral": deferral}
    operator.stop()
    try:
        forged = json.dumps({**real, "record": planted})
        tenant("patch", "airflowtask", "sleeper", "-n", namespace, "--subresource=status", "--type=merge",
               "-p", json.dumps({"status": {"resourceMeta": forged}}))
    finally:
        operator.start()
    status = kubectl.wait_task("sleeper", namespace, lambda o: o.get("status", {}).get("phase") == "Failed",
                               timeout=120)["status"]
    assert status["reason"] == "InvalidResourceMeta", status
    assert "signature does not match" in status["message"]
    _assert_no_canary(kubectl, operator, namespace, canary)
