#!/usr/bin/env bash
# The dashboard's pages under load: p50/p99 and the bytes a browser
# fetches for each page (HTML and its script), with N previews on the
# embedded SQLite database. Writes docs/benchmarks-dashboard.md, which
# `just bench` folds into docs/benchmarks.md. Figures are reported, never
# asserted.
#
#   bash bench/dashboard.sh [--profile release|dev] [--previews 500]
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=release
PREVIEWS=500
CONCURRENCY=8
COUNT=2000
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) PROFILE=$2; shift 2 ;;
        --previews) PREVIEWS=$2; shift 2 ;;
        *) echo "usage: bash bench/dashboard.sh [--profile release|dev] [--previews N]" >&2; exit 2 ;;
    esac
done
dir=debug
[ "$PROFILE" = release ] && dir=release
cargo build --locked --profile "$PROFILE" -p ephemera-server -p ephemera-loadgen >&2
BIN=target/$dir/ephemera
LOADGEN=target/$dir/loadgen
SECRET=bench-dashboard-webhook-secret
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
(cd "$work" && DATABASE_URL="sqlite://$work/bench.db?mode=rwc" EPHEMERA_LISTEN="127.0.0.1:$port" \
    GITHUB_WEBHOOK_SECRET=$SECRET RUST_LOG=warn exec "$OLDPWD/$BIN" serve >"$work/log" 2>&1) &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -fs "$base/health/ready" >/dev/null 2>&1 && break; sleep 0.2; done
"$LOADGEN" --url "$base" --concurrency 4 --count "$PREVIEWS" ingest --secret "$SECRET" >/dev/null
# Let the workers bring them to ready.
for _ in $(seq 1 300); do
    busy=$(curl -fs "$base/api/v1/environments?status=pending&limit=1" | tr -d '[:space:]')
    [ "$busy" = "[]" ] && break
    sleep 0.5
done

out=docs/benchmarks-dashboard.md
{
    echo "# The dashboard under load"
    echo
    echo "Produced by \`bash bench/dashboard.sh --profile $PROFILE --previews $PREVIEWS\` on $(date -u +%Y-%m-%d)"
    echo "($(nproc) cores; service, SQLite and load generator on the same machine), $PREVIEWS previews, $COUNT requests"
    echo "per page at concurrency $CONCURRENCY, no sign-in (loopback). Bytes: the page's HTML plus its one script,"
    echo "uncompressed (styles are inline; nothing else is fetched)."
    echo
    echo "| page | p50 ms | p99 ms | bytes |"
    echo "|---|---|---|---|"
    script=$(curl -fs "$base/assets/dashboard.js" | wc -c)
    for path in / /environments "/environments/1" /deliveries /repositories; do
        bytes=$(curl -fs "$base$path" | wc -c)
        line=$("$LOADGEN" --url "$base" --concurrency "$CONCURRENCY" --count "$COUNT" get --path "$path" | grep '^latency ms')
        p50=$(echo "$line" | awk '{print $4}')
        p99=$(echo "$line" | awk '{print $8}')
        echo "| \`$path\` | $p50 | $p99 | $((bytes + script)) |"
    done
} >"$out"
cat "$out"
