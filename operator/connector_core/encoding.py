"""AirflowMetadata: everything get() and delete() need, as readable JSON that decodes without running code.

``encode()`` writes::

    {"version": 1, "task_key": "...", "kind": "operator",
     "operator": {"module": ..., "name": ..., "task_id": ..., "parameters": <typed JSON>},
     "trigger": {"classpath": ..., "kwargs": <typed JSON>} | null, "callback": "execute_complete",
     "next_kwargs": <typed JSON>, "trigger_deadline": <ISO time> | null, "job_id": ...,
     "run": {"run_id": ..., "logical_date": <ISO time>}, "started_at": <ISO time>,
     "executing_in": <engine epoch> | null, "outcome": {...} | null,
     "operator_state": <typed JSON>, "sealed": {"data": <base64>, "signature": <hex>} | null}

``executing_in`` names the engine (process) that had an execute() in flight when the metadata was
written: another engine finding it set knows that work was lost (reason ``Interrupted``).

``sealed`` carries operator state JSON cannot hold (a cloudpickle), only when a signing key is configured.
It is signed with HMAC-SHA256 and :meth:`Sealed.open` verifies the signature before unpickling;
``decode()`` itself never unpickles or imports anything.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import cloudpickle
from airflowtask.connector_core import typed
from airflowtask.connector_core.model import Phase
from airflowtask.connector_core.spec import AirflowObj

VERSION = 1
DECODED_KEPT = 20_000
"""Distinct encoded metadata whose parse :meth:`AirflowMetadata.decode` keeps (the oldest is dropped first)."""
_decoded: dict[bytes, AirflowMetadata] = {}
_PHASES = frozenset(phase.value for phase in Phase)


class MetadataError(ValueError):
    """Bytes that are not valid encoded AirflowMetadata."""


class SignatureError(Exception):
    """Sealed state without a valid signature (or no key to check it with)."""


@dataclass(frozen=True)
class Sealed:
    """A cloudpickle of Python values, with an HMAC-SHA256 signature bound to one task."""

    data: bytes
    signature: bytes

    @classmethod
    def seal(cls, value: Any, key: bytes, task_key: str) -> Sealed:
        data = cloudpickle.dumps(value)
        return cls(data=data, signature=_mac(key, task_key, data))

    def open(self, key: bytes | None, task_key: str) -> Any:
        """Verify the signature with ``key``, then unpickle; raise SignatureError otherwise."""
        if not key:
            raise SignatureError("sealed operator state found but no signing key is configured; refusing it")
        if not hmac.compare_digest(self.signature, _mac(key, task_key, self.data)):
            raise SignatureError("sealed operator state has an invalid signature; refusing it")
        return cloudpickle.loads(self.data)


def _mac(key: bytes, task_key: str, data: bytes) -> bytes:
    return hmac.new(key, b"airflowtask-sealed/v1\0" + task_key.encode() + b"\0" + data, hashlib.sha256).digest()


@dataclass
class AirflowMetadata:
    """The state of one task that must outlive the process (the connector's ``resource_meta``)."""

    airflow_operator: AirflowObj
    airflow_trigger: AirflowObj | None = None
    """The running trigger: module and name of its class, and its kwargs (from ``trigger.serialize()``)."""
    airflow_trigger_callback: str | None = None
    job_id: str | None = None
    task_key: str = ""
    task_id: str = ""
    kind: str = ""
    run_id: str = ""
    logical_date: datetime | None = None
    started_at: datetime | None = None
    next_kwargs: dict[str, Any] | None = None
    trigger_deadline: datetime | None = None
    executing_in: str | None = None
    outcome: dict[str, Any] | None = None
    operator_state: dict[str, Any] = field(default_factory=dict)
    sealed: Sealed | None = None

    def encode(self) -> bytes:
        trigger = None
        if self.airflow_trigger is not None:
            trigger = {
                "classpath": f"{self.airflow_trigger.module}.{self.airflow_trigger.name}",
                "kwargs": typed.encode(self.airflow_trigger.parameters, "trigger.kwargs"),
            }
        document = {
            "version": VERSION,
            "task_key": self.task_key,
            "kind": self.kind,
            "operator": {
                "module": self.airflow_operator.module,
                "name": self.airflow_operator.name,
                "task_id": self.task_id,
                "parameters": typed.encode(self.airflow_operator.parameters, "operator.parameters"),
            },
            "trigger": trigger,
            "callback": self.airflow_trigger_callback,
            "next_kwargs": typed.encode(self.next_kwargs, "next_kwargs"),
            "trigger_deadline": _time(self.trigger_deadline),
            "job_id": self.job_id,
            "run": {"run_id": self.run_id, "logical_date": _time(self.logical_date)},
            "started_at": _time(self.started_at),
            "executing_in": self.executing_in,
            "outcome": self.outcome,
            "operator_state": typed.encode(self.operator_state, "operator_state"),
            "sealed": None
            if self.sealed is None
            else {"data": base64.b64encode(self.sealed.data).decode(), "signature": self.sealed.signature.hex()},
        }
        return json.dumps(document, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> AirflowMetadata:
        """Parse encoded metadata; raise MetadataError for anything else (pickles included).

        Flyte sends a task's metadata with every GetTask, the same bytes until the task is created anew: the
        last :data:`DECODED_KEPT` distinct ones are parsed once and then copied (see :func:`_copy`).
        """
        key = bytes(data)
        if (known := _decoded.get(key)) is None:
            known = cls._parse(key)
            if len(_decoded) >= DECODED_KEPT:
                del _decoded[next(iter(_decoded))]
            _decoded[key] = known
        return _copy(known)

    @classmethod
    def _parse(cls, data: bytes) -> AirflowMetadata:
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MetadataError(
                "resource metadata is not JSON (pickled metadata of the seed connector is refused)"
            ) from exc
        if not isinstance(document, dict) or document.get("version") != VERSION:
            raise MetadataError(f"resource metadata is not version {VERSION} AirflowTask metadata")
        try:
            return _from_document(document)
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise MetadataError(f"invalid resource metadata: {exc}") from exc


def _copy(meta: AirflowMetadata) -> AirflowMetadata:
    """A copy whose fields and dicts (the engine updates some in place) are its own; the values in them are shared."""
    fresh = copy.copy(meta)
    fresh.airflow_operator = _copy_obj(meta.airflow_operator)
    fresh.airflow_trigger = None if meta.airflow_trigger is None else _copy_obj(meta.airflow_trigger)
    fresh.next_kwargs = None if meta.next_kwargs is None else dict(meta.next_kwargs)
    fresh.outcome = None if meta.outcome is None else dict(meta.outcome)
    fresh.operator_state = dict(meta.operator_state)
    return fresh


def _copy_obj(obj: AirflowObj) -> AirflowObj:
    return AirflowObj(obj.module, obj.name, dict(obj.parameters))


def _from_document(document: dict[str, Any]) -> AirflowMetadata:
    operator = document["operator"]
    trigger = document.get("trigger")
    run = document.get("run") or {}
    sealed = document.get("sealed")
    airflow_trigger = None
    if trigger is not None:
        module, _, name = _text(trigger["classpath"]).rpartition(".")
        airflow_trigger = AirflowObj(module, name, _dict(typed.decode(trigger["kwargs"], "trigger.kwargs")))
    outcome = document.get("outcome")
    if outcome is not None and (not isinstance(outcome, dict) or outcome.get("phase") not in _PHASES):
        raise TypeError("outcome must be an object with a phase")
    next_kwargs = typed.decode(document.get("next_kwargs"), "next_kwargs")
    return AirflowMetadata(
        airflow_operator=AirflowObj(
            _text(operator["module"]),
            _text(operator["name"]),
            _dict(typed.decode(operator.get("parameters", {}), "operator.parameters")),
        ),
        airflow_trigger=airflow_trigger,
        airflow_trigger_callback=_optional_text(document.get("callback")),
        job_id=_optional_text(document.get("job_id")),
        task_key=_text(document["task_key"]),
        task_id=_text(operator.get("task_id", "")),
        kind=_text(document.get("kind", "")),
        run_id=_text(run.get("run_id", "")),
        logical_date=_parse_time(run.get("logical_date")),
        started_at=_parse_time(document.get("started_at")),
        next_kwargs=None if next_kwargs is None else _dict(next_kwargs),
        trigger_deadline=_parse_time(document.get("trigger_deadline")),
        executing_in=_optional_text(document.get("executing_in")),
        outcome=outcome,
        operator_state=_dict(typed.decode(document.get("operator_state") or {}, "operator_state")),
        sealed=None
        if sealed is None
        else Sealed(data=base64.b64decode(sealed["data"], validate=True), signature=bytes.fromhex(sealed["signature"])),
    )


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(_text(value))


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {value!r}")
    return value
