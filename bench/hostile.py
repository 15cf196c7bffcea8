#!/usr/bin/env python3
"""Hostile traffic against a local ephemera, for bench/drill.sh.

Talks to 127.0.0.1 only, in bounded loops: a burst of unsigned 20 MB webhook
bodies, a burst of 20 MB bodies with a well-formed but wrong signature, slow
senders dribbling a byte at a time, and made-up HTTP methods. Samples the
server's resident memory (VmRSS of --pid) throughout. Then a captured signed
delivery replayed under a new delivery id. Prints `KEY=VALUE`
lines (no spaces in values) for the drill to record.

    bench/hostile.py --port 8080 --pid 1234 --secret S --token T
"""

import argparse
import collections
import hashlib
import hmac
import json
import select
import socket
import statistics
import threading
import time
import uuid

HOST = "127.0.0.1"  # never anything else
MIB = 1024 * 1024


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    """Peak VmRSS of the server while a phase runs."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, rss_kib(pid), True

    def run(self):
        while self.running:
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.02)

    def stop(self):
        self.running = False
        self.join()
        return self.peak


def read_status(sock, wait):
    """The status code of the answer, 'reset' or 'none' (no answer in time)."""
    sock.settimeout(wait)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        return "none"
    except OSError:
        return "reset"
    parts = data.split(b" ", 2)
    if len(parts) >= 2 and parts[1].isdigit():
        return parts[1].decode()
    return "reset" if not data else "garbled"


def webhook(port, headers, length, body_bytes, pace, chunk, limit_s):
    """Sends a webhook request head announcing `length` bytes, then up to
    `body_bytes` of body in `chunk`-sized pieces `pace` seconds apart,
    stopping as soon as the server answers. Returns (status, seconds, sent)."""
    started = time.monotonic()
    sock = socket.create_connection((HOST, port), timeout=10)
    head = (
        "POST /api/v1/github/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nConnection: close\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + f"Content-Length: {length}\r\n\r\n"
    )
    sent = 0
    try:
        sock.sendall(head.encode())
        piece = memoryview(b" " * chunk)
        sock.settimeout(0.2)
        while sent < body_bytes and time.monotonic() - started < limit_s:
            if select.select([sock], [], [], 0)[0]:
                break  # answered before the body was complete
            try:
                sent += sock.send(piece[: min(chunk, body_bytes - sent)])
            except socket.timeout:
                continue
            if pace:
                time.sleep(pace)
        status = read_status(sock, max(1.0, limit_s - (time.monotonic() - started)))
    except OSError:
        status = read_status(sock, 1.0)
    finally:
        sock.close()
    return status, time.monotonic() - started, sent


def burst(args, name, n, make_headers, body_bytes, pace, chunk, limit_s):
    sampler = Sampler(args.pid)
    sampler.start()
    results = [None] * n

    def one(i):
        results[i] = webhook(args.port, make_headers(), body_bytes, body_bytes, pace, chunk, limit_s)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    peak = sampler.stop()
    statuses = collections.Counter(r[0] for r in results)
    seconds = [r[1] for r in results]
    sent = sum(r[2] for r in results)
    emit(f"{name}_requests", n)
    emit(f"{name}_statuses", ",".join(f"{k}:{v}" for k, v in sorted(statuses.items())))
    emit(f"{name}_answer_s_median", f"{statistics.median(seconds):.2f}")
    emit(f"{name}_answer_s_max", f"{max(seconds):.2f}")
    emit(f"{name}_body_mib_sent", f"{sent / MIB:.1f}")
    emit(f"{name}_peak_rss_kib", peak)
    emit(f"{name}_rss_after_kib", rss_kib(args.pid))


def raw(port, request, wait=10):
    sock = socket.create_connection((HOST, port), timeout=wait)
    sock.sendall(request)
    status = read_status(sock, wait)
    sock.close()
    return status


def get(port, path, token):
    sock = socket.create_connection((HOST, port), timeout=10)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    return data.decode(errors="replace")


def signed(secret, event, delivery, body):
    """A complete webhook request as GitHub sends it, signed with `secret`."""
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    head = (
        "POST /api/v1/github/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"X-GitHub-Event: {event}\r\nX-GitHub-Delivery: {delivery}\r\nX-Hub-Signature-256: {signature}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return head + body


def emit(key, value):
    print(f"{key}={value}", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--bodies", type=int, default=40, help="senders per 20 MB burst")
    p.add_argument("--body-mib", type=int, default=20)
    p.add_argument("--slow", type=int, default=50, help="slow senders")
    p.add_argument("--methods", type=int, default=50, help="made-up methods")
    args = p.parse_args()
    body = args.body_mib * MIB

    def delivery_headers():
        return {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": str(uuid.uuid4())}

    def unsigned():
        return delivery_headers()

    def wrong_signature():
        # Well-formed, so the body has to be read before it can be refused.
        return {**delivery_headers(), "X-Hub-Signature-256": "sha256=" + "0" * 64}

    time.sleep(1)
    emit("rss_idle_kib", rss_kib(args.pid))
    burst(args, "unsigned", args.bodies, unsigned, body, 0, 256 * 1024, 60)
    burst(args, "badsig", args.bodies, wrong_signature, body, 0, 256 * 1024, 60)
    # Slow senders: one byte every half second, 20 MB announced; each is
    # cut off by the server's read deadline (or gives up after 30 s).
    burst(args, "slow", args.slow, wrong_signature, body, 0.5, 1, 30)

    junk = collections.Counter(
        raw(args.port, f"JUNK{i} /made-up/{i} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        for i in range(args.methods)
    )
    emit("junk_statuses", ",".join(f"{k}:{v}" for k, v in sorted(junk.items())))
    metrics = get(args.port, "/metrics", args.token)
    series = [l for l in metrics.splitlines() if l.startswith("ephemera_http_requests_total{")]
    emit("junk_other_series", sum('method="OTHER"' in l for l in series))
    emit("junk_raw_series", sum("JUNK" in l for l in series))
    refusals = {
        l.split('reason="')[1].split('"')[0]: l.rsplit(" ", 1)[1]
        for l in metrics.splitlines()
        if l.startswith("ephemera_webhook_refusals_total{")
    }
    emit("refusals", ",".join(f"{k}:{v}" for k, v in sorted(refusals.items())))

    # Still serving: a signed ping.
    ping = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    emit("signed_after", raw(args.port, signed(args.secret, "ping", str(uuid.uuid4()), ping)))

    # A captured signed delivery sent again under a fresh delivery id: 200,
    # logged as an ignored replay, nothing changed.
    suspend = json.dumps(
        {"action": "suspend", "installation": {"id": 4242, "account": {"login": "octo"},
                                               "updated_at": "2026-01-01T00:00:00Z"},
         "sender": {"id": 1, "login": "octo"}}
    ).encode()
    first, replay = str(uuid.uuid4()), str(uuid.uuid4())
    emit("replay_original", raw(args.port, signed(args.secret, "installation", first, suspend)))
    emit("replay_copy", raw(args.port, signed(args.secret, "installation", replay, suspend)))
    logged = get(args.port, f"/api/v1/deliveries/{replay}", args.token)
    outcome = logged.split('"outcome":"', 1)[1].split('"', 1)[0] if '"outcome":"' in logged else "missing"
    emit("replay_logged_outcome", outcome)
    emit("replay_logged_as_replay", int("replay" in logged))
    time.sleep(2)
    emit("rss_end_kib", rss_kib(args.pid))


if __name__ == "__main__":
    main()
