#!/usr/bin/env bash
# The bench harness: builds release binaries, starts ephemera on a fresh
# SQLite database (and a fresh PostgreSQL one when reachable) with the
# dry-run provisioner, and measures cold start, the HTTP floor, webhook
# ingest, list reads and memory. Writes docs/benchmarks.md. Figures are
# reported, never asserted.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${BENCH_COUNT:-5000}
SCALES=${BENCH_SCALES:-10000 100000 1000000}
READS=${BENCH_READS:-2000}
CONCURRENCY=${BENCH_CONCURRENCY:-16}
PG_ADMIN=${BENCH_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
OUT=${BENCH_OUT:-docs/benchmarks.md}
SECRET=bench-webhook-secret

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

# start_server DATABASE_URL PORT [serve flags] -> sets server_pid and cold_ms (time to ready)
start_server() {
    local t0
    t0=$(now_ms)
    DATABASE_URL=$1 EPHEMERA_LISTEN=127.0.0.1:$2 GITHUB_WEBHOOK_SECRET=$SECRET \
        EPHEMERA_PROVISIONER=dry-run RUST_LOG=warn "$BIN" serve "${@:3}" >"$work/server.log" 2>&1 &
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
        "$LOADGEN" --url "$base" --concurrency "$CONCURRENCY" --count "$COUNT" get --path /health/live |
            tee "$work/$name.floor"
        echo
        echo "# Webhook ingest: distinct signed pull_request.opened deliveries"
        "$LOADGEN" --url "$base" --concurrency "$CONCURRENCY" --count "$COUNT" ingest --secret "$SECRET" |
            tee "$work/$name.ingest"
        echo
        echo "# Webhook ingest at half of the peak throughput above (open loop)"
        half=$(python3 -c "print(max(1, round($(tput_of "$work/$name.ingest") / 2)))")
        "$LOADGEN" --url "$base" --concurrency "$CONCURRENCY" --count "$COUNT" --rate "$half" ingest \
            --secret "$SECRET" --start "$COUNT" | tee "$work/$name.half"
        echo
        echo "# List, first page (50)"
        "$LOADGEN" --url "$base" --concurrency "$CONCURRENCY" --count "$COUNT" read |
            tee "$work/$name.read"
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

tput_of() { awk '/^throughput:/ {print $2}' "$1"; }
p99_of() { awk '/^latency ms:/ {print $8}' "$1"; }
p50_of() { awk '/^latency ms:/ {print $4}' "$1"; }

# scale_suite KIND: list latency at each size of $SCALES, and query plans.
scale_suite() {
    local kind=$1 n url target port label query
    {
        echo "### $kind: list latency by table size"
        echo
        echo "p50 / p99 in ms, $READS reads at concurrency 8, each environment with one deployment;"
        echo "statuses spread over ready, destroyed, failed, pending; 1000 owners × 7 repository names."
        echo
        echo "| environments | no filter | repository | active_only | status=failed | 20 pages deep |"
        echo "|---|---|---|---|---|---|"
    } >"$work/scale-$kind.md"
    for n in $SCALES; do
        if [ "$kind" = sqlite ]; then
            target="$work/scale-$n.db"
            url="sqlite://$target?mode=rwc"
        else
            target="${PG_ADMIN%/*}/ephemera_scale_$$_$n"
            psql "$PG_ADMIN" -qc "CREATE DATABASE ephemera_scale_$$_$n" >/dev/null
            url=$target
        fi
        DATABASE_URL=$url "$BIN" migrate up >/dev/null
        bash bench/scale.sh "$kind" "$target" "$n"
        port=$(free_port)
        EPHEMERA_WORKERS=0 start_server "$url" "$port"
        # Warm the caches first: the figures are for a server in use.
        "$LOADGEN" --url "http://127.0.0.1:$port" --concurrency 8 --count 200 read >/dev/null
        local row="| $n |"
        for query in "" "repository=org-7/repo-0" "active_only=true" "status=failed" "deep"; do
            if [ "$query" = deep ]; then
                "$LOADGEN" --url "http://127.0.0.1:$port" --concurrency 8 --count "$READS" read --deep 20 >"$work/q"
            else
                "$LOADGEN" --url "http://127.0.0.1:$port" --concurrency 8 --count "$READS" read --query "$query" >"$work/q"
            fi
            row="$row $(p50_of "$work/q") / $(p99_of "$work/q") |"
            [ "$query" = "" ] && [ "$n" = "${SCALES%% *}" ] && p99_small=$(p99_of "$work/q")
            [ "$query" = "" ] && p99_large=$(p99_of "$work/q")
        done
        echo "$row" >>"$work/scale-$kind.md"
        stop_server
        if [ "$kind" = postgres ] && [ "$n" = "${SCALES##* }" ]; then
            {
                echo
                echo "Query plans at $n environments (PostgreSQL EXPLAIN of the list query, the scan under the LIMIT; no Seq Scan, no Sort):"
                echo
                echo '```'
                for label in "no filter|" "repository|WHERE repository_full_name = 'org-7/repo-0'" \
                    "active_only|WHERE status <> 'destroyed'" "status|WHERE status = 'failed'" \
                    "deep page|WHERE id < 500000"; do
                    printf '%-12s %s\n' "${label%%|*}" "$(psql "$target" -qAtc "EXPLAIN SELECT * FROM environments ${label#*|} ORDER BY id DESC LIMIT 51" | sed -n 2p | sed 's/^ *-> *//')"
                done
                echo '```'
            } >>"$work/scale-$kind.md"
        fi
        if [ "$kind" = postgres ]; then
            psql "$PG_ADMIN" -qc "DROP DATABASE ephemera_scale_$$_$n WITH (FORCE)" >/dev/null
        fi
    done
    {
        echo
        echo "p99 with no filter, largest / smallest table: **$(python3 -c "print(round($p99_large / $p99_small, 2))")**"
        echo
    } >>"$work/scale-$kind.md"
}

# fair_suite DATABASE_URL: ingest and the first list page with `serve
# --no-workers` (nothing else running), each beside pgbench running the same
# statements on the same database at the same concurrency, one after the
# other. Sets fair_* figures.
fair_suite() {
    local url=$1 port base
    port=$(free_port)
    start_server "$url" "$port" --no-workers
    base="http://127.0.0.1:$port"
    "$LOADGEN" --url "$base" --concurrency "$CONCURRENCY" --count "$COUNT" ingest \
        --secret "$SECRET" --start 900000 >"$work/fair.ingest"
    "$LOADGEN" --url "$base" --concurrency "$CONCURRENCY" --count "$COUNT" read >"$work/fair.read"
    stop_server
    fair_ceiling=$(pgbench -n -M prepared -c "$CONCURRENCY" -j 2 -T 15 -f bench/ceiling.sql "$url" 2>/dev/null |
        awk '/^tps = / {print $3; exit}')
    fair_list=$(pgbench -n -M prepared -c "$CONCURRENCY" -j 2 -T 10 -f bench/list.sql "$url" 2>/dev/null |
        awk '/^tps = / {print $3; exit}')
    {
        echo "### postgres: beside pgbench (\`serve --no-workers\`, then pgbench, same database, concurrency $CONCURRENCY)"
        echo
        echo '```'
        echo "# Webhook ingest, serve --no-workers"
        cat "$work/fair.ingest"
        echo "# pgbench -M prepared, bench/ceiling.sql (the statements a delivery made before issue 17): $fair_ceiling tx/s"
        echo
        echo "# List, first page (50), serve --no-workers"
        cat "$work/fair.read"
        echo "# pgbench -M prepared, bench/list.sql (the same SELECT): $fair_list tx/s"
        echo '```'
        echo
    } >"$work/fair.md"
}

run_suite sqlite "sqlite://$work/bench.db?mode=rwc"
scale_suite sqlite
pg_note="PostgreSQL was not reachable at $PG_ADMIN; its figures are missing."
if psql "$PG_ADMIN" -qAtc 'select 1' >/dev/null 2>&1; then
    db="ephemera_bench_$$"
    psql "$PG_ADMIN" -qc "CREATE DATABASE $db" >/dev/null
    run_suite postgres "${PG_ADMIN%/*}/$db"
    psql "$PG_ADMIN" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
    psql "$PG_ADMIN" -qc "CREATE DATABASE $db" >/dev/null
    DATABASE_URL="${PG_ADMIN%/*}/$db" "$BIN" migrate up >/dev/null
    fair_suite "${PG_ADMIN%/*}/$db"
    psql "$PG_ADMIN" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
    scale_suite postgres
    pg_note=""
fi

# The hops from a push to its preview, and a rebase storm (issue 17).
python3 bench/latency.py --bin "$BIN" --out "$work/latency.md" >&2
python3 bench/storm.py --bin "$BIN" --loadgen "$LOADGEN" --out "$work/storm.md" >&2
# 10,000 live previews left alone: CPU, memory and every background query's plan.
python3 bench/idle.py --bin "$BIN" --previews "${BENCH_IDLE_PREVIEWS:-10000}" --out "$work/idle.md" >&2

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
    echo "Failure drills: \`just drill\` writes [drills.md](drills.md) (it stops the local"
    echo "PostgreSQL, so it is not part of this run)."
    echo
    echo "## Summary"
    echo
    echo "Targets (issue 17, replacing issue 7's where they overlap): ingest with \`serve --no-workers\`"
    echo "≥ 0.9× pgbench running the same statements; list first page ≥ 0.5× pgbench's prepared run of the"
    echo "same SELECT; list p99 ≤ 5 ms at 1 M environments at concurrency 8 on both databases; push → provisioner"
    echo "started p50 ≤ 20 ms, p99 ≤ 100 ms, → ready (dry-run) p50 ≤ 50 ms, ready → report p50 ≤ 100 ms; idle at"
    echo "10,000 previews ≤ 1% of a core and ≤ 50 MiB, every background query an index scan. Issue 7's: p99 at"
    echo "half of peak ≤ 10 ms; 1 M / 10 k ≤ 1.5; cold start ≤ 300 ms. Everything here shares 2 cores: the"
    echo "load generator, the service, its dry-run workers and PostgreSQL."
    echo
    cat <<'TEXT'
Where a target is missed, what limits it (evidence in the sections below):

- **List first page / pgbench (target 0.5).** The profile in "Where the
  list path's time goes" below: 0.5× pgbench leaves about 320 µs of the
  two cores per page for PostgreSQL (about 180 µs), ephemera and the load
  generator together, and ephemera alone takes about 480 µs, spread thin
  (allocation, sqlx and sea-orm's per-column work for 51 rows × 35
  columns, the kernel, JSON). A read model of its own for lists is what
  would move it.
- **List p99 at 1 M at concurrency 8.** p50 is flat from 10 k to 1 M rows
  and every plan is an index scan under the LIMIT (plans below), so the
  table's size is not the limit: p99 is the same per-page CPU cost as
  above, queued on two cores shared by the load generator, the service and
  the database.
- **Ingest p99 at half of peak (issue 7's 10 ms) and ingest with workers
  on.** Every delivery now opens a PR of its own, which the dry-run workers
  provision at once, with their own transactions (and on SQLite the one
  writer), on the same two cores; `--no-workers` above is the ingest path
  alone. (When issue 17 was filed the load generator's deliveries all
  renamed and updated one environment, a bug fixed in this run's build, so
  those figures measured something else.)
- **100 PRs at once (push-to-preview hops).** The work is a queue taken
  first due first by 4 workers, while the burst's own deliveries are still
  being answered: in every 100-PR row "answer → started" spreads evenly
  from the first PR to the last (p50 is 0.57–0.66 of p99), the signature
  of a queue drained at a steady rate (100 PRs in 0.3–0.65 s, about
  150–300 a second; each a claim, the repository's rules read from GitHub,
  a plan and a record, while the reports of the PRs before it go to GitHub
  at the same time). At one PR every hop target is met. More workers or
  replicas (where cores allow) drain it faster.
- **Every background query an index scan.** One idle statement on
  PostgreSQL is a Seq Scan: the TTL sweep's `SELECT DISTINCT
  idle_ttl_seconds … WHERE status NOT IN ('destroying', 'destroyed')`, once
  a minute, 4–9 ms at 10,000 live previews (PostgreSQL's log). Every row
  matches, and on a table not yet vacuumed since it was filled the
  visibility map is empty, so an Index Only Scan would visit every heap page
  too and PostgreSQL prices it higher. After `VACUUM (ANALYZE)` (what
  autovacuum does to a table this size) the plan is `Unique → Index Only
  Scan using ix_environments_live_idle_ttl` (cost 219 against 644 for the
  Seq Scan). SQLite uses the index from the start.
TEXT
    echo
    echo "| figure | SQLite | PostgreSQL |"
    echo "|---|---|---|"
    echo "| ingest throughput (req/s) | $(tput_of "$work/sqlite.ingest") | $(tput_of "$work/postgres.ingest" 2>/dev/null) |"
    echo "| ingest p50 / p99 (ms) | $(p50_of "$work/sqlite.ingest") / $(p99_of "$work/sqlite.ingest") | $(p50_of "$work/postgres.ingest" 2>/dev/null) / $(p99_of "$work/postgres.ingest" 2>/dev/null) |"
    echo "| ingest p99 at half of peak (ms) | $(p99_of "$work/sqlite.half") | $(p99_of "$work/postgres.half" 2>/dev/null) |"
    echo "| list first page / HTTP floor, throughput | $(python3 -c "print(round($(tput_of "$work/sqlite.read") / $(tput_of "$work/sqlite.floor"), 3))") | $( [ -f "$work/postgres.read" ] && python3 -c "print(round($(tput_of "$work/postgres.read") / $(tput_of "$work/postgres.floor"), 3))") |"
    if [ -n "${fair_ceiling:-}" ]; then
        echo "| ingest, \`serve --no-workers\` (req/s) | — | $(tput_of "$work/fair.ingest") |"
        echo "| pgbench ceiling, same statements, same concurrency, prepared (tx/s) | — | $fair_ceiling |"
        echo "| ingest / ceiling, \`--no-workers\` (target ≥ 0.9) | — | **$(python3 -c "print(round($(tput_of "$work/fair.ingest") / $fair_ceiling, 3))")** |"
        echo "| ingest / ceiling, workers on | — | **$(python3 -c "print(round($(tput_of "$work/postgres.ingest") / $fair_ceiling, 3))")** |"
        echo "| list first page, \`--no-workers\` (req/s) | — | $(tput_of "$work/fair.read") |"
        echo "| pgbench, the same SELECT, prepared (tx/s) | — | $fair_list |"
        echo "| list / pgbench (target ≥ 0.5) | — | **$(python3 -c "print(round($(tput_of "$work/fair.read") / $fair_list, 3))")** |"
    fi
    echo
    echo "## Results"
    echo
    cat "$work/sqlite.md"
    [ -f "$work/postgres.md" ] && cat "$work/postgres.md"
    [ -f "$work/fair.md" ] && cat "$work/fair.md"
    cat "$work/scale-sqlite.md"
    [ -f "$work/scale-postgres.md" ] && cat "$work/scale-postgres.md"
    [ -n "$pg_note" ] && echo "$pg_note"
    echo
    echo "## Push-to-preview latency (this run, bench/latency.py)"
    echo
    tail -n +2 "$work/latency.md"
    echo
    echo "## Rebase storm (this run, bench/storm.py)"
    echo
    tail -n +2 "$work/storm.md"
    echo
    echo "## Idle at scale (this run, bench/idle.py)"
    echo
    tail -n +2 "$work/idle.md"
    if [ -f docs/benchmarks-list-profile.md ]; then
        echo
        echo "## Where the list path's time goes (the latest profile, from docs/benchmarks-list-profile.md)"
        tail -n +2 docs/benchmarks-list-profile.md
    fi
    if [ -f docs/benchmarks-github.md ]; then
        echo
        echo "## GitHub request budget (the latest \`just bench-github\`, from docs/benchmarks-github.md)"
        tail -n +2 docs/benchmarks-github.md
    fi
    if [ -f docs/benchmarks-dashboard.md ]; then
        echo
        echo "## The dashboard (the latest \`just bench-dashboard\`, from docs/benchmarks-dashboard.md)"
        tail -n +2 docs/benchmarks-dashboard.md
    fi
    if [ -f docs/drills.md ]; then
        echo
        echo "## Drills (the latest \`just drill\`, from docs/drills.md)"
        tail -n +2 docs/drills.md
    fi
} >"$OUT"
echo "wrote $OUT" >&2
