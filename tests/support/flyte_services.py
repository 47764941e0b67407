"""What the Flyte fixtures need prepared (index.json's ``prepare``): files, a local HTTP server, the job service.

``FixtureServices`` (a context manager) writes ``/tmp/airflowtask-fixtures/ready.txt`` and ``ready.db`` (table
``ready`` with a row), serves ``GET /health`` and ``GET /data`` on 127.0.0.1, and runs a :class:`JobService`.
``connections`` are the Airflow connections the fixtures name, for a Secret or ``AIRFLOW_CONN_*`` variables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from local_http import JsonHandler, LocalServer
from localjob import JobService

FIXTURE_DIR = Path("/tmp/airflowtask-fixtures")


class _Handler(JsonHandler):
    def do_GET(self) -> None:
        known = self.path.lstrip("/") in ("health", "data")
        self.reply(200 if known else 404, {"ok": True} if known else {"error": "not found"})


class FixtureServices:
    """Files and services for every fixture of tests/fixtures/flyte/index.json."""

    def __init__(self, sqlite_path: str = str(FIXTURE_DIR / "ready.db")) -> None:
        self.sqlite_path = sqlite_path  # where the tasks find the database (the test image has one)
        self.http = LocalServer(_Handler)
        self.jobs = JobService()

    def __enter__(self) -> FixtureServices:
        exec(self.files_script(), {})
        self.http.start()
        self.jobs.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.jobs.stop()
        self.http.stop()

    @staticmethod
    def files_script() -> str:
        """Python code that writes the fixtures' files (run here, or where the operator runs)."""
        return (
            "import pathlib, sqlite3\n"
            f"folder = pathlib.Path({str(FIXTURE_DIR)!r})\n"
            "folder.mkdir(parents=True, exist_ok=True)\n"
            "(folder / 'ready.txt').write_text('ready\\n')\n"
            "with sqlite3.connect(folder / 'ready.db') as db:\n"
            "    db.execute('create table if not exists ready (id integer)')\n"
            "    db.execute('insert into ready values (1)')\n"
        )

    @property
    def connections(self) -> dict[str, str]:
        """conn_id -> Airflow connection (URI or JSON) for the connections the fixtures name."""
        sqlite = {"conn_type": "sqlite", "host": self.sqlite_path}
        return {"local_http": self.http.url, "local_sqlite": json.dumps(sqlite), "local_jobs": self.jobs.url}

    def airflow_env(self) -> dict[str, str]:
        """The connections as ``AIRFLOW_CONN_*`` variables (plus ``fs_default``), for an in-process connector."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": value for conn_id, value in self.connections.items()} | {
            "AIRFLOW_CONN_FS_DEFAULT": "fs://"}

    def secret(self, namespace: str, name: str) -> dict[str, Any]:
        """The connections as one Secret, a key per connection id."""
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
                "stringData": self.connections}
