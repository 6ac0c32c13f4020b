#!/usr/bin/env python3
"""Webhook throughput and latency of `tcrelay serve` on loopback (run through
scripts/bench-webhook.sh).

For each connection count (default 1 and 16): a fresh temporary SQLite database, `tcrelay serve`
on 127.0.0.1, wrk POSTing 50-line order events (each with its own order id) for a fixed time,
the relay's CPU time (utime + stime from /proc/<pid>/stat) and peak RSS (VmHWM) around the run,
and a check that every request was answered 202 and is on the queue exactly once. Then the
floor on the same disk: durable single-row inserts of the same size, one per transaction, with
the relay's pragmas (WAL, synchronous=FULL).

Writes a JSON summary (the path given) and, beside it, one latency histogram CSV per connection
count (`<stem>-latency-c<N>.csv`: percentile,latency_us), and prints a table. Standard library and
wrk only. Loopback only; bounded (at most 120 s per run).
"""

import argparse
import base64
import json
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid

from soak import free_port

FIXTURE = "tests/fixtures/webhook/order-500-lines.json"
LINES = 50
MAX_SECONDS = 120
TICKS = os.sysconf("SC_CLK_TCK")


def as_recorded(path):
    """The binary's path as the results record it: relative to the repository's root when
    inside it, else its last two parts (a target directory elsewhere: release/tcrelay), so the
    committed results name no folder of the machine that made them."""
    path = os.path.abspath(path)
    root = os.getcwd()
    if path.startswith(root + os.sep):
        return os.path.relpath(path, root)
    return "/".join(path.split(os.sep)[-2:])


def body_template():
    """The 500-line fixture cut to its first 50 lines, compact, with a placeholder order id and
    an event name that is not a resend (so the dedupe key is the order id and its state)."""
    with open(FIXTURE) as f:
        event = json.load(f)
    event["eventName"] = "OrderIssuedByBuyer"
    order = event["orderEvent"]
    order["lines"] = order["lines"][:LINES]
    order["orderId"] = "__ORDER_ID__"
    return json.dumps(event, separators=(",", ":"))


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of the whole line; 12 and 13 after the ")".
    return int(fields[11]) + int(fields[12])


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def wait_listening(port, relay):
    for _ in range(200):
        if relay.poll() is not None:
            sys.exit(f"bench: tcrelay exited with {relay.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("bench: tcrelay did not listen within 10 s")


def queue_check(tcrelay, db, expected):
    """Every answered request exactly once on the queue: count pending and distinct ids."""
    out = subprocess.run(
        [tcrelay, "--db", db, "queue", "list", "--json", "--limit", str(expected + 10)],
        check=True, capture_output=True, text=True,
    ).stdout
    ids = [json.loads(line)["objectId"] for line in out.splitlines() if line.strip()]
    return len(ids), len(set(ids))


def run_one(args, body_path, connections, latency_csv):
    workdir = tempfile.mkdtemp(prefix="tcrelay-bench-")
    db = os.path.join(workdir, "bench.db")
    port = free_port()
    password = uuid.uuid4().hex
    env = dict(os.environ)
    env.update({
        "TCRELAY_WEBHOOK_BASIC": f"bench:{password}",
        "RUST_LOG": os.environ.get("BENCH_RUST_LOG", "warn"),
    })
    for var in ("TRADECLOUD_USERNAME", "TRADECLOUD_PASSWORD", "TCRELAY_POLL_STREAMS"):
        env.pop(var, None)
    log = open(os.path.join(workdir, "relay.log"), "w")
    relay = subprocess.Popen(
        [args.tcrelay, "--db", db, "serve", "--listen", f"127.0.0.1:{port}",
         "--poll-interval", "0"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_listening(port, relay)
        summary_path = os.path.join(workdir, "wrk.json")
        wrk_env = dict(os.environ)
        wrk_env.update({
            "BENCH_BODY": body_path,
            "BENCH_AUTH": "Basic " + base64.b64encode(f"bench:{password}".encode()).decode(),
            "BENCH_SUMMARY": summary_path,
            "BENCH_LATENCY": latency_csv,
        })
        threads = min(connections, args.wrk_threads)
        cpu_before = cpu_ticks(relay.pid)
        subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{args.seconds}s",
             "--timeout", "10s", "-s", os.path.join("scripts", "bench_webhook.lua"),
             f"http://127.0.0.1:{port}"],
            check=True, env=wrk_env, stdout=subprocess.DEVNULL,
        )
        cpu_after = cpu_ticks(relay.pid)
        rss_peak = status_kib(relay.pid, "VmHWM")
        rss_end = status_kib(relay.pid, "VmRSS")
        with open(summary_path) as f:
            wrk = json.load(f)
        queued, distinct = queue_check(args.tcrelay, db, wrk["requests"])
    except BaseException:
        print(f"bench: relay log and database kept in {workdir}", file=sys.stderr)
        raise
    finally:
        relay.terminate()
        relay.wait(timeout=30)
        log.close()
    # Each run's database holds thousands of 61 KB envelopes: do not leave it behind.
    shutil.rmtree(workdir, ignore_errors=True)
    requests = wrk["requests"]
    errors = sum(wrk["errors"].values())
    lat = wrk["latency_us"]
    cpu_s = (cpu_after - cpu_before) / TICKS
    return {
        "connections": connections,
        "wrk_threads": threads,
        "seconds": wrk["duration_us"] / 1e6,
        "requests": requests,
        "requests_per_s": requests / (wrk["duration_us"] / 1e6),
        "errors": errors,
        "error_kinds": wrk["errors"],
        "latency_ms": {k: v / 1000 for k, v in lat.items()},
        "relay_cpu_s": cpu_s,
        "relay_cpu_ms_per_request": cpu_s * 1000 / max(requests, 1),
        "rss_peak_mib": rss_peak / 1024 if rss_peak else None,
        "rss_end_mib": rss_end / 1024 if rss_end else None,
        # wrk counts requests it sent and got an answer to; the queue must hold each once.
        "queued": queued,
        "queued_distinct": distinct,
        "latency_histogram": os.path.basename(latency_csv),
    }


def floor(size, seconds, directory):
    """Durable single-row inserts of `size` bytes, one per transaction, on the same disk, with
    the relay's pragmas: the most any SQLite-backed relay answering after a durable write can do
    serially."""
    path = os.path.join(directory, "floor.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("PRAGMA journal_size_limit = 16777216")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)")
    payload = "x" * size
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (body) VALUES (?)", (payload,))
        conn.execute("COMMIT")
        n += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return {"transactions": n, "seconds": elapsed, "transactions_per_s": n / elapsed,
            "row_bytes": size}


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "loadavg_at_start": load}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tcrelay", required=True)
    ap.add_argument("--out", required=True, help="JSON summary path")
    ap.add_argument("--seconds", type=int, default=10, help="per run (at most 120)")
    ap.add_argument("--connections", default="1,16")
    ap.add_argument("--wrk-threads", type=int, default=2)
    args = ap.parse_args()
    args.seconds = max(2, min(args.seconds, MAX_SECONDS))

    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(args.out))[0]
    scratch = tempfile.mkdtemp(prefix="tcrelay-bench-")
    body_path = os.path.join(scratch, "body.json")
    body = body_template()
    with open(body_path, "w") as f:
        f.write(body)
    body_bytes = len(body.encode()) - len("__ORDER_ID__") + len("bench-00000000-1-1")

    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        # The worktree's commit: the binary's only when it was built here (no TCRELAY_BIN).
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip(),
        "tcrelay": as_recorded(args.tcrelay),
        "machine": machine(),
        "body": {"lines": LINES, "bytes": body_bytes, "from": FIXTURE},
        "runs": [],
    }
    for c in [int(x) for x in args.connections.split(",")]:
        csv = os.path.join(out_dir, f"{stem}-latency-c{c}.csv")
        run = run_one(args, body_path, c, csv)
        result["runs"].append(run)
        print(f"bench: {c} connection(s): {run['requests_per_s']:.0f} req/s, "
              f"p99 {run['latency_ms']['p99']:.1f} ms", file=sys.stderr)
    result["floor"] = floor(body_bytes, min(args.seconds, 5), scratch)
    floor_rate = result["floor"]["transactions_per_s"]
    for run in result["runs"]:
        run["ratio_to_floor"] = run["requests_per_s"] / floor_rate
    shutil.rmtree(scratch, ignore_errors=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")

    print(f"\nWebhook throughput: {LINES}-line order events of {body_bytes} bytes, "
          f"{args.seconds} s per run, {result['machine']['nproc']} cores, commit {result['commit']}")
    print("| connections | req/s | × floor | p50 ms | p99 ms | max ms | errors | relay CPU ms/req "
          "| peak RSS MiB | on queue (distinct) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in result["runs"]:
        lat = r["latency_ms"]
        print(f"| {r['connections']} | {r['requests_per_s']:.0f} | {r['ratio_to_floor']:.2f} "
              f"| {lat['p50']:.2f} | {lat['p99']:.2f} | {lat['max']:.1f} | {r['errors']} "
              f"| {r['relay_cpu_ms_per_request']:.2f} | {r['rss_peak_mib']:.1f} "
              f"| {r['queued']} ({r['queued_distinct']}) |")
    print(f"\nFloor: {floor_rate:.0f} durable {body_bytes}-byte inserts/s, one per transaction "
          "(WAL, synchronous=FULL)")
    print(f"Summary: {args.out}")
    bad = [r for r in result["runs"]
           if r["errors"] or r["queued"] != r["queued_distinct"] or r["queued"] < r["requests"]]
    if bad:
        sys.exit("bench: errors, or the queue does not hold every answered request exactly once")


if __name__ == "__main__":
    main()
