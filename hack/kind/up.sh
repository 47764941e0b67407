#!/usr/bin/env bash
# Create (or reuse) the kind cluster "airflowtask" and print the line that points kubectl at it.
# Needs Docker (or Podman), kind and kubectl. It cannot run on the project's own machines (no
# container engine there): they use `make controlplane-up` instead.
#
#   eval "$(hack/kind/up.sh)"                                   # sets KUBECONFIG in this shell
#   AIRFLOWTASK_TEST_CLUSTER=kubeconfig python -m pytest tests/e2e   # e2e tests against it
#   kind delete cluster --name airflowtask                      # remove it
#
# The kubeconfig is written to .airflowtask/kind/kubeconfig (git-ignored), never to ~/.kube/config.
# Environment: KIND (the kind command, default "kind"), KIND_NODE_IMAGE (optional node image).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
name=airflowtask
kind="${KIND:-kind}"
kubeconfig="$root/.airflowtask/kind/kubeconfig"

for tool in "$kind" kubectl; do
  command -v "$tool" >/dev/null || { echo "up.sh: '$tool' is not on PATH" >&2; exit 1; }
done

mkdir -p "$(dirname "$kubeconfig")"
if ! "$kind" get clusters 2>/dev/null | grep -qx "$name"; then
  "$kind" create cluster --name "$name" --config "$here/kind-config.yaml" \
    ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --kubeconfig "$kubeconfig" --wait 120s >&2
fi
"$kind" get kubeconfig --name "$name" > "$kubeconfig"
chmod 600 "$kubeconfig"
KUBECONFIG="$kubeconfig" kubectl get --raw /readyz >/dev/null
printf "export KUBECONFIG=%q\n" "$kubeconfig"
