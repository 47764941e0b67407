"""The Pod Security Standards the operator checks on every task Pod it builds."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from airflowtask.pod_security import check_pod

HARDENED: dict[str, Any] = {
    "metadata": {"name": "t"},
    "spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "task", "securityContext": {"allowPrivilegeEscalation": False,
                                                            "capabilities": {"drop": ["ALL"]}}}],
        "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "c", "configMap": {"name": "x"}}],
    },
}


def _pod(change: Any) -> dict[str, Any]:
    pod = copy.deepcopy(HARDENED)
    change(pod["spec"])
    return pod


def _container(spec: dict[str, Any]) -> dict[str, Any]:
    return spec["containers"][0]["securityContext"]


CASES = [
    ("hostPath", lambda s: s["volumes"].append({"name": "root", "hostPath": {"path": "/"}}),
     "spec.volumes[2].hostPath", "hostPath volumes", True),
    ("hostNetwork", lambda s: s.update(hostNetwork=True), "spec.hostNetwork", "host namespaces", True),
    ("hostPID", lambda s: s.update(hostPID=True), "spec.hostPID", "host namespaces", True),
    ("privileged", lambda s: _container(s).update(privileged=True),
     "spec.containers[0].securityContext.privileged", "privileged", True),
    ("sys-admin", lambda s: _container(s).update(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
     "spec.containers[0].securityContext.capabilities.add", "capabilities", True),
    ("host-port", lambda s: s["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 80}]),
     "spec.containers[0].ports[0].hostPort", "hostPorts", True),
    ("sysctl", lambda s: s["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
     "spec.securityContext.sysctls[0].name", "sysctls", True),
    ("proc-mount", lambda s: _container(s).update(procMount="Unmasked"),
     "spec.containers[0].securityContext.procMount", "procMount", True),
    ("selinux", lambda s: s["securityContext"].update(seLinuxOptions={"type": "spc_t"}),
     "spec.securityContext.seLinuxOptions.type", "SELinux", True),
    ("apparmor", lambda s: _container(s).update(appArmorProfile={"type": "Unconfined"}),
     "spec.containers[0].securityContext.appArmorProfile.type", "AppArmor", True),
    ("root", lambda s: s["securityContext"].update(runAsUser=0), "spec.securityContext.runAsUser", "runAsUser", False),
    ("may-be-root", lambda s: s["securityContext"].pop("runAsNonRoot"),
     "spec.containers[0].securityContext.runAsNonRoot", "runAsNonRoot", False),
    ("escalation", lambda s: _container(s).pop("allowPrivilegeEscalation"),
     "spec.containers[0].securityContext.allowPrivilegeEscalation", "privilege escalation", False),
    ("no-seccomp", lambda s: s["securityContext"].pop("seccompProfile"),
     "spec.containers[0].securityContext.seccompProfile.type", "seccompProfile", False),
    ("keeps-capabilities", lambda s: _container(s).pop("capabilities"),
     "spec.containers[0].securityContext.capabilities.drop", "capabilities", False),
    ("chown", lambda s: _container(s).update(capabilities={"drop": ["ALL"], "add": ["CHOWN"]}),
     "spec.containers[0].securityContext.capabilities.add", "capabilities", False),
    ("nfs", lambda s: s["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}}),
     "spec.volumes[2].nfs", "volume types", False),
]


@pytest.mark.parametrize(("change", "field", "rule", "baseline"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_rule_is_refused_naming_the_field(change: Any, field: str, rule: str, baseline: bool) -> None:
    pod = _pod(change)
    found = check_pod(pod, "restricted")
    assert [(v.field, v.rule) for v in found] == [(field, rule)], [str(v) for v in found]
    assert str(found[0]).startswith(f"{field}: ") and 'not allowed by Pod Security "restricted"' in str(found[0])
    assert bool(check_pod(pod, "baseline")) is baseline


def test_the_hardened_pod_and_the_allowed_extras_pass() -> None:
    assert check_pod(HARDENED, "restricted") == []
    pod = _pod(lambda s: _container(s).update(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}))
    assert check_pod(pod, "restricted") == []


def test_an_unknown_level_is_an_error() -> None:
    with pytest.raises(ValueError, match="privileged"):
        check_pod(HARDENED, "privileged")
