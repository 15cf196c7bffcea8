#!/usr/bin/env bash
# Rolls a new image out to the ephemera Deployment and keeps it only if it is
# healthy:
#
#   1. records the Deployment's current revision (none on a first deploy);
#   2. applies the server objects of the rendered release, if given, and sets
#      the new image;
#   3. waits for the rollout;
#   4. polls the health URL: it must answer 200 SUCCESSES times in a row
#      within ATTEMPTS tries;
#   5. on any failure in 2-4, `kubectl rollout undo` to the recorded revision,
#      waits for that rollout, and exits 1.
#
# Migrations are not part of this (run-migration.sh runs them before) and are
# not undone by a rollback.
#
#   deploy/scripts/deploy-with-rollback.sh --namespace ephemera-staging \
#       --image ghcr.io/acme/ephemera:3f2c1e0 \
#       --health-url https://ephemera.staging.example.com/health/ready \
#       [--manifests release.yaml]
#
# Flags win over the environment variables of the same meaning:
#   --namespace NS        NAMESPACE        namespace (required)
#   --image IMAGE         IMAGE            image to roll out (required)
#   --health-url URL      HEALTH_URL       readiness URL to poll (required)
#   --manifests FILE      MANIFESTS        rendered release; its objects labelled
#                                          app.kubernetes.io/component=server are applied
#   --deployment NAME     DEPLOYMENT       default: ephemera
#   --container NAME      CONTAINER        default: ephemera
#   --attempts N          HEALTH_ATTEMPTS  health polls at most (default: 20)
#   --successes N         HEALTH_SUCCESSES consecutive 200s required (default: 3)
#   --interval SECONDS    HEALTH_INTERVAL  between polls (default: 5)
#   --timeout DURATION    ROLLOUT_TIMEOUT  kubectl rollout status timeout (default: 5m)
#   KUBECTL                                kubectl binary (default: kubectl)
#
# Under GitHub Actions, previous_revision, revision and result are written to
# $GITHUB_OUTPUT. Exit status: 0 deployed, 1 failed (rolled back when there
# was a revision to return to), 2 bad usage.
set -euo pipefail

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
}

namespace=${NAMESPACE:-}
image=${IMAGE:-}
health_url=${HEALTH_URL:-}
manifests=${MANIFESTS:-}
deployment=${DEPLOYMENT:-ephemera}
container=${CONTAINER:-ephemera}
attempts=${HEALTH_ATTEMPTS:-20}
successes=${HEALTH_SUCCESSES:-3}
interval=${HEALTH_INTERVAL:-5}
rollout_timeout=${ROLLOUT_TIMEOUT:-5m}
kubectl=${KUBECTL:-kubectl}

while [ $# -gt 0 ]; do
    case "$1" in
        --namespace | -n) namespace=${2:?--namespace needs a value}; shift 2 ;;
        --image) image=${2:?--image needs a value}; shift 2 ;;
        --health-url) health_url=${2:?--health-url needs a value}; shift 2 ;;
        --manifests) manifests=${2:?--manifests needs a value}; shift 2 ;;
        --deployment) deployment=${2:?--deployment needs a value}; shift 2 ;;
        --container) container=${2:?--container needs a value}; shift 2 ;;
        --attempts) attempts=${2:?--attempts needs a value}; shift 2 ;;
        --successes) successes=${2:?--successes needs a value}; shift 2 ;;
        --interval) interval=${2:?--interval needs a value}; shift 2 ;;
        --timeout) rollout_timeout=${2:?--timeout needs a value}; shift 2 ;;
        -h | --help) usage ;;
        *) echo "error: unknown argument: $1" >&2; usage ;;
    esac
done

fail_usage() { echo "error: $*" >&2; exit 2; }
[ -n "$namespace" ] || fail_usage "--namespace (or NAMESPACE) is required"
[ -n "$image" ] || fail_usage "--image (or IMAGE) is required"
[ -n "$health_url" ] || fail_usage "--health-url (or HEALTH_URL) is required"
[ -z "$manifests" ] || [ -f "$manifests" ] || fail_usage "--manifests: no such file: $manifests"
for n in "$attempts" "$successes" "$interval"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || fail_usage "--attempts, --successes and --interval take positive integers"
done
[ "$successes" -le "$attempts" ] || fail_usage "--successes must not exceed --attempts"

k() { "$kubectl" --namespace "$namespace" "$@"; }
log() { printf '==> %s\n' "$*"; }

output() {
    if [ -n "${GITHUB_OUTPUT:-}" ]; then
        printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
    fi
}

current_revision() {
    k get deployment "$deployment" \
        -o jsonpath='{.metadata.annotations.deployment\.kubernetes\.io/revision}' 2>/dev/null || true
}

previous=""
if k get deployment "$deployment" >/dev/null 2>&1; then
    previous=$(current_revision)
    log "deployment/$deployment is at revision ${previous:-?} ($(k get deployment "$deployment" \
        -o jsonpath="{.spec.template.spec.containers[?(@.name==\"$container\")].image}"))"
else
    log "deployment/$deployment does not exist yet: first deploy, nothing to roll back to"
fi
output previous_revision "$previous"

health_ok() {
    local streak=0 code
    for i in $(seq 1 "$attempts"); do
        code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$health_url" 2>/dev/null) || code=000
        if [ "$code" = 200 ]; then
            streak=$((streak + 1))
            log "health $i/$attempts: 200 ($streak/$successes in a row)"
            [ "$streak" -ge "$successes" ] && return 0
        else
            streak=0
            log "health $i/$attempts: $code"
        fi
        sleep "$interval"
    done
    return 1
}

deploy() {
    if [ -n "$manifests" ]; then
        log "applying the server objects of $manifests"
        k apply -f "$manifests" -l app.kubernetes.io/component=server || return 1
    fi
    log "setting $container=$image"
    k set image "deployment/$deployment" "$container=$image" || return 1
    log "waiting for the rollout (timeout $rollout_timeout)"
    k rollout status "deployment/$deployment" --timeout="$rollout_timeout" || return 1
    log "polling $health_url"
    health_ok || return 1
}

if deploy; then
    revision=$(current_revision)
    output revision "$revision"
    output result deployed
    log "deployed $image (revision $revision)"
    exit 0
fi

echo "error: the rollout of $image failed" >&2
if [ -z "$previous" ]; then
    output result failed
    echo "error: no previous revision to roll back to; deployment/$deployment is left as it is" >&2
    exit 1
fi

log "rolling back to revision $previous"
if k rollout undo "deployment/$deployment" --to-revision="$previous" &&
    k rollout status "deployment/$deployment" --timeout="$rollout_timeout"; then
    output revision "$(current_revision)"
    output result rolled-back
    echo "error: rolled back to revision $previous; migrations applied by this release were NOT rolled back" >&2
else
    output result rollback-failed
    echo "error: the rollback to revision $previous failed too: check deployment/$deployment by hand" >&2
fi
exit 1
