#!/usr/bin/env bash
# Seeds N environments (each with a deployment) straight into a database
# ephemera has migrated. Usage: scale.sh sqlite FILE N | scale.sh postgres URL N
set -euo pipefail
kind=$1 target=$2 n=$3
statuses="'ready','destroyed','ready','failed','pending'"
case "$kind" in
postgres)
    psql "$target" -q -v ON_ERROR_STOP=1 <<SQL
INSERT INTO environments (repository_full_name, repository_name, pr_number, pr_title, branch_name, commit_sha,
    namespace, status, installation_id, created_at, updated_at, work_attempts)
SELECT 'org-' || (g % 1000) || '/repo-' || (g % 7), 'repo-' || (g % 7), g, 'PR ' || g, 'branch-' || g,
    lpad(to_hex(g), 40, '0'), 'pr-' || g || '-seed', (ARRAY[$statuses])[1 + g % 5], 1, now(), now(), 0
FROM generate_series(1, $n) g;
INSERT INTO deployments (environment_id, commit_sha, status, logs, created_at, updated_at)
SELECT id, commit_sha, 'success', '', now(), now() FROM environments;
SQL
    # Vacuumed as well as analyzed: otherwise autovacuum starts on the
    # freshly inserted rows while the reads are measured.
    psql "$target" -q -v ON_ERROR_STOP=1 -c 'VACUUM (ANALYZE) environments' -c 'VACUUM (ANALYZE) deployments'
    ;;
sqlite)
    python3 - "$target" "$n" <<'PY'
import sqlite3, sys
db, n = sys.argv[1], int(sys.argv[2])
con = sqlite3.connect(db)
statuses = ['ready', 'destroyed', 'ready', 'failed', 'pending']
now = "2026-11-21T00:00:00+00:00"
with con:
    con.executemany(
        "INSERT INTO environments (repository_full_name, repository_name, pr_number, pr_title, branch_name, commit_sha,"
        " namespace, status, installation_id, created_at, updated_at, work_attempts) VALUES (?,?,?,?,?,?,?,?,1,?,?,0)",
        ((f"org-{g % 1000}/repo-{g % 7}", f"repo-{g % 7}", g, f"PR {g}", f"branch-{g}", f"{g:040x}",
          f"pr-{g}-seed", statuses[g % 5], now, now) for g in range(1, n + 1)))
    con.execute("INSERT INTO deployments (environment_id, commit_sha, status, logs, created_at, updated_at)"
                " SELECT id, commit_sha, 'success', '', created_at, updated_at FROM environments")
    con.execute("ANALYZE")
PY
    ;;
esac
