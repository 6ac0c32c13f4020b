#!/usr/bin/env bash
# Fuzzes the webhook router for N seconds (default 30) with cargo-fuzz on nightly, starting
# from the committed corpus (fuzz-router/corpus/router). CI runs the short form; for a long
# campaign give more seconds and, optionally, jobs: `scripts/fuzz-router-smoke.sh 3600 2`.
#
# The promises checked are in crates/tcrelay-core/src/fuzzing.rs. A broken one stops the run with the
# input in fuzz-router/artifacts/router/: copy it into fuzz-router/regressions/ (named after
# what it found), fix the router, and `cargo test -p tcrelay-core --test fuzz_router_corpus`
# keeps it fixed. New corpus entries land in a scratch copy; merge the ones worth keeping with
# `cargo +nightly fuzz cmin router` (from fuzz-router/) before committing them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz-router"

seconds="${1:-30}"
jobs="${2:-1}"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: cargo +nightly install cargo-fuzz --locked" >&2
  exit 1
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cp corpus/router/* "$scratch"/
# -max_len: a request head and a body a few KB long reach every branch; longer inputs only
# slow the run. -rss_limit_mb guards against a leak looking like progress.
cargo +nightly fuzz run router "$scratch" corpus/router -- \
  -max_total_time="$seconds" -jobs="$jobs" -workers="$jobs" \
  -max_len=8192 -rss_limit_mb=2048 -print_final_stats=1
