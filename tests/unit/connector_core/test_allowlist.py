"""The allowlist is checked before anything is imported."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflowtask.connector_core.allowlist import Allowlist, ImportFailedError, NotAllowedError
from airflowtask.connector_core.model import DEFAULT_ALLOWED_MODULES


@pytest.fixture
def canary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An importable module nobody imported yet."""
    name = f"canary_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("class Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_patterns() -> None:
    allowlist = Allowlist(DEFAULT_ALLOWED_MODULES)
    assert allowlist.allows("airflow.providers.standard.operators.bash")
    assert allowlist.allows("airflow.providers.http.sensors.http")
    assert not allowlist.allows("os")
    assert not allowlist.allows("airflowx.providers.thing")
    assert Allowlist(["mycompany.airflow.*", "localjob"]).allows("localjob")


def test_not_allowed_module_is_not_imported(canary: str) -> None:
    with pytest.raises(NotAllowedError, match=canary):
        Allowlist(DEFAULT_ALLOWED_MODULES).load(canary, "Thing")
    assert canary not in sys.modules


def test_allowed_module_is_imported(canary: str) -> None:
    assert Allowlist([canary]).load(canary, "Thing").__name__ == "Thing"


def test_names_reexported_from_other_modules_are_refused() -> None:
    """hooks/subprocess.py imports subprocess.Popen; it must not be reachable through that module."""
    with pytest.raises(NotAllowedError, match="defined in subprocess"):
        Allowlist(DEFAULT_ALLOWED_MODULES).load("airflow.providers.standard.hooks.subprocess", "Popen")


def test_airflow2_paths_are_mapped_before_the_check() -> None:
    cls = Allowlist(["airflow.providers.standard.*"]).load("airflow.operators.bash", "BashOperator")
    assert cls.__module__ == "airflow.providers.standard.operators.bash"


@pytest.mark.parametrize(
    ("module", "name", "message"),
    [
        ("airflow.providers.nope", "Thing", "cannot import module airflow.providers.nope"),
        ("airflow.providers.standard.operators.bash", "NoSuchOperator", "has no attribute NoSuchOperator"),
        ("airflow.operators.subdag", "SubDagOperator", "airflow.operators.subdag.SubDagOperator"),
        ("airflow.providers..x", "Y", "not a valid Python path"),
    ],
)
def test_import_failures_name_the_path(module: str, name: str, message: str) -> None:
    with pytest.raises(ImportFailedError, match=message):
        Allowlist(DEFAULT_ALLOWED_MODULES).load(module, name)
