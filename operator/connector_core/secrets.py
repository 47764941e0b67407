"""Connections and variables scoped to one task, through a secrets backend in Airflow's lookup chain.

Many tasks share one process, each with its own connections (from Kubernetes Secrets). The engine binds
the task's :class:`TaskSecrets` in a context variable; worker threads and trigger coroutines run in a copy
of the task's context, so every lookup an operator, hook or trigger makes sees its own task's values.

Lookup order for a connection: the task's RunInfo, any secrets backend configured before the engine
started, ``AIRFLOW_CONN_*`` (Airflow's environment backend, next in the chain), then built-in defaults
(``fs_default`` = ``fs://``). Variables: the task's RunInfo, the configured backend, ``AIRFLOW_VAR_*``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from airflow.sdk.bases.secrets_backend import BaseSecretsBackend
from airflow.sdk.configuration import clear_secrets_backends_cache, conf
from airflow.sdk.definitions.connection import Connection
from airflow.sdk.module_loading import import_string
from airflowtask.connector_core.model import RunInfo

DEFAULT_CONNECTIONS: Mapping[str, str] = {"fs_default": "fs://"}

_BACKEND_PATH = f"{__name__}.RunScopedSecretsBackend"


@dataclass
class TaskSecrets:
    """The connections and variables of one task; ``run`` is replaced when the caller passes a newer one."""

    run: RunInfo


current: ContextVar[TaskSecrets | None] = ContextVar("airflowtask_secrets", default=None)


class InvalidConnectionError(ValueError):
    def __init__(self, conn_id: str, problem: str) -> None:
        super().__init__(f"connection {conn_id!r} is not a valid Airflow connection URI or JSON: {problem}")
        self.conn_id = conn_id


def check_connections(connections: Mapping[str, str]) -> None:
    """Raise InvalidConnectionError for the first value that is neither an Airflow URI nor JSON."""
    for conn_id, value in connections.items():
        try:
            if value.lstrip().startswith("{"):
                Connection.from_json(value, conn_id=conn_id)
            elif "://" not in value or not Connection.from_uri(value, conn_id=conn_id).conn_type:
                raise ValueError("expected conn-type://[login[:password]@]host[:port][/schema][?extra]")
        except (ValueError, TypeError, AttributeError) as exc:
            raise InvalidConnectionError(conn_id, str(exc)) from exc


class RunScopedSecretsBackend(BaseSecretsBackend):
    """Answers from the current task's RunInfo, then from the backend configured before (if any)."""

    def __init__(self, fallback: str | None = None, fallback_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.fallback: BaseSecretsBackend | None = (
            import_string(fallback)(**(fallback_kwargs or {})) if fallback else None
        )

    def get_conn_value(self, conn_id: str, team_name: str | None = None) -> str | None:
        scope = current.get()
        if scope is not None and conn_id in scope.run.connections:
            return scope.run.connections[conn_id]
        if self.fallback is not None and (value := self.fallback.get_conn_value(conn_id)) is not None:
            return value
        if conn_id in DEFAULT_CONNECTIONS and f"AIRFLOW_CONN_{conn_id.upper()}" not in os.environ:
            return DEFAULT_CONNECTIONS[conn_id]
        return None

    def get_variable(self, key: str, team_name: str | None = None) -> str | None:
        scope = current.get()
        if scope is not None and key in scope.run.variables:
            return scope.run.variables[key]
        return self.fallback.get_variable(key) if self.fallback is not None else None


def install() -> None:
    """Put RunScopedSecretsBackend first in Airflow's worker-side secrets chain (idempotent)."""
    configured = conf.get("workers", "secrets_backend", fallback="") or conf.get("secrets", "backend", fallback="")
    if configured == _BACKEND_PATH:
        return
    kwargs: dict[str, Any] = {}
    if configured:
        section, key = ("workers", "secrets_backend_kwargs")
        if not conf.get("workers", "secrets_backend", fallback=""):
            section, key = ("secrets", "backend_kwargs")
        kwargs = {"fallback": configured, "fallback_kwargs": json.loads(conf.get(section, key, fallback="") or "{}")}
    os.environ["AIRFLOW__WORKERS__SECRETS_BACKEND"] = _BACKEND_PATH
    os.environ["AIRFLOW__WORKERS__SECRETS_BACKEND_KWARGS"] = json.dumps(kwargs)
    clear_secrets_backends_cache()
