"""Every manifest in examples/ reaches the phase its comment promises, as a user would see it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from kubetools import AFT, Kubectl

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))


def _expected(path: Path) -> str:
    match = re.search(r"^# expect: (\w+)", path.read_text(), re.MULTILINE)
    assert match, f"{path.name} has no '# expect: PHASE' comment"
    return match.group(1)


def _task_name(path: Path) -> str:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return next(doc["metadata"]["name"] for doc in docs if doc["kind"] == "AirflowTask")


def _with_execution(path: Path, execution: str | None) -> str:
    """The example's manifests, its AirflowTask with ``spec.execution`` set (as written when None)."""
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for doc in docs:
        if doc["kind"] == "AirflowTask" and execution:
            doc["spec"]["execution"] = execution
    return yaml.safe_dump_all(docs)


@pytest.mark.parametrize("execution", [None, "WarmPool"], ids=["as-written", "warm-pool"])
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_reaches_its_expected_phase(
    kubectl: Kubectl, operator: object, namespace: str, path: Path, execution: str | None
) -> None:
    expected, name = _expected(path), _task_name(path)
    kubectl("apply", "-n", namespace, "-f", "-", input=_with_execution(path, execution))
    condition = "condition=Succeeded" if expected == "Succeeded" else "condition=Succeeded=False"
    waited = kubectl("wait", "-n", namespace, f"--for={condition}", f"aft/{name}", "--timeout=90s", check=False)
    obj = kubectl.get_json(AFT, name, namespace)
    assert waited.returncode == 0, f"kubectl wait failed: {waited.stderr}; status: {obj.get('status')}"
    status = obj["status"]
    assert status["phase"] == expected
    assert status["conditions"][0]["type"] == "Succeeded"
    assert status["startTime"] and status["completionTime"]
    row = kubectl("get", "aft", name, "-n", namespace, "--no-headers").stdout.split()
    assert row[2] == expected and row[3] == status["reason"]
    reasons = [reason for _, reason, _ in kubectl.events(name, namespace)]
    assert "Submitting" in reasons and status["reason"] in reasons


def test_failing_example_explains_itself(kubectl: Kubectl, operator: object, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", str(Path(__file__).parents[2] / "examples" / "bash-fails.yaml"))
    obj = kubectl.wait_phase("bash-fails", namespace, "Failed", timeout=60)
    assert obj["status"]["reason"] == "TaskFailed"
    assert "3" in obj["status"]["message"]
    assert "about to fail" in obj["status"]["logs"]
    described = kubectl("describe", "aft", "bash-fails", "-n", namespace).stdout
    assert "Warning  TaskFailed" in described


def test_templated_bash_renders_and_returns_its_output(kubectl: Kubectl, operator: object, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", str(Path(__file__).parents[2] / "examples" / "bash-hello.yaml"))
    obj = kubectl.wait_phase("bash-hello", namespace, "Succeeded", timeout=60)
    created = obj["metadata"]["creationTimestamp"][:10]
    assert obj["status"]["result"] == f"hello from bash-hello on {created}"
