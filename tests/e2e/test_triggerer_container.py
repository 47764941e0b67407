"""Triggers run in the triggerer container of the operator Pod, where no credentials are (issue 15).

The operator from manifests/ on the real node: its triggerer container mounts no token and cannot act as the
operator; a trigger that blocks its event loop for 60 s is reported once and leaves another namespace's
triggers on time; the triggerer, killed, is restarted by the kubelet and its triggers resume.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubetools import Kubectl, airflow_task
from operator_deployment import OperatorDeployment

DEFERRING = ("task_callables", "DeferringOperator")

# From a container: does it hold a token, any secret-looking variable, and what does the API say to it?
PROBE = r"""
import glob, json, os, ssl, urllib.error, urllib.request
tokens = glob.glob("/var/run/secrets/**/token", recursive=True)
url = "https://%s:%s/api/v1/namespaces/airflowtask-system/secrets" % (
    os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"])
headers = {"Authorization": "Bearer " + open(tokens[0]).read()} if tokens else {}
try:
    urllib.request.urlopen(urllib.request.Request(url, headers=headers), context=ssl._create_unverified_context())
    code = 200
except urllib.error.HTTPError as error:
    code = error.code
secretish = sorted(n for n in os.environ if any(w in n for w in ("KEY", "TOKEN", "SECRET", "PASSWORD")))
print(json.dumps({"kubernetes_dir": os.path.exists("/var/run/secrets/kubernetes.io"), "tokens": len(tokens),
                  "code": code, "env": secretish}))
"""


def _probe(operator: OperatorDeployment, container: str) -> dict[str, Any]:
    return json.loads(operator.exec_python(PROBE, container))


def test_the_triggerer_holds_no_credential_and_cannot_act_as_the_operator(operator: OperatorDeployment) -> None:
    triggerer = _probe(operator, "triggerer")
    assert triggerer == {"kubernetes_dir": False, "tokens": 0, "code": 403, "env": []}, triggerer
    controller = _probe(operator, "operator")
    assert controller["tokens"] == 1  # the controller container alone holds the operator's token


@pytest.fixture
def other_namespace(kubectl: Kubectl) -> Iterator[str]:
    name = f"other-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def _metric(operator: OperatorDeployment, name: str, namespace: str) -> float:
    text = urllib.request.urlopen(operator.metrics_url, timeout=5).read().decode()
    match = re.search(rf'^{name}\{{namespace="{namespace}"\}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _deferred(obj: dict[str, Any]) -> bool:
    return obj.get("status", {}).get("reason") == "Deferred"


def test_a_trigger_blocking_its_loop_leaves_another_namespaces_triggers_on_time(
    kubectl: Kubectl, operator: OperatorDeployment, namespace: str, other_namespace: str
) -> None:
    blocked_before = _metric(operator, "airflowtask_trigger_loop_blocked_total", namespace)
    due = time.time() + 40  # every execute Pod has deferred well before, even on a loaded 2-core node
    kubectl.apply(airflow_task("hog", namespace, *DEFERRING, {"trigger": "blocking", "block": 60}))
    for index in range(5):
        kubectl.apply(airflow_task(f"on-time-{index}", other_namespace, *DEFERRING,
                                   {"trigger": "at", "at": due + index}))
    kubectl.wait_task("hog", namespace, _deferred, timeout=120)
    for index in range(5):
        kubectl.wait_task(f"on-time-{index}", other_namespace, _deferred, timeout=120)
    assert time.time() < due, "too slow to test: a trigger was deferred after it was due"
    lateness = []
    for index in range(5):
        status = kubectl.wait_phase(f"on-time-{index}", other_namespace, "Succeeded", timeout=120)["status"]
        lateness.append(float(status["result"]) - (due + index))
    hog = kubectl.wait_phase("hog", namespace, "Succeeded", timeout=120)["status"]
    print(f"other namespace's triggers late by (s): {', '.join(f'{late:.3f}' for late in lateness)}")
    assert max(lateness) < 1.0, lateness
    assert hog["result"] == "woke"
    warnings = [line for line in operator.logs().splitlines() if "blocked the triggerer's event loop" in line]
    assert len(warnings) == 1 and f"{namespace}/hog" in warnings[0], warnings
    assert _metric(operator, "airflowtask_trigger_loop_blocked_total", namespace) == blocked_before + 1


def test_a_killed_triggerer_restarts_and_its_triggers_resume(
    kubectl: Kubectl, operator: OperatorDeployment, namespace: str
) -> None:
    restarts = operator.container_restarts("triggerer")
    due = time.time() + 25
    kubectl.apply(airflow_task("survivor", namespace, *DEFERRING, {"trigger": "at", "at": due}))
    kubectl.wait_task("survivor", namespace, lambda o: o.get("status", {}).get("reason") == "Deferred", timeout=120)
    operator.kill_triggerer()
    status = kubectl.wait_phase("survivor", namespace, "Succeeded", timeout=120)["status"]
    assert operator.container_restarts("triggerer") == restarts + 1
    assert operator.running, "the controller went on: only the triggerer was restarted"
    assert float(status["result"]) >= due
    pods = kubectl("get", "pods", "-n", namespace, "-o", "json").stdout
    steps = sorted(pod["metadata"]["labels"]["airflowtask.dev/step"] for pod in json.loads(pods)["items"])
    assert steps == ["callback-1", "execute"], "the callback ran once"


@pytest.mark.parametrize(("trigger", "phase", "reason", "message"), [
    ("succeeding", "Succeeded", "Completed", "the trigger ended the task"),
    ("ending-failed", "Failed", "TaskFailed", "the trigger ended the task as failed"),
])
def test_a_trigger_that_ends_the_task_ends_it_without_a_callback(
    kubectl: Kubectl, operator: OperatorDeployment, namespace: str, trigger: str, phase: str, reason: str,
    message: str,
) -> None:
    """A task-end event (TaskSuccessEvent, TaskFailedEvent) is the verdict itself: no Pod runs after it."""
    kubectl.apply(airflow_task("ender", namespace, *DEFERRING, {"trigger": trigger}))
    status = kubectl.wait_phase("ender", namespace, phase, timeout=120)["status"]
    assert (status["reason"], status["message"]) == (reason, message)
    pods = kubectl("get", "pods", "-n", namespace, "-o", "json").stdout
    steps = [pod["metadata"]["labels"]["airflowtask.dev/step"] for pod in json.loads(pods)["items"]]
    assert steps == ["execute"]
