#!/usr/bin/env bash
# Bounded soak of the local runner, loopback only: `tcrelay serve` on a temporary SQLite
# database, webhook POSTs at a steady rate (default 200/s for 300 s, at most 500/s and 900 s),
# hostile clients (idle sockets, half-sent request lines) switched on and off, memory and
# latency printed every 10 s, and a ground-truth check of the queue at the end. Not a CI test:
# its results are recorded in SECURITY.md.
#
#   scripts/soak.sh [--rate N] [--seconds N] [--fault-every N]
set -euo pipefail
cd "$(dirname "$0")/.."
# SOAK_PROFILE=dev soaks the debug build (no LTO build wait; slower per request).
profile="${SOAK_PROFILE:-release}"
# --workspace: the feature resolution of every other build here, so the AWS SDK is not rebuilt.
cargo build --profile "$profile" --workspace --bin tcrelay
dir="$profile"
[ "$profile" = dev ] && dir=debug
exec python3 scripts/soak.py --tcrelay "${CARGO_TARGET_DIR:-target}/$dir/tcrelay" "$@"
