"""The task Pods: names, the manifest over the hardened default, and reading a Pod's status (pure logic)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflowtask.pods import MANAGED_BY_SELECTOR, PodOutcome, build_pod, pod_name, pod_outcome
from airflowtask.reports import Outcome, parse_outcome
from airflowtask.resource import AirflowTaskResource

ROOT = Path(__file__).resolve().parents[2]
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
UID = "6f1c3a52-8f0e-4d8e-9a52-0c6f2e6b9b11"
IMAGE = "registry.example/airflow-tasks:1.2"
WORK = {"version": 1, "step": "execute", "task": {"name": "wait-for-report"}}
ALLOWED = "airflow.providers.*"


def _task(name: str = "wait-for-report", **spec: Any) -> AirflowTaskResource:
    body = {
        "metadata": {"namespace": "data", "name": name, "uid": UID, "creationTimestamp": "2026-01-02T03:04:05Z"},
        "spec": {"operator": {"module": "airflow.providers.standard.operators.bash", "name": "BashOperator"}, **spec},
    }
    return AirflowTaskResource.parse(body)


def _pod(task: AirflowTaskResource | None = None, **kwargs: Any) -> dict[str, Any]:
    return build_pod(task or _task(), step="execute", attempt=1, work=WORK, image=IMAGE, allowed_modules=ALLOWED,
                     **kwargs)


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    [container] = pod["spec"]["containers"]
    return container


def _env(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in _container(pod)["env"]}


# ---- names ----------------------------------------------------------------------------------------------------


def test_a_short_name_reads_as_name_attempt_step() -> None:
    assert pod_name("wait-for-report", UID, 1, "execute") == "wait-for-report-1-execute"


@pytest.mark.parametrize("name", ["a" * 253, "x" * 60, "reports.example.com", "a" * 40 + "." + "b" * 40])
def test_names_that_do_not_fit_are_cut_and_hashed_into_a_dns_label(name: str) -> None:
    for attempt in (1, 101):
        for step in ("execute", "callback-12", "kill"):
            made = pod_name(name, UID, attempt, step)
            assert len(made) <= 63 and DNS_LABEL.fullmatch(made), made
            assert made.endswith(f"-{attempt}-{step}")
            assert made.startswith(name.replace(".", "-")[:20])
            assert made == pod_name(name, UID, attempt, step)


def test_names_are_unique_per_object_attempt_and_step() -> None:
    long = "report-" + "x" * 60
    names = {
        pod_name(name, uid, attempt, step)
        for name in (long, long + "y", "a-b", "a.b")
        for uid in (UID, "another-uid")
        for attempt in (1, 2, 10)
        for step in ("execute", "callback-1", "callback-2", "kill")
    }
    assert len(names) == 2 * 3 * 4 * 3 + 3 * 4  # "a-b" fits as is: the same for both uids (the uid is checked)


@pytest.mark.parametrize(("attempt", "step"), [(1, "Execute"), (1, "call-back"), (1, "2"), (1, ""), (-1, "execute")])
def test_bad_steps_and_attempts_are_refused(attempt: int, step: str) -> None:
    with pytest.raises(ValueError):
        pod_name("wait", UID, attempt, step)


# ---- the hardened default ------------------------------------------------------------------------------------


def test_the_default_pod_is_locked_down() -> None:
    pod = _pod()
    spec = pod["spec"]
    assert spec["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = _container(pod)
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
    }
    assert spec["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in spec
    assert spec["restartPolicy"] == "Never" and spec["enableServiceLinks"] is False
    assert not {"hostNetwork", "hostPID", "hostIPC", "nodeSelector", "tolerations", "affinity"} & spec.keys()


def test_the_container_runs_the_worker_with_its_work_order() -> None:
    pod = _pod(extra_env={"AIRFLOWTASK_LOG_LEVEL": "debug"})
    container = _container(pod)
    assert container["name"] == "task"
    assert container["command"] == ["python", "-P", "-m", "airflowtask.worker"]
    assert (container["image"], container["imagePullPolicy"]) == (IMAGE, "IfNotPresent")
    assert container["terminationMessagePolicy"] == "File"
    env = {name: item["value"] for name, item in _env(pod).items()}
    assert env == {
        "AIRFLOWTASK_WORK": json.dumps(WORK, separators=(",", ":")), "AIRFLOWTASK_ALLOWED_MODULES": ALLOWED,
        "AIRFLOW_HOME": "/tmp/airflow", "HOME": "/tmp", "PYTHONUNBUFFERED": "1", "_AIRFLOW__AS_LIBRARY": "1",
        "AIRFLOWTASK_LOG_LEVEL": "debug",
    }
    assert json.loads(env["AIRFLOWTASK_WORK"]) == WORK
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert [volumes[m["name"]] for m in container["volumeMounts"] if m["mountPath"] == "/tmp"] == [
        {"name": "airflowtask-tmp", "emptyDir": {}}
    ]


def test_metadata_labels_and_owner() -> None:
    pod = _pod()
    meta = pod["metadata"]
    assert (pod["apiVersion"], pod["kind"]) == ("v1", "Pod")
    assert (meta["name"], meta["namespace"]) == ("wait-for-report-1-execute", "data")
    assert meta["labels"] == {
        "app.kubernetes.io/managed-by": "airflowtask-operator", "airflowtask.dev/task-uid": UID,
        "airflowtask.dev/task-name": "wait-for-report", "airflowtask.dev/step": "execute",
        "airflowtask.dev/attempt": "1",
    }
    assert MANAGED_BY_SELECTOR == "app.kubernetes.io/managed-by=airflowtask-operator"
    assert meta["ownerReferences"] == [{
        "apiVersion": "airflowtask.dev/v1alpha1", "kind": "AirflowTask", "name": "wait-for-report", "uid": UID,
        "controller": True, "blockOwnerDeletion": True,
    }]
    assert "annotations" not in meta


def test_a_long_task_name_becomes_a_valid_label_value() -> None:
    name = "a" * 62 + ".b" + "c" * 100
    meta = _pod(_task(name))["metadata"]
    value = meta["labels"]["airflowtask.dev/task-name"]
    assert value == "a" * 62 and LABEL_VALUE.fullmatch(value)
    assert len(meta["name"]) <= 63 and DNS_LABEL.fullmatch(meta["name"])


# ---- connections and the ServiceAccount ------------------------------------------------------------------------


def test_connections_come_from_secret_key_refs_read_by_the_kubelet() -> None:
    task = _task(connections=[
        {"connId": "fs_default", "secretRef": {"name": "fs"}},
        {"connId": "http_reports", "secretRef": {"name": "reports", "key": "connection"}},
    ])
    env = _env(_pod(task))
    assert env["AIRFLOW_CONN_FS_DEFAULT"] == {
        "name": "AIRFLOW_CONN_FS_DEFAULT", "valueFrom": {"secretKeyRef": {"name": "fs", "key": "uri"}},
    }
    assert env["AIRFLOW_CONN_HTTP_REPORTS"] == {
        "name": "AIRFLOW_CONN_HTTP_REPORTS",
        "valueFrom": {"secretKeyRef": {"name": "reports", "key": "connection"}},
    }
    assert not [name for name, item in env.items() if name.startswith("AIRFLOW_CONN_") and "value" in item]


def test_service_account_and_token_only_when_asked() -> None:
    spec = _pod(_task(serviceAccountName="etl-runner"))["spec"]
    assert (spec["serviceAccountName"], spec["automountServiceAccountToken"]) == ("etl-runner", False)
    asked = _pod(_task(podTemplate={"spec": {"automountServiceAccountToken": True}}))["spec"]
    assert asked["automountServiceAccountToken"] is True
    refused = _pod(_task(podTemplate={"spec": {"automountServiceAccountToken": False}}))["spec"]
    assert refused["automountServiceAccountToken"] is False


# ---- the pod template ------------------------------------------------------------------------------------------

TEMPLATE = {
    "metadata": {
        "labels": {"team": "data", "app.kubernetes.io/managed-by": "someone-else", "airflowtask.dev/step": "x"},
        "annotations": {"example.com/cost-center": "42"},
    },
    "spec": {
        "resources": {"limits": {"memory": "512Mi"}, "requests": {"cpu": "100m"}},
        "nodeSelector": {"pool": "batch"},
        "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
        "priorityClassName": "batch-low",
        "env": [
            {"name": "REPORT_DAY", "value": "monday"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}},
            {"name": "AIRFLOWTASK_LOG_LEVEL", "value": "trace"},
        ],
        "envFrom": [{"configMapRef": {"name": "report-settings"}}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "reports"}}],
        "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
        "securityContext": {"runAsUser": 50000, "runAsGroup": 0, "supplementalGroups": [1000]},
    },
}


def test_the_template_is_merged_over_the_default_and_ours_win() -> None:
    pod = _pod(_task(podTemplate=TEMPLATE), extra_env={"AIRFLOWTASK_LOG_LEVEL": "info"})
    meta, spec, container = pod["metadata"], pod["spec"], _container(pod)
    assert meta["labels"]["team"] == "data"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "airflowtask-operator"
    assert meta["labels"]["airflowtask.dev/step"] == "execute"
    assert meta["annotations"] == {"example.com/cost-center": "42"}
    assert container["resources"] == TEMPLATE["spec"]["resources"]
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName"):
        assert spec[key] == TEMPLATE["spec"][key], key
    assert [v["name"] for v in spec["volumes"]] == ["airflowtask-tmp", "data"]
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp", "/data"]
    assert container["envFrom"] == [{"configMapRef": {"name": "report-settings"}}]
    env = container["env"]
    assert [e["name"] for e in env][-2:] == ["REPORT_DAY", "TOKEN"]  # after ours: $(VAR) may refer to ours
    log_level = [e for e in env if e["name"] == "AIRFLOWTASK_LOG_LEVEL"]
    assert log_level == [{"name": "AIRFLOWTASK_LOG_LEVEL", "value": "info"}]
    assert spec["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 50000, "runAsGroup": 0, "fsGroup": 10001, "supplementalGroups": [1000],
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_container_context_and_host_namespaces_reach_the_pod_for_pod_security_to_judge() -> None:
    """Asked for, they are copied (never dropped in silence): the Pod Security check on the result refuses them."""
    from airflowtask.pod_security import check_pod

    template = {"spec": {"hostNetwork": True, "hostPID": True,
                         "containerSecurityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}}}}
    pod = _pod(_task(podTemplate=template))
    assert (pod["spec"]["hostNetwork"], pod["spec"]["hostPID"]) == (True, True)
    context = _container(pod)["securityContext"]
    assert context["privileged"] is True and context["readOnlyRootFilesystem"] is True
    refused = {violation.rule for violation in check_pod(pod, "baseline")}
    assert {"host namespaces", "privileged", "capabilities"} <= refused
    narrow = _pod(_task(podTemplate={"spec": {"containerSecurityContext": {
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}}))
    assert check_pod(narrow, "restricted") == []


def test_the_manifest_is_a_copy_of_the_template() -> None:
    task = _task(podTemplate=TEMPLATE)
    pod = _pod(task)
    _container(pod)["resources"]["limits"]["memory"] = "1Ti"
    pod["spec"]["tolerations"].clear()
    assert _container(_pod(task))["resources"]["limits"]["memory"] == "512Mi"
    assert _pod(task)["spec"]["tolerations"]


def test_the_crd_rejects_every_variable_the_operator_always_sets() -> None:
    crd = yaml.safe_load((ROOT / "crds" / "airflowtask.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    items = spec["podTemplate"]["properties"]["spec"]["properties"]["env"]["items"]
    [validation] = items["x-kubernetes-validations"]
    prefixes = re.findall(r"startsWith\('([^']+)'\)", validation["rule"])
    task = _task(connections=[{"connId": "fs_default", "secretRef": {"name": "fs"}}])
    for name in _env(_pod(task)):
        assert name.startswith(tuple(prefixes)) or f"'{name}'" in validation["rule"], name


# ---- reading a Pod's status ------------------------------------------------------------------------------------


def _observed(status: dict[str, Any], memory: str | None = None) -> dict[str, Any]:
    """A Pod as the API returns it: the manifest, plus ``status``."""
    pod = _pod(_task(podTemplate={"spec": {"resources": {"limits": {"memory": memory}}}}) if memory else None)
    pod["metadata"] |= {"uid": "pod-uid", "resourceVersion": "123", "creationTimestamp": "2026-01-02T03:04:06Z"}
    return pod | {"status": {"qosClass": "BestEffort", "startTime": "2026-01-02T03:04:06Z", **status}}


def _task_status(state: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": "task", "image": IMAGE, "imageID": "", "ready": False, "restartCount": 0, "started": False,
        "lastState": {}, "state": state, **extra,
    }


def _conditions(**statuses: str) -> list[dict[str, Any]]:
    return [{"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": "2026-01-02T03:04:07Z"}
            for kind, status in statuses.items()]


def _terminated(exit_code: int, reason: str, message: str | None = None) -> dict[str, Any]:
    terminated = {"exitCode": exit_code, "reason": reason, "startedAt": "2026-01-02T03:04:08Z",
                  "finishedAt": "2026-01-02T03:04:09Z", "containerID": "containerd://0f3a"}
    return {"terminated": terminated | ({"message": message} if message else {})}


OUTCOME = {"phase": "Succeeded", "reason": "Completed", "message": "done", "retryable": True, "result": 3,
           "jobId": None, "state": {}, "deferral": None}


def _parsed(outcome: dict[str, Any] | None) -> Outcome | None:
    return None if outcome is None else parse_outcome(json.dumps(outcome), ())


def test_a_pod_that_no_longer_exists_is_gone() -> None:
    seen = pod_outcome(None)
    assert (seen.state, seen.reason, seen.failed) == ("Gone", "PodDeleted", True)


@pytest.mark.parametrize(
    "status",
    [
        {},
        {"phase": "Pending"},
        {"phase": "Pending", "conditions": _conditions(PodScheduled="True", Ready="False"),
         "containerStatuses": [_task_status({"waiting": {"reason": "ContainerCreating"}})]},
    ],
    ids=["just-created", "not-scheduled-yet", "container-creating"],
)
def test_a_new_pod_is_pending(status: dict[str, Any]) -> None:
    assert pod_outcome(_observed(status)) == PodOutcome("Pending")


def test_an_unschedulable_pod_stays_pending_with_the_schedulers_message() -> None:
    message = ("0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 "
               "nodes are available: 1 Preemption is not helpful for scheduling.")
    conditions = [{**_conditions(PodScheduled="False")[0], "reason": "Unschedulable", "message": message}]
    seen = pod_outcome(_observed({"phase": "Pending", "conditions": conditions}))
    assert (seen.state, seen.reason, seen.failed) == ("Pending", "Unschedulable", False)
    assert seen.message == f"the Pod cannot be scheduled: {message}"


@pytest.mark.parametrize(
    ("reason", "detail"),
    [
        ("ErrImagePull", f'failed to pull and unpack image "{IMAGE}": failed to resolve reference "{IMAGE}": '
                         f'{IMAGE}: not found'),
        ("ImagePullBackOff", f'Back-off pulling image "{IMAGE}"'),
        ("ErrImageNeverPull", f'Container image "{IMAGE}" is not present with pull policy of Never'),
        ("InvalidImageName", f'Failed to apply default image tag "{IMAGE}": couldn\'t parse image name'),
    ],
)
def test_an_image_that_cannot_be_pulled_fails_naming_the_image(reason: str, detail: str) -> None:
    status = {"phase": "Pending", "conditions": _conditions(PodScheduled="True", Ready="False"),
              "containerStatuses": [_task_status({"waiting": {"reason": reason, "message": detail}})]}
    seen = pod_outcome(_observed(status))
    assert (seen.state, seen.reason, seen.failed) == ("Pending", "ImagePullFailed", True)
    assert seen.message == f'cannot pull image "{IMAGE}" ({reason}): {detail}'


def test_a_missing_secret_key_fails_with_the_kubelets_message() -> None:
    detail = "couldn't find key uri in Secret data/fs"
    status = {"phase": "Pending", "containerStatuses": [
        _task_status({"waiting": {"reason": "CreateContainerConfigError", "message": detail}})]}
    seen = pod_outcome(_observed(status))
    assert (seen.state, seen.reason, seen.failed) == ("Pending", "CreateContainerConfigError", True)
    assert seen.message == f"cannot create the task's container: {detail}"


def test_a_running_pod_is_running() -> None:
    status = {"phase": "Running", "podIP": "10.88.0.7", "containerStatuses": [
        _task_status({"running": {"startedAt": "2026-01-02T03:04:08Z"}}, ready=True, started=True)]}
    assert pod_outcome(_observed(status)) == PodOutcome("Running")
    terminating = _observed(status)
    terminating["metadata"]["deletionTimestamp"] = "2026-01-02T03:05:00Z"
    assert pod_outcome(terminating) == PodOutcome("Running")  # until the worker has stopped and reported


@pytest.mark.parametrize(("phase", "exit_code"), [("Succeeded", 0), ("Failed", 1)])
def test_a_finished_pod_reports_the_workers_outcome(phase: str, exit_code: int) -> None:
    outcome = OUTCOME | ({"phase": "Failed", "reason": "TaskFailed"} if exit_code else {})
    status = {"phase": phase, "containerStatuses": [
        _task_status(_terminated(exit_code, "Completed" if exit_code == 0 else "Error", json.dumps(outcome)))]}
    seen = pod_outcome(_observed(status))
    assert (seen.state, seen.reason, seen.failed, seen.exit_code) == ("Terminated", None, False, exit_code)
    assert seen.outcome == _parsed(outcome)


def test_the_container_can_be_terminated_before_the_pod_phase_follows() -> None:
    status = {"phase": "Running", "containerStatuses": [_task_status(_terminated(0, "Completed", json.dumps(OUTCOME)))]}
    assert pod_outcome(_observed(status)).outcome == _parsed(OUTCOME)


@pytest.mark.parametrize(("memory", "expected"), [
    ("512Mi", "the task's container used more than its memory limit (512Mi) and was killed"),
    (None, "the task's container was killed when its node ran out of memory (it has no memory limit)"),
])
def test_an_oom_killed_container_says_so_with_its_limit(memory: str | None, expected: str) -> None:
    status = {"phase": "Failed", "containerStatuses": [_task_status(_terminated(137, "OOMKilled"))]}
    seen = pod_outcome(_observed(status, memory))
    assert (seen.state, seen.reason, seen.message, seen.failed) == ("Terminated", "OOMKilled", expected, True)
    assert (seen.exit_code, seen.outcome) == (137, None)


EVICTED = ("The node was low on resource: memory. Threshold quantity: 100Mi, available: 81Mi. Container task was "
           "using 912Mi, request is 0, has larger consumption of memory. ")


@pytest.mark.parametrize("outcome", [None, OUTCOME | {"phase": "Failed", "reason": "Cancelled", "retryable": True}])
def test_an_evicted_pod_is_evicted_even_when_the_worker_reported_its_stop(outcome: dict[str, Any] | None) -> None:
    conditions = [{**_conditions(DisruptionTarget="True")[0], "reason": "TerminationByKubelet", "message": EVICTED}]
    terminated = _terminated(137 if outcome is None else 1, "Error", json.dumps(outcome) if outcome else None)
    status = {"phase": "Failed", "reason": "Evicted", "message": EVICTED, "conditions": conditions,
              "containerStatuses": [_task_status(terminated)]}
    seen = pod_outcome(_observed(status))
    assert (seen.state, seen.reason, seen.failed, seen.outcome) == ("Terminated", "Evicted", True, _parsed(outcome))
    assert seen.message == f"the Pod was evicted: {EVICTED}"


def test_an_eviction_through_the_api_is_evicted_too() -> None:
    message = "Eviction API: evicting"
    conditions = [{**_conditions(DisruptionTarget="True")[0], "reason": "EvictionByEvictionAPI", "message": message}]
    containers = [_task_status(_terminated(143, "Error"))]
    status = {"phase": "Failed", "conditions": conditions, "containerStatuses": containers}
    seen = pod_outcome(_observed(status))
    assert (seen.reason, seen.message) == ("Evicted", f"the Pod was evicted (EvictionByEvictionAPI): {message}")


def test_an_outcome_that_finished_before_an_eviction_stands() -> None:
    status = {"phase": "Succeeded", "conditions": _conditions(DisruptionTarget="True"),
              "containerStatuses": [_task_status(_terminated(0, "Completed", json.dumps(OUTCOME)))]}
    seen = pod_outcome(_observed(status))
    assert (seen.reason, seen.failed, seen.outcome) == (None, False, _parsed(OUTCOME))


@pytest.mark.parametrize(
    ("terminated", "expected"),
    [
        (_terminated(1, "Error"), "the task's container exited with code 1 (Error) without reporting an outcome"),
        (_terminated(128, "StartError", 'exec: "python": executable file not found in $PATH: unknown'),
         "the task's container exited with code 128 (StartError) without reporting an outcome: "
         'exec: "python": executable file not found in $PATH: unknown'),
    ],
    ids=["exit-1", "start-error"],
)
def test_an_exit_without_an_outcome_says_how_it_ended(terminated: dict[str, Any], expected: str) -> None:
    status = {"phase": "Failed", "containerStatuses": [_task_status(terminated)]}
    seen = pod_outcome(_observed(status))
    assert (seen.state, seen.reason, seen.message, seen.failed) == ("Terminated", "NoOutcome", expected, True)
    assert seen.outcome is None and seen.exit_code == terminated["terminated"]["exitCode"]


@pytest.mark.parametrize(("message", "named"), [
    ("not json", "not JSON"),
    ("[1, 2]", "object"),
    (json.dumps({**OUTCOME, "phase": "Deferred", "reason": "Deferred", "deferral": {
        "trigger": {"classpath": "airflow.providers.standard.operators.bash.BashOperator", "kwargs": {}},
        "method": None, "nextKwargs": {}, "timeout": None, "deadline": None}}),
     "deferral.trigger.classpath airflow.providers.standard.operators.bash.BashOperator is not a trigger"),
], ids=["not-json", "not-an-object", "operator-as-trigger"])
def test_a_termination_message_that_is_not_a_valid_outcome_is_refused(message: str, named: str) -> None:
    status = {"phase": "Succeeded", "containerStatuses": [_task_status(_terminated(0, "Completed", message))]}
    seen = pod_outcome(_observed(status), ("airflow.providers.*",))
    assert (seen.state, seen.reason, seen.failed, seen.outcome) == ("Terminated", "InvalidOutcome", True, None)
    assert seen.message and seen.message.startswith("the step's report was refused, nothing of it was acted on: ")
    assert named in seen.message


def test_a_pod_rejected_by_its_node_fails_before_the_container_ran() -> None:
    status = {"phase": "Failed", "reason": "OutOfmemory",
              "message": "Pod was rejected: Node didn't have enough resource: memory"}
    seen = pod_outcome(_observed(status))
    assert (seen.state, seen.reason, seen.failed, seen.exit_code) == ("Terminated", "NoOutcome", True, None)
    assert seen.message == ("the Pod failed before the task's container ran (OutOfmemory): "
                            "Pod was rejected: Node didn't have enough resource: memory")
