"""TaskState and EngineConfig."""

from __future__ import annotations

from airflowtask.connector_core.model import DEFAULT_ALLOWED_MODULES, EngineConfig, Phase, TaskState


def test_finished() -> None:
    assert TaskState(Phase.SUCCEEDED, "Completed", "").finished
    assert TaskState(Phase.FAILED, "TaskFailed", "").finished
    assert not TaskState(Phase.RUNNING, "Deferred", "").finished
    assert not TaskState(Phase.PENDING, "Executing", "").finished


def test_phase_is_its_text() -> None:
    assert Phase.SUCCEEDED == "Succeeded"
    assert str(Phase.FAILED) == "Failed"


def test_config_from_env() -> None:
    config = EngineConfig.from_env(
        {
            "AIRFLOWTASK_ALLOWED_MODULES": "airflow.providers.*, mycompany.ops.* ,",
            "AIRFLOWTASK_SIGNING_KEY": "secret",
            "AIRFLOWTASK_MAX_WORKERS": "3",
        }
    )
    assert config.allowed_modules == ("airflow.providers.*", "mycompany.ops.*")
    assert config.signing_key == b"secret"
    assert config.max_workers == 3


def test_config_defaults() -> None:
    config = EngineConfig.from_env({})
    assert config.allowed_modules == DEFAULT_ALLOWED_MODULES
    assert config.signing_key is None
