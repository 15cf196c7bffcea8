#!/usr/bin/env bash
# Smoke test of a running ephemera: liveness, readiness, the webhook endpoint
# refusing an unsigned delivery, reads refused without a token and, with
# EPHEMERA_API_TOKEN set, the environment list answering a JSON array.
# Changes nothing.
#
#   deploy/scripts/smoke-test.sh https://ephemera.staging.example.com
#   EPHEMERA_API_TOKEN=... deploy/scripts/smoke-test.sh http://127.0.0.1:8080
#
# Through the public Ingress, /api/v1 reads are not routed at all (404), which
# passes the "reads refused" check; the token check needs the API itself
# (port-forward or a local container).
#
# Environment: EPHEMERA_API_TOKEN (optional, see above), SMOKE_ANONYMOUS_READS
# (true when the server runs with EPHEMERA_ANONYMOUS_READS=true on purpose),
# SMOKE_RETRIES (default 5) tries per check, SMOKE_DELAY (default 3) seconds
# between them, SMOKE_TIMEOUT (default 10) seconds per request. Needs curl
# and jq. Exits 0 when every check passed, 1 naming the first that did not,
# 2 on bad usage.
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

# fetch PATH [EXPECTED] [CURL ARGS...]: request PATH into $body, retrying
# on errors until it answers EXPECTED (default 200); prints the HTTP status.
fetch() {
    local path=$1 expected=${2:-200} code=000
    shift 2
    for _ in $(seq 1 "$retries"); do
        code=$(curl -sS -o "$body" -w '%{http_code}' --max-time "$timeout" \
            -H 'Accept: application/json' "$@" "$base_url$path" 2>/dev/null) || code=000
        [ "$code" = "$expected" ] && break
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
    code=$(fetch "$path" 200)
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

# The webhook is reachable and refuses what is not signed (no body is read).
code=$(fetch /api/v1/github/webhook 401 -X POST -H 'Content-Type: application/json' \
    -H 'X-GitHub-Event: ping' -H 'X-GitHub-Delivery: smoke-test' --data '{}')
case "$code" in
    401) echo "ok    POST /api/v1/github/webhook unsigned: 401" ;;
    503) echo "ok    POST /api/v1/github/webhook: 503, GITHUB_WEBHOOK_SECRET is not set there (deliveries are refused)" ;;
    000) fail "POST $base_url/api/v1/github/webhook: no answer" ;;
    *) fail "POST $base_url/api/v1/github/webhook unsigned answered $code, expected 401 (is the webhook path routed to ephemera?)" ;;
esac

# Reads are not open to anyone, unless that is the configuration.
code=$(curl -sS -o "$body" -w '%{http_code}' --max-time "$timeout" "$base_url/api/v1/environments" 2>/dev/null) || code=000
if [ "${SMOKE_ANONYMOUS_READS:-false}" = true ]; then
    [ "$code" = 200 ] || fail "GET $base_url/api/v1/environments without a token answered $code, expected 200 (SMOKE_ANONYMOUS_READS=true)"
    echo "ok    GET /api/v1/environments anonymously: 200 (anonymous reads on purpose)"
else
    case "$code" in
        401 | 404) echo "ok    GET /api/v1/environments anonymously: $code" ;;
        200) fail "GET $base_url/api/v1/environments answers anyone: set EPHEMERA_API_TOKEN on the server, or keep /api/v1 off the public Ingress" ;;
        *) fail "GET $base_url/api/v1/environments without a token answered $code, expected 401 or 404" ;;
    esac
fi

if [ -n "${EPHEMERA_API_TOKEN:-}" ]; then
    code=$(fetch /api/v1/environments 200 -H "Authorization: Bearer $EPHEMERA_API_TOKEN")
    [ "$code" = 200 ] || fail "GET $base_url/api/v1/environments with the token answered $code, expected 200"
    if ! jq -e 'type == "array"' "$body" >/dev/null 2>&1; then
        fail "GET $base_url/api/v1/environments did not answer a JSON array"
    fi
    echo "ok    GET /api/v1/environments with the token answers a JSON array of $(jq length "$body") environment(s)"
fi

echo "smoke test passed: $base_url"
