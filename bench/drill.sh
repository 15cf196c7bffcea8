#!/usr/bin/env bash
# Failure drills (`just drill`). Each prints its outcome; the script exits
# non-zero if any drill fails. Needs a local PostgreSQL it may stop and
# start (the PostgreSQL-outage drill does exactly that), so it is not part
# of CI; CI runs the kill -9 and replica drills as tests.
#
# DRILLS picks which run (default all): `processes` (kill -9, replicas),
# `outage` (PostgreSQL stopped under load), `hostile` (unsigned 20 MB
# bodies, wrong signatures, slow senders, made-up methods against a release
# build on SQLite, with RSS; needs no PostgreSQL). A partial run writes to
# /tmp/ephemera-drills-partial.md unless DRILL_OUT says otherwise, so
# docs/drills.md always holds a whole run.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_ADMIN=${DRILL_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
SECRET=drill-webhook-secret
DRILLS=${DRILLS:-processes outage hostile}
if [ "$DRILLS" = "processes outage hostile" ]; then
    OUT=${DRILL_OUT:-docs/drills.md}
else
    OUT=${DRILL_OUT:-/tmp/ephemera-drills-partial.md}
fi
want() { case " $DRILLS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
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
if want processes; then
if EPHEMERA_DRILL_PRS=${DRILL_PRS:-200} cargo test --quiet -p ephemera-server --test processes >/tmp/ephemera-drill-processes.log 2>&1; then
    report "kill -9 mid-deploy, restart: finished, nothing stuck" ok
    report "3 replicas, ${DRILL_PRS:-200} PRs: provisioned and destroyed exactly once" ok
else
    report "process drills (see /tmp/ephemera-drill-processes.log)" FAILED
fi
fi

if want outage || want hostile; then
    cargo build --release --locked -p ephemera-server -p ephemera-loadgen >&2
fi

# 3: PostgreSQL stopped for 10 s while deliveries arrive.
if want outage; then
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
trap - EXIT
fi

# 4: hostile traffic against a release build on SQLite, default limits
# (25 MiB bodies, 64 MiB for all bodies at once, 10 s read deadline).
if want hostile; then
    hdir=$(mktemp -d)
    hport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    htoken=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
    DATABASE_URL="sqlite://$hdir/drill.db?mode=rwc" EPHEMERA_LISTEN=127.0.0.1:$hport \
        GITHUB_WEBHOOK_SECRET=$SECRET EPHEMERA_API_TOKEN=$htoken RUST_LOG=warn \
        target/release/ephemera serve >/tmp/ephemera-drill-hostile-server.log 2>&1 &
    hserver=$!
    trap 'kill $hserver 2>/dev/null || true; rm -rf "$hdir"' EXIT
    until curl -sf "http://127.0.0.1:$hport/health/ready" >/dev/null; do sleep 0.1; done
    python3 bench/hostile.py --port "$hport" --pid "$hserver" --secret "$SECRET" --token "$htoken" \
        --bodies "${DRILL_BODIES:-40}" --slow "${DRILL_SLOW:-50}" --methods "${DRILL_METHODS:-50}" | tee /tmp/ephemera-drill-hostile.txt
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$hserver/status")
    kill "$hserver"; wait "$hserver" 2>/dev/null || true
    trap - EXIT
    rm -rf "$hdir"
    h() { awk -F= -v k="$1" '$1 == k {print $2}' /tmp/ephemera-drill-hostile.txt; }
    mib() { echo $(( ${1:-0} / 1024 )); }
    idle=$(h rss_idle_kib)
    n=$(h unsigned_requests)
    if [ "$(h unsigned_statuses)" = "401:$n" ] && [ $(( $(h unsigned_peak_rss_kib) - idle )) -lt 16384 ]; then
        report "$n unsigned 20 MB bodies at once: all 401 before the body, RSS +$(mib $(( $(h unsigned_peak_rss_kib) - idle ))) MiB" ok
    else
        report "$n unsigned 20 MB bodies: $(h unsigned_statuses), peak RSS $(mib "$(h unsigned_peak_rss_kib)") MiB" FAILED
    fi
    badsig=$(h badsig_statuses)
    if ! echo "$badsig" | tr ',' '\n' | grep -qvE '^(401|503):' && [ "$(h badsig_peak_rss_kib)" -lt $(( idle + 160 * 1024 )) ]; then
        report "$n wrong-signature 20 MB bodies at once: $badsig, peak RSS $(mib "$(h badsig_peak_rss_kib)") MiB" ok
    else
        report "$n wrong-signature 20 MB bodies: $badsig, peak RSS $(mib "$(h badsig_peak_rss_kib)") MiB" FAILED
    fi
    slow=$(h slow_requests)
    if [ "$(h slow_statuses)" = "408:$slow" ]; then
        report "$slow slow senders (a byte per 0.5 s): all 408 after $(h slow_answer_s_max) s at most" ok
    else
        report "$slow slow senders: $(h slow_statuses)" FAILED
    fi
    if [ "$(h junk_other_series)" = 1 ] && [ "$(h junk_raw_series)" = 0 ]; then
        report "${DRILL_METHODS:-50} made-up methods: one OTHER series" ok
    else
        report "made-up methods: $(h junk_other_series) OTHER, $(h junk_raw_series) raw series" FAILED
    fi
    if [ "$(h replay_original)" = 200 ] && [ "$(h replay_copy)" = 200 ] \
        && [ "$(h replay_logged_outcome)" = ignored ] && [ "$(h replay_logged_as_replay)" = 1 ]; then
        report "a captured delivery replayed under a new id: 200, logged as an ignored replay, nothing changed" ok
    else
        report "replayed delivery: $(h replay_original)/$(h replay_copy), logged $(h replay_logged_outcome)" FAILED
    fi
    if [ "$(h signed_after)" = 200 ]; then
        report "signed delivery afterwards: 200; RSS idle $(mib "$idle") MiB, end $(mib "$(h rss_end_kib)") MiB, peak (VmHWM) $(mib "$hwm") MiB" ok
    else
        report "signed delivery afterwards: $(h signed_after)" FAILED
    fi
fi

{
    echo "# Failure drills"
    echo
    echo "Produced by \`just drill\` (\`bash bench/drill.sh\`, drills: $DRILLS) on $(date -u +%Y-%m-%d), $(nproc) cores."
    echo "It stops and restarts the local PostgreSQL, so CI runs only the process drills (as tests)."
    echo
    echo "| drill | outcome |"
    echo "|---|---|"
    cat "$results"
    if want outage; then
        echo
        echo "Load during the PostgreSQL outage (4 concurrent senders, 25 s, PostgreSQL stopped from 5 s to 15 s):"
        echo
        echo '```'
        cat /tmp/ephemera-drill-load.txt
        echo '```'
    fi
    if want hostile; then
        echo
        echo "Hostile traffic (\`bench/hostile.py\`, release build, SQLite, default limits: 25 MiB per body,"
        echo "64 MiB for all bodies at once, 10 s read deadline). RSS in KiB, sampled every 20 ms;"
        echo "statuses as code:count (\`reset\`: the connection was closed under the sender):"
        echo
        echo '```'
        cat /tmp/ephemera-drill-hostile.txt
        echo '```'
    fi
} >"$OUT"
rm -f "$results"
exit $failed
