#!/usr/bin/env bash
# The bench harness: builds release binaries, starts ephemera on a fresh
# SQLite database (and a fresh PostgreSQL one when reachable) with the
# dry-run provisioner, and measures cold start, the HTTP floor, webhook
# ingest, list reads and memory. Writes docs/benchmarks.md. Figures are
# reported, never asserted.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${BENCH_COUNT:-5000}
CONCURRENCY=${BENCH_CONCURRENCY:-16}
PG_ADMIN=${BENCH_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
OUT=${BENCH_OUT:-docs/benchmarks.md}
SECRET=bench-secret

cargo build --release --locked -p ephemera-server -p ephemera-loadgen >&2
BIN=target/release/ephemera
LOADGEN=target/release/loadgen
work=$(mktemp -d)
server_pid=
cold_ms=0
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
now_ms() { date +%s%3N; }

# start_server DATABASE_URL PORT -> sets server_pid and cold_ms (time to ready)
start_server() {
    local t0
    t0=$(now_ms)
    DATABASE_URL=$1 EPHEMERA_LISTEN=127.0.0.1:$2 GITHUB_WEBHOOK_SECRET=$SECRET \
        EPHEMERA_PROVISIONER=dry-run RUST_LOG=warn "$BIN" serve >"$work/server.log" 2>&1 &
    server_pid=$!
    until curl -sf "http://127.0.0.1:$2/health/ready" >/dev/null 2>&1; do
        kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
        sleep 0.005
    done
    cold_ms=$(($(now_ms) - t0))
}

stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=; }

# run_suite NAME DATABASE_URL
run_suite() {
    local name=$1 url=$2 port cold idle peak
    port=$(free_port)
    start_server "$url" "$port"
    cold=$cold_ms
    sleep 1
    idle=$(rss_kib "$server_pid")
    local base="http://127.0.0.1:$port"
    {
        echo "### $name"
        echo
        echo "Cold start to ready (fresh database, all migrations): **${cold} ms**; RSS at idle: **$((idle / 1024)) MiB**."
        echo
        echo '```'
        echo "# HTTP floor: GET /health/live"
        "$LOADGEN" --url "$base" --concurrency "$CONCURRENCY" --count "$COUNT" get --path /health/live
        echo
        echo "# Webhook ingest: distinct signed pull_request.opened deliveries"
        "$LOADGEN" --url "$base" --concurrency "$CONCURRENCY" --count "$COUNT" ingest --secret "$SECRET"
        echo
        echo "# List, first page (50)"
        "$LOADGEN" --url "$base" --concurrency "$CONCURRENCY" --count "$COUNT" read
        echo
        echo "# List, 20 pages deep"
        "$LOADGEN" --url "$base" --concurrency "$CONCURRENCY" --count "$COUNT" read --deep 20
        echo '```'
    } >"$work/$name.md"
    peak=$(hwm_kib "$server_pid")
    {
        echo
        echo "Peak RSS during the run: **$((peak / 1024)) MiB**."
        echo
    } >>"$work/$name.md"
    stop_server
}

run_suite sqlite "sqlite://$work/bench.db?mode=rwc"
pg_note="PostgreSQL was not reachable at $PG_ADMIN; its figures are missing."
if psql "$PG_ADMIN" -qAtc 'select 1' >/dev/null 2>&1; then
    db="ephemera_bench_$$"
    psql "$PG_ADMIN" -qc "CREATE DATABASE $db" >/dev/null
    run_suite postgres "${PG_ADMIN%/*}/$db"
    psql "$PG_ADMIN" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
    pg_note=""
fi

{
    echo "# Benchmarks"
    echo
    echo "Produced by \`just bench\` (\`bash bench/run.sh\`) on $(date -u +%Y-%m-%d). Release build,"
    echo "dry-run provisioner with its in-process workers running, \`$COUNT\` requests per"
    echo "measurement at concurrency $CONCURRENCY, load generator (\`crates/loadgen\`) on the same machine."
    echo
    echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)),"
    echo "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) memory; $(uname -sr)."
    echo
    echo "Reproduce: \`just bench\` (or \`BENCH_COUNT=20000 BENCH_CONCURRENCY=32 bash bench/run.sh\`)."
    echo
    echo "Not measured yet (issue 7): the pgbench ceiling for the same writes, list latency"
    echo "at 10 k / 100 k / 1 M environments, and the failure drills."
    echo
    echo "## Results"
    echo
    cat "$work/sqlite.md"
    [ -f "$work/postgres.md" ] && cat "$work/postgres.md"
    [ -n "$pg_note" ] && echo "$pg_note"
} >"$OUT"
echo "wrote $OUT" >&2
