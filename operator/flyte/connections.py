"""Which Airflow connections a Flyte task gets in ``spec.connections`` (pure logic).

The connector's ``AIRFLOWTASK_FLYTE_CONNECTIONS`` maps connection ids to Secrets:
``conn_id=secret[/key],...`` (key defaults to ``uri``). The Secret is read, by the operator, in the
namespace the AirflowTask is created in. A mapped connection is added to a task when its id is the value
of a ``conn_id`` or ``*_conn_id`` parameter (at any depth, e.g. ``hook_params.sqlite_conn_id``), so a task
never depends on a Secret for a connection it does not name. Connections not mapped are left to the
operator (its own ``AIRFLOW_CONN_*`` variables and built-in ``fs_default``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from airflowtask.manifest import connection_entry

ENV = "AIRFLOWTASK_FLYTE_CONNECTIONS"


def parse_mapping(text: str) -> dict[str, str]:
    """``"db=db-conn,http=conns/http"`` -> ``{"db": "db-conn", "http": "conns/http"}``; ValueError if malformed."""
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        conn_id, sep, ref = (s.strip() for s in item.partition("="))
        if not sep or not conn_id or not ref:
            raise ValueError(f"{ENV}: {item!r} is not conn_id=secret[/key]")
        connection_entry(conn_id, ref)  # validates the Secret name and key
        mapping[conn_id] = ref
    return mapping


def named_conn_ids(parameters: Any) -> set[str]:
    """The string values of ``conn_id`` / ``*_conn_id`` keys anywhere in the parameters."""
    return set(_conn_ids(parameters))


def _conn_ids(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and (key == "conn_id" or key.endswith("_conn_id")) and isinstance(item, str):
                yield item
            else:
                yield from _conn_ids(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _conn_ids(item)


def connections_for(parameters: Any, mapping: Mapping[str, str]) -> dict[str, str]:
    """The part of ``mapping`` whose connection ids the parameters name."""
    named = named_conn_ids(parameters)
    return {conn_id: ref for conn_id, ref in mapping.items() if conn_id in named}
