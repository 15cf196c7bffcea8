#!/usr/bin/env python3
"""Idle at scale: what 10,000 live previews cost when nothing happens.

Starts a local fake GitHub (bench/github_budget.py's) that lists every PR
as open, and ephemera against it (dry-run provisioner, workers and drift
repair on), opens N PRs (default 10,000) over 50 repositories with signed
webhooks and waits until every one is ready and reported. Then it
restarts ephemera (so the database's statement log covers only the idle
process), lets it warm up, and over a window measures:

- the service's CPU (user + system, from /proc) as a share of one core,
  and its resident memory (VmRSS) at the end and at peak (VmHWM);
- PostgreSQL's CPU over the same window (every postgres process);
- every statement the service sent while idle, from PostgreSQL's own log
  (log_min_duration_statement = 0 on the bench database), with how often
  it ran and its plan: PostgreSQL's generic plan (EXPLAIN EXECUTE of the
  prepared statement, plan_cache_mode = force_generic_plan), the one a
  prepared statement falls back to, shown by its scan nodes.

Drift repair runs every 60 s here (the default is 5 minutes), so the window
holds two passes: idle at the default costs less. On SQLite (one process)
only CPU and memory are measured. Prints Markdown; nothing is asserted.
Usage (`just bench-idle` builds and runs it):

    python3 bench/idle.py --bin target/release/ephemera [--previews 10000]
        [--window 120] [--out docs/benchmarks-idle.md]
"""

import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import github_budget as gb  # noqa: E402

ADMIN = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qAtc"]
PG_LOG = Path(os.environ.get("BENCH_PG_LOG", "/var/log/postgresql/postgresql-15-main.log"))
REPOSITORIES = 50
SETTINGS = {
    "EPHEMERA_GITHUB_SYNC_INTERVAL": "60s",
    # The defaults, not the other benches' short poll.
    "EPHEMERA_WORKER_POLL": "1s",
    "RUST_LOG": "warn",
}
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def postgres_ticks():
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text:
            total += int(text.rsplit(")", 1)[1].split()[11]) + int(text.rsplit(")", 1)[1].split()[12])
    return total


def kib(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def seed(app, fake, previews):
    payloads = []
    for i in range(previews):
        p = gb.pr_payload("opened", i % REPOSITORIES, i // REPOSITORIES + 1, i + 1)
        payloads.append(p)
        with fake.lock:
            fake.open_prs.setdefault(p["repository"]["full_name"], {})[p["number"]] = gb.listed(p)
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda p: app.send("pull_request", p), payloads))
    app.wait_settled(timeout=1800)
    return time.time() - t0


def live_count(app):
    metrics = app.get("/metrics")
    return sum(
        float(m.group(2))
        for m in re.finditer(r'^ephemera_environments\{status="([a-z]+)"\} (\S+)', metrics, re.M)
        if m.group(1) != "destroyed"
    )


def window(app, seconds, with_postgres):
    pid = app.proc.pid
    c0, p0, t0 = cpu_ticks(pid), postgres_ticks() if with_postgres else 0, time.time()
    time.sleep(seconds)
    c1, p1, t1 = cpu_ticks(pid), postgres_ticks() if with_postgres else 0, time.time()
    return {
        "cpu": (c1 - c0) / TICKS / (t1 - t0) * 100,
        "pg_cpu": (p1 - p0) / TICKS / (t1 - t0) * 100,
        "rss": kib(pid, "VmRSS") / 1024,
        "hwm": kib(pid, "VmHWM") / 1024,
        "seconds": t1 - t0,
    }


STATEMENT = re.compile(r"^\S+ \S+ \S+ \[\d+\] \S+@(\S+) LOG:  duration: [0-9.]+ ms  (?:execute [^:]*|statement): (.*)$")


def statements(log_text, db):
    """Distinct statements the database logged for `db`, with counts."""
    found = Counter()
    current = None

    def flush():
        if current is not None:
            found[" ".join(current)] += 1

    for line in log_text.splitlines():
        if current is not None and line.startswith("\t"):
            current.append(line.strip())
            continue
        flush()
        m = STATEMENT.match(line)
        current = [m.group(2)] if m and m.group(1) == db else None
    flush()
    return found


def plan(db_url, sql):
    """The generic plan's scan nodes for one statement."""
    if not re.match(r"(?is)^\s*(select|update|delete|insert|with)\b", sql):
        return None
    params = sorted({int(n) for n in re.findall(r"\$(\d+)", sql)})
    args = f"({', '.join('NULL' for _ in range(params[-1]))})" if params else ""
    script = (
        "SET plan_cache_mode = force_generic_plan;\n"
        f"PREPARE bench_q AS {sql};\n"
        f"EXPLAIN EXECUTE bench_q{args};\n"
    )
    out = subprocess.run(["psql", db_url, "-qAt", "-v", "ON_ERROR_STOP=1"], input=script,
                         capture_output=True, text=True)
    if out.returncode != 0:
        return ["(could not plan: " + out.stderr.strip().splitlines()[-1] + ")"]
    nodes = []
    for line in out.stdout.splitlines():
        node = line.strip().removeprefix("->").strip()
        if re.search(r"Scan|^Result|^Insert|^Update|^Delete|^Limit|^LockRows|^Sort", node):
            nodes.append(re.sub(r"\s+\(cost=.*\)$", "", node))
    return nodes


def measure(binary, work, url, name, previews, seconds, pg_db=None):
    fake, server, github = gb.start_fake()
    try:
        app = gb.Ephemera(binary, url, github, work, "60s", f"{name}-seed", SETTINGS)
        seeded_in = seed(app, fake, previews)
        live = live_count(app)
        app.stop()
        if pg_db:
            subprocess.run(ADMIN + [f"ALTER DATABASE {pg_db} SET log_min_duration_statement = 0"], check=True)
        app = gb.Ephemera(binary, url, github, work, "60s", name, SETTINGS)
        time.sleep(15)
        offset = PG_LOG.stat().st_size if pg_db and PG_LOG.exists() else 0
        before = fake.snapshot()
        figures = window(app, seconds, pg_db is not None)
        requests = gb.total(gb.diff(fake.snapshot(), before), free=True)
        app.stop()
        log = ""
        if pg_db:
            subprocess.run(ADMIN + [f"ALTER DATABASE {pg_db} RESET log_min_duration_statement"], check=True)
            if PG_LOG.exists():
                with PG_LOG.open(errors="replace") as f:
                    f.seek(offset)
                    log = f.read()
    finally:
        server.shutdown()
    figures.update(seeded_in=seeded_in, live=live, github_requests=requests)
    return figures, log


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/ephemera")
    ap.add_argument("--previews", type=int, default=10_000)
    ap.add_argument("--window", type=int, default=120)
    ap.add_argument("--out", default="docs/benchmarks-idle.md")
    args = ap.parse_args()
    binary = str(Path(args.bin).resolve())
    rows, explained = [], []
    with tempfile.TemporaryDirectory() as work:
        figures, _ = measure(binary, work, f"sqlite://{work}/idle.db?mode=rwc", "sqlite",
                             args.previews, args.window)
        rows.append(("SQLite", figures))
        db = f"ephemera_idle_{os.getpid()}"
        subprocess.run(ADMIN + [f"CREATE DATABASE {db}"], check=True)
        db_url = f"postgres://postgres@127.0.0.1:5432/{db}"
        try:
            figures, log = measure(binary, work, db_url, "postgres", args.previews, args.window, db)
            rows.append(("PostgreSQL", figures))
            for sql, count in sorted(statements(log, db).items(), key=lambda kv: -kv[1]):
                explained.append((sql, count, plan(db_url, sql)))
        finally:
            subprocess.run(ADMIN + [f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"], check=False)

    out = [
        "# Idle at scale (bench/idle.py)",
        "",
        f"{args.previews} PRs opened over {REPOSITORIES} repositories and provisioned (dry-run), every one",
        "listed as open by the fake GitHub; then ephemera restarted and left alone for",
        f"{args.window} s with its workers (default 1 s poll) and drift repair every 60 s",
        "(default 5 min) running. Targets (issue 17): CPU ≤ 1% of a core, RSS ≤ 50 MiB,",
        "every background query an index scan.",
        "",
        "| database | live previews | seeded in | service CPU (% of a core) | PostgreSQL CPU | RSS end / peak (MiB) | GitHub requests in the window |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, f in rows:
        pg = f"{f['pg_cpu']:.2f}%" if name == "PostgreSQL" else "—"
        out.append(
            f"| {name} | {f['live']:.0f} | {f['seeded_in']:.0f} s | **{f['cpu']:.2f}%** | {pg} | "
            f"**{f['rss']:.1f}** / {f['hwm']:.1f} | {f['github_requests']} |"
        )
    out += [
        "",
        f"Every statement the idle PostgreSQL process sent in the {args.window} s window, from",
        "PostgreSQL's log, with its generic plan's nodes (BEGIN/COMMIT and the like have none):",
        "",
    ]
    seq = 0
    for sql, count, nodes in explained:
        short = sql if len(sql) <= 400 else sql[:400] + " …"
        out.append(f"- ×{count}: `{short}`")
        if nodes:
            out.append(f"  - plan: {' → '.join(nodes)}")
            seq += sum("Seq Scan" in n for n in nodes)
    out += ["", f"Sequential scans among them: **{seq}**.", ""]
    text = "\n".join(out)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
