"""The Kubernetes Pod Security Standards, checked on a Pod manifest before the operator creates it.

Pure functions over the manifest (no client, no Airflow). ``baseline`` blocks known privilege escalations;
``restricted`` adds the hardening best practices (kubernetes.io/docs/concepts/security/pod-security-standards).
The admission policy (manifests/admission-policy.yaml) refuses the same at ``kubectl apply``; this check makes the
guarantee hold even without it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

LEVELS = ("baseline", "restricted")
_BASELINE_CAPABILITIES = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                                    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
_SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
})
_RESTRICTED_VOLUMES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                                 "projected", "secret"})
_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
_APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True)
class Violation:
    """One field the level does not allow."""

    field: str
    value: Any
    rule: str
    level: str

    def __str__(self) -> str:
        return f"{self.field}: {_show(self.value)} is not allowed by Pod Security \"{self.level}\" ({self.rule})"


def check_pod(pod: Mapping[str, Any], level: str) -> list[Violation]:
    """Every violation of ``level`` (``baseline`` or ``restricted``) in the Pod manifest ``pod``."""
    if level not in LEVELS:
        raise ValueError(f"Pod Security level {level!r}: expected one of {', '.join(LEVELS)}")
    found = [Violation(path, value, rule, level) for path, value, rule in _baseline(pod)]
    if level == "restricted":
        found += [Violation(path, value, rule, level) for path, value, rule in _restricted(pod)]
    return found


Finding = tuple[str, Any, str]


def _containers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for kind in _CONTAINER_LISTS:
        for index, container in enumerate(spec.get(kind) or ()):
            yield f"spec.{kind}[{index}]", container


def _baseline(pod: Mapping[str, Any]) -> Iterator[Finding]:
    spec = pod.get("spec") or {}
    pod_context = spec.get("securityContext") or {}
    for name in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(name):
            yield f"spec.{name}", True, "host namespaces"
    if (pod_context.get("windowsOptions") or {}).get("hostProcess"):
        yield "spec.securityContext.windowsOptions.hostProcess", True, "hostProcess"
    for index, volume in enumerate(spec.get("volumes") or ()):
        if "hostPath" in volume:
            yield f"spec.volumes[{index}].hostPath", volume["hostPath"], "hostPath volumes"
    for index, sysctl in enumerate(pod_context.get("sysctls") or ()):
        if sysctl.get("name") not in _SAFE_SYSCTLS:
            yield f"spec.securityContext.sysctls[{index}].name", sysctl.get("name"), "sysctls"
    yield from _selinux("spec.securityContext", pod_context)
    yield from _apparmor("spec.securityContext", pod_context)
    for key, value in ((pod.get("metadata") or {}).get("annotations") or {}).items():
        if key.startswith(_APPARMOR_ANNOTATION) and value not in ("runtime/default",) and not value.startswith(
                "localhost/"):
            yield f"metadata.annotations[{key}]", value, "AppArmor"
    for path, container in _containers(spec):
        context = container.get("securityContext") or {}
        if context.get("privileged"):
            yield f"{path}.securityContext.privileged", True, "privileged"
        if (context.get("windowsOptions") or {}).get("hostProcess"):
            yield f"{path}.securityContext.windowsOptions.hostProcess", True, "hostProcess"
        added = set((context.get("capabilities") or {}).get("add") or ()) - _BASELINE_CAPABILITIES
        if added:
            yield f"{path}.securityContext.capabilities.add", sorted(added), "capabilities"
        for port_index, port in enumerate(container.get("ports") or ()):
            if port.get("hostPort"):
                yield f"{path}.ports[{port_index}].hostPort", port["hostPort"], "hostPorts"
        if context.get("procMount", "Default") != "Default":
            yield f"{path}.securityContext.procMount", context["procMount"], "procMount"
        yield from _selinux(f"{path}.securityContext", context)
        yield from _apparmor(f"{path}.securityContext", context)
        if (context.get("seccompProfile") or {}).get("type") == "Unconfined":
            yield f"{path}.securityContext.seccompProfile.type", "Unconfined", "seccompProfile"
    if (pod_context.get("seccompProfile") or {}).get("type") == "Unconfined":
        yield "spec.securityContext.seccompProfile.type", "Unconfined", "seccompProfile"


def _selinux(path: str, context: Mapping[str, Any]) -> Iterator[Finding]:
    options = context.get("seLinuxOptions") or {}
    if options.get("type", "") not in _SELINUX_TYPES:
        yield f"{path}.seLinuxOptions.type", options["type"], "SELinux"
    for key in ("user", "role"):
        if options.get(key):
            yield f"{path}.seLinuxOptions.{key}", options[key], "SELinux"


def _apparmor(path: str, context: Mapping[str, Any]) -> Iterator[Finding]:
    profile = (context.get("appArmorProfile") or {}).get("type")
    if profile is not None and profile not in ("RuntimeDefault", "Localhost"):
        yield f"{path}.appArmorProfile.type", profile, "AppArmor"


def _restricted(pod: Mapping[str, Any]) -> Iterator[Finding]:
    spec = pod.get("spec") or {}
    pod_context = spec.get("securityContext") or {}
    for index, volume in enumerate(spec.get("volumes") or ()):
        kinds = set(volume) - {"name"} - _RESTRICTED_VOLUMES
        if kinds and "hostPath" not in kinds:  # hostPath is told by baseline
            yield f"spec.volumes[{index}].{sorted(kinds)[0]}", "a volume", "volume types"
    if pod_context.get("runAsUser") == 0:
        yield "spec.securityContext.runAsUser", 0, "runAsUser"
    pod_seccomp = (pod_context.get("seccompProfile") or {}).get("type")
    for path, container in _containers(spec):
        context = container.get("securityContext") or {}
        if context.get("allowPrivilegeEscalation") is not False:
            yield f"{path}.securityContext.allowPrivilegeEscalation", context.get("allowPrivilegeEscalation"), \
                "privilege escalation"
        non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        if non_root is not True:
            yield f"{path}.securityContext.runAsNonRoot", non_root, "runAsNonRoot"
        if context.get("runAsUser") == 0:
            yield f"{path}.securityContext.runAsUser", 0, "runAsUser"
        seccomp = (context.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost") and seccomp != "Unconfined":
            yield f"{path}.securityContext.seccompProfile.type", seccomp, "seccompProfile"
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or ()):
            yield f"{path}.securityContext.capabilities.drop", capabilities.get("drop"), "capabilities"
        added = set(capabilities.get("add") or ()) - {"NET_BIND_SERVICE"}
        if added & _BASELINE_CAPABILITIES:
            yield f"{path}.securityContext.capabilities.add", sorted(added & _BASELINE_CAPABILITIES), "capabilities"


def _show(value: Any) -> str:
    if value is True:
        return "true"
    if value is None:
        return "unset"
    return repr(value) if not isinstance(value, str) else f'"{value}"'
