#!/usr/bin/env python3
"""Push-to-preview latency, hop by hop, end to end.

Starts a local fake GitHub (bench/github_budget.py's, which also keeps when
each request arrives) and ephemera against it, sends signed
pull_request.opened deliveries and measures, per PR:

- answer -> provisioner started: from the moment the webhook's answer came
  back to the moment a worker claimed the work and entered `provisioning`
  (the environment's status history, environment_status_changes);
- answer -> ready: to `ready` (the provisioner finished);
- ready -> report landed: to the first `success` commit status for the
  commit arriving at the fake GitHub.

At 1 PR at a time (each followed to its report before the next is sent)
and at 100 PRs sent at once, on SQLite (one process) and PostgreSQL, with
the dry-run provisioner and with the command provisioner running `true`.
The poll interval stays at its default (1 s): any hop far under it was
handed over, not polled for. Prints a Markdown table; no figure is
asserted. Usage (`just bench-latency` builds and runs it):

    python3 bench/latency.py --bin target/release/ephemera [--single 20] [--burst 100]
        [--out docs/benchmarks-latency.md]
"""

import argparse
import concurrent.futures
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import github_budget as gb  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ADMIN = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qAtc"]


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = round(p / 100 * (len(ordered) - 1))
    return ordered[min(rank, len(ordered) - 1)]


class Store:
    """Reads the status history straight from the database."""

    def __init__(self, url):
        self.url = url

    def changes(self):
        """(repository, pr) -> {status: first time entered, epoch seconds}."""
        sql = ("SELECT e.repository_full_name, e.pr_number, c.status, {at} "
               "FROM environment_status_changes c JOIN environments e ON e.id = c.environment_id "
               "ORDER BY c.id")
        if self.url.startswith("sqlite"):
            path = self.url.split("://", 1)[1].split("?", 1)[0]
            with sqlite3.connect(path) as db:
                rows = [(r, n, s, datetime.fromisoformat(at).timestamp())
                        for r, n, s, at in db.execute(sql.format(at="c.changed_at"))]
        else:
            out = subprocess.run(
                ["psql", self.url, "-qAt", "-F", "\t", "-c",
                 sql.format(at="extract(epoch from c.changed_at)")],
                check=True, capture_output=True, text=True).stdout
            rows = []
            for line in out.splitlines():
                r, n, s, at = line.split("\t")
                rows.append((r, int(n), s, float(at)))
        seen = {}
        for repo, number, status, at in rows:
            seen.setdefault((repo, int(number)), {}).setdefault(status, at)
        return seen


def landed(fake):
    """head sha -> when its first `success` commit status arrived."""
    first = {}
    with fake.lock:
        events = list(fake.events)
    for at, op, path, body in events:
        if op == "repos/create-commit-status" and isinstance(body, dict) and body.get("state") == "success":
            sha = path.rstrip("/").rsplit("/", 1)[-1]
            first.setdefault(sha, at)
    return first


def measure(binary, work, name, db_url, provisioner, single, burst):
    fake, server, github = gb.start_fake()
    fake.record = True
    extra = {"EPHEMERA_WORKER_POLL": "1s", "EPHEMERA_WORKERS": "4"}
    extra.update(provisioner)
    app = gb.Ephemera(binary, db_url, github, work, "1h", name, extra)
    store = Store(db_url)
    answered = {}  # (repo, number, sha) -> answer time

    def send(repo_index, number):
        payload = gb.pr_payload("opened", repo_index, number, repo_index * 1_000_000 + number)
        sha = payload["pull_request"]["head"]["sha"]
        app.send("pull_request", payload)
        answered[(f"bench-org/app-{repo_index}", number, sha)] = time.time()
        return sha

    def wait_landed(shas, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if set(shas) <= set(landed(fake)):
                return
            time.sleep(0.01)
        sys.exit(f"{name}: reports did not land")

    try:
        app.wait_settled()
        runs = {}
        # One PR at a time, each followed to its report.
        for n in range(1, single + 1):
            wait_landed([send(1, n)])
        runs["1"] = [k for k in answered if k[0] == "bench-org/app-1"]
        # A burst: `burst` PRs at once.
        with concurrent.futures.ThreadPoolExecutor(max_workers=burst) as pool:
            shas = list(pool.map(lambda n: send(2, n), range(1, burst + 1)))
        wait_landed(shas)
        runs[str(burst)] = [k for k in answered if k[0] == "bench-org/app-2"]
        history = store.changes()
        reports = landed(fake)
    finally:
        app.stop()
        server.shutdown()

    results = {}
    for label, keys in runs.items():
        hops = {"started": [], "ready": [], "report": []}
        for repo, number, sha in keys:
            seen = history.get((repo, number), {})
            answer = answered[(repo, number, sha)]
            if "provisioning" in seen:
                hops["started"].append((seen["provisioning"] - answer) * 1000)
            if "ready" in seen:
                hops["ready"].append((seen["ready"] - answer) * 1000)
                if sha in reports:
                    hops["report"].append((reports[sha] - seen["ready"]) * 1000)
        results[label] = hops
    return results


def postgres_db(tag):
    db = f"ephemera_latency_{tag}_{os.getpid()}"
    subprocess.run(ADMIN + [f"CREATE DATABASE {db}"], check=True)
    return db, f"postgres://postgres@127.0.0.1:5432/{db}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=str(ROOT / "target/release/ephemera"))
    parser.add_argument("--single", type=int, default=20)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--out", default=str(ROOT / "docs/benchmarks-latency.md"))
    args = parser.parse_args()

    provisioners = [
        ("dry-run", {"EPHEMERA_PROVISIONER": "dry-run"}),
        ("command `true`", {"EPHEMERA_PROVISIONER": "command",
                            "EPHEMERA_PROVISION_COMMAND": "true",
                            "EPHEMERA_DESTROY_COMMAND": "true"}),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for backend in ("SQLite", "PostgreSQL"):
            for label, provisioner in provisioners:
                tag = f"{backend}-{label.split()[0]}".lower().replace("`", "")
                if backend == "SQLite":
                    db, url = None, f"sqlite://{work}/{tag}.db?mode=rwc"
                else:
                    db, url = postgres_db(tag.replace("-", "_"))
                try:
                    results = measure(args.bin, work, tag, url, provisioner, args.single, args.burst)
                finally:
                    if db:
                        subprocess.run(ADMIN + [f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"], check=False)
                for prs, hops in results.items():
                    rows.append((backend, label, prs, hops))

    def cell(values):
        return f"{percentile(values, 50):.1f} / {percentile(values, 99):.1f}"

    out = [
        "# Push-to-preview latency",
        "",
        f"Produced by `python3 bench/latency.py --bin {os.path.relpath(args.bin, ROOT)} "
        f"--single {args.single} --burst {args.burst}` on {time.strftime('%Y-%m-%d')}: "
        "4 workers, the default 1 s poll, a local fake GitHub; service, database, fake and "
        "sender share the machine. Milliseconds, p50 / p99 over the PRs of each run.",
        "",
        "Targets (issue 17): answer → provisioner started p50 ≤ 20, p99 ≤ 100; "
        "→ ready on dry-run p50 ≤ 50; ready → report landed p50 ≤ 100.",
        "",
        "| database | provisioner | PRs at once | answer → started | answer → ready | ready → report landed |",
        "|---|---|---|---|---|---|",
    ]
    for backend, label, prs, hops in rows:
        out.append(f"| {backend} | {label} | {prs} | {cell(hops['started'])} | "
                   f"{cell(hops['ready'])} | {cell(hops['report'])} |")
    text = "\n".join(out) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
