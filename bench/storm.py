#!/usr/bin/env python3
"""Rebase storm: a merge to main makes every open PR rebase at once.

200 PRs of one repository are opened and made ready; then each gets 10
new commits (`synchronize`) within 2 s, sent open loop by the load
generator (`loadgen storm`), on PostgreSQL with 3 replicas (deliveries in
turn) and on SQLite with one process. Reports, per database:

- every delivery's answer: statuses, p50 / p99 / max latency;
- whether each PR ends ready on its newest commit, and how long until all
  200 are (from the first storm delivery);
- provisioner runs (the command provisioner logs each commit it deploys)
  against the commits pushed, and deployments by outcome: a commit
  superseded before a worker reached it is cancelled without running.

Figures are reported, never asserted. Usage (`just bench-storm`):

    python3 bench/storm.py [--bin target/release/ephemera]
        [--loadgen target/release/loadgen] [--prs 200] [--pushes 10]
        [--within 2] [--out docs/benchmarks-storm.md]
"""

import argparse
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import github_budget as gb  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ADMIN = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qAtc"]


def query(url, sql):
    """Rows of `sql` as lists of strings."""
    if url.startswith("sqlite"):
        path = url.split("://", 1)[1].split("?", 1)[0]
        with sqlite3.connect(path) as db:
            return [[str(v) for v in row] for row in db.execute(sql)]
    out = subprocess.run(["psql", url, "-qAt", "-F", "\t", "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def loadgen(args, urls, extra):
    cmd = [args.loadgen, "--url", ",".join(urls)] + extra
    env = dict(os.environ, GITHUB_WEBHOOK_SECRET=gb.SECRET)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return out


def wait(what, done, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if done():
            return time.time()
        time.sleep(0.05)
    sys.exit(f"timed out waiting until {what}")


def storm(args, work, name, url, replicas):
    log = Path(work) / f"{name}-runs.log"
    log.touch()
    extra = {
        "EPHEMERA_PROVISIONER": "command",
        "EPHEMERA_PROVISION_COMMAND": f'echo "$EPHEMERA_COMMIT_SHA" >> {log}',
        "EPHEMERA_DESTROY_COMMAND": "true",
        "EPHEMERA_WORKERS": "2",
        "EPHEMERA_API_TOKEN": gb.TOKEN,
    }
    extra["EPHEMERA_WORKER_POLL"] = "1s"
    fake, server, github = gb.start_fake()
    apps = []
    try:
        for n in range(replicas):
            apps.append(gb.Ephemera(args.bin, url, github, work, "1h", f"{name}-{n}", extra))
        urls = [a.base for a in apps]
        prs = args.prs
        loadgen(args, urls, ["--concurrency", "16", "--count", str(prs), "storm", "--prs", str(prs)])
        wait("every PR is ready", lambda: int(query(url, "SELECT count(*) FROM environments WHERE status = 'ready'")[0][0]) == prs)
        opened_runs = len(log.read_text().splitlines())

        pushes = prs * args.pushes
        rate = pushes / args.within
        started = time.time()
        out = loadgen(args, urls, ["--concurrency", "64", "--count", str(pushes), "--rate", f"{rate:.1f}",
                                   "storm", "--prs", str(prs), "--round", "1"])
        newest = f"{args.pushes:020x}"
        # Ready on it: the newest commit's deployment succeeded and the
        # environment is ready (the row's commit changes at the webhook).
        done_at = wait("every PR is ready on its newest commit", lambda: int(query(
            url, "SELECT count(*) FROM environments e JOIN deployments d ON d.environment_id = e.id "
                 f"WHERE e.status = 'ready' AND d.status = 'success' AND d.commit_sha LIKE '%{newest}'")[0][0]) == prs)
        runs = log.read_text().splitlines()[opened_runs:]
        by_status = dict((s, int(n)) for s, n in query(url, "SELECT status, count(*) FROM deployments GROUP BY status"))
        latency = re.search(r"latency ms:\s+(.*)", out).group(1)
        statuses = re.search(r"statuses:\s+(.*)", out).group(1)
        sent_in = re.search(r"requests:\s+\d+ in ([\d.]+)s", out).group(1)
        return {
            "replicas": replicas,
            "pushes": pushes,
            "sent_in": float(sent_in),
            "latency": latency,
            "statuses": statuses,
            "all_ready_s": done_at - started,
            "runs": len(runs),
            "distinct_runs": len(set(runs)),
            "newest_runs": sum(1 for r in runs if r.endswith(newest)),
            "deployments": by_status,
        }
    finally:
        for app in apps:
            app.stop()
        server.shutdown()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=str(ROOT / "target/release/ephemera"))
    parser.add_argument("--loadgen", default=str(ROOT / "target/release/loadgen"))
    parser.add_argument("--prs", type=int, default=200)
    parser.add_argument("--pushes", type=int, default=10)
    parser.add_argument("--within", type=float, default=2.0)
    parser.add_argument("--out", default=str(ROOT / "docs/benchmarks-storm.md"))
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory() as work:
        db = f"ephemera_storm_{os.getpid()}"
        subprocess.run(ADMIN + [f"CREATE DATABASE {db}"], check=True)
        try:
            results.append(("PostgreSQL", storm(args, work, "pg", f"postgres://postgres@127.0.0.1:5432/{db}", 3)))
        finally:
            subprocess.run(ADMIN + [f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"], check=False)
        results.append(("SQLite", storm(args, work, "sqlite", f"sqlite://{work}/storm.db?mode=rwc", 1)))

    out = [
        "# Rebase storm",
        "",
        f"Produced by `python3 bench/storm.py --prs {args.prs} --pushes {args.pushes} --within {args.within:g}` "
        f"on {time.strftime('%Y-%m-%d')}: {args.prs} ready PRs of one repository, then "
        f"{args.pushes} pushes each ({args.prs * args.pushes} `synchronize` deliveries) sent open loop "
        f"within {args.within:g} s; command provisioner (logs the commit), 2 workers per process, reports to a local fake GitHub; "
        "everything shares the machine.",
        "",
        "| figure | " + " | ".join(name for name, _ in results) + " |",
        "|---|" + "---|" * len(results),
    ]
    rows = [
        ("processes (deliveries in turn)", lambda r: str(r["replicas"])),
        ("deliveries sent, in", lambda r: f"{r['pushes']} in {r['sent_in']:.2f} s"),
        ("answers", lambda r: r["statuses"]),
        ("answer latency (ms)", lambda r: r["latency"]),
        ("all PRs ready on their newest commit after", lambda r: f"{r['all_ready_s']:.2f} s"),
        ("provisioner runs during the storm (distinct commits)", lambda r: f"{r['runs']} ({r['distinct_runs']})"),
        ("… of the newest commits", lambda r: str(r["newest_runs"])),
        ("commits pushed but never provisioned", lambda r: str(r["pushes"] - r["distinct_runs"])),
        ("deployments by outcome (whole run)", lambda r: ", ".join(f"{k} {v}" for k, v in sorted(r["deployments"].items()))),
    ]
    for label, value in rows:
        out.append(f"| {label} | " + " | ".join(value(r) for _, r in results) + " |")
    text = "\n".join(out) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
