#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine.
#
# Installs what the tests need (moto's server, in .venv inside the repo, git-ignored), starts
# moto on a free loopback port for the DynamoDB/SQS/S3 integration tests, runs the whole test
# suite, and stops moto again. Tests that need moto read TCRELAY_TEST_MOTO_URL and fail loudly
# when it is not set; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/venv.sh
source scripts/venv.sh

# TCRELAY_SKIP_REALWORLD=1 without Tradecloud's examples makes their tests pass without reading
# any (the test harness hides the line each prints, and counts them passed): said here, before
# and after the run, so nobody takes such a run for a full one. (.ci/run refuses the variable.)
realworld="${TCRELAY_REALWORLD_DIR:-../shared/tradecloud/realworld}"
skipped_realworld() {
  if [ "${TCRELAY_SKIP_REALWORLD:-}" = 1 ] && [ ! -f "$realworld/SOURCES.md" ]; then
    echo "NOT A FULL RUN: TCRELAY_SKIP_REALWORLD=1 and no examples at $realworld: the tests of Tradecloud's published examples pass without running" >&2
  fi
}
skipped_realworld

moto_log="$(pwd)/.moto.log"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
.venv/bin/python scripts/moto_server.py -H 127.0.0.1 -p "$port" >"$moto_log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if curl -sf "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then echo "moto_server failed to start:"; cat "$moto_log"; exit 1; fi
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/moto-api/" >/dev/null || { echo "moto_server did not answer on port $port"; cat "$moto_log"; exit 1; }
echo "moto_server listening on 127.0.0.1:$port"

export TCRELAY_TEST_MOTO_URL="http://127.0.0.1:$port"
export TCRELAY_TEST_VENV="$(pwd)/.venv"
cargo test --workspace --all-targets --locked "$@"
# Doc tests are not part of --all-targets.
cargo test --workspace --doc --locked
# The crates whose code differs by architecture, on arm64 (the Lambda functions') under qemu.
scripts/test-arm64.sh
skipped_realworld
