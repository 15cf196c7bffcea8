#!/usr/bin/env bash
# Smoke test of a running ephemera: liveness, readiness, and the environment
# list answering a JSON array. Read-only: it changes nothing.
#
#   deploy/scripts/smoke-test.sh https://ephemera.staging.example.com
#   deploy/scripts/smoke-test.sh http://127.0.0.1:8080
#
# Environment: SMOKE_RETRIES (default 5) tries per check, SMOKE_DELAY (default
# 3) seconds between them, SMOKE_TIMEOUT (default 10) seconds per request.
# Needs curl and jq. Exits 0 when every check passed, 1 naming the first that
# did not, 2 on bad usage.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
fi
base_url=${1%/}
retries=${SMOKE_RETRIES:-5}
delay=${SMOKE_DELAY:-3}
timeout=${SMOKE_TIMEOUT:-10}

for tool in curl jq; do
    command -v "$tool" >/dev/null 2>&1 || { echo "error: smoke test needs $tool on PATH" >&2; exit 2; }
done

body=$(mktemp)
trap 'rm -f "$body"' EXIT

# fetch PATH: GET it into $body, retrying on errors; prints the HTTP status.
fetch() {
    local code=000
    for _ in $(seq 1 "$retries"); do
        code=$(curl -sS -o "$body" -w '%{http_code}' --max-time "$timeout" \
            -H 'Accept: application/json' "$base_url$1" 2>/dev/null) || code=000
        [ "$code" = 200 ] && break
        sleep "$delay"
    done
    printf '%s' "$code"
}

fail() {
    echo "FAIL  $1" >&2
    if [ -s "$body" ]; then
        echo "      response: $(head -c 500 "$body")" >&2
    fi
    exit 1
}

check_status() {
    local path=$1 code
    code=$(fetch "$path")
    case "$code" in
        200) ;;
        000) fail "GET $base_url$path: no answer (connection refused, DNS or timeout after $retries tries)" ;;
        *) fail "GET $base_url$path answered $code, expected 200" ;;
    esac
}

check_status /health/live
echo "ok    GET /health/live: 200"

check_status /health/ready
echo "ok    GET /health/ready: 200 ($(jq -c . "$body" 2>/dev/null || head -c 200 "$body"))"

check_status /api/v1/environments
if ! jq -e 'type == "array"' "$body" >/dev/null 2>&1; then
    fail "GET $base_url/api/v1/environments did not answer a JSON array"
fi
echo "ok    GET /api/v1/environments: JSON array of $(jq length "$body") environment(s)"

echo "smoke test passed: $base_url"
