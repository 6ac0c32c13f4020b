#!/usr/bin/env bash
# Webhook throughput and latency of the local runner: `tcrelay serve` on a fresh SQLite database
# on loopback under wrk, 50-line order events each with its own order id, at 1 and 16
# connections; the relay's CPU per request and peak RSS; the floor (durable SQLite inserts of
# the same size, one per transaction, on the same disk). Not a CI test; results go in
# BENCHMARKS.md ("Webhook throughput").
#
#   scripts/bench-webhook.sh [SUMMARY.json]       (default bench/webhook.json)
#
# Beside the summary: <stem>-latency-c<N>.csv, the latency distribution of each run
# (latency at each percentile, for a plot).
# Environment: BENCH_SECONDS (per run, default 10), BENCH_CONNECTIONS (default 1,16),
# TCRELAY_BIN (use this binary instead of building), BENCH_RUST_LOG (relay log level, warn).
# Needs wrk (Debian: apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-bench/webhook.json}"
command -v wrk >/dev/null || { echo "bench-webhook: wrk not found (apt-get install wrk)" >&2; exit 1; }
bin="${TCRELAY_BIN:-}"
if [ -z "$bin" ]; then
    # --workspace: the same feature resolution as every other build of the workspace.
    cargo build --release --workspace --bin tcrelay
    bin="${CARGO_TARGET_DIR:-target}/release/tcrelay"
fi
exec python3 scripts/bench_webhook.py --tcrelay "$bin" --out "$out" \
    --seconds "${BENCH_SECONDS:-10}" --connections "${BENCH_CONNECTIONS:-1,16}"
