"""Operator settings, read once from the environment.

Every setting has a default that works on a laptop; the Deployment in ``manifests/`` sets the rest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from airflowtask.connector_core import EngineConfig
from airflowtask.lease import Timing

GROUP = "airflowtask.dev"
VERSION = "v1alpha1"
PLURAL = "airflowtasks"
FINALIZER = f"{GROUP}/cancel-external-job"


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def _float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


def _list(name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


@dataclass(frozen=True)
class WarmSettings:
    """How WarmPool workers are kept (:mod:`airflowtask.warm_pools`)."""

    idle_seconds: float = 300.0
    """A worker with no step for this long is retired (a pool with no steps goes to zero Pods)."""
    max_workers: int = 4
    """Worker Pods per pool at most; steps beyond their slots wait for one."""
    slots: int = 8
    """Steps one worker runs at once."""


@dataclass(frozen=True)
class Settings:
    """How the operator runs: which namespaces, how many workers, where it reports."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means all namespaces."""
    engine: EngineConfig = field(default_factory=EngineConfig)
    log_tail_lines: int = 40
    """How many log lines go into ``status.logs``."""
    retry_backoff_seconds: int = 10
    """First delay between attempts; doubles per attempt, at most ``retry_backoff_max_seconds``."""
    retry_backoff_max_seconds: int = 300
    api_workers: int = 16
    """Threads for Kubernetes API calls (status patches, Secret reads)."""
    metrics_port: int = 0
    """Port of the Prometheus endpoint; 0 disables it."""
    execution: str = "pods"
    """``pods``: every task's Airflow code runs in Pods of its namespace (the default). ``in-process``: in this
    process, with the operator's identity: only for a trusted single user."""
    task_image: str | None = None
    """The image of task Pods when ``spec.image`` is unset; default: the operator's own image."""
    lease_namespace: str = "airflowtask-system"
    """Where the replicas' Lease lives: the operator's own namespace (``POD_NAMESPACE``) in a cluster."""
    lease_name: str = "airflowtask-operator"
    lease_timing: Timing = field(default_factory=Timing)
    """Lease duration, renew deadline and retry period, in seconds."""
    pod_security_level: str = "restricted"
    """The Pod Security Standard every task Pod must meet: ``restricted`` (the default) or ``baseline``. Only the
    operator's Deployment sets it; no task or namespace can lower it."""
    service_account_grace_seconds: float = 10.0
    """How long a task waits for its ServiceAccount to exist before it fails ``ServiceAccountNotFound``."""
    triggerer_socket: str | None = None
    """The Unix socket of the triggerer container; unset: the operator starts a local triggerer process."""
    default_execution: str = "Pod"
    """``spec.execution`` of a task that does not set it: ``Pod`` or ``WarmPool``."""
    warm: WarmSettings = field(default_factory=WarmSettings)

    @classmethod
    def from_env(cls) -> Settings:
        """Read ``AIRFLOWTASK_*`` variables; unset ones keep their defaults."""
        return cls(
            namespaces=_list("AIRFLOWTASK_NAMESPACES"),
            engine=EngineConfig.from_env(),
            log_tail_lines=_int("AIRFLOWTASK_LOG_TAIL_LINES", cls.log_tail_lines),
            retry_backoff_seconds=_int("AIRFLOWTASK_RETRY_BACKOFF_SECONDS", cls.retry_backoff_seconds),
            retry_backoff_max_seconds=_int("AIRFLOWTASK_RETRY_BACKOFF_MAX_SECONDS", cls.retry_backoff_max_seconds),
            api_workers=_int("AIRFLOWTASK_API_WORKERS", cls.api_workers),
            metrics_port=_int("AIRFLOWTASK_METRICS_PORT", cls.metrics_port),
            execution=_execution(os.environ.get("AIRFLOWTASK_EXECUTION", "").strip() or cls.execution),
            task_image=os.environ.get("AIRFLOWTASK_TASK_IMAGE") or None,
            lease_namespace=(os.environ.get("AIRFLOWTASK_LEASE_NAMESPACE") or os.environ.get("POD_NAMESPACE")
                             or cls.lease_namespace),
            lease_name=os.environ.get("AIRFLOWTASK_LEASE_NAME") or cls.lease_name,
            pod_security_level=_pod_security_level(os.environ.get("AIRFLOWTASK_POD_SECURITY_LEVEL", "").strip()
                                                   or cls.pod_security_level),
            service_account_grace_seconds=_float("AIRFLOWTASK_SERVICE_ACCOUNT_GRACE_SECONDS",
                                                 cls.service_account_grace_seconds),
            triggerer_socket=os.environ.get("AIRFLOWTASK_TRIGGERER_SOCKET") or None,
            default_execution=_one_of("AIRFLOWTASK_DEFAULT_EXECUTION", cls.default_execution, ("Pod", "WarmPool")),
            warm=WarmSettings(
                idle_seconds=_float("AIRFLOWTASK_WARM_IDLE_SECONDS", WarmSettings.idle_seconds),
                max_workers=_int("AIRFLOWTASK_WARM_MAX_WORKERS", WarmSettings.max_workers),
                slots=_int("AIRFLOWTASK_WARM_SLOTS", WarmSettings.slots),
            ),
            lease_timing=Timing(
                lease_duration=_float("AIRFLOWTASK_LEASE_DURATION_SECONDS", Timing.lease_duration),
                renew_deadline=_float("AIRFLOWTASK_LEASE_RENEW_DEADLINE_SECONDS", Timing.renew_deadline),
                retry_period=_float("AIRFLOWTASK_LEASE_RETRY_PERIOD_SECONDS", Timing.retry_period),
            ),
        )


def _one_of(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = os.environ.get(name, "").strip() or default
    if value not in allowed:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(allowed)}")
    return value


def _execution(value: str) -> str:
    if value not in ("pods", "in-process"):
        raise ValueError(f"AIRFLOWTASK_EXECUTION={value!r}: expected 'pods' or 'in-process'")
    return value


def _pod_security_level(value: str) -> str:
    if value not in ("restricted", "baseline"):
        raise ValueError(f"AIRFLOWTASK_POD_SECURITY_LEVEL={value!r}: expected 'restricted' or 'baseline'")
    return value
