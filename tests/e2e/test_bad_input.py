"""Bad input that the schema cannot catch ends Failed with a reason and a message naming the problem,
while other tasks keep running and the operator stays up."""

from __future__ import annotations

import pytest
from kubetools import Kubectl, airflow_task

BASH = ("airflow.providers.standard.operators.bash", "BashOperator")


def _secret(name: str, namespace: str, **data: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
            "stringData": data}


CASES = {
    "unknown-module": (
        airflow_task("bad", "NS", "airflow.providers.nowhere.sensors", "FileSensor"),
        "ImportFailed", "airflow.providers.nowhere.sensors",
    ),
    "unknown-class": (
        airflow_task("bad", "NS", "airflow.providers.standard.sensors.filesystem", "NoSuchSensor"),
        "ImportFailed", "NoSuchSensor",
    ),
    "class-not-allowed": (
        airflow_task("bad", "NS", "subprocess", "Popen", {"args": ["touch", "/tmp/airflowtask-pwned"]}),
        "NotAllowed", "subprocess",
    ),
    "wrong-parameter": (
        airflow_task("bad", "NS", "airflow.providers.standard.sensors.filesystem", "FileSensor",
                     {"filepath": "/etc/hostname", "no_such_argument": 1}),
        "InvalidParameters", "no_such_argument",
    ),
    "missing-secret": (
        airflow_task("bad", "NS", "airflow.providers.http.sensors.http", "HttpSensor",
                     {"http_conn_id": "api", "endpoint": "x"},
                     connections=[{"connId": "api", "secretRef": {"name": "absent"}}]),
        "MissingSecret", "absent",
    ),
    "invalid-connection": (
        airflow_task("bad", "NS", "airflow.providers.http.sensors.http", "HttpSensor",
                     {"http_conn_id": "api", "endpoint": "x"},
                     connections=[{"connId": "api", "secretRef": {"name": "broken", "key": "uri"}}]),
        "InvalidConnection", "api",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_clearly_while_others_run(
    kubectl: Kubectl, operator: object, namespace: str, case: str
) -> None:
    manifest, reason, named = CASES[case]
    manifest = {**manifest, "metadata": {"name": "bad", "namespace": namespace}}
    good = airflow_task("good", namespace, *BASH, {"bash_command": "sleep 2; echo fine"})
    kubectl.apply(_secret("broken", namespace, uri='{"conn_type": "http", "port": "not a port"'), good, manifest)
    bad = kubectl.wait_phase("bad", namespace, "Failed", timeout=60)["status"]
    assert bad["reason"] == reason
    assert named in bad["message"]
    assert bad["conditions"][0]["status"] == "False"
    assert ("Warning", reason) in [(t, r) for t, r, _ in kubectl.events("bad", namespace)]
    assert kubectl.wait_phase("good", namespace, "Succeeded", timeout=60)["status"]["result"] == "fine"
    assert operator.running  # type: ignore[attr-defined]


def test_not_allowed_class_is_never_imported(kubectl: Kubectl, operator: object, namespace: str) -> None:
    logged_before = len(operator.logs())  # type: ignore[attr-defined]
    kubectl.apply(airflow_task("evil", namespace, "antigravity", "Anything"))
    status = kubectl.wait_phase("evil", namespace, "Failed", timeout=60)["status"]
    assert status["reason"] == "NotAllowed"
    assert "antigravity" in status["message"]
    assert "Traceback" not in operator.logs()[logged_before:]  # type: ignore[attr-defined]
