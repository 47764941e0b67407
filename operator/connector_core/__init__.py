"""Run Airflow operators, sensors, hooks and triggers without an Airflow deployment.

:class:`Engine` does the work for both front ends: the kopf handlers call it directly, and
:mod:`airflowtask.connector_core.flyte` wraps it as a Flyte connector (a drop-in for
flytekitplugins-airflow's). Importing this package sets ``AIRFLOW_HOME`` to a temporary directory when
it is unset.
"""

from airflowtask.connector_core import _environment  # noqa: F401  (must run before Airflow is imported)
from airflowtask.connector_core.encoding import AirflowMetadata, MetadataError, Sealed, SignatureError
from airflowtask.connector_core.engine import Engine
from airflowtask.connector_core.model import EngineConfig, LogLink, Phase, Reason, RunInfo, TaskState
from airflowtask.connector_core.spec import AirflowObj, SpecError, from_flyte_custom, from_spec

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
