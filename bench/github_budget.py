#!/usr/bin/env python3
"""GitHub request budget: what ephemera costs one installation's rate limit.

Starts a local fake GitHub that answers the operations ephemera calls and
counts every request, then ephemera against it (dry-run provisioner), and
measures:

1. one PR's lifecycle (opened, 5 pushes, closed) on SQLite, requests per
   step once the reports have drained;
2. drift repair with N live previews (default 1,000) over M repositories
   and 3 replicas sharing one PostgreSQL database, for a few sync passes at
   a short interval, scaled to an hour at the default 5-minute interval.

Writes docs/benchmarks-github.md, which `just bench` folds into
docs/benchmarks.md. Figures are reported, never asserted. Request counts do
not depend on the build profile, so a debug binary measures the same.
Usage (`just bench-github` builds and runs it):

    python3 bench/github_budget.py [--bin target/release/ephemera]
        [--previews 1000] [--repositories 50] [--replicas 3] [--passes 4]
        [--out docs/benchmarks-github.md]
"""

import argparse
import hashlib
import hmac
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-webhook-secret-0123"
TOKEN = "bench-api-token-0123456789"
KEY = ROOT / "crates/github/tests/fixtures/test-app-key.pem"
TEMPLATE = json.loads((ROOT / "fixtures/github/pull_request.opened.json").read_text())
LIMIT = 5000

# (method, path pattern) -> GitHub operationId, as the metric names them.
OPERATIONS = [
    ("POST", r"^/app/installations/\d+/access_tokens$", "apps/create-installation-access-token"),
    ("GET", r"^/app$", "apps/get-authenticated"),
    ("GET", r"^/app/hook/deliveries$", "apps/list-webhook-deliveries"),
    ("POST", r"^/app/hook/deliveries/\d+/attempts$", "apps/redeliver-webhook-delivery"),
    ("GET", r"^/repos/[^/]+/[^/]+/issues/\d+/comments$", "issues/list-comments"),
    ("POST", r"^/repos/[^/]+/[^/]+/issues/\d+/comments$", "issues/create-comment"),
    ("PATCH", r"^/repos/[^/]+/[^/]+/issues/comments/\d+$", "issues/update-comment"),
    ("POST", r"^/repos/[^/]+/[^/]+/statuses/[0-9a-f]{40}$", "repos/create-commit-status"),
    ("POST", r"^/repos/[^/]+/[^/]+/deployments$", "repos/create-deployment"),
    ("POST", r"^/repos/[^/]+/[^/]+/deployments/\d+/statuses$", "repos/create-deployment-status"),
    ("GET", r"^/repos/[^/]+/[^/]+/pulls$", "pulls/list"),
    ("GET", r"^/repos/[^/]+/[^/]+/pulls/\d+$", "pulls/get"),
    ("GET", r"^/repos/[^/]+/[^/]+/contents/.+$", "repos/get-content"),
    ("POST", r"^/repos/[^/]+/[^/]+/check-runs$", "checks/create"),
    ("PATCH", r"^/repos/[^/]+/[^/]+/check-runs/\d+$", "checks/update"),
]


class FakeGitHub:
    """The state the fake keeps: open PRs per repository and the count of
    every request by (operation, status)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = Counter()
        self.next_id = 1000
        self.open_prs = {}  # "owner/name" -> {number: pr json}
        # Every listing differs from the last (a busy installation): no 304.
        self.churn = False
        self.listings = 0
        # When set, every request is also kept as (arrival time, operation,
        # path, JSON body or None): bench/latency.py reads when reports land.
        self.record = False
        self.events = []

    def snapshot(self):
        with self.lock:
            return Counter(self.counts)

    def new_id(self):
        with self.lock:
            self.next_id += 1
            return self.next_id


def handler(fake):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # The headers and the body go out in separate writes; with Nagle on,
        # the body waits for the client's delayed ACK (40 ms) on every
        # keep-alive request, which GitHub does not make anyone wait.
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def answer(self, op, status, body=None, headers=()):
            with fake.lock:
                fake.counts[(op, status)] += 1
                if fake.record:
                    fake.events.append((self.arrived, op, self.path, self.sent))
                used = sum(n for (_, s), n in fake.counts.items() if s != 304)
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("x-ratelimit-limit", str(LIMIT))
            self.send_header("x-ratelimit-remaining", str(max(LIMIT - used % LIMIT, 0)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def handle_any(self):
            self.arrived = time.time()
            url = urlparse(self.path)
            length = int(self.headers.get("content-length") or 0)
            self.sent = None
            if length:
                raw = self.rfile.read(length)
                if fake.record:
                    try:
                        self.sent = json.loads(raw)
                    except ValueError:
                        pass
            op = next(
                (o for m, p, o in OPERATIONS if m == self.command and re.match(p, url.path)),
                None,
            )
            if op is None:
                return self.answer("unknown " + self.command + " " + url.path, 404, {"message": "Not Found"})
            if op == "apps/create-installation-access-token":
                expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
                return self.answer(op, 201, {"token": "ghs_bench", "expires_at": expires,
                                             "permissions": {}, "repository_selection": "all"})
            if op == "apps/get-authenticated":
                return self.answer(op, 200, {"id": 42, "slug": "ephemera-bench"})
            if op == "repos/get-content":
                # No .github/ephemera.yml: the operator's defaults apply.
                return self.answer(op, 404, {"message": "Not Found"})
            if op == "apps/list-webhook-deliveries":
                return self.answer(op, 200, [])
            if op == "issues/list-comments":
                return self.answer(op, 200, [])
            if op in ("issues/create-comment", "repos/create-deployment"):
                return self.answer(op, 201, {"id": fake.new_id()})
            if op in ("issues/update-comment", "checks/update"):
                return self.answer(op, 200, {"id": int(url.path.rsplit("/", 1)[1])})
            if op == "pulls/list":
                repo = "/".join(url.path.split("/")[2:4])
                query = parse_qs(url.query)
                page = int(query.get("page", ["1"])[0])
                per_page = int(query.get("per_page", ["30"])[0])
                with fake.lock:
                    prs = sorted(fake.open_prs.get(repo, {}).items())
                chunk = [pr for _, pr in prs[(page - 1) * per_page : page * per_page]]
                with fake.lock:
                    fake.listings += 1
                    salt = str(fake.listings) if fake.churn else ""
                etag = '"' + hashlib.sha1((json.dumps(chunk) + salt).encode()).hexdigest() + '"'
                headers = [("etag", etag)]
                if len(prs) > page * per_page:
                    host = self.headers.get("host")
                    nxt = f"http://{host}{url.path}?state=open&per_page={per_page}&page={page + 1}"
                    headers.append(("link", f'<{nxt}>; rel="next"'))
                if self.headers.get("if-none-match") == etag:
                    return self.answer(op, 304, None, headers)
                return self.answer(op, 200, chunk, headers)
            return self.answer(op, 201, {"id": fake.new_id()})

        do_GET = do_POST = do_PATCH = do_DELETE = handle_any

    return Handler


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pr_payload(action, repo_index, number, head):
    p = json.loads(json.dumps(TEMPLATE))
    repo = f"bench-org/app-{repo_index}"
    repo_id = 10_000 + repo_index
    p["action"] = action
    p["number"] = number
    pr = p["pull_request"]
    pr["number"] = number
    pr["head"]["sha"] = f"{head:040x}"
    pr["labels"] = []
    pr["state"] = "closed" if action == "closed" else "open"
    pr["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_700_000_000 + head))
    for r in (p["repository"], pr["head"]["repo"], pr["base"]["repo"]):
        r["full_name"] = repo
        r["name"] = f"app-{repo_index}"
        r["id"] = repo_id
        r["owner"]["login"] = "bench-org"
    return p


def listed(payload):
    """The PR as GitHub's list of open PRs shows it."""
    pr = payload["pull_request"]
    return {k: pr[k] for k in ("number", "state", "draft", "updated_at", "labels", "head", "base")}


class Ephemera:
    def __init__(self, binary, database_url, github_url, work, sync_interval, name, extra=()):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update({
            "DATABASE_URL": database_url,
            "EPHEMERA_LISTEN": f"127.0.0.1:{self.port}",
            "GITHUB_WEBHOOK_SECRET": SECRET,
            "EPHEMERA_API_TOKEN": TOKEN,
            "EPHEMERA_PROVISIONER": "dry-run",
            "GITHUB_APP_ID": "42",
            "GITHUB_APP_PRIVATE_KEY_PATH": str(KEY),
            "GITHUB_API_URL": github_url,
            "EPHEMERA_GITHUB_SYNC_INTERVAL": sync_interval,
            "EPHEMERA_WORKER_POLL": "100ms",
            "RUST_LOG": "warn",
        })
        env.update(dict(extra))
        env.pop("GITHUB_APP_PRIVATE_KEY", None)
        self.log = open(Path(work) / f"{name}.log", "w")
        self.proc = subprocess.Popen([binary, "serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(self.base + "/health/ready", timeout=1)
                return
            except Exception:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.log.flush()
                    sys.exit(f"ephemera did not start:\n{Path(self.log.name).read_text()}")
                time.sleep(0.05)

    def send(self, event, payload):
        body = json.dumps(payload).encode()
        sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        req = urllib.request.Request(self.base + "/api/v1/github/webhook", data=body, method="POST", headers={
            "content-type": "application/json",
            "x-github-event": event,
            "x-github-delivery": str(uuid.uuid4()),
            "x-hub-signature-256": sig,
        })
        urllib.request.urlopen(req, timeout=30).read()

    def get(self, path):
        req = urllib.request.Request(self.base + path, headers={"authorization": f"Bearer {TOKEN}"})
        return urllib.request.urlopen(req, timeout=30).read().decode()

    def settled(self):
        """No deployment waiting or running and no report waiting."""
        metrics = self.get("/metrics")
        for gauge in ("ephemera_reconciler_backlog", "ephemera_outbox_backlog"):
            value = re.search(rf"^{gauge} (\S+)", metrics, re.M)
            if not value or float(value.group(1)) != 0:
                return False
        return True

    def wait_settled(self, timeout=120):
        deadline = time.time() + timeout
        quiet = 0
        while time.time() < deadline:
            quiet = quiet + 1 if self.settled() else 0
            if quiet >= 3:
                return
            time.sleep(0.2)
        sys.exit("ephemera did not settle")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def diff(after, before):
    return Counter({k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)})


def total(counts, free=False):
    return sum(n for (op, status), n in counts.items() if free or status != 304)


def start_fake():
    fake = FakeGitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(fake))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return fake, server, f"http://127.0.0.1:{server.server_address[1]}"


def lifecycle(binary, work, name, extra=()):
    fake, server, url = start_fake()
    app = Ephemera(binary, f"sqlite://{work}/{name}.db?mode=rwc", url, work, "1h", name, extra)
    app.wait_settled()
    steps = []
    for label, action, head in [("opened", "opened", 1)] + [
        (f"push {n}", "synchronize", n + 1) for n in range(1, 6)
    ] + [("closed", "closed", 6)]:
        before = fake.snapshot()
        app.send("pull_request", pr_payload(action, 0, 7, head))
        time.sleep(0.3)
        app.wait_settled()
        steps.append((label, diff(fake.snapshot(), before)))
    app.stop()
    server.shutdown()
    return steps


def drift(binary, work, previews, repositories, replicas, passes, interval_s):
    import shutil
    psql = shutil.which("psql")
    db = f"ephemera_bench_{os.getpid()}"
    admin = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qAtc"]
    if not psql:
        sys.exit("psql is needed for the drift-repair measurement (PostgreSQL)")
    subprocess.run(admin + [f"CREATE DATABASE {db}"], check=True)
    url_db = f"postgres://postgres@127.0.0.1:5432/{db}"
    fake, server, url = start_fake()
    apps = []
    try:
        interval = f"{interval_s}s"
        # The default budget (400 an hour at a 5-minute interval: 33 a
        # pass), kept per pass at the bench's shorter interval.
        budget = str(400 * 300 // interval_s)
        apps = [
            Ephemera(binary, url_db, url, work, interval, f"replica-{n}",
                     {"EPHEMERA_GITHUB_SYNC_BUDGET": budget})
            for n in range(replicas)
        ]
        payloads = []
        for i in range(previews):
            p = pr_payload("opened", i % repositories, i // repositories + 1, i + 1)
            payloads.append(p)
            with fake.lock:
                fake.open_prs.setdefault(p["repository"]["full_name"], {})[p["number"]] = listed(p)
        t0 = time.time()
        for n, p in enumerate(payloads):
            apps[n % replicas].send("pull_request", p)
        apps[0].wait_settled(timeout=900)
        seeded_in = time.time() - t0
        # One more pass to let drift repair see the seeded previews once.
        time.sleep(interval_s)
        seeding = fake.snapshot()
        t0 = time.time()
        time.sleep(interval_s * passes)
        elapsed = time.time() - t0
        during = diff(fake.snapshot(), seeding)
        fake.churn = True
        before = fake.snapshot()
        time.sleep(interval_s * passes)
        busy = diff(fake.snapshot(), before)
    finally:
        for app in apps:
            app.stop()
        server.shutdown()
        subprocess.run(admin + [f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"], check=False)
    return seeding, seeded_in, during, elapsed, busy


def table(counts):
    rows = ["| operation | status | requests |", "|---|---|---|"]
    for (op, status), n in sorted(counts.items()):
        rows.append(f"| `{op}` | {status} | {n} |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "target/release/ephemera"))
    ap.add_argument("--previews", type=int, default=1000)
    ap.add_argument("--repositories", type=int, default=50)
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--passes", type=int, default=4)
    ap.add_argument("--interval", type=int, default=10, help="sync interval in seconds for the drift run")
    ap.add_argument("--out", default=str(ROOT / "docs/benchmarks-github.md"))
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as work:
        steps = lifecycle(args.bin, work, "quick")
        # A deployment that outlasts the report delay (10 s): the command
        # provisioner, taking 12 s to create and update.
        slow = lifecycle(args.bin, work, "slow", {
            "EPHEMERA_PROVISIONER": "command",
            "EPHEMERA_PROVISION_COMMAND": "sleep 12",
            "EPHEMERA_DESTROY_COMMAND": "true",
        })
        seeding, seeded_in, during, elapsed, busy = drift(
            args.bin, work, args.previews, args.repositories, args.replicas, args.passes, args.interval
        )

    out = ["# GitHub request budget", ""]
    out.append(f"Produced by `just bench-github` (`python3 bench/github_budget.py`) on "
               f"{time.strftime('%Y-%m-%d')} with `{Path(args.bin).relative_to(ROOT) if Path(args.bin).is_absolute() and ROOT in Path(args.bin).parents else args.bin}`, "
               f"against a local fake GitHub that counts every request (`bench/github_budget.py`). "
               f"Reproduce: `python3 bench/github_budget.py --previews {args.previews} --repositories "
               f"{args.repositories} --replicas {args.replicas} --passes {args.passes} --interval {args.interval}`.\n")
    def lifecycle_table(title, note, steps):
        out.append(f"### {title}\n")
        out.append(note + "\n")
        out.append("| step | requests | of which |\n|---|---|---|")
        for label, counts in steps:
            parts = ", ".join(f"{op.split('/')[1]} {n}" for (op, s), n in sorted(counts.items()))
            out.append(f"| {label} | {total(counts)} | {parts} |")
        pushes = [total(c) for label, c in steps if label.startswith("push")]
        whole = sum(total(c) for _, c in steps)
        out.append(f"\nWhole lifecycle: **{whole} requests**; per push: "
                   f"**{sum(pushes) / len(pushes):.1f}** on average.\n")

    lifecycle_table(
        "One PR's lifecycle (opened, 5 pushes, closed): deployments quicker than the report delay",
        "Requests to GitHub once each step's reports drained (SQLite, dry-run provisioner, one replica).",
        steps,
    )
    lifecycle_table(
        "The same lifecycle, each deployment taking 12 s (longer than the 10 s report delay)",
        "Command provisioner running `sleep 12`: GitHub also hears `pending`/`in_progress` while it runs.",
        slow,
    )

    def per_pass(counts):
        passes = sum(n for (op, s), n in counts.items() if op == "apps/list-webhook-deliveries")
        return passes, total(counts) / max(passes, 1)

    passes_seen, quiet = per_pass(during)
    busy_passes, loud = per_pass(busy)
    out.append(f"### Drift repair: {args.previews} live previews, {args.repositories} repositories, "
               f"{args.replicas} replicas\n")
    out.append(f"{args.replicas} replicas on one PostgreSQL database, drift repair every {args.interval} s "
               f"(the default budget, 400 requests an hour at the default 5-minute interval, kept per pass). "
               f"Seeding the previews (webhooks spread over the replicas) took {seeded_in:.0f} s and "
               f"{total(seeding)} requests: their reports and the first passes.\n")
    out.append(f"**Quiet** (no PR changed): {passes_seen} passes, one replica at a time (the `github-sync` lease):\n")
    out.append(table(during) + "\n")
    out.append(f"**Busy** (every repository's list changed before every pass, so no `304`): {busy_passes} passes:\n")
    out.append(table(busy) + "\n")
    out.append("| at the default interval (12 passes an hour) | counted requests a pass | requests an hour | of 5,000 |\n|---|---|---|---|")
    for label, value in (("quiet", quiet), ("busy", loud)):
        out.append(f"| {label} | {value:.1f} | {value * 12:.0f} | {100 * value * 12 / LIMIT:.1f}% |")
    out.append(f"\nTarget: ≤ 10% (500 an hour). The deliveries listing is the App's own budget, not the "
               f"installation's, and is counted anyway. Without the lease and the listing, the same previews "
               f"would cost one read per preview per replica: {args.previews} × {args.replicas} × 12 = "
               f"{args.previews * args.replicas * 12:,} requests an hour.\n")
    Path(args.out).write_text("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    main()
