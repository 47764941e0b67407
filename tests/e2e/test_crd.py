"""The AirflowTask API as the API server serves it: schema, defaults, validation, columns, docs."""

from __future__ import annotations

import pytest
from kubetools import AFT, Kubectl, airflow_task

FILE_SENSOR = ("airflow.providers.standard.sensors.filesystem", "FileSensor", {"filepath": "/etc/hostname"})


def test_crd_is_established_with_short_name_and_category(kubectl: Kubectl, crd: None) -> None:
    resources = kubectl("api-resources", "--api-group=airflowtask.dev", "-o", "wide").stdout
    assert "airflowtasks" in resources and "aft" in resources and "AirflowTask" in resources
    assert "airflow" in resources  # category
    assert "AirflowTask" in kubectl("get", "crd", AFT, "-o", "jsonpath={.spec.names.kind}").stdout


def test_valid_task_is_accepted_with_defaults(kubectl: Kubectl, crd: None, namespace: str) -> None:
    kubectl.apply(airflow_task("valid", namespace, *FILE_SENSOR))
    spec = kubectl.get_json(AFT, "valid", namespace)["spec"]
    assert spec["pollIntervalSeconds"] == 10
    assert spec["backoffLimit"] == 0
    assert spec["deletionPolicy"] == "Delete"


@pytest.mark.parametrize(
    ("manifest_change", "expected"),
    [
        (lambda m: m["spec"]["operator"].pop("module"), "spec.operator.module: Required value"),
        (lambda m: m["spec"].update(pollIntervalSeconds=-1), "spec.pollIntervalSeconds: Invalid value: -1"),
        (lambda m: m["spec"].update(deletionPolicy="Keep"), 'spec.deletionPolicy: Unsupported value: "Keep"'),
        (lambda m: m["spec"]["operator"].update(module="not a module"), "spec.operator.module: Invalid value"),
        (lambda m: m["spec"].update(backoffLimit=-2), "spec.backoffLimit: Invalid value: -2"),
        (lambda m: m["spec"].update(podTemplate={"spec": {"nodeSelecter": {"pool": "batch"}}}),
         'unknown field "spec.podTemplate.spec.nodeSelecter"'),
        (lambda m: m["spec"].update(podTemplate={"spec": {"env": [{"name": "AIRFLOW_CONN_FS", "value": "fs://"}]}}),
         "spec.podTemplate.spec.env[0]: Invalid value: AIRFLOW_CONN_FS is set by the operator"),
        (lambda m: m["spec"].update(serviceAccountName="Not_A_Name"), "spec.serviceAccountName: Invalid value"),
    ],
    ids=["missing-module", "negative-poll-interval", "unknown-deletion-policy", "bad-module-path", "negative-backoff",
         "pod-template-typo", "reserved-env", "bad-service-account"],
)
def test_invalid_task_is_rejected_with_a_readable_message(
    kubectl: Kubectl, crd: None, namespace: str, manifest_change: object, expected: str
) -> None:
    manifest = airflow_task("invalid", namespace, *FILE_SENSOR)
    manifest_change(manifest)  # type: ignore[operator]
    result = kubectl.apply(manifest, check=False)
    assert result.returncode != 0
    assert expected in result.stderr
    assert not kubectl.exists(AFT, "invalid", namespace)


def test_spec_is_immutable_except_ttl(kubectl: Kubectl, crd: None, namespace: str) -> None:
    kubectl.apply(airflow_task("immutable", namespace, *FILE_SENSOR))
    changed = airflow_task("immutable", namespace, *FILE_SENSOR, pollIntervalSeconds=99)
    result = kubectl.apply(changed, check=False)
    assert result.returncode != 0
    assert "spec is immutable after creation; only ttlSecondsAfterFinished may change" in result.stderr
    params = airflow_task("immutable", namespace, FILE_SENSOR[0], FILE_SENSOR[1], {"filepath": "/other"})
    assert "spec is immutable" in kubectl.apply(params, check=False).stderr
    template = airflow_task("immutable", namespace, *FILE_SENSOR, podTemplate={"metadata": {"labels": {"a": "b"}}})
    assert "spec is immutable" in kubectl.apply(template, check=False).stderr
    kubectl.apply(airflow_task("immutable", namespace, *FILE_SENSOR, ttlSecondsAfterFinished=60))
    assert kubectl.get_json(AFT, "immutable", namespace)["spec"]["ttlSecondsAfterFinished"] == 60


def test_kubectl_get_shows_the_columns(kubectl: Kubectl, crd: None, namespace: str) -> None:
    kubectl.apply(airflow_task("columns", namespace, *FILE_SENSOR))
    header = kubectl("get", "aft", "-n", namespace).stdout.splitlines()[0].split()
    assert header == ["NAME", "OPERATOR", "PHASE", "REASON", "AGE"]
    wide = kubectl("get", "aft", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split() == [
        "NAME", "OPERATOR", "PHASE", "REASON", "ATTEMPTS", "JOB", "POD", "MODULE", "MESSAGE", "AGE"
    ]
    assert "FileSensor" in wide[1] and "airflow.providers.standard.sensors.filesystem" in wide[1]


def test_kubectl_explain_teaches_the_api(kubectl: Kubectl, crd: None) -> None:
    text = kubectl("explain", "airflowtask.spec.operator").stdout
    assert "The Airflow class to run and its constructor arguments." in text
    assert "Python module path of the class" in text
    template = " ".join(kubectl("explain", "airflowtask.spec.podTemplate").stdout.split())  # unwrapped
    assert "Labels, annotations and Pod settings merged over the hardened default of the task's Pods" in template
    assert "nodeSelector" in kubectl("explain", "airflowtask.spec.podTemplate.spec").stdout
    recursive = kubectl("explain", "airflowtask", "--recursive").stdout
    for field in ("pollIntervalSeconds", "deletionPolicy", "resourceMeta", "conditions", "logLinks", "podTemplate",
                  "serviceAccountName", "podName"):
        assert field in recursive
