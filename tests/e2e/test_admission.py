"""An AirflowTask lends its creator no power (issue 15): manifests/admission-policy.yaml at `kubectl apply`.

A tenant whose only right is AirflowTasks in its namespace names what it may not touch (a hostPath of `/`, uid 0,
a Secret, a ConfigMap, a claim, another ServiceAccount): `kubectl apply` fails at once with a message naming the
field and the rule, and nothing is created. Granted the right itself, the same tenant's task is admitted and runs.
With the policy's binding gone, the operator still refuses every Pod Security case when it builds the Pod.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflowtask.controlplane import Kubectl as Cluster
from airflowtask.install import MANIFESTS, NAMESPACE
from kubetools import (
    AFT,
    Kubectl,
    airflow_task,
    role,
    secret_reader_role,
    use_service_account_role,
    use_service_account_rule,
    wait_until,
)
from tenants import as_tenant, grant

BASH = ("airflow.providers.standard.operators.bash", "BashOperator")
POLICY = MANIFESTS / "admission-policy.yaml"


def _pod(**spec: Any) -> dict[str, Any]:
    return {"podTemplate": {"spec": spec}}


# (id, spec fields, what the refusal at apply must say, the rule the operator names when it builds the Pod)
POD_SECURITY: list[tuple[str, dict[str, Any], str, str]] = [
    ("hostPath", _pod(volumes=[{"name": "root", "hostPath": {"path": "/"}}], securityContext={"runAsUser": 0}),
     'spec.podTemplate.spec.volumes[root].hostPath is not allowed by Pod Security "restricted" (hostPath volumes)',
     "hostPath volumes"),
    ("hostNetwork", _pod(hostNetwork=True),
     'spec.podTemplate.spec.hostNetwork: true is not allowed by Pod Security "restricted" (host namespaces)',
     "host namespaces"),
    ("hostPID", _pod(hostPID=True),
     'spec.podTemplate.spec.hostPID: true is not allowed by Pod Security "restricted" (host namespaces)',
     "host namespaces"),
    ("privileged", _pod(containerSecurityContext={"privileged": True}),
     "containerSecurityContext.privileged: true is not allowed by Pod Security", "privileged"),
    ("runAsUser-0", _pod(securityContext={"runAsUser": 0}),
     'spec.podTemplate.spec.securityContext.runAsUser: 0 is not allowed by Pod Security "restricted" (runAsUser)',
     "runAsUser"),
    ("added-capability", _pod(containerSecurityContext={"capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}),
     "containerSecurityContext.capabilities.add: SYS_ADMIN is not allowed by Pod Security", "capabilities"),
    ("privilege-escalation", _pod(containerSecurityContext={"allowPrivilegeEscalation": True}),
     "allowPrivilegeEscalation: true is not allowed by Pod Security \"restricted\"", "privilege escalation"),
    ("runAsNonRoot-false", _pod(securityContext={"runAsNonRoot": False}),
     "securityContext.runAsNonRoot: false is not allowed", "runAsNonRoot"),
    ("seccomp-unconfined", _pod(securityContext={"seccompProfile": {"type": "Unconfined"}}),
     '"Unconfined" is not allowed by Pod Security "restricted" (seccompProfile)', "seccompProfile"),
    ("unsafe-sysctl", _pod(securityContext={"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}),
     "unsafe sysctls are not allowed", "sysctls"),
    ("apparmor-unconfined",
     {"podTemplate": {"metadata": {"annotations": {
         "container.apparmor.security.beta.kubernetes.io/airflowtask": "unconfined"}}}},
     "an unconfined AppArmor profile is not allowed", "AppArmor"),
    ("nfs-volume", _pod(volumes=[{"name": "share", "nfs": {"server": "10.0.0.1", "path": "/"}}]),
     "spec.podTemplate.spec.volumes[share]: only configMap, csi", "volume types"),
]

# (id, spec fields, what the refusal must say, the Role that admits it)
RIGHTS: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    ("connection", {"connections": [{"connId": "vault_db", "secretRef": {"name": "vault"}}]},
     'needs get on secrets "vault" in {ns}', {"secrets": ["vault"]}),
    ("envFrom-secret", _pod(envFrom=[{"secretRef": {"name": "vault"}}]),
     'needs get on secrets "vault" in {ns}', {"secrets": ["vault"]}),
    ("env-secretKeyRef", _pod(env=[{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "vault",
                                                                                       "key": "uri"}}}]),
     'needs get on secrets "vault" in {ns}', {"secrets": ["vault"]}),
    ("secret-volume", _pod(volumes=[{"name": "v", "secret": {"secretName": "vault"}}]),
     'needs get on secrets "vault" in {ns}', {"secrets": ["vault"]}),
    ("projected-secret", _pod(volumes=[{"name": "v", "projected": {"sources": [{"secret": {"name": "vault"}}]}}]),
     'needs get on secrets "vault" in {ns}', {"secrets": ["vault"]}),
    ("configMap-volume", _pod(volumes=[{"name": "c", "configMap": {"name": "settings"}}]),
     'needs get on configmaps "settings" in {ns}', {"configmaps": ["settings"]}),
    ("claim", _pod(volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]),
     'needs get on persistentvolumeclaims "data" in {ns}', {"persistentvolumeclaims": ["data"]}),
    ("ephemeral-volume", _pod(volumes=[{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}}]),
     "needs create on persistentvolumeclaims in {ns} (for its ephemeral volume)",
     {"create": ["persistentvolumeclaims"]}),
    ("serviceAccount", {"serviceAccountName": "etl-runner"},
     'needs use on serviceaccounts.airflowtask.dev "etl-runner" in {ns} (to run as that ServiceAccount)',
     {"use": ["etl-runner"]}),
    ("token", _pod(automountServiceAccountToken=True),
     'needs use on serviceaccounts.airflowtask.dev "default" in {ns} (to mount its token)', {"use": ["default"]}),
]


@pytest.fixture(scope="module")
def policy(kubectl: Kubectl, operator_process: Any) -> Iterator[None]:
    """The admission policy as shipped (already there when the operator was deployed from manifests/)."""
    kubectl("apply", "-n", NAMESPACE, "-f", str(POLICY))
    _until(kubectl, "default", enforced=True)
    yield


@pytest.fixture
def tenant(cluster: Cluster, kubectl: Kubectl, namespace: str, tmp_path: Path, policy: None) -> Kubectl:
    return as_tenant(cluster, kubectl, namespace, tmp_path)


def _role(name: str, namespace: str, rights: dict[str, list[str]]) -> dict[str, Any]:
    """A Role of the ``rights`` a case asks for: get on named objects, ``create`` on resources, ``use``."""
    rules = [{"apiGroups": [""], "resources": [resource], "resourceNames": names, "verbs": ["get"]}
             for resource, names in rights.items() if resource not in ("use", "create")]
    if "create" in rights:
        rules.append({"apiGroups": [""], "resources": rights["create"], "verbs": ["create"]})
    if "use" in rights:
        rules.append(use_service_account_rule(*rights["use"]))
    return role(name, namespace, *rules)


def _refusal(tenant: Kubectl, manifest: dict[str, Any]) -> str:
    result = tenant.apply(manifest, check=False)
    assert result.returncode != 0, f"admitted: {result.stdout}"
    return result.stderr


@pytest.mark.parametrize(("case", "spec", "said", "rule"), POD_SECURITY, ids=[case[0] for case in POD_SECURITY])
def test_pod_security_is_refused_at_apply(
    tenant: Kubectl, kubectl: Kubectl, namespace: str, case: str, spec: dict[str, Any], said: str, rule: str
) -> None:
    error = _refusal(tenant, airflow_task("escape", namespace, *BASH, {"bash_command": "cat /host/etc/shadow"},
                                          **spec))
    assert said in error, error
    assert "ValidatingAdmissionPolicy 'airflowtask-admission'" in error
    assert not kubectl.exists(AFT, "escape", namespace)
    print(f"| {case} | kubectl apply | {error.split('denied request: ')[-1].strip()} |")


@pytest.mark.parametrize(("case", "spec", "said", "rights"), RIGHTS, ids=[case[0] for case in RIGHTS])
def test_what_the_creator_may_not_use_is_refused_until_granted(
    tenant: Kubectl, kubectl: Kubectl, namespace: str, case: str, spec: dict[str, Any], said: str,
    rights: dict[str, list[str]],
) -> None:
    manifest = airflow_task("borrower", namespace, *BASH, {"bash_command": "true"}, **spec)
    error = _refusal(tenant, manifest)
    assert f"creating this AirflowTask {said.format(ns=namespace)}" in error, error
    assert not kubectl.exists(AFT, "borrower", namespace)
    print(f"| {case} | kubectl apply | {error.split('denied request: ')[-1].strip()} |")
    kubectl.apply(_role("borrow", namespace, rights))
    grant(kubectl, namespace, "borrow")
    wait_until(lambda: _admitted(tenant, manifest), timeout=30, what="admitted once granted")  # RBAC's cache lags


def test_a_granted_tenant_runs_its_task_with_its_secret_and_service_account(
    tenant: Kubectl, kubectl: Kubectl, operator: Any, namespace: str
) -> None:
    """What the tenant may use itself it may use through an AirflowTask: the task runs and sees the connection."""
    kubectl("create", "secret", "generic", "vault", "-n", namespace, "--from-literal=uri=http://vault.example:8200")
    kubectl("create", "serviceaccount", "etl-runner", "-n", namespace)
    kubectl.apply(secret_reader_role("read-vault", namespace, "vault"))
    kubectl.apply(use_service_account_role("use-etl-runner", namespace, "etl-runner"))
    grant(kubectl, namespace, "read-vault")
    grant(kubectl, namespace, "use-etl-runner")
    tenant.apply(airflow_task("granted", namespace, *BASH, {"bash_command": "echo $AIRFLOW_CONN_VAULT_DB"},
                              serviceAccountName="etl-runner",
                              connections=[{"connId": "vault_db", "secretRef": {"name": "vault"}}]))
    status = kubectl.wait_phase("granted", namespace, "Succeeded", timeout=120)["status"]
    assert status["result"] == "http://vault.example:8200"
    pod = kubectl.get_json("pod", status["podName"], namespace)
    assert pod["spec"]["serviceAccountName"] == "etl-runner"


def test_a_missing_setting_admits_nothing(tenant: Kubectl, kubectl: Kubectl, namespace: str) -> None:
    """Without the ConfigMap the policy reads its level from, no AirflowTask is admitted (it fails closed)."""
    plain = airflow_task("plain", namespace, *BASH, {"bash_command": "true"})
    saved = kubectl("get", "configmap", "airflowtask-pod-security", "-n", NAMESPACE, "-o", "yaml").stdout
    kubectl("delete", "configmap", "airflowtask-pod-security", "-n", NAMESPACE)
    try:
        wait_until(lambda: not _admitted(tenant, plain), timeout=30, what="the policy sees the setting gone")
        error = _refusal(tenant, plain)
        assert "no params found for policy binding" in error, error
    finally:
        kubectl("apply", "-f", "-", input=saved)
    wait_until(lambda: _admitted(tenant, plain), timeout=30, what="the policy sees the setting back")


def test_baseline_admits_root_but_still_refuses_hostpath(tenant: Kubectl, kubectl: Kubectl, namespace: str) -> None:
    """The level is the admin's one setting; baseline lets uid 0 through, never the host."""
    root = airflow_task("root", namespace, *BASH, {"bash_command": "id -u"}, **_pod(securityContext={"runAsUser": 0}))
    assert not _admitted(tenant, root)
    kubectl("patch", "configmap", "airflowtask-pod-security", "-n", NAMESPACE, "-p", '{"data":{"level":"baseline"}}')
    try:
        wait_until(lambda: _admitted(tenant, root), timeout=30, what="uid 0 admitted under baseline")
        host = airflow_task("host", namespace, *BASH, {"bash_command": "true"},
                            **_pod(volumes=[{"name": "root", "hostPath": {"path": "/"}}]))
        assert 'not allowed by Pod Security "baseline" (hostPath volumes)' in _refusal(tenant, host)
    finally:
        kubectl("patch", "configmap", "airflowtask-pod-security", "-n", NAMESPACE, "-p",
                '{"data":{"level":"restricted"}}')
    wait_until(lambda: not _admitted(tenant, root), timeout=30, what="uid 0 refused again under restricted")


def test_without_the_policy_the_operator_refuses_every_pod_security_case(
    kubectl: Kubectl, operator: Any, namespace: str, policy: None
) -> None:
    """The binding deleted (an admin's mistake), the operator itself refuses to build each Pod: Failed/PodSecurity."""
    names = [f"escape-{case.lower()}" for case, *_ in POD_SECURITY]
    kubectl("delete", "validatingadmissionpolicybinding", "airflowtask-admission")
    try:
        _until(kubectl, namespace, enforced=False)
        kubectl.apply(*(airflow_task(name, namespace, *BASH, {"bash_command": "cat /host/etc/shadow"}, **spec)
                        for name, (_, spec, _, _) in zip(names, POD_SECURITY, strict=True)))
    finally:
        kubectl("apply", "-n", NAMESPACE, "-f", str(POLICY))
        _until(kubectl, namespace, enforced=True)
    for name, (case, _, _, rule) in zip(names, POD_SECURITY, strict=True):
        status = kubectl.wait_phase(name, namespace, "Failed", timeout=120)["status"]
        assert status["reason"] == "PodSecurity", (case, status)
        assert f'is not allowed by Pod Security "restricted" ({rule})' in status["message"], (case, status["message"])
        print(f"| {case} | operator | {status['reason']}: {status['message']} |")
    pods = kubectl("get", "pods", "-n", namespace, "-o", "name").stdout.split()
    assert pods == [], f"a Pod was created: {pods}"


def _admitted(tenant: Kubectl, manifest: dict[str, Any]) -> bool:
    """Whether the API server admits ``manifest`` from the tenant now (a server-side dry run: nothing is made)."""
    return tenant("create", "--dry-run=server", "-f", "-", input=_yaml(manifest), check=False).returncode == 0


def _yaml(manifest: dict[str, Any]) -> str:
    return yaml.safe_dump(manifest)


def _enforced(kubectl: Kubectl, namespace: str) -> bool:
    """Whether the API server refuses, right now, a hostPath task of a cluster admin (dry run)."""
    probe = airflow_task(f"probe-{uuid.uuid4().hex[:6]}", namespace, *BASH, {"bash_command": "true"},
                         **_pod(volumes=[{"name": "root", "hostPath": {"path": "/"}}]))
    result = kubectl("create", "--dry-run=server", "-f", "-", input=_yaml(probe), check=False)
    return result.returncode != 0 and "airflowtask-admission" in result.stderr


def _until(kubectl: Kubectl, namespace: str, enforced: bool) -> None:
    """Wait until the API server's view of the policy has caught up (its informer lags a write briefly)."""
    wait_until(lambda: _enforced(kubectl, namespace) == enforced, timeout=30,
               what=f"the admission policy {'enforced' if enforced else 'lifted'}")
