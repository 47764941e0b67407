"""Turn an AirflowObj into a live operator, sensor, hook or trigger (allowlist first, then import)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from airflow.sdk import BaseHook, BaseOperator, BaseSensorOperator
from airflow.triggers.base import BaseTrigger
from airflowtask.connector_core import typed
from airflowtask.connector_core.allowlist import Allowlist, ImportFailedError, NotAllowedError
from airflowtask.connector_core.context import new_dag
from airflowtask.connector_core.model import Reason
from airflowtask.connector_core.spec import AirflowObj

HOOK_KEYS = frozenset({"hook_params", "method", "args", "kwargs"})


class Kind(StrEnum):
    OPERATOR = "operator"  # operators and sensors: execute() (sensors in reschedule mode: one poke per call)
    HOOK = "hook"
    TRIGGER = "trigger"


class LoadError(Exception):
    """The task cannot be built; ``reason`` is NotAllowed, ImportFailed or InvalidParameters."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class HookCall:
    method: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Loaded:
    kind: Kind
    instance: Any
    hook_call: HookCall | None = None
    poke_only: bool = False
    """A sensor that refuses reschedule mode (``@poke_mode_only``): the engine pokes it once per call."""


class Loader:
    def __init__(self, allowlist: Allowlist, *, reschedule_sensors: bool = True) -> None:
        """``reschedule_sensors``: sensors run in reschedule mode (one poke per execute(), for the engine);
        False: in poke mode (execute() pokes until done, for a process of the task's own)."""
        self.allowlist = allowlist
        self.sensor_mode = "reschedule" if reschedule_sensors else "poke"

    def load(self, obj: AirflowObj, task_id: str) -> Loaded:
        cls = self._import(obj.module, obj.name)
        parameters = self.resolve(obj.parameters)
        what = f"{obj.module}.{obj.name}"
        if not isinstance(parameters, dict):
            raise LoadError(Reason.INVALID_PARAMETERS, f"the parameters of {what} must be an object")
        if isinstance(cls, type) and issubclass(cls, BaseOperator):
            return self._operator(cls, parameters, task_id, what)
        if isinstance(cls, type) and issubclass(cls, BaseTrigger):
            return Loaded(Kind.TRIGGER, _construct(cls, parameters, what))
        if isinstance(cls, type) and issubclass(cls, BaseHook):
            return self._hook(cls, parameters, what)
        raise LoadError(Reason.IMPORT_FAILED, f"{what} is not an Airflow operator, sensor, hook or trigger")

    def trigger(self, module: str, name: str, kwargs: Mapping[str, Any]) -> BaseTrigger:
        """Rebuild a trigger from its serialized form (classpath and kwargs)."""
        cls = self._import(module, name)
        if not (isinstance(cls, type) and issubclass(cls, BaseTrigger)):
            raise LoadError(Reason.IMPORT_FAILED, f"{module}.{name} is not an Airflow trigger")
        return _construct(cls, self.resolve(dict(kwargs)), f"{module}.{name}")

    def resolve(self, value: Any) -> Any:
        """Decode typed values and import the callables they name (through the allowlist)."""
        try:
            value = typed.decode(value)
        except typed.TypedValueError as exc:
            raise LoadError(Reason.INVALID_PARAMETERS, str(exc)) from exc
        return self._resolve(value)

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, typed.CallableRef):
            return self._import(value.module, value.name)
        if isinstance(value, dict):
            return {k: self._resolve(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set):
            return type(value)(self._resolve(v) for v in value)
        return value

    def _import(self, module: str, name: str) -> Any:
        try:
            return self.allowlist.load(module, name)
        except NotAllowedError as exc:
            raise LoadError(Reason.NOT_ALLOWED, str(exc)) from exc
        except ImportFailedError as exc:
            raise LoadError(Reason.IMPORT_FAILED, str(exc)) from exc

    def _operator(self, cls: type[BaseOperator], parameters: dict[str, Any], task_id: str, what: str) -> Loaded:
        kwargs = {"task_id": task_id, **parameters, "dag": new_dag()}
        if "deferrable" not in parameters and accepts_deferrable(cls):
            kwargs["deferrable"] = True
        operator = _construct(cls, kwargs, what)
        poke_only = False
        if isinstance(operator, BaseSensorOperator):
            try:
                operator.mode = self.sensor_mode
            except (ValueError, AttributeError):
                poke_only = True
        return Loaded(Kind.OPERATOR, operator, poke_only=poke_only)

    def _hook(self, cls: type[BaseHook], parameters: dict[str, Any], what: str) -> Loaded:
        unknown = set(parameters) - HOOK_KEYS
        method, args, kwargs = parameters.get("method"), parameters.get("args", []), parameters.get("kwargs", {})
        hook_params = parameters.get("hook_params", {})
        if unknown:
            raise LoadError(
                Reason.INVALID_PARAMETERS,
                f"hook parameters take {sorted(HOOK_KEYS)}; unknown: {sorted(unknown)}",
            )
        if not isinstance(method, str) or not method.isidentifier() or method.startswith("_"):
            raise LoadError(
                Reason.INVALID_PARAMETERS, f"hook parameter 'method' must name a public method, got {method!r}"
            )
        if not isinstance(args, list | tuple) or not isinstance(kwargs, dict) or not isinstance(hook_params, dict):
            raise LoadError(Reason.INVALID_PARAMETERS, "hook 'args' must be a list, 'kwargs' and 'hook_params' objects")
        hook = _construct(cls, hook_params, what)
        if not callable(getattr(hook, method, None)):
            raise LoadError(Reason.INVALID_PARAMETERS, f"{what} has no method {method!r}")
        return Loaded(Kind.HOOK, hook, hook_call=HookCall(method, list(args), kwargs))


@functools.cache
def accepts_deferrable(cls: type) -> bool:
    """Whether ``cls.__init__`` names a ``deferrable`` parameter itself, not just through ``**kwargs`` (cached)."""
    try:
        parameter = inspect.signature(cls.__init__).parameters.get("deferrable")
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD)


def _construct(cls: type, kwargs: dict[str, Any], what: str) -> Any:
    try:
        return cls(**kwargs)
    except Exception as exc:
        shown = ", ".join(sorted(k for k in kwargs if k != "dag"))
        raise LoadError(
            Reason.INVALID_PARAMETERS, f"{what}({shown}) rejected the parameters: {type(exc).__name__}: {exc}"
        ) from exc
