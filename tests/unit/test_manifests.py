"""manifests/, Dockerfile, hack/kind/deploy.sh: static checks (no API server, no container engine).

The server-side check is ``kubectl apply -k manifests/ --dry-run=server`` against a real API server
(after ``kubectl create namespace airflowtask-system``): an e2e test.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
CONNECTOR = MANIFESTS / "flyte-connector"
NAMESPACE = "airflowtask-system"
IMAGE = "airflowtask-operator:0.1.0"

Obj = dict[str, Any]


def _docs(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _kustomization(directory: Path) -> Obj:
    return yaml.safe_load((directory / "kustomization.yaml").read_text())


def _build(directory: Path) -> list[Obj]:
    """The objects a kustomization lists (resources only: enough for these checks)."""
    objects: list[Obj] = []
    for resource in _kustomization(directory)["resources"]:
        path = (directory / resource).resolve()
        objects.extend(_build(path) if path.is_dir() else _docs(path))
    return objects


def _one(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


BASE = _build(MANIFESTS)
FLYTE = _build(CONNECTOR)
OPERATOR = _one(BASE, "Deployment", "airflowtask-operator")
CONNECTOR_DEPLOYMENT = _one(FLYTE, "Deployment", "airflowtask-flyte-connector")
DEPLOYMENTS = [OPERATOR, CONNECTOR_DEPLOYMENT]


def _container(deployment: Obj) -> Obj:
    """The main container: ``operator`` (beside it, the triggerer) or the connector's only one."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] in (["operator", "triggerer"], ["connector"])
    return containers[0]


def test_the_triggerer_container_holds_no_credential_and_shares_only_its_socket() -> None:
    pod = OPERATOR["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    operator, triggerer = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    token_mounts = [m for m in operator["volumeMounts"] if "serviceAccountToken" in str(volumes[m["name"]])]
    assert [m["mountPath"] for m in token_mounts] == ["/var/run/secrets/kubernetes.io/serviceaccount"]
    assert not any("serviceAccountToken" in str(volumes[m["name"]]) or "secret" in volumes[m["name"]]
                   for m in triggerer["volumeMounts"])
    assert not any("valueFrom" in item or "KEY" in item["name"] for item in triggerer.get("env", []))
    shared = {m["name"] for m in operator["volumeMounts"]} & {m["name"] for m in triggerer["volumeMounts"]}
    assert shared == {"triggerer-socket"} and "emptyDir" in volumes["triggerer-socket"]
    assert triggerer["args"][0] == "triggerer" and triggerer["securityContext"] == {
        **operator["securityContext"]}


def _env(container: Obj) -> dict[str, Obj]:
    return {item["name"]: item for item in container.get("env", [])}


# ---- kustomizations -----------------------------------------------------------------------------------


def _kustomizations() -> Iterator[Path]:
    yield MANIFESTS
    yield CONNECTOR


@pytest.mark.parametrize("directory", list(_kustomizations()), ids=lambda p: str(p.relative_to(ROOT)))
def test_kustomization_resources_exist(directory: Path) -> None:
    for resource in _kustomization(directory)["resources"]:
        path = (directory / resource).resolve()
        assert path.exists(), f"{directory.name}/kustomization.yaml: {resource} does not exist"
        if path.is_dir():
            assert (path / "kustomization.yaml").is_file(), f"{resource} is a directory without a kustomization"
        else:
            assert directory in path.parents, f"{resource}: kustomize loads files only from below its directory"


def test_every_yaml_file_is_used_and_parses() -> None:
    used = {MANIFESTS / "kustomization.yaml", CONNECTOR / "kustomization.yaml"}
    for directory in _kustomizations():
        used |= {(directory / r).resolve() for r in _kustomization(directory)["resources"]}
    for path in MANIFESTS.rglob("*.yaml"):
        assert path in used, f"{path.relative_to(ROOT)} is in no kustomization"
        for doc in _docs(path):
            assert doc.get("apiVersion") and doc.get("kind"), path


def test_the_base_installs_the_crd_from_crds() -> None:
    crd = _one(BASE, "CustomResourceDefinition", "airflowtasks.airflowtask.dev")
    assert crd == _docs(ROOT / "crds" / "airflowtask.yaml")[0]


def test_namespaced_objects_live_in_the_operator_namespace() -> None:
    _one(BASE, "Namespace", NAMESPACE)
    cluster_scoped = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
                      "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    for obj in BASE + FLYTE:
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"].get("namespace") == NAMESPACE, obj["metadata"]["name"]
    for directory in _kustomizations():
        assert _kustomization(directory)["namespace"] == NAMESPACE


def _kubectl() -> str | None:
    found = shutil.which("kubectl")
    cached = sorted(Path.home().glob(".cache/airflowtask-operator/controlplane/*/bin/kubectl"))
    return found or (str(cached[-1]) if cached else None)


@pytest.mark.parametrize("directory", list(_kustomizations()), ids=lambda p: str(p.relative_to(ROOT)))
def test_kubectl_kustomize_renders_the_same_objects(directory: Path) -> None:
    kubectl = _kubectl()
    if kubectl is None:
        pytest.skip("no kubectl")
    out = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True).stdout
    rendered = {(o["kind"], o["metadata"]["name"]) for o in yaml.safe_load_all(out)}
    assert rendered == {(o["kind"], o["metadata"]["name"]) for o in _build(directory)}


# ---- deployments ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["metadata"]["name"])
def test_pods_are_locked_down(deployment: Obj) -> None:
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = _container(deployment)["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 10001
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not security.get("privileged")
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["metadata"]["name"])
def test_pods_have_probes_resources_and_a_writable_tmp(deployment: Obj) -> None:
    container = _container(deployment)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert probe in container, probe
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"] == "1Gi"
    assert container["image"] == IMAGE
    assert container["imagePullPolicy"] == "IfNotPresent"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    env = _env(container)
    assert env["AIRFLOW_HOME"]["value"].startswith("/tmp/")
    if deployment["metadata"]["name"] == "airflowtask-operator":
        key = env["AIRFLOWTASK_SIGNING_KEY"]["valueFrom"]["secretKeyRef"]
        assert key["optional"] is True


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["metadata"]["name"])
def test_service_accounts_exist(deployment: Obj) -> None:
    _one(BASE + FLYTE, "ServiceAccount", deployment["spec"]["template"]["spec"]["serviceAccountName"])


def test_operator_runs_two_replicas_that_roll_without_a_gap_and_probes_them() -> None:
    spec = OPERATOR["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    labels = spec["template"]["metadata"]["labels"]
    spread = spec["template"]["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert [term["podAffinityTerm"]["topologyKey"] for term in spread] == ["kubernetes.io/hostname"]
    assert spread[0]["podAffinityTerm"]["labelSelector"]["matchLabels"] == labels
    budget = _one(BASE, "PodDisruptionBudget", "airflowtask-operator")
    assert budget["spec"]["maxUnavailable"] == 1 and budget["spec"]["selector"]["matchLabels"] == labels
    container = _container(OPERATOR)
    command = container["command"] + container["args"]
    assert command[:2] == ["airflowtask-operator", "run"]
    liveness = next(arg.split("=", 1)[1] for arg in command if arg.startswith("--liveness="))
    match = re.fullmatch(r"http://0\.0\.0\.0:(\d+)(/\S*)", liveness)
    assert match, liveness
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert ports[get["port"]] == int(match[1]) and get["path"] == match[2], probe
    assert ports["metrics"] == int(_env(container)["AIRFLOWTASK_METRICS_PORT"]["value"]) == 9100


def test_connector_serves_the_airflowtask_connector() -> None:
    container = _container(CONNECTOR_DEPLOYMENT)
    command = container["command"]
    assert command[:3] == ["pyflyte", "serve", "connector"]
    assert command[command.index("--modules") + 1] == "airflowtask.flyte.connector"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["grpc"] == int(command[command.index("--port") + 1]) == 8000


@pytest.mark.parametrize(
    ("objects", "name"),
    [(BASE, "airflowtask-operator-metrics"), (FLYTE, "airflowtask-flyte-connector")],
    ids=["operator-metrics", "flyte-connector"],
)
def test_services_select_their_pods_and_named_ports(objects: list[Obj], name: str) -> None:
    service = _one(objects, "Service", name)
    pods = [
        d
        for d in DEPLOYMENTS
        if d["spec"]["template"]["metadata"]["labels"].items() >= service["spec"]["selector"].items()
    ]
    assert len(pods) == 1, name
    port_names = {p["name"] for p in _container(pods[0])["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in port_names


# ---- RBAC -------------------------------------------------------------------------------------------------

OPERATOR_RULES = {
    ("airflowtask.dev", "airflowtasks", "list"),
    ("airflowtask.dev", "airflowtasks", "watch"),
    ("airflowtask.dev", "airflowtasks", "patch"),
    ("airflowtask.dev", "airflowtasks", "delete"),
    ("airflowtask.dev", "airflowtasks/status", "patch"),
    ("", "events", "create"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    ("", "secrets", "get"),
    *{("", "pods", verb) for verb in ("create", "get", "list", "watch", "delete", "patch")},
    ("", "pods/log", "get"),
    ("airflowtask.dev", "airflowtasks/finalizers", "update"),
}
LEASE_RULES = {("coordination.k8s.io", "leases", verb) for verb in ("get", "update", "create")}
SIGNING_KEY_RULES = {("", "secrets", "get"), ("", "secrets", "create")}
CONNECTOR_RULES = {("airflowtask.dev", "airflowtasks", verb) for verb in ("get", "list", "watch", "create", "delete")}


def _rules(objects: list[Obj], service_account: str, binding_kind: str) -> list[Obj]:
    """The rules granted to the service account through bindings of one kind (ClusterRoleBinding, RoleBinding)."""
    rules: list[Obj] = []
    for binding in (o for o in objects if o["kind"] == binding_kind):
        subjects = {(s["kind"], s["name"], s.get("namespace")) for s in binding["subjects"]}
        if ("ServiceAccount", service_account, NAMESPACE) in subjects:
            rules += _one(objects, binding["roleRef"]["kind"], binding["roleRef"]["name"])["rules"]
    return rules


Grant = tuple[str, str, str]


def _grants(objects: list[Obj], service_account: str, binding_kind: str = "ClusterRoleBinding") -> set[Grant]:
    """(group, resource, verb) granted to the service account through bindings of one kind."""
    return {(g, r, v) for rule in _rules(objects, service_account, binding_kind)
            for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def test_rbac_has_no_wildcards_or_escalation() -> None:
    for role in (o for o in BASE + FLYTE if o["kind"] in ("ClusterRole", "Role")):
        assert "aggregationRule" not in role
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                assert not any("*" in item for item in rule.get(field, [])), (role["metadata"]["name"], rule)
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])


def test_operator_gets_exactly_what_its_code_uses() -> None:
    assert _grants(BASE, "airflowtask-operator") == OPERATOR_RULES


def test_operator_holds_one_lease_and_one_key_secret_of_its_own_namespace() -> None:
    assert _grants(BASE, "airflowtask-operator", "RoleBinding") == LEASE_RULES | SIGNING_KEY_RULES
    roles = [o for o in BASE if o["kind"] == "Role"]
    assert {role["metadata"]["namespace"] for role in roles} == {NAMESPACE}
    for rule in _rules(BASE, "airflowtask-operator", "RoleBinding"):
        if set(rule["verbs"]) - {"create"}:  # everything but create names the one Lease or the one Secret
            assert rule["resourceNames"] in (["airflowtask-operator"], ["airflowtask-signing-key"])


def test_connector_gets_airflowtasks_only() -> None:
    assert _grants(FLYTE, "airflowtask-flyte-connector") == CONNECTOR_RULES


def test_every_rule_says_which_code_needs_it() -> None:
    text = (MANIFESTS / "rbac.yaml").read_text()
    rules = re.findall(r"((?:^ *#.*\n)*)^  - apiGroups:", text, flags=re.MULTILINE)
    assert rules and all(comment.strip() for comment in rules)


# ---- Dockerfile -----------------------------------------------------------------------------------------


def _dockerfile() -> list[list[str]]:
    """Instructions as word lists, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [shlex.split(line) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _ignored(relative: str) -> bool:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    parts = relative.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in (p for p in patterns if p and not p.startswith("#")):
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatch(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes):
            return True
    return False


def test_dockerfile_copies_only_files_that_exist_and_are_not_ignored() -> None:
    copies = [words for words in _dockerfile() if words[0].upper() == "COPY"]
    sources = [s for words in copies if not any(w.startswith("--from") for w in words) for s in words[1:-1]]
    assert {"pyproject.toml", "README.md", "constraints.txt", "operator/"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: missing"
        assert not _ignored(source), f"COPY {source}: excluded by .dockerignore"
    assert _ignored(".venv") and _ignored(".git") and _ignored("tests/unit") and _ignored("operator/__pycache__")


def test_dockerfile_is_multi_stage_pinned_and_non_root() -> None:
    instructions = _dockerfile()
    arg = next(w[1] for w in instructions if w[0] == "ARG" and w[1].startswith("PYTHON_IMAGE="))
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm", arg)
    stages = [i for i, w in enumerate(instructions) if w[0] == "FROM"]
    assert len(stages) >= 2
    final = instructions[stages[-1] :]
    assert all(any(w.startswith("--from=") for w in words) for words in final if words[0] == "COPY")
    assert ["USER", "10001:10001"] in final
    text = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["airflowtask-operator"]' in text and 'CMD ["run"]' in text
    install = next(" ".join(w) for w in instructions if w[0] == "RUN" and "pip install" in " ".join(w))
    assert "-c constraints.txt" in install  # every dependency locked
    assert not any(w[0] == "RUN" and "pip install" in " ".join(w) and "--no-index" not in " ".join(w)
                   for w in final), "the final stage installs nothing from an index"


# ---- hack/kind/deploy.sh ----------------------------------------------------------------------------------


def test_deploy_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(ROOT / "hack" / "kind" / "deploy.sh")], check=True)


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_says_what_deploy_sh_waits_for(example: Path) -> None:
    assert re.search(r"^# expect: (Succeeded|Failed)\b", example.read_text(), flags=re.MULTILINE), example.name
    assert any(doc["kind"] == "AirflowTask" for doc in _docs(example))
    assert not any(doc["metadata"].get("namespace") for doc in _docs(example)), "deploy.sh picks the namespace"


# ---- admission policy ------------------------------------------------------------------------------------

POLICY = _docs(MANIFESTS / "admission-policy.yaml")
CHECKED = {"distinctSecrets": "secrets", "distinctConfigMaps": "configmaps", "distinctClaims": "persistentvolumeclaims"}


def _validations() -> list[Obj]:
    return _one(POLICY, "ValidatingAdmissionPolicy", "airflowtask-admission")["spec"]["validations"]


def test_the_policy_is_installed_bound_and_reads_the_one_level_setting() -> None:
    policy = _one(BASE, "ValidatingAdmissionPolicy", "airflowtask-admission")
    binding = _one(BASE, "ValidatingAdmissionPolicyBinding", "airflowtask-admission")
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert policy["spec"]["paramKind"] == {"apiVersion": "v1", "kind": "ConfigMap"}
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["paramRef"] == {"name": "airflowtask-pod-security", "namespace": NAMESPACE,
                                           "parameterNotFoundAction": "Deny"}
    setting = _one(BASE, "ConfigMap", "airflowtask-pod-security")
    assert setting["data"] == {"level": "restricted"}
    env = {e["name"]: e for e in _container(_one(BASE, "Deployment", "airflowtask-operator"))["env"]}
    assert env["AIRFLOWTASK_POD_SECURITY_LEVEL"]["valueFrom"] == {
        "configMapKeyRef": {"name": "airflowtask-pod-security", "key": "level"}}
    assert [rule["operations"] for rule in policy["spec"]["matchConstraints"]["resourceRules"]] == [["CREATE"]]


@pytest.mark.parametrize(("names", "resource"), CHECKED.items())
def test_every_name_up_to_the_cap_gets_its_own_check(names: str, resource: str) -> None:
    """One authorizer check per validation (CEL's cost limit affords two), one validation per slot up to the cap."""
    validations = _validations()
    caps = [int(m.group(1)) for v in validations
            if (m := re.fullmatch(rf"variables\.{names}\.size\(\) <= (\d+)", v["expression"]))]
    assert len(caps) == 1, f"{names}: one cap"
    slots = [v for v in validations if f"variables.{names}[" in v["expression"]]
    assert len(slots) == caps[0]
    for index, slot in enumerate(slots):
        expression = " ".join(slot["expression"].split())
        assert expression.startswith(f"variables.{names}.size() <= {index} || ")
        assert f".resource('{resource}')" in expression and f".name(variables.{names}[{index}])" in expression
        assert f"variables.{names}[{index}]" in slot["messageExpression"]
        assert f"needs get on {resource}" in slot["messageExpression"]


def test_no_validation_calls_the_authorizer_twice_and_the_total_stays_under_the_budget() -> None:
    checks = [" ".join(v["expression"].split()).count(".check(") for v in _validations()]
    assert max(checks) == 1
    assert sum(checks) <= 24  # the API server's budget per request runs out near 30 checks
    for validation in _validations():
        assert "authorizer" not in validation.get("messageExpression", ""), "a message cannot call the authorizer"
