"""Run Airflow operators, sensors, hooks and triggers without an Airflow deployment.

:class:`Engine` does the work for both front ends: the kopf handlers call it directly, and
:mod:`airflowtask.connector_core.flyte` wraps it as a Flyte connector (a drop-in for
flytekitplugins-airflow's). Importing this package sets ``AIRFLOW_HOME`` to a temporary directory when
it is unset.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from airflowtask.connector_core import _environment  # noqa: F401  (must run before Airflow is imported)

if TYPE_CHECKING:
    from airflowtask.connector_core.encoding import AirflowMetadata, MetadataError, Sealed, SignatureError
    from airflowtask.connector_core.engine import Engine
    from airflowtask.connector_core.model import EngineConfig, LogLink, Phase, Reason, RunInfo, TaskState
    from airflowtask.connector_core.spec import AirflowObj, SpecError, from_flyte_custom, from_spec

# The public names and the modules that define them, imported on first use (PEP 562) so that reading a
# spec (spec, typed) does not import Airflow and the engine.
_HOMES = {
    "AirflowMetadata": "encoding",
    "MetadataError": "encoding",
    "Sealed": "encoding",
    "SignatureError": "encoding",
    "Engine": "engine",
    "EngineConfig": "model",
    "LogLink": "model",
    "Phase": "model",
    "Reason": "model",
    "RunInfo": "model",
    "TaskState": "model",
    "AirflowObj": "spec",
    "SpecError": "spec",
    "from_flyte_custom": "spec",
    "from_spec": "spec",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "AirflowMetadata",
    "AirflowObj",
    "Engine",
    "EngineConfig",
    "LogLink",
    "MetadataError",
    "Phase",
    "Reason",
    "RunInfo",
    "Sealed",
    "SignatureError",
    "SpecError",
    "TaskState",
    "from_flyte_custom",
    "from_spec",
]
