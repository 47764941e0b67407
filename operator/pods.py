"""The Pods that run an AirflowTask's work: their names, their manifests, and what their status says.

Pure functions over dicts as the Kubernetes API reads and writes them: no client, no kopf, no Airflow. One Pod runs
one step (``execute``, ``callback``, ``kill``) of one attempt, as ``python -m airflowtask.worker`` (see
:mod:`airflowtask.worker` for the work order and the outcome it writes to the termination log).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflowtask.reports import InvalidReport, Outcome, ReportPhase, parse_outcome
from airflowtask.resource import AirflowTaskResource

MANAGER = "airflowtask-operator"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_TASK_UID = "airflowtask.dev/task-uid"
LABEL_TASK_NAME = "airflowtask.dev/task-name"
LABEL_STEP = "airflowtask.dev/step"
LABEL_ATTEMPT = "airflowtask.dev/attempt"
MANAGED_BY_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGER}"
"""The label selector of the operator's server-side Pod watch: every Pod :func:`build_pod` makes has it."""

CONTAINER = "task"
TMP_VOLUME = "airflowtask-tmp"
USER_ID = 10001
_NAME_LIMIT = 63  # a DNS-1123 label, and a label value
_HASH_CHARS = 10
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_STEP = re.compile(r"[a-z]{1,12}(-[0-9]{1,6})?")
_MAX_ATTEMPT = 10**6
_SCHEDULING_FIELDS = frozenset({"nodeSelector", "tolerations", "affinity", "priorityClassName"})
_HOST_FIELDS = frozenset({"hostNetwork", "hostPID", "hostIPC"})

POD_SECURITY_CONTEXT: Mapping[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": USER_ID,
    "runAsGroup": USER_ID,
    "fsGroup": USER_ID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY_CONTEXT: Mapping[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
INVALID_OUTCOME = "InvalidOutcome"
_NEVER_RAN = frozenset({"StartError", "ContainerCannotRun"})
"""Container reasons for a worker that never started: its termination message is the container runtime's."""
IMAGE_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"})


# ---- names ------------------------------------------------------------------------------------------------


def pod_name(task_name: str, uid: str, attempt: int, step: str) -> str:
    """The Pod of one step of one attempt: ``<name>-<attempt>-<step>``, a DNS-1123 label of at most 63 characters.

    A name that does not fit (or holds dots) is cut and followed by a hash of (uid, name), so objects whose names
    share a long prefix get different Pods. ``step`` is a word, optionally with a number (``execute``,
    ``callback-2``), so the parts after the name always read back as one attempt and one step. The name alone
    cannot tell apart a deleted object and a new one of the same name: the caller adopts a Pod only when its
    controller ownerReference holds the task's uid.
    """
    if not _STEP.fullmatch(step):
        raise ValueError(f"step {step!r}: up to 12 lowercase letters, optionally followed by -<number>")
    if not 0 <= attempt < _MAX_ATTEMPT:
        raise ValueError(f"attempt {attempt}: out of range")
    suffix = f"-{attempt}-{step}"
    if len(task_name) + len(suffix) <= _NAME_LIMIT and _LABEL.fullmatch(task_name):
        return task_name + suffix
    digest = hashlib.sha256(f"{uid}/{task_name}".encode()).hexdigest()[:_HASH_CHARS]
    room = _NAME_LIMIT - len(suffix) - _HASH_CHARS - 1
    prefix = task_name.replace(".", "-")[:room].rstrip("-")  # at least 25 characters of room: never empty
    return f"{prefix}-{digest}{suffix}"


def _label_value(value: str) -> str:
    """``value`` cut to a valid label value (63 characters, alphanumeric at both ends)."""
    return value[:_NAME_LIMIT].rstrip("-._")


def connection_env_name(conn_id: str) -> str:
    """The variable Airflow reads a connection from."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


# ---- the manifest -------------------------------------------------------------------------------------------


def build_pod(
    task: AirflowTaskResource,
    *,
    step: str,
    attempt: int,
    work: dict[str, Any],
    image: str,
    allowed_modules: str,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The Pod manifest of one step: ``spec.podTemplate`` merged over a hardened default (a new object).

    Ours win. The operator's labels replace the template's of the same key. The operator's variables
    (``AIRFLOWTASK_WORK``, ``AIRFLOWTASK_ALLOWED_MODULES``, ``AIRFLOW_HOME``, ``HOME``, ``PYTHONUNBUFFERED``,
    ``_AIRFLOW__AS_LIBRARY``, then ``extra_env`` over those, then one ``AIRFLOW_CONN_<ID>`` per
    ``spec.connections`` entry, from its Secret) come first; a template env entry reusing one of their names is
    left out (the CRD rejects the fixed names at apply time, so only ``extra_env`` names can meet one).
    The template's pod ``securityContext`` keys replace the default's one by one; keys it does not name keep the
    default; ``containerSecurityContext`` does the same for the container's. Host namespaces are copied as asked:
    Pod Security (:mod:`airflowtask.pod_security`, checked on the result) refuses them, so that asking for one
    fails loudly instead of being dropped.
    """
    template = task.pod_template.spec
    labels = {
        **task.pod_template.labels,
        LABEL_MANAGED_BY: MANAGER,
        LABEL_TASK_UID: task.uid,
        LABEL_TASK_NAME: _label_value(task.name),
        LABEL_STEP: step,
        LABEL_ATTEMPT: str(attempt),
    }
    metadata: dict[str, Any] = {
        "name": pod_name(task.name, task.uid, attempt, step),
        "namespace": task.namespace,
        "labels": labels,
        "ownerReferences": [_owner(task)],
    }
    if task.pod_template.annotations:
        metadata["annotations"] = dict(task.pod_template.annotations)
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "enableServiceLinks": False,
        "automountServiceAccountToken": template.get("automountServiceAccountToken") is True,
        "securityContext": {**POD_SECURITY_CONTEXT, **template.get("securityContext", {})},
        "containers": [_container(task, image, _env(task, work, allowed_modules, extra_env or {}))],
        "volumes": [{"name": TMP_VOLUME, "emptyDir": {}}, *template.get("volumes", [])],
    }
    if task.service_account_name:
        spec["serviceAccountName"] = task.service_account_name
    spec.update((key, value) for key, value in template.items() if key in _SCHEDULING_FIELDS or key in _HOST_FIELDS)
    return copy.deepcopy({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})


def _owner(task: AirflowTaskResource) -> dict[str, Any]:
    """The controller reference that makes garbage collection delete the Pod with its task."""
    return {
        "apiVersion": "airflowtask.dev/v1alpha1",
        "kind": "AirflowTask",
        "name": task.name,
        "uid": task.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _env(
    task: AirflowTaskResource, work: dict[str, Any], allowed_modules: str, extra_env: dict[str, str]
) -> list[dict[str, Any]]:
    """The operator's variables, then the template's that do not reuse one of their names."""
    values = {
        "AIRFLOWTASK_WORK": json.dumps(work, separators=(",", ":")),
        "AIRFLOWTASK_ALLOWED_MODULES": allowed_modules,
        "AIRFLOW_HOME": "/tmp/airflow",
        "HOME": "/tmp",
        "PYTHONUNBUFFERED": "1",
        # `import airflow` skips settings.initialize() (ORM engine, secrets backends, plugins): a step has no database,
        # and its connections come from AIRFLOW_CONN_*. About 0.2 s of the worker's CPU (bench/bench_worker_start.py).
        "_AIRFLOW__AS_LIBRARY": "1",
        **extra_env,
    }
    ours: dict[str, dict[str, Any]] = {name: {"name": name, "value": value} for name, value in values.items()}
    for ref in task.connections:
        name = connection_env_name(ref.conn_id)
        ours[name] = {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.secret_name, "key": ref.secret_key}}}
    user = [item for item in task.pod_template.spec.get("env", []) if item.get("name") not in ours]
    return [*ours.values(), *user]


def _container(task: AirflowTaskResource, image: str, env: list[dict[str, Any]]) -> dict[str, Any]:
    template = task.pod_template.spec
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-P", "-m", "airflowtask.worker"],
        "env": env,
        "securityContext": {**CONTAINER_SECURITY_CONTEXT, **template.get("containerSecurityContext", {})},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "volumeMounts": [{"name": TMP_VOLUME, "mountPath": "/tmp"}, *template.get("volumeMounts", [])],
    }
    if "envFrom" in template:
        container["envFrom"] = template["envFrom"]
    if "resources" in template:
        container["resources"] = template["resources"]
    return container


# ---- reading a Pod's status -----------------------------------------------------------------------------------

PodState = Literal["Pending", "Running", "Terminated", "Gone"]


@dataclass(frozen=True)
class PodOutcome:
    """What a Pod's status says about its step.

    ``outcome`` is the worker's report (the termination message, checked by :func:`~airflowtask.reports.parse_outcome`:
    whatever a Pod writes there is untrusted) and ``exit_code`` the container's, once Terminated. ``reason`` and
    ``message`` describe what Kubernetes did to the Pod, when it
    matters: with ``failed`` the step ended (or cannot start) without the worker having the last word, and
    ``reason`` is the task's reason; a Pending Pod with reason ``Unschedulable`` is only waiting for the scheduler.
    """

    state: PodState
    reason: str | None = None
    message: str | None = None
    failed: bool = False
    outcome: Outcome | None = None
    exit_code: int | None = None


def pod_outcome(pod: Mapping[str, Any] | None, allowlist: tuple[str, ...] = ()) -> PodOutcome:
    """Read a Pod as the API returns it (``None``: it no longer exists); a deferral's trigger module must match
    one of the ``allowlist`` patterns."""
    if pod is None:
        return PodOutcome("Gone", "PodDeleted", "the task's Pod was deleted before it reported an outcome", True)
    status = pod.get("status") or {}
    container = _container_status(status)
    state = container.get("state") or {}
    if "terminated" in state or status.get("phase") in ("Succeeded", "Failed"):
        return _terminated(pod, state.get("terminated") or {}, allowlist)
    if status.get("phase") == "Running":
        return PodOutcome("Running")
    return _pending(pod, status, state.get("waiting") or {})


def _container_status(status: Mapping[str, Any]) -> Mapping[str, Any]:
    return next((c for c in status.get("containerStatuses") or () if c.get("name") == CONTAINER), {})


def _pending(pod: Mapping[str, Any], status: Mapping[str, Any], waiting: Mapping[str, Any]) -> PodOutcome:
    reason, detail = waiting.get("reason"), waiting.get("message") or ""
    if reason in IMAGE_PULL_REASONS:
        image = _spec_container(pod).get("image", "")
        message = _joined(f'cannot pull image "{image}" ({reason})', detail)
        return PodOutcome("Pending", "ImagePullFailed", message, True)
    if reason == "CreateContainerConfigError":
        return PodOutcome("Pending", reason, _joined("cannot create the task's container", detail), True)
    scheduled = next((c for c in status.get("conditions") or () if c.get("type") == "PodScheduled"), {})
    if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        return PodOutcome("Pending", "Unschedulable", _joined("the Pod cannot be scheduled", scheduled.get("message")))
    return PodOutcome("Pending")


def _terminated(pod: Mapping[str, Any], terminated: Mapping[str, Any], allowlist: tuple[str, ...]) -> PodOutcome:
    raw = terminated.get("message") or ""
    outcome, refused = None, None
    if raw:
        try:
            outcome = parse_outcome(raw, allowlist)
        except InvalidReport as error:
            refused = error.message
    reason, message = _cause(pod, terminated, outcome, refused, raw)
    return PodOutcome("Terminated", reason, message, reason is not None, outcome, terminated.get("exitCode"))


def _cause(
    pod: Mapping[str, Any], terminated: Mapping[str, Any], outcome: Outcome | None, refused: str | None, raw: str
) -> tuple[str | None, str | None]:
    """Why the step ended without the worker having the last word; (None, None) when its outcome stands.

    An eviction wins over the Failed outcome the worker reports when it is stopped (SIGTERM, ``on_kill``), and an
    OOM kill over a message cut short; a termination message that is not a valid outcome is ``InvalidOutcome``.
    """
    status = pod.get("status") or {}
    evicted = _eviction(status)
    if evicted is not None and (outcome is None or outcome.phase == ReportPhase.FAILED):
        return "Evicted", evicted
    if outcome is not None:
        return None, None
    if terminated.get("reason") == "OOMKilled":
        return "OOMKilled", _oom_message(pod)
    if terminated.get("reason") in _NEVER_RAN:  # the message is the runtime's, not a report
        return "NoOutcome", f"{_no_outcome_message(status, terminated)}: {raw[:200]}"
    if refused is not None:
        return INVALID_OUTCOME, f"the step's report was refused, nothing of it was acted on: {refused}"
    return "NoOutcome", _no_outcome_message(status, terminated)


def _eviction(status: Mapping[str, Any]) -> str | None:
    """The message of an eviction: the kubelet's (node pressure) or a disruption's (API eviction, preemption)."""
    if status.get("reason") == "Evicted":
        return _joined("the Pod was evicted", status.get("message"))
    for condition in status.get("conditions") or ():
        if condition.get("type") == "DisruptionTarget" and condition.get("status") == "True":
            return _joined(f"the Pod was evicted ({condition.get('reason')})", condition.get("message"))
    return None


def _oom_message(pod: Mapping[str, Any]) -> str:
    limit = ((_spec_container(pod).get("resources") or {}).get("limits") or {}).get("memory")
    if limit:
        return f"the task's container used more than its memory limit ({limit}) and was killed"
    return "the task's container was killed when its node ran out of memory (it has no memory limit)"


def _no_outcome_message(status: Mapping[str, Any], terminated: Mapping[str, Any]) -> str:
    if not terminated:
        cause = status.get("reason") or "no container status"
        return _joined(f"the Pod failed before the task's container ran ({cause})", status.get("message"))
    return (f"the task's container exited with code {terminated.get('exitCode')} ({terminated.get('reason')}) "
            "without reporting an outcome")


def _spec_container(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    containers = (pod.get("spec") or {}).get("containers") or ()
    return next((c for c in containers if c.get("name") == CONTAINER), {})


def _joined(text: str, detail: str | None) -> str:
    return f"{text}: {detail}" if detail else text
