"""Links to an external console for tasks whose operator is known to run a job there."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflowtask.connector_core.model import LogLink

_DATAPROC_OPERATORS = frozenset({"DataprocJobBaseOperator", "DataprocSubmitJobOperator"})


def log_links(operator: Any, trigger_kwargs: Mapping[str, Any] | None = None) -> tuple[LogLink, ...]:
    """Console links for ``operator`` (classes are recognised by name, so their provider need not be installed)."""
    if operator is None:
        return ()
    class_names = {cls.__name__ for cls in type(operator).__mro__}
    if class_names & _DATAPROC_OPERATORS:
        job_id = (trigger_kwargs or {}).get("job_id") or getattr(operator, "job_id", None)
        region, project = getattr(operator, "region", None), getattr(operator, "project_id", None)
        if job_id and region and project:
            uri = (
                f"https://console.cloud.google.com/dataproc/jobs/{job_id}/monitoring?region={region}&project={project}"
            )
            return (LogLink(name="Dataproc Console", uri=uri),)
    return ()
