"""Pure functions that turn an observed outcome into the next ``status`` and its event."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflowtask.resource import format_time

CONDITION = "Succeeded"
_CONDITION_STATUS = {"Succeeded": "True", "Failed": "False"}
_WARNING_REASONS = frozenset({"Retrying", "SubmissionInterrupted", "DeadlineExceeded", "Interrupted"})


@dataclass(frozen=True)
class Event:
    """A Kubernetes event about one AirflowTask, as ``kubectl describe`` shows it."""

    type: str
    reason: str
    message: str


def next_status(
    previous: Mapping[str, Any],
    *,
    phase: str,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
    **fields: Any,
) -> dict[str, Any]:
    """The whole new status: ``previous`` with the given phase, reason, message and fields.

    A field given as ``None`` is removed. The ``Succeeded`` condition follows the phase, and
    its ``lastTransitionTime`` moves only when the condition's status changes.
    """
    condition_status = _CONDITION_STATUS.get(phase, "Unknown")
    old = next((c for c in previous.get("conditions") or () if c.get("type") == CONDITION), None)
    moved = old is None or old.get("status") != condition_status
    condition = {
        "type": CONDITION,
        "status": condition_status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": format_time(now) if moved else old["lastTransitionTime"],
        "observedGeneration": generation,
    }
    status = {
        **previous,
        **fields,
        "phase": phase,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "conditions": [condition],
    }
    return {key: value for key, value in status.items() if value is not None}


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch that turns ``old`` into ``new`` at the top level (None deletes)."""
    patch: dict[str, Any] = {key: value for key, value in new.items() if old.get(key) != value}
    patch.update({key: None for key in old if key not in new})
    return patch


def transition_event(old: Mapping[str, Any], new: Mapping[str, Any]) -> Event | None:
    """The event to post when the phase or reason changed, else None."""
    if (old.get("phase"), old.get("reason")) == (new.get("phase"), new.get("reason")):
        return None
    reason = str(new.get("reason") or new.get("phase"))
    warning = new.get("phase") == "Failed" or reason in _WARNING_REASONS
    return Event("Warning" if warning else "Normal", reason, str(new.get("message") or ""))


def log_tail(lines: list[str], limit: int, max_chars: int = 8192) -> str | None:
    """The last ``limit`` lines, capped at ``max_chars`` characters, or None when empty."""
    text = "\n".join(lines[-limit:]) if limit > 0 else ""
    return text[-max_chars:] or None
