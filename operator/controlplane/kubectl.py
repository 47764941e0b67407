"""Drive any cluster through kubectl and a kubeconfig; mint ServiceAccount identities."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


class KubectlError(subprocess.CalledProcessError):
    """A kubectl command failed; its message includes kubectl's stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n{(self.stderr or '').strip()}"


@dataclass
class Kubectl:
    """A cluster reached with ``kubectl`` (a path or a name on PATH) and a kubeconfig file."""

    kubeconfig: Path
    kubectl_path: str = "kubectl"

    @property
    def env(self) -> dict[str, str]:
        """A copy of ``os.environ`` with KUBECONFIG set and kubectl's folder first on PATH."""
        resolved = shutil.which(self.kubectl_path)
        if resolved is None:
            raise FileNotFoundError(f"kubectl not found: {self.kubectl_path}")
        path = os.pathsep.join([str(Path(resolved).parent), os.environ.get("PATH", "")])
        return os.environ | {"KUBECONFIG": str(self.kubeconfig), "PATH": path}

    def command(self, *args: str) -> list[str]:
        """The command line of ``kubectl <args>`` against this cluster (to run it as one needs)."""
        return [self.kubectl_path, f"--kubeconfig={self.kubeconfig}", *args]

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster, capturing text output; raise KubectlError if ``check``."""
        cmd = self.command(*args)
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, cmd, result.stdout, result.stderr)
        return result

    def mint_token(self, namespace: str, serviceaccount: str, duration: str = "1h") -> str:
        """Return a fresh bound token for a ServiceAccount (``kubectl create token``)."""
        args = ("create", "token", serviceaccount, "-n", namespace, f"--duration={duration}")
        return self.kubectl(*args).stdout.strip()

    def kubeconfig_for_token(self, token: str, path: Path) -> Path:
        """Write a kubeconfig for this cluster's server that authenticates with ``token``."""
        view = self.kubectl("config", "view", "--raw", "--minify", "--flatten", "-o", "json")
        raw = json.loads(view.stdout)
        write_kubeconfig(path, raw["clusters"][0]["cluster"], {"token": token})
        return path


def write_kubeconfig(path: Path, cluster: dict[str, object], user: dict[str, str]) -> None:
    """Write a single-context kubeconfig (JSON, which kubeconfig readers accept) readable only by us."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": "user", "user": user}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "user"}}],
        "current-context": "local",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(config, indent=2) + "\n")


def pem_data(path: Path) -> str:
    """Return a PEM file base64-encoded, as kubeconfig ``*-data`` fields want it."""
    return base64.b64encode(path.read_bytes()).decode()
