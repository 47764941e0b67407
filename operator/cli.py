"""``airflowtask-operator``: run the operator, or try it end to end on a local control plane.

- ``run``: the operator itself, against the cluster of the current kubeconfig or in-cluster.
- ``dev``: the main job for a laptop or a fresh machine: use the cluster named by ``KUBECONFIG``
  if set, else start a local control plane (etcd + kube-apiserver, built once and cached); install
  the CRD; run the operator; apply the example manifests given and show them finishing.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CRD = REPO / "crds" / "airflowtask.yaml"


def run_operator(namespaces: Sequence[str], liveness: str | None, log_format: str, verbose: bool) -> None:
    """Run the kopf operator in this process until SIGINT/SIGTERM."""
    import airflowtask.handlers  # noqa: F401  (registers the handlers; imports Airflow)
    import kopf

    logging.getLogger().handlers.clear()  # Airflow installed a root handler on import; kopf's is the one we want
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL)
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        liveness_endpoint=liveness,
    )


def _kubectl(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", *args], env=env, text=True, capture_output=True, check=check)


def _watch_examples(env: dict[str, str], manifests: Sequence[str], timeout: float,
                    operator: subprocess.Popen[bytes]) -> bool:
    """Apply the manifests and print ``kubectl get aft`` until every one finished; True if all did."""
    for manifest in manifests:
        print(_kubectl(env, "apply", "-f", manifest).stdout, end="", flush=True)
    deadline, last = time.monotonic() + timeout, ""
    states = "jsonpath={range .items[*]}{.status.phase}/{.status.reason} {end}"
    while time.monotonic() < deadline:
        if operator.poll() is not None:
            print(f"the operator exited with code {operator.returncode}", file=sys.stderr, flush=True)
            return False
        now = _kubectl(env, "get", "aft", "-A", "-o", states).stdout
        if now != last:
            print(_kubectl(env, "get", "aft", "-A").stdout, flush=True)
            last = now
        phases = [state.split("/")[0] for state in now.split()]
        if phases and all(phase in ("Succeeded", "Failed") for phase in phases):
            return True
        time.sleep(1)
    return False


def dev(manifests: Sequence[str], once: bool, timeout: float) -> int:
    """Cluster (configured or local) + CRD + operator subprocess + examples."""
    with ExitStack() as stack:
        env = dict(os.environ)
        if not env.get("KUBECONFIG"):
            from airflowtask.controlplane import LocalControlPlane

            plane = stack.enter_context(LocalControlPlane())
            env.update(plane.env)
            print(f"local control plane ready: export KUBECONFIG={plane.kubeconfig}", flush=True)
        else:
            print(f"using the cluster of KUBECONFIG={env['KUBECONFIG']}", flush=True)
        _kubectl(env, "apply", "--server-side", "-f", str(CRD))
        _kubectl(env, "wait", "--for=condition=Established", "crd/airflowtasks.airflowtask.dev", "--timeout=60s")
        operator = subprocess.Popen([sys.executable, "-P", "-m", "airflowtask", "run"], env=env)
        stack.callback(operator.wait, 30)
        stack.callback(operator.terminate)
        finished = _watch_examples(env, manifests, timeout, operator) if manifests else True
        if once:
            return 0 if finished else 1
        print("operator running; Ctrl-C to stop", flush=True)
        with suppress(KeyboardInterrupt):
            operator.wait()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="airflowtask-operator", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the operator against the configured cluster")
    run.add_argument(
        "--namespace", "-n", action="append", default=[],
        help="watch only this namespace (repeatable; default: $AIRFLOWTASK_NAMESPACES, else all)",
    )
    run.add_argument("--liveness", default="http://0.0.0.0:8080/healthz", help="liveness endpoint URL ('' disables)")
    run.add_argument(
        "--log-format", choices=("plain", "json"), default=os.environ.get("AIRFLOWTASK_LOG_FORMAT", "plain")
    )
    run.add_argument("--verbose", "-v", action="store_true")
    local = commands.add_parser("dev", help="local control plane (unless KUBECONFIG is set) + CRD + operator")
    local.add_argument("manifests", nargs="*", help="AirflowTask manifests to apply and watch")
    local.add_argument("--once", action="store_true", help="exit when the manifests finished")
    local.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the manifests")
    args = parser.parse_args(argv)
    if args.command == "run":
        if args.log_format == "json":  # before Airflow is first imported
            os.environ.setdefault("AIRFLOW__LOGGING__JSON_LOGS", "True")
        from airflowtask.settings import Settings

        namespaces = args.namespace or Settings.from_env().namespaces
        run_operator(namespaces, args.liveness or None, args.log_format, args.verbose)
        return 0
    logging.basicConfig(level=logging.INFO)
    return dev(args.manifests, args.once, args.timeout)
