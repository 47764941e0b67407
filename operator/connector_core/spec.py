"""What to run: :class:`AirflowObj`, and reading it from an AirflowTask spec or a Flyte task's ``custom``.

An AirflowObj names an Airflow class by module and name, plus keyword arguments:

- an **operator** or **sensor**: ``parameters`` are the constructor's keyword arguments
  (``task_id`` defaults to the engine's task id);
- a **trigger**: ``parameters`` are the trigger's keyword arguments; the first event's payload is the result;
- a **hook**: ``parameters`` hold ``hook_params`` (the constructor's keyword arguments), ``method``
  (a public method name), and optional ``args`` (list) and ``kwargs`` (object) for the call, e.g.
  ``{"hook_params": {"sqlite_conn_id": "db"}, "method": "get_records", "args": ["select 1"]}``;
  the method's return value is the result.

Parameter values are JSON; values JSON cannot hold use the typed form documented in
:mod:`airflowtask.connector_core.typed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflowtask.connector_core import jsonpickle_form, typed


class SpecError(ValueError):
    """The task description is malformed."""


@dataclass
class AirflowObj:
    """An Airflow operator, sensor, hook or trigger class, plus its keyword arguments."""

    module: str
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


def from_spec(operator: Mapping[str, Any]) -> AirflowObj:
    """``{"module": ..., "name": ..., "parameters": {...}}`` (typed JSON parameters) -> AirflowObj."""
    if not isinstance(operator, Mapping):
        raise SpecError(f"operator must be an object with module, name and parameters, got {operator!r}")
    module, name, parameters = operator.get("module"), operator.get("name"), operator.get("parameters", {})
    if not isinstance(module, str) or not module:
        raise SpecError("operator.module must be a non-empty string")
    if not isinstance(name, str) or not name:
        raise SpecError("operator.name must be a non-empty string")
    if not isinstance(parameters, Mapping):
        raise SpecError("operator.parameters must be an object")
    try:
        decoded = typed.decode(dict(parameters), "operator.parameters")
    except typed.TypedValueError as exc:
        raise SpecError(str(exc)) from exc
    return AirflowObj(module=module, name=name, parameters=decoded)


def from_flyte_custom(custom: Mapping[str, Any]) -> AirflowObj:
    """A Flyte task template's ``custom``: the seed's ``task_config_pkl`` or our ``operator`` spec form."""
    if "task_config_pkl" in custom:
        pkl = custom["task_config_pkl"]
        if not isinstance(pkl, str):
            raise SpecError("task_config_pkl must be a string")
        try:
            module, name, parameters = jsonpickle_form.parse_airflow_obj(pkl)
        except jsonpickle_form.JsonpickleFormError as exc:
            raise SpecError(f"task_config_pkl: {exc}") from exc
        return AirflowObj(module=module, name=name, parameters=parameters)
    if "operator" in custom:
        return from_spec(custom["operator"])
    raise SpecError("the task's custom holds neither task_config_pkl nor operator")
