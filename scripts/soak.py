#!/usr/bin/env python3
"""Bounded soak of `tcrelay serve` on loopback (run through scripts/soak.sh).

Starts the relay on a temporary SQLite database, sends webhook POSTs (each a new order event)
at a steady rate for a bounded time, and switches a hostile-client fault on and off: while it
is on, idle sockets and half-sent request lines try to hold every connection the server has.
Every 10 s it prints a line: requests answered, statuses, latency p50/p99/max, and the relay's
resident memory. At the end it checks, from the relay's own queue, that every POST answered
202 is there exactly once, and prints a summary for SECURITY.md.

Standard library only. Loopback only: the relay listens on 127.0.0.1 and nothing else is
contacted. Bounded: at most 500 requests/s and 900 s; it always stops by itself.
"""

import argparse
import base64
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

MAX_RATE = 500
MAX_SECONDS = 900


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def order_event(n):
    return {
        "eventName": "OrderLinesAcceptedBySupplier",
        "orderEvent": {
            "orderId": f"soak-{n}",
            "version": 1,
            "lastUpdatedAt": "2026-01-01T00:00:00.000Z",
            "lines": [{"id": f"l-{n}"}],
        },
        "meta": {"messageId": str(uuid.uuid4())},
    }


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.window = []
        self.statuses = {}
        self.accepted = set()
        self.total = 0

    def record(self, n, status, latency):
        with self.lock:
            self.window.append(latency)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.total += 1
            if status == 202:
                self.accepted.add(f"soak-{n}")

    def take_window(self):
        with self.lock:
            w, self.window = self.window, []
            return w, dict(self.statuses)


def sender(port, auth, stats, stop, rate, counter, lock):
    """One of several senders; together they keep the rate (each waits its turn)."""
    conn = None
    while not stop.is_set():
        with lock:
            n = counter[0]
            counter[0] += 1
            due = counter[1] + n / rate
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if stop.is_set():
            break
        body = json.dumps(order_event(n)).encode()
        started = time.monotonic()
        status = 0
        for _attempt in range(3):
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request(
                    "POST",
                    "/webhook/orders",
                    body,
                    {"Content-Type": "application/json", "Authorization": auth},
                )
                resp = conn.getresponse()
                resp.read()
                status = resp.status
                break
            except (OSError, http.client.HTTPException):
                conn = None
                status = -1
        stats.record(n, status, time.monotonic() - started)


def hostile(port, stop, fault_on, held):
    """While the fault is on: open idle sockets and half-sent request lines, up to 400."""
    socks = []
    while not stop.is_set():
        if fault_on.is_set() and len(socks) < 400:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=1)
                if len(socks) % 2:
                    s.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\n")  # never finished
                socks.append(s)
            except OSError:
                time.sleep(0.05)
        elif not fault_on.is_set() and socks:
            for s in socks:
                s.close()
            socks = []
        else:
            time.sleep(0.05)
        held[0] = len(socks)
    for s in socks:
        s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tcrelay", required=True, help="the tcrelay binary")
    ap.add_argument("--rate", type=int, default=200, help="POSTs per second (at most 500)")
    ap.add_argument("--seconds", type=int, default=300, help="duration (at most 900)")
    ap.add_argument("--fault-every", type=int, default=60, help="the fault is on for the second half of each period of this many seconds")
    args = ap.parse_args()
    rate = max(1, min(args.rate, MAX_RATE))
    seconds = max(10, min(args.seconds, MAX_SECONDS))

    workdir = tempfile.mkdtemp(prefix="tcrelay-soak-")
    db = os.path.join(workdir, "soak.db")
    port = free_port()
    password = uuid.uuid4().hex
    env = dict(os.environ)
    env.update({
        "TCRELAY_WEBHOOK_BASIC": f"soak:{password}",
        "RUST_LOG": "warn",
        # Short, so the hostile fault is shed within the measurement windows.
        "TCRELAY_HEADER_TIMEOUT_MS": "5000",
        "TCRELAY_IDLE_TIMEOUT_MS": "10000",
        "TCRELAY_MAX_CONNECTIONS": "256",
    })
    for var in ("TRADECLOUD_USERNAME", "TRADECLOUD_PASSWORD", "TCRELAY_POLL_STREAMS"):
        env.pop(var, None)
    log = open(os.path.join(workdir, "relay.log"), "w")
    relay = subprocess.Popen(
        [args.tcrelay, "--db", db, "serve", "--listen", f"127.0.0.1:{port}", "--poll-interval", "0"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        auth = "Basic " + base64.b64encode(f"soak:{password}".encode()).decode()
        stats = Stats()
        stop = threading.Event()
        fault_on = threading.Event()
        held = [0]
        counter = [0, time.monotonic()]
        lock = threading.Lock()
        threads = [threading.Thread(target=sender, args=(port, auth, stats, stop, rate, counter, lock), daemon=True) for _ in range(32)]
        threads.append(threading.Thread(target=hostile, args=(port, stop, fault_on, held), daemon=True))
        for t in threads:
            t.start()
        started = time.monotonic()
        rss = []
        print(f"soak: {rate} POST/s for {seconds} s on 127.0.0.1:{port}; hostile clients during the second half of every {args.fault_every} s")
        print(f"{'t':>5} {'fault':>5} {'held':>5} {'answers':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'RSS MiB':>8}  statuses so far")
        while time.monotonic() - started < seconds:
            time.sleep(10)
            t = time.monotonic() - started
            phase = (t % args.fault_every) >= args.fault_every / 2
            window, statuses = stats.take_window()
            mem = rss_kib(relay.pid)
            rss.append(mem or 0)
            if window:
                q = sorted(window)
                p50 = q[len(q) // 2] * 1000
                p99 = q[min(len(q) - 1, int(len(q) * 0.99))] * 1000
                mx = q[-1] * 1000
            else:
                p50 = p99 = mx = float("nan")
            print(f"{t:5.0f} {'on' if fault_on.is_set() else 'off':>5} {held[0]:>5} {len(window):>8} {p50:8.1f} {p99:8.1f} {mx:8.1f} {(mem or 0) / 1024:8.1f}  {statuses}", flush=True)
            if phase:
                fault_on.set()
            else:
                fault_on.clear()
        stop.set()
        fault_on.clear()
        for t in threads:
            t.join(timeout=35)
        # Ground truth: every order answered 202 is on the relay's queue exactly once.
        relay.send_signal(signal.SIGTERM)
        relay.wait(timeout=60)
        out = subprocess.run([args.tcrelay, "--db", db, "queue", "export"], capture_output=True, text=True, check=True, env=env)
        ids = [json.loads(line)["id"] for line in out.stdout.splitlines() if line.strip()]
        seen = {}
        for i in ids:
            seen[i] = seen.get(i, 0) + 1
        doubled = [i for i, c in seen.items() if c > 1]
        missing = [i for i in stats.accepted if i not in seen]
        first, last = rss[: max(1, len(rss) // 5)], rss[-max(1, len(rss) // 5):]
        print()
        print(f"requests: {stats.total}, statuses: {stats.statuses}")
        print(f"queue: {len(ids)} envelopes, {len(doubled)} doubled, {len(missing)} answered 202 but missing")
        print(f"RSS MiB: first fifth median {statistics.median(first) / 1024:.1f}, last fifth median {statistics.median(last) / 1024:.1f}, max {max(rss) / 1024:.1f}")
        bad = [s for s in stats.statuses if s not in (200, 202, 503)]
        ok = not doubled and not missing and not bad
        print("RESULT:", "PASS" if ok else f"FAIL (unexpected statuses {bad})")
        return 0 if ok else 1
    finally:
        if relay.poll() is None:
            relay.kill()
        log.close()


if __name__ == "__main__":
    sys.exit(main())
