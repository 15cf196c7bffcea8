#!/usr/bin/env bash
# Failure drills (`just drill`). Each prints its outcome; the script exits
# non-zero if any drill fails. Needs a local PostgreSQL it may stop and
# start (the PostgreSQL-outage drill does exactly that), so it is not part
# of CI; CI runs the kill -9 and replica drills as tests.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_ADMIN=${DRILL_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
SECRET=drill-secret
OUT=${DRILL_OUT:-docs/drills.md}
failed=0
results=$(mktemp)
report() {
    printf '%-58s %s\n' "$1" "$2"
    printf '| %s | %s |\n' "$1" "$2" >>"$results"
    [ "$2" = ok ] || failed=1
}

export TEST_DATABASE_URL=$PG_ADMIN

# 1 and 2: the process drills, as tests (SIGKILL mid-deploy on SQLite and
# PostgreSQL; three replicas provisioning and destroying N PRs exactly once).
if EPHEMERA_DRILL_PRS=${DRILL_PRS:-200} cargo test --quiet -p ephemera-server --test processes >/tmp/ephemera-drill-processes.log 2>&1; then
    report "kill -9 mid-deploy, restart: finished, nothing stuck" ok
    report "3 replicas, ${DRILL_PRS:-200} PRs: provisioned and destroyed exactly once" ok
else
    report "process drills (see /tmp/ephemera-drill-processes.log)" FAILED
fi

# 3: PostgreSQL stopped for 10 s while deliveries arrive.
cargo build --release --locked -p ephemera-server -p ephemera-loadgen >&2
version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
db="ephemera_drill_$$"
psql "$PG_ADMIN" -qc "CREATE DATABASE $db" >/dev/null
url="${PG_ADMIN%/*}/$db"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATABASE_URL=$url EPHEMERA_LISTEN=127.0.0.1:$port GITHUB_WEBHOOK_SECRET=$SECRET RUST_LOG=warn \
    target/release/ephemera serve >/tmp/ephemera-drill-server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true' EXIT
until curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null; do sleep 0.1; done

target/release/loadgen --url "http://127.0.0.1:$port" --concurrency 4 --count 1000000 --duration 25s \
    ingest --secret "$SECRET" >/tmp/ephemera-drill-load.txt &
load=$!
sleep 5
pg_ctlcluster --skip-systemctl-redirect "$version" main stop -m fast
sleep 2
ready_during=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health/ready" || true)
sleep 8
pg_ctlcluster --skip-systemctl-redirect "$version" main start
wait "$load"
ready_after=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health/ready" || true)
statuses=$(awk '/^statuses:/ {$1=""; print}' /tmp/ephemera-drill-load.txt)
applied=$(echo "$statuses" | tr ',' '\n' | awk -F': ' '$1 ~ /200/ {print $2}')
refused=$(echo "$statuses" | tr ',' '\n' | awk -F': ' '$1 ~ /503/ {print $2}')
errors=$(echo "$statuses" | tr ',' '\n' | awk -F': ' '$1 ~ /500/ {print $2}')
stored=$(psql "$url" -qAtc "SELECT count(*) FROM environments")
kill "$server"; wait "$server" 2>/dev/null || true
psql "$PG_ADMIN" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null

if [ "$ready_during" = 503 ]; then
    report "readiness during the outage: 503" ok
else
    report "readiness during the outage: $ready_during" FAILED
fi
if [ "${refused:-0}" -gt 0 ]; then
    report "deliveries during the outage: 503 (${refused:-0})" ok
else
    report "deliveries during the outage: none refused ($statuses)" FAILED
fi
if [ -z "${errors:-}" ]; then
    report "no 500 during the outage" ok
else
    report "deliveries answered 500 during the outage: $errors" FAILED
fi
if [ "$ready_after" = 200 ]; then
    report "recovered without a restart: readiness 200" ok
else
    report "readiness after the outage: $ready_after" FAILED
fi
if [ "$stored" = "${applied:-0}" ]; then
    report "stored environments = deliveries answered 200 ($stored)" ok
else
    report "stored $stored, answered 200: ${applied:-0}" FAILED
fi

{
    echo "# Failure drills"
    echo
    echo "Produced by \`just drill\` (\`bash bench/drill.sh\`) on $(date -u +%Y-%m-%d), $(nproc) cores."
    echo "It stops and restarts the local PostgreSQL, so CI runs only the process drills (as tests)."
    echo
    echo "| drill | outcome |"
    echo "|---|---|"
    cat "$results"
    echo
    echo "Load during the PostgreSQL outage (4 concurrent senders, 25 s, PostgreSQL stopped from 5 s to 15 s):"
    echo
    echo '```'
    cat /tmp/ephemera-drill-load.txt
    echo '```'
} >"$OUT"
rm -f "$results"
exit $failed
