"""The Airflow context a task runs with, without an Airflow database.

Every task is attached to a one-task DAG (``dag_id`` :data:`DAG_ID`) and gets a context with what
operators commonly read: ``logical_date``, ``data_interval_start``/``end`` (both the logical date, as
for a manual run), ``ds``, ``ds_nodash``, ``ts``, ``ts_nodash``, ``ts_nodash_with_tz``, ``run_id``,
``params`` (the task's ``params`` updated with RunInfo.params, validated by Airflow), ``dag``, ``task``,
``dag_run`` and ``ti``/``task_instance`` stand-ins, ``var``, ``conn`` and ``macros``.

``ti.xcom_push`` stores values for this task; ``ti.xcom_pull`` returns this task's own values (other
tasks have none here). Templated fields are rendered by the operator's own ``render_template_fields``.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pendulum
from airflow.sdk import DAG, BaseOperator
from airflow.sdk.definitions.param import process_params
from airflow.sdk.execution_time.context import ConnectionAccessor, MacrosAccessor, VariableAccessor
from airflowtask.connector_core.model import RunInfo

DAG_ID = "airflowtask"
RETURN_KEY = "return_value"


def new_dag() -> DAG:
    return DAG(dag_id=DAG_ID, schedule=None)


@dataclass(frozen=True)
class DagRunStandIn:
    """What operators read from ``context["dag_run"]``."""

    dag_id: str
    run_id: str
    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime
    run_after: datetime
    start_date: datetime
    conf: dict[str, Any] = field(default_factory=dict)
    run_type: str = "manual"
    state: str = "running"
    team_name: str | None = None
    partition_key: str | None = None
    clear_number: int = 0


class TaskInstanceStandIn:
    """What operators use of ``context["ti"]``: identity, ``xcom_push``/``xcom_pull`` of own values."""

    def __init__(
        self,
        task: BaseOperator,
        dag_run: DagRunStandIn,
        xcoms: MutableMapping[str, Any],
        started_at: datetime,
        try_number: int = 1,
    ):
        self.task = task
        self.task_id = task.task_id
        self.dag_id = dag_run.dag_id
        self.run_id = dag_run.run_id
        self.logical_date = dag_run.logical_date
        self.dag_run = dag_run
        self.map_index = -1
        self.try_number = try_number
        self.max_tries = task.retries
        self.start_date = started_at
        self.state = "running"
        self.xcoms = xcoms

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value

    def xcom_pull(
        self,
        task_ids: str | Iterable[str] | None = None,
        dag_id: str | None = None,
        key: str = RETURN_KEY,
        include_prior_dates: bool = False,
        *,
        map_indexes: Any = None,
        default: Any = None,
        run_id: str | None = None,
    ) -> Any:
        if task_ids is None or isinstance(task_ids, str):
            return self.xcoms.get(key, default) if task_ids in (None, self.task_id) else default
        return [self.xcoms.get(key, default) if t == self.task_id else default for t in task_ids]

    def get_dagrun(self) -> DagRunStandIn:
        return self.dag_run

    def get_first_reschedule_date(self, context: Any) -> datetime:
        return self.start_date


def build_context(
    task: BaseOperator, run: RunInfo, xcoms: MutableMapping[str, Any], started_at: datetime
) -> dict[str, Any]:
    """The context for ``execute``, ``poke``, callbacks and template rendering of ``task``."""
    logical_date = pendulum.instance(run.logical_date).in_timezone("UTC")
    dag_run = DagRunStandIn(
        dag_id=DAG_ID,
        run_id=run.run_id,
        logical_date=logical_date,
        data_interval_start=logical_date,
        data_interval_end=logical_date,
        run_after=logical_date,
        start_date=started_at,
        conf=dict(run.params),
    )
    ti = TaskInstanceStandIn(task, dag_run, xcoms, started_at, run.try_number)
    ds = logical_date.strftime("%Y-%m-%d")
    ts = logical_date.isoformat()
    return {
        "dag": task.dag,
        "task": task,
        "ti": ti,
        "task_instance": ti,
        "dag_run": dag_run,
        "run_id": run.run_id,
        "logical_date": logical_date,
        "data_interval_start": logical_date,
        "data_interval_end": logical_date,
        "ds": ds,
        "ds_nodash": ds.replace("-", ""),
        "ts": ts,
        "ts_nodash": logical_date.strftime("%Y%m%dT%H%M%S"),
        "ts_nodash_with_tz": ts.replace("-", "").replace(":", ""),
        "task_instance_key_str": f"{DAG_ID}__{task.task_id}__{ds.replace('-', '')}",
        "params": process_params(task.dag, task, dict(run.params), suppress_exception=False),
        "var": {"json": VariableAccessor(deserialize_json=True), "value": VariableAccessor(deserialize_json=False)},
        "conn": ConnectionAccessor(),
        "macros": MacrosAccessor(),
        "inlets": list(task.inlets),
        "outlets": list(task.outlets),
        "map_index_template": task.map_index_template,
        "task_reschedule_count": 0,
        "try_number": run.try_number,
        "prev_data_interval_start_success": None,
        "prev_data_interval_end_success": None,
        "prev_start_date_success": None,
        "prev_end_date_success": None,
        "triggering_asset_events": {},
    }
