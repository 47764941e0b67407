"""Airflow 2 module paths -> where the same classes live on Airflow 3.

Flyte task configs name classes by their Airflow 2 paths (``airflow.sensors.filesystem.FileSensor``).
Airflow 3 moved the core operators, sensors, hooks and triggers into ``providers-standard`` (and a few
into other providers or the Task SDK). The tables below were built from the installed providers and are
checked by a unit test that imports every target.

A module under one of the Airflow 2 namespaces that is not in the tables has no known Airflow 3 home:
:func:`to_airflow3` raises :class:`UnknownAirflow2Path` for it instead of relying on Airflow's
deprecation shims.
"""

from __future__ import annotations

_STANDARD = "airflow.providers.standard"

MODULES: dict[str, str] = {
    "airflow.operators.bash": f"{_STANDARD}.operators.bash",
    "airflow.operators.python": f"{_STANDARD}.operators.python",
    "airflow.operators.empty": f"{_STANDARD}.operators.empty",
    "airflow.operators.datetime": f"{_STANDARD}.operators.datetime",
    "airflow.operators.weekday": f"{_STANDARD}.operators.weekday",
    "airflow.operators.latest_only": f"{_STANDARD}.operators.latest_only",
    "airflow.operators.trigger_dagrun": f"{_STANDARD}.operators.trigger_dagrun",
    "airflow.operators.smooth": f"{_STANDARD}.operators.smooth",
    "airflow.operators.branch": "airflow.sdk.bases.branch",
    "airflow.operators.email": "airflow.providers.smtp.operators.smtp",
    "airflow.operators.generic_transfer": "airflow.providers.common.sql.operators.generic_transfer",
    "airflow.operators.sql": "airflow.providers.common.sql.operators.sql",
    "airflow.sensors.base": "airflow.sdk.bases.sensor",
    "airflow.sensors.bash": f"{_STANDARD}.sensors.bash",
    "airflow.sensors.python": f"{_STANDARD}.sensors.python",
    "airflow.sensors.filesystem": f"{_STANDARD}.sensors.filesystem",
    "airflow.sensors.date_time": f"{_STANDARD}.sensors.date_time",
    "airflow.sensors.time_delta": f"{_STANDARD}.sensors.time_delta",
    "airflow.sensors.time_sensor": f"{_STANDARD}.sensors.time",
    "airflow.sensors.weekday": f"{_STANDARD}.sensors.weekday",
    "airflow.sensors.external_task": f"{_STANDARD}.sensors.external_task",
    "airflow.sensors.sql": "airflow.providers.common.sql.sensors.sql",
    "airflow.hooks.base": "airflow.sdk.bases.hook",
    "airflow.hooks.subprocess": f"{_STANDARD}.hooks.subprocess",
    "airflow.hooks.filesystem": f"{_STANDARD}.hooks.filesystem",
    "airflow.hooks.package_index": f"{_STANDARD}.hooks.package_index",
    "airflow.hooks.dbapi": "airflow.providers.common.sql.hooks.sql",
    "airflow.triggers.temporal": f"{_STANDARD}.triggers.temporal",
    "airflow.triggers.file": f"{_STANDARD}.triggers.file",
    "airflow.triggers.external_task": f"{_STANDARD}.triggers.external_task",
}
"""Whole modules that moved: every class keeps its name."""

CLASSES: dict[tuple[str, str], tuple[str, str]] = {
    ("airflow.operators.dummy", "DummyOperator"): (f"{_STANDARD}.operators.empty", "EmptyOperator"),
    ("airflow.operators.dummy_operator", "DummyOperator"): (f"{_STANDARD}.operators.empty", "EmptyOperator"),
    ("airflow.providers.http.operators.http", "SimpleHttpOperator"): (
        "airflow.providers.http.operators.http",
        "HttpOperator",
    ),
}
"""Classes that moved and were renamed (checked before :data:`MODULES`)."""

AIRFLOW2_NAMESPACES = ("airflow.operators.", "airflow.sensors.", "airflow.hooks.", "airflow.triggers.")
AIRFLOW3_MODULES_IN_AIRFLOW2_NAMESPACES = frozenset({"airflow.triggers.base"})


class UnknownAirflow2Path(LookupError):
    """An Airflow 2 module path with no known Airflow 3 equivalent."""


def to_airflow3(module: str, name: str) -> tuple[str, str]:
    """Map an Airflow 2 ``(module, name)`` to its Airflow 3 location; other paths are returned unchanged."""
    if (module, name) in CLASSES:
        return CLASSES[module, name]
    if module in MODULES:
        return MODULES[module], name
    if module.startswith(AIRFLOW2_NAMESPACES) and module not in AIRFLOW3_MODULES_IN_AIRFLOW2_NAMESPACES:
        raise UnknownAirflow2Path(f"{module}.{name} is an Airflow 2 path with no known Airflow 3 equivalent")
    return module, name


def split_classpath(classpath: str) -> tuple[str, str]:
    """``"package.module.Class"`` -> ``("package.module", "Class")``."""
    module, _, name = classpath.rpartition(".")
    if not module or not name:
        raise ValueError(f"{classpath!r} is not a dotted class path")
    return module, name
