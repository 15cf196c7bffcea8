#!/usr/bin/env bash
# Renders a kustomize overlay for one release: the overlay as it is, with the
# given image in the Deployment and the migration Job, and optionally other
# arguments for the migration Job (`migrate down -n 2`, `migrate status`).
# Writes the manifests to stdout.
#
#   deploy/scripts/render-release.sh --overlay deploy/kubernetes/overlays/staging \
#       --image ghcr.io/acme/ephemera:3f2c1e0 > release.yaml
#   deploy/scripts/render-release.sh --overlay ... --image ... --migrate-args "down -n 1"
#
# Flags win over the environment variables of the same meaning:
#   --overlay DIR         OVERLAY       kustomize overlay directory (required)
#   --image IMAGE         IMAGE         image reference, e.g. ghcr.io/acme/ephemera:SHA (required)
#   --migrate-args ARGS   MIGRATE_ARGS  `ephemera migrate` arguments for the Job (default: up)
#   KUBECTL                             kubectl binary (default: kubectl)
set -euo pipefail

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
}

overlay=${OVERLAY:-}
image=${IMAGE:-}
migrate_args=${MIGRATE_ARGS:-up}
kubectl=${KUBECTL:-kubectl}

while [ $# -gt 0 ]; do
    case "$1" in
        --overlay) overlay=${2:?--overlay needs a value}; shift 2 ;;
        --image) image=${2:?--image needs a value}; shift 2 ;;
        --migrate-args) migrate_args=${2:?--migrate-args needs a value}; shift 2 ;;
        -h | --help) usage ;;
        *) echo "error: unknown argument: $1" >&2; usage ;;
    esac
done

[ -n "$overlay" ] || { echo "error: --overlay (or OVERLAY) is required" >&2; exit 2; }
[ -n "$image" ] || { echo "error: --image (or IMAGE) is required" >&2; exit 2; }
[ -f "$overlay/kustomization.yaml" ] || {
    echo "error: $overlay has no kustomization.yaml" >&2
    exit 2
}
if ! [[ "$image" =~ ^[A-Za-z0-9][A-Za-z0-9._/:@-]*$ ]]; then
    echo "error: not an image reference: $image" >&2
    exit 2
fi

# The Job's args as a JSON array; words are restricted to what the migrate
# command takes, so nothing needs escaping.
args_json='"migrate"'
read -r -a words <<<"$migrate_args"
[ "${#words[@]}" -gt 0 ] || { echo "error: --migrate-args is empty" >&2; exit 2; }
for word in "${words[@]}"; do
    if ! [[ "$word" =~ ^[A-Za-z0-9-]+$ ]]; then
        echo "error: unexpected migrate argument: $word" >&2
        exit 2
    fi
    args_json+=", \"$word\""
done

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
# kustomize accepts only relative paths to other kustomizations.
base=$(realpath --relative-to="$workdir" "$overlay")

cat >"$workdir/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $base
patches:
  - target:
      group: apps
      kind: Deployment
      name: ephemera
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/image
        value: "$image"
  - target:
      group: batch
      kind: Job
      name: ephemera-migrate
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/image
        value: "$image"
      - op: replace
        path: /spec/template/spec/containers/0/args
        value: [$args_json]
EOF

"$kubectl" kustomize "$workdir"
