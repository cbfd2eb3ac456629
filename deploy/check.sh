#!/usr/bin/env bash
# `make check-deploy`: validate the release files offline, with the validators pinned in pyproject's dev
# extras (no Docker daemon, no cluster, no network):
#   hadolint                 deploy/Dockerfile
#   check-jsonschema         deploy/compose.yaml (compose-spec) and .github/workflows/*.yml (GitHub workflows)
#   kubectl kustomize        deploy/k8s/base and every overlay, rendered, then
#   kubernetes-validate      the rendered objects against the Kubernetes OpenAPI schemas, strictly
# Usage: deploy/check.sh BIN_DIR   (the virtual environment's bin directory)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:?usage: deploy/check.sh BIN_DIR}"
# The oldest Kubernetes the manifests are meant for (native gRPC probes are GA since 1.27).
kubernetes_version="${KUBERNETES_VERSION:-1.29.0}"
rendered="$(mktemp -d)"
trap 'rm -rf "$rendered"' EXIT

echo "hadolint: deploy/Dockerfile"
"$bin/hadolint" deploy/Dockerfile

echo "compose-spec: deploy/compose.yaml"
"$bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml

echo "github-workflows: .github/workflows"
"$bin/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yml

if ! command -v kubectl >/dev/null 2>&1; then
  echo "check-deploy: kubectl is not installed, so the kustomize manifests cannot be rendered and were NOT" >&2
  echo "checked. Install kubectl (it bundles kustomize) and run make check-deploy again." >&2
  exit 1
fi
for dir in deploy/k8s/base deploy/k8s/overlays/*/; do
  dir="${dir%/}"
  out="$rendered/$(echo "$dir" | tr / _).yaml"
  echo "kustomize + kubernetes-validate $kubernetes_version: $dir"
  kubectl kustomize "$dir" > "$out"
  "$bin/kubernetes-validate" --strict --quiet --kubernetes-version "$kubernetes_version" "$out"
done
echo "deployment files are valid"
