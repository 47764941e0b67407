"""AirflowTask manifests: the one way the Flyte connector and the Python client write a spec.

:func:`build_task` turns an :class:`AirflowObj` into a manifest whose ``spec.operator.parameters`` are
typed JSON (:mod:`airflowtask.connector_core.typed`). :func:`task_from_operator` turns an Airflow operator
instance back into the AirflowObj it was built from.

Connections are given as ``{conn_id: "secret[/key]"}``: the Secret (in the task's namespace) and the key
holding the Airflow connection URI or JSON; the key defaults to ``uri``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from airflowtask.connector_core import typed
from airflowtask.connector_core.spec import AirflowObj
from airflowtask.settings import GROUP, VERSION

API_VERSION = f"{GROUP}/{VERSION}"
KIND = "AirflowTask"

_SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_NOT_PARAMETERS = frozenset({"dag", "task_group"})
_DUPLICATE_KWARG = re.compile(r"got multiple values for keyword argument '(\w+)'")


class ManifestError(ValueError):
    """The task cannot be written as an AirflowTask."""


def build_task(
    obj: AirflowObj,
    *,
    namespace: str,
    name: str | None = None,
    generate_name: str | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    connections: Mapping[str, str] | None = None,
    poll_interval_seconds: int | None = None,
    active_deadline_seconds: int | None = None,
    backoff_limit: int | None = None,
    deletion_policy: str | None = None,
    ttl_seconds_after_finished: int | None = None,
) -> dict[str, Any]:
    """An AirflowTask manifest; give ``name``, or ``generate_name`` for a server-chosen suffix.

    Options left ``None`` are omitted, so the CRD's defaults apply. Raises ManifestError for parameters
    that cannot be written as typed JSON and for malformed connection references.
    """
    if (name is None) == (generate_name is None):
        raise ManifestError("give exactly one of name and generate_name")
    try:
        parameters = typed.encode(obj.parameters, "parameters")
    except typed.TypedValueError as exc:
        raise ManifestError(str(exc)) from exc
    metadata: dict[str, Any] = {"namespace": namespace}
    metadata.update({"name": name} if name is not None else {"generateName": generate_name})
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    spec: dict[str, Any] = {"operator": {"module": obj.module, "name": obj.name, "parameters": parameters}}
    if connections:
        spec["connections"] = [connection_entry(conn_id, ref) for conn_id, ref in sorted(connections.items())]
    options = {
        "pollIntervalSeconds": poll_interval_seconds,
        "activeDeadlineSeconds": active_deadline_seconds,
        "backoffLimit": backoff_limit,
        "deletionPolicy": deletion_policy,
        "ttlSecondsAfterFinished": ttl_seconds_after_finished,
    }
    spec.update({key: value for key, value in options.items() if value is not None})
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def connection_entry(conn_id: str, ref: str) -> dict[str, Any]:
    """``("db", "db-conn/uri")`` -> a ``spec.connections`` item."""
    secret, _, key = ref.partition("/")
    if not conn_id:
        raise ManifestError(f"connection {ref!r}: the connection id is empty")
    if not _SECRET_NAME.match(secret) or len(secret) > 253:
        raise ManifestError(f"connection {conn_id!r}: {secret!r} is not a valid Secret name")
    if key and not _SECRET_KEY.match(key):
        raise ManifestError(f"connection {conn_id!r}: {key!r} is not a valid Secret key")
    return {"connId": conn_id, "secretRef": {"name": secret, **({"key": key} if key else {})}}


def task_from_operator(operator: Any) -> AirflowObj:
    """An Airflow operator or sensor instance -> the AirflowObj (class and constructor kwargs) it came from.

    The kwargs are the ones Airflow itself records at construction (``BaseOperator``'s private
    ``__init_kwargs``, kept for mapped tasks and updated when an attribute named by one is reassigned),
    minus ``dag`` and ``task_group``; ``default_args`` of an enclosing DAG are included. The class is then
    rebuilt here from those kwargs and must record the same ones, so what runs in the cluster is what the
    caller built. Kwargs a class passes to its own base (``deferrable=True`` of TimeDeltaSensorAsync) are
    dropped when rebuilding shows it. Refused, with ManifestError: classes defined in ``__main__`` or inside
    a function, and operators that do not rebuild identically; pass an AirflowObj for those.
    """
    cls = type(operator)
    recorded = getattr(operator, "_BaseOperator__init_kwargs", None)
    if not isinstance(recorded, dict):
        raise ManifestError(f"{cls.__name__} is not an Airflow operator (no recorded constructor arguments)")
    if cls.__module__ == "__main__" or "." in cls.__qualname__:
        raise ManifestError(f"{cls.__qualname__} must be importable: define it at the top level of a module")
    parameters = {key: value for key, value in recorded.items() if key not in _NOT_PARAMETERS}
    _check_rebuilds(cls, parameters)
    return AirflowObj(module=cls.__module__, name=cls.__name__, parameters=parameters)


def _check_rebuilds(cls: type, parameters: dict[str, Any]) -> None:
    """Rebuild ``cls`` from ``parameters`` (dropping kwargs it sets itself); ManifestError unless identical."""
    expected = _encoded(parameters, cls)
    while True:  # each pass either returns, raises, or drops one kwarg
        try:
            rebuilt = cls(**parameters)
        except TypeError as exc:
            duplicate = _DUPLICATE_KWARG.search(str(exc))
            if duplicate is None or duplicate.group(1) not in parameters:
                raise ManifestError(f"{cls.__name__} cannot be rebuilt from its constructor arguments: {exc}") from exc
            del parameters[duplicate.group(1)]
            continue
        except Exception as exc:
            raise ManifestError(f"{cls.__name__} cannot be rebuilt from its constructor arguments: {exc}") from exc
        again = {k: v for k, v in rebuilt._BaseOperator__init_kwargs.items() if k not in _NOT_PARAMETERS}
        if _encoded(again, cls) != expected:
            raise ManifestError(f"{cls.__name__} does not rebuild with the same arguments; pass an AirflowObj")
        return


def _encoded(parameters: Mapping[str, Any], cls: type) -> Any:
    try:
        return typed.encode(dict(parameters), "parameters")
    except typed.TypedValueError as exc:
        raise ManifestError(f"{cls.__name__}: {exc}") from exc
