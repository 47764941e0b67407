"""A typed, read-only view of one AirflowTask object, parsed from its body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict, cast

from airflowtask.connector_core import AirflowObj

FINISHED_PHASES = ("Succeeded", "Failed")


def parse_time(value: str | None) -> datetime | None:
    """Parse an RFC 3339 timestamp as Kubernetes writes it."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def format_time(value: datetime) -> str:
    """Format a timestamp the way Kubernetes does (UTC, seconds, trailing Z)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ConnectionRef:
    """An Airflow connection read from one key of a Secret in the task's namespace."""

    conn_id: str
    secret_name: str
    secret_key: str


class PodTemplateSpec(TypedDict, total=False):
    """``spec.podTemplate.spec``: what a task may add to its Pods (Kubernetes types, as the API returns them)."""

    resources: dict[str, Any]
    nodeSelector: dict[str, str]
    tolerations: list[dict[str, Any]]
    affinity: dict[str, Any]
    priorityClassName: str
    env: list[dict[str, Any]]
    envFrom: list[dict[str, Any]]
    volumes: list[dict[str, Any]]
    volumeMounts: list[dict[str, Any]]
    securityContext: dict[str, Any]
    containerSecurityContext: dict[str, Any]
    hostNetwork: bool
    hostPID: bool
    hostIPC: bool
    automountServiceAccountToken: bool


@dataclass(frozen=True)
class PodTemplate:
    """``spec.podTemplate``: labels, annotations and Pod settings merged over the operator's hardened default."""

    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    spec: PodTemplateSpec = field(default_factory=PodTemplateSpec)

    @classmethod
    def parse(cls, template: Mapping[str, Any]) -> PodTemplate:
        meta = template.get("metadata") or {}
        return cls(
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
            spec=cast(PodTemplateSpec, dict(template.get("spec") or {})),
        )


@dataclass(frozen=True)
class ObservedStatus:
    """The part of ``status`` the operator reads back to decide what to do next."""

    phase: str | None = None
    reason: str | None = None
    resource_meta: str | None = None
    attempts: int = 0
    start_time: datetime | None = None
    completion_time: datetime | None = None
    next_attempt_time: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED_PHASES

    @property
    def submitting(self) -> bool:
        """True when a submission was announced but its metadata never recorded."""
        return self.reason == "Submitting" and not self.resource_meta

    @classmethod
    def parse(cls, status: Mapping[str, Any]) -> ObservedStatus:
        return cls(
            phase=status.get("phase"),
            reason=status.get("reason"),
            resource_meta=status.get("resourceMeta"),
            attempts=int(status.get("attempts") or 0),
            start_time=parse_time(status.get("startTime")),
            completion_time=parse_time(status.get("completionTime")),
            next_attempt_time=parse_time(status.get("nextAttemptTime")),
        )


@dataclass(frozen=True)
class AirflowTaskResource:
    """What the operator needs from one AirflowTask: identity, spec and observed status."""

    namespace: str
    name: str
    uid: str
    generation: int
    created: datetime
    operator: AirflowObj
    connections: tuple[ConnectionRef, ...]
    params: Mapping[str, Any]
    logical_date: datetime
    poll_interval_seconds: int
    active_deadline_seconds: int | None
    backoff_limit: int
    ttl_seconds_after_finished: int | None
    deletion_policy: str
    status: ObservedStatus
    image: str | None = None
    service_account_name: str | None = None
    pod_template: PodTemplate = field(default_factory=PodTemplate)
    execution: str | None = None
    """``Pod``, ``WarmPool``, or None: the operator's default (``Settings.default_execution``)."""

    @property
    def task_id(self) -> str:
        """Airflow's task_id: the one in the parameters, else the object's name."""
        return str(self.operator.parameters.get("task_id") or self.name)

    @property
    def run_id(self) -> str:
        return f"airflowtask__{self.logical_date.isoformat()}"

    def deadline(self, started: datetime | None) -> datetime | None:
        """When ``activeDeadlineSeconds`` runs out, counted from the first start."""
        if self.active_deadline_seconds is None or started is None:
            return None
        return datetime.fromtimestamp(started.timestamp() + self.active_deadline_seconds, UTC)

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> AirflowTaskResource:
        """Build the view from an object body as the API server returns it (defaults applied)."""
        meta, spec = body["metadata"], body.get("spec") or {}
        operator = spec.get("operator") or {}
        created = parse_time(meta.get("creationTimestamp")) or datetime.now(UTC)
        return cls(
            namespace=meta["namespace"],
            name=meta["name"],
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation") or 1),
            created=created,
            operator=AirflowObj(
                module=operator.get("module", ""),
                name=operator.get("name", ""),
                parameters=dict(operator.get("parameters") or {}),
            ),
            connections=tuple(
                ConnectionRef(
                    conn_id=item["connId"],
                    secret_name=item["secretRef"]["name"],
                    secret_key=item["secretRef"].get("key", "uri"),
                )
                for item in spec.get("connections") or ()
            ),
            params=dict(spec.get("params") or {}),
            logical_date=parse_time(spec.get("logicalDate")) or created,
            poll_interval_seconds=int(spec.get("pollIntervalSeconds") or 10),
            active_deadline_seconds=spec.get("activeDeadlineSeconds"),
            backoff_limit=int(spec.get("backoffLimit") or 0),
            ttl_seconds_after_finished=spec.get("ttlSecondsAfterFinished"),
            deletion_policy=spec.get("deletionPolicy") or "Delete",
            status=ObservedStatus.parse(body.get("status") or {}),
            image=spec.get("image") or None,
            service_account_name=spec.get("serviceAccountName") or None,
            pod_template=PodTemplate.parse(spec.get("podTemplate") or {}),
            execution=spec.get("execution") or None,
        )
