"""Mapping Airflow connection ids to Secrets for Flyte tasks (AIRFLOWTASK_FLYTE_CONNECTIONS)."""

from __future__ import annotations

import pytest
from airflowtask.flyte.connections import connections_for, named_conn_ids, parse_mapping


def test_parse_mapping() -> None:
    assert parse_mapping("") == {}
    assert parse_mapping(" db = db-conn , http=conns/local_http,") == {"db": "db-conn", "http": "conns/local_http"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [("db", "is not conn_id=secret"), ("=s", "is not conn_id=secret"), ("db=", "is not conn_id=secret"),
     ("db=Not_A_Name", "not a valid Secret name")],
)
def test_parse_mapping_rejects_malformed_entries(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_mapping(text)


def test_conn_ids_named_anywhere_in_the_parameters() -> None:
    parameters = {
        "http_conn_id": "api",
        "conn_id": "db",
        "hook_params": {"sqlite_conn_id": "lite"},
        "steps": [{"gcp_conn_id": "gcp"}],
        "conn_id_list": ["not-a-conn-id-key"],
        "fs_conn_id": None,
        "endpoint": "fs_default",
    }
    assert named_conn_ids(parameters) == {"api", "db", "lite", "gcp"}


def test_a_task_gets_only_the_mapped_connections_it_names() -> None:
    mapping = {"api": "api-conn", "db": "db-conn/uri", "unused": "other"}
    assert connections_for({"http_conn_id": "api", "conn_id": "db", "x_conn_id": "unmapped"}, mapping) == {
        "api": "api-conn", "db": "db-conn/uri"}
    assert connections_for({"bash_command": "true"}, mapping) == {}
