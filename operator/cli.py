"""``airflowtask-operator``: run the operator, or try it end to end on a local cluster.

- ``run``: the operator itself, against the cluster of the current kubeconfig or in-cluster.
- ``dev``: the main job for a laptop or a fresh machine: use the cluster named by ``KUBECONFIG`` if set, else
  start a local cluster (control plane and a node, built once and cached, images built from this checkout);
  install the operator from ``manifests/`` (``kubectl apply -k``, image set to ``$AIRFLOWTASK_IMAGE`` or the one
  just built); apply the example manifests given, show them finishing, then follow the operator's logs.
  ``--local-process`` runs the operator as a process of this machine instead (a quick loop for development).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CRD = REPO / "crds" / "airflowtask.yaml"


def run_operator(liveness: str | None, log_format: str, verbose: bool) -> None:
    """Run the operator in this process until SIGINT/SIGTERM: kopf's handlers while it holds the Lease."""
    import asyncio

    import airflowtask.handlers  # noqa: F401  (registers the handlers; imports Airflow)
    from airflowtask import log_setup
    from airflowtask.runner import serve
    from airflowtask.settings import Settings

    log_setup.configure(verbose=verbose, json=log_format == "json")
    asyncio.run(serve(Settings.from_env(), liveness))


def _kubectl_in(env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["kubectl", *args], env=env, text=True, capture_output=True, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    return kubectl


def _watch_examples(kubectl: Callable[..., subprocess.CompletedProcess[str]], manifests: Sequence[str],
                    timeout: float, alive: Callable[[], bool]) -> bool:
    """Apply the manifests and print ``kubectl get aft`` until every one finished; True if all did."""
    for manifest in manifests:
        print(kubectl("apply", "-f", manifest).stdout, end="", flush=True)
    deadline, last = time.monotonic() + timeout, ""
    states = "jsonpath={range .items[*]}{.status.phase}/{.status.reason} {end}"
    while time.monotonic() < deadline:
        if not alive():
            print("the operator is not running", file=sys.stderr, flush=True)
            return False
        now = kubectl("get", "aft", "-A", "-o", states).stdout
        if now != last:
            print(kubectl("get", "aft", "-A").stdout, flush=True)
            last = now
        phases = [state.split("/")[0] for state in now.split()]
        if phases and all(phase in ("Succeeded", "Failed") for phase in phases):
            return True
        time.sleep(1)
    return False


def dev(manifests: Sequence[str], once: bool, timeout: float, local_process: bool) -> int:
    """Cluster (configured or local) + the operator (from manifests/, or a local process) + examples."""
    with ExitStack() as stack:
        env = dict(os.environ)
        if not env.get("KUBECONFIG"):
            from airflowtask.controlplane import LocalControlPlane

            plane = stack.enter_context(LocalControlPlane(with_node=not local_process))
            env.update(plane.env)
            print(f"local cluster ready: export KUBECONFIG={plane.kubeconfig}", flush=True)
        else:
            print(f"using the cluster of KUBECONFIG={env['KUBECONFIG']}", flush=True)
        kubectl = _kubectl_in(env)
        if local_process:  # the CRD, and the namespace of the replicas' Lease
            kubectl("apply", "-f", str(REPO / "manifests" / "namespace.yaml"))
            kubectl("apply", "--server-side", "-f", str(CRD))
            kubectl("wait", "--for=condition=Established", "crd/airflowtasks.airflowtask.dev", "--timeout=60s")
            operator = subprocess.Popen([sys.executable, "-P", "-m", "airflowtask", "run"], env=env)
            stack.callback(operator.wait, 30)
            stack.callback(operator.terminate)

            def alive() -> bool:
                return operator.poll() is None
        else:
            alive = _deploy(kubectl, env.get("AIRFLOWTASK_IMAGE"))
        finished = _watch_examples(kubectl, manifests, timeout, alive) if manifests else True
        if once:
            return 0 if finished else 1
        print("operator running; Ctrl-C to stop", flush=True)
        with suppress(KeyboardInterrupt):
            if local_process:
                operator.wait()
            else:
                subprocess.run(["kubectl", "logs", "-f", "-n", "airflowtask-system",
                                "deployment/airflowtask-operator"], env=env, check=False)
                signal.pause()  # the logs ended (the Pod was replaced): keep the cluster until Ctrl-C
    return 0


def _deploy(kubectl: Callable[..., subprocess.CompletedProcess[str]], image: str | None) -> Callable[[], bool]:
    """``kubectl apply -k manifests/`` with the image set; print the node and the operator's Pod."""
    from airflowtask.install import DEPLOYMENT, NAMESPACE, install, write_overlay

    overlay = write_overlay(Path(tempfile.mkdtemp(prefix="airflowtask-overlay-")), image)
    print(f"installing the operator: kubectl apply -k manifests/ (image {image or 'as shipped'})", flush=True)
    install(kubectl, overlay)
    print(kubectl("get", "nodes", "-o", "wide").stdout, flush=True)
    print(kubectl("-n", NAMESPACE, "get", "deploy,pods", "-o", "wide").stdout, flush=True)

    def alive() -> bool:
        ready = kubectl("get", f"deployment/{DEPLOYMENT}", "-n", NAMESPACE, "-o",
                        "jsonpath={.status.readyReplicas}", check=False).stdout.strip()
        return ready not in ("", "0")

    return alive


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
    local = commands.add_parser("dev", help="local cluster (unless KUBECONFIG is set) + operator + examples")
    local.add_argument("manifests", nargs="*", help="AirflowTask manifests to apply and watch")
    local.add_argument("--once", action="store_true", help="exit when the manifests finished")
    local.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the manifests")
    local.add_argument("--local-process", action="store_true",
                       help="run the operator as a local process (control plane only) instead of from manifests/")
    triggerer = commands.add_parser("triggerer", help="run deferred tasks' triggers, served on a Unix socket")
    triggerer.add_argument("--socket", required=True, help="the Unix socket the controller connects to")
    args = parser.parse_args(argv)
    if args.command == "triggerer":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        from airflowtask.trigger_host import serve  # imports Airflow

        serve(args.socket)
        return 0
    if args.command == "run":
        if args.log_format == "json":  # before Airflow is first imported
            os.environ.setdefault("AIRFLOW__LOGGING__JSON_LOGS", "True")
        if args.namespace:
            os.environ["AIRFLOWTASK_NAMESPACES"] = ",".join(args.namespace)
        run_operator(args.liveness or None, args.log_format, args.verbose)
        return 0
    logging.basicConfig(level=logging.INFO)
    return dev(args.manifests, args.once, args.timeout, args.local_process)
