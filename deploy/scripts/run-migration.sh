#!/usr/bin/env bash
# Runs the migration Job of a rendered release (see render-release.sh) as a
# one-off: deletes the previous run, creates the Job, waits until it
# completes or fails, prints its logs. Exits 0 when it completed, 1 when it
# failed or timed out, 2 on bad usage.
#
#   deploy/scripts/run-migration.sh --namespace ephemera-staging --manifests release.yaml
#
# Flags win over the environment variables of the same meaning:
#   --namespace NS      NAMESPACE          namespace of the release (required)
#   --manifests FILE    MANIFESTS          rendered release manifests (required)
#   --job NAME          JOB                Job name (default: ephemera-migrate)
#   --timeout SECONDS   MIGRATION_TIMEOUT  give up after this long (default: 900)
#   KUBECTL                                kubectl binary (default: kubectl)
set -euo pipefail

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
}

namespace=${NAMESPACE:-}
manifests=${MANIFESTS:-}
job=${JOB:-ephemera-migrate}
timeout=${MIGRATION_TIMEOUT:-900}
kubectl=${KUBECTL:-kubectl}

while [ $# -gt 0 ]; do
    case "$1" in
        --namespace | -n) namespace=${2:?--namespace needs a value}; shift 2 ;;
        --manifests) manifests=${2:?--manifests needs a value}; shift 2 ;;
        --job) job=${2:?--job needs a value}; shift 2 ;;
        --timeout) timeout=${2:?--timeout needs a value}; shift 2 ;;
        -h | --help) usage ;;
        *) echo "error: unknown argument: $1" >&2; usage ;;
    esac
done

[ -n "$namespace" ] || { echo "error: --namespace (or NAMESPACE) is required" >&2; exit 2; }
[ -f "$manifests" ] || { echo "error: --manifests (or MANIFESTS) must name a file" >&2; exit 2; }
[[ "$timeout" =~ ^[0-9]+$ ]] || { echo "error: --timeout must be a number of seconds" >&2; exit 2; }

k() { "$kubectl" --namespace "$namespace" "$@"; }

echo "==> removing the previous run of job/$job"
k delete job "$job" --ignore-not-found --wait=true

echo "==> starting job/$job"
k apply -f "$manifests" -l app.kubernetes.io/component=migration

status=timeout
deadline=$((SECONDS + timeout))
while [ "$SECONDS" -lt "$deadline" ]; do
    complete=$(k get job "$job" -o jsonpath='{.status.conditions[?(@.type=="Complete")].status}')
    failed=$(k get job "$job" -o jsonpath='{.status.conditions[?(@.type=="Failed")].status}')
    if [ "$complete" = "True" ]; then
        status=complete
        break
    fi
    if [ "$failed" = "True" ]; then
        status=failed
        break
    fi
    sleep 5
done

echo "==> logs of job/$job"
# Every attempt's pod (backoffLimit may allow a retry), prefixed with its name.
k logs -l "job-name=$job" --all-containers=true --prefix --tail=-1 || echo "(no logs available)"

case "$status" in
    complete)
        echo "==> job/$job completed"
        ;;
    failed)
        echo "error: job/$job failed; the schema is as it was before (each migrate command is one transaction)" >&2
        k describe job "$job" >&2 || true
        exit 1
        ;;
    *)
        echo "error: job/$job did not finish within ${timeout}s" >&2
        k describe job "$job" >&2 || true
        exit 1
        ;;
esac
