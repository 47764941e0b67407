"""Links to an external console for tasks whose operator is known to run a job there."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from airflowtask.connector_core.model import LogLink

_DATAPROC_OPERATORS = frozenset({"DataprocJobBaseOperator", "DataprocSubmitJobOperator"})


def log_links(operator: Any, trigger_kwargs: Mapping[str, Any] | None = None) -> tuple[LogLink, ...]:
    """Console links for ``operator`` (classes are recognised by name, so their provider need not be installed)."""
    if operator is None:
        return ()
    if runs_on_dataproc(type(operator)):
        job_id = (trigger_kwargs or {}).get("job_id") or getattr(operator, "job_id", None)
        region, project = getattr(operator, "region", None), getattr(operator, "project_id", None)
        if job_id and region and project:
            uri = (
                f"https://console.cloud.google.com/dataproc/jobs/{job_id}/monitoring?region={region}&project={project}"
            )
            return (LogLink(name="Dataproc Console", uri=uri),)
    return ()


@functools.cache
def runs_on_dataproc(cls: type) -> bool:
    """Whether ``cls`` is (a subclass of) a Dataproc job operator, by class name; once per class."""
    return any(base.__name__ in _DATAPROC_OPERATORS for base in cls.__mro__)
