#!/usr/bin/env bash
# Build the image, run the operator in the kind cluster "airflowtask" (hack/kind/up.sh creates it),
# then apply every example and wait for the outcome its `# expect:` line names.
# Needs Docker (or Podman), kind and kubectl; the project's own machines have no container engine.
#
#   hack/kind/deploy.sh                      # cluster + image + manifests/ + examples
#   FLYTE_CONNECTOR=1 hack/kind/deploy.sh    # also manifests/flyte-connector/
#   EXAMPLES=0 hack/kind/deploy.sh           # skip the examples
#
# Environment: KIND (default "kind"), DOCKER (default "docker"), IMAGE (default airflowtask-operator:0.1.0,
# the tag manifests/ use), EXAMPLES_NAMESPACE (default airflowtask-examples), TIMEOUT (default 300s).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
name=airflowtask
kind="${KIND:-kind}"
docker="${DOCKER:-docker}"
image="${IMAGE:-airflowtask-operator:0.1.0}"
namespace="${EXAMPLES_NAMESPACE:-airflowtask-examples}"
timeout="${TIMEOUT:-300s}"

for tool in "$kind" "$docker" kubectl; do
  command -v "$tool" >/dev/null || { echo "deploy.sh: '$tool' is not on PATH" >&2; exit 1; }
done
step() { printf '\n== %s\n' "$*" >&2; }

step "kind cluster '$name'"
eval "$("$here/up.sh")"   # sets KUBECONFIG to .airflowtask/kind/kubeconfig
export KUBECONFIG

step "image $image"
"$docker" build -t "$image" "$root"
"$kind" load docker-image "$image" --name "$name"

# install KUSTOMIZATION DEPLOYMENT: apply, and restart a Deployment that existed already (a rebuilt
# image keeps its tag, so only a restart makes the pod run the image just loaded); wait for it.
install() {
  local existed
  existed="$(kubectl -n airflowtask-system get "deployment/$2" -o name --ignore-not-found 2>/dev/null || true)"
  kubectl apply -k "$1"
  if [[ -n "$existed" ]]; then
    kubectl -n airflowtask-system rollout restart "deployment/$2"
  fi
  kubectl -n airflowtask-system rollout status "deployment/$2" --timeout="$timeout"
}

step "operator (manifests/)"
install "$root/manifests/" airflowtask-operator
kubectl wait --for=condition=Established crd/airflowtasks.airflowtask.dev --timeout=60s

if [[ "${FLYTE_CONNECTOR:-0}" == 1 ]]; then
  step "Flyte connector (manifests/flyte-connector/)"
  install "$root/manifests/flyte-connector/" airflowtask-flyte-connector
fi

[[ "${EXAMPLES:-1}" == 1 ]] || exit 0

step "examples in namespace $namespace"
kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f -
failed=0
for file in "$root"/examples/*.yaml; do
  expect="$(sed -n 's/^# expect: *\([A-Za-z]*\).*/\1/p' "$file" | head -n 1)"
  case "$expect" in
    Succeeded) condition=condition=Succeeded ;;
    Failed) condition=condition=Succeeded=False ;;
    *) echo "deploy.sh: $file has no '# expect: Succeeded|Failed' line" >&2; failed=1; continue ;;
  esac
  # Re-running replaces the objects: the spec is immutable, and a finished task never runs again.
  kubectl -n "$namespace" delete -f "$file" --ignore-not-found --wait=true >/dev/null
  tasks="$(kubectl -n "$namespace" apply -f "$file" -o name | grep '^airflowtask' || true)"
  # shellcheck disable=SC2086  # one object name per word
  if [[ -z "$tasks" ]] || ! kubectl -n "$namespace" wait --for="$condition" --timeout="$timeout" $tasks; then
    echo "deploy.sh: $(basename "$file") did not end $expect" >&2
    failed=1
  fi
done
kubectl -n "$namespace" get airflowtasks
if [[ "$failed" != 0 ]]; then
  echo "deploy.sh: some examples did not end as expected; operator logs:" >&2
  kubectl -n airflowtask-system logs deployment/airflowtask-operator --tail=100 >&2
  exit 1
fi
step "done: every example ended as expected (KUBECONFIG=$KUBECONFIG)"
