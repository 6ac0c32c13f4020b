#!/usr/bin/env bash
# Runs every benchmark of the workspace and regenerates the figures of BENCHMARKS.md (between its
# <!-- bench:NAME --> markers; the prose around them stays) and the plots in bench/.
#
#   scripts/bench.sh [PART...]     PART: decode instructions poll coldstart zips webhook
#                                  (default: all)
#
# Raw results go to bench/results/ (committed with BENCHMARKS.md, so every figure can be traced
# to its run). Tools: moto's server (.venv, scripts/venv.sh), the Python peer, matplotlib,
# cargo-lambda and zig (.venv-bench, scripts/requirements-bench.txt), both inside the repo and
# git-ignored. Slow (release and arm64 builds, 20 cold starts of each function): never run in CI.
#
# Settings: BENCH_RUNS (cold starts per function, 20), BENCH_POLL_N (orders of the poll-cost
# run, 20,000), BENCH_DECODE_TIME (criterion measurement seconds, 3), BENCH_ARM64_TARGET_DIR (the
# target dir of the arm64 build, default $CARGO_TARGET_DIR-arm64: another target than the
# native one, so the two builds do not wait for each other's lock).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
results="$root/bench/results"
mkdir -p "$results"
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(decode instructions poll coldstart zips webhook)
want() { local p; for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }
runs="${BENCH_RUNS:-20}"
poll_n="${BENCH_POLL_N:-20000}"
decode_time="${BENCH_DECODE_TIME:-3}"

# shellcheck source=scripts/venv.sh
source scripts/venv.sh
if [ ! -x .venv-bench/bin/cargo-lambda ] || ! cmp -s scripts/requirements-bench.txt .venv-bench/requirements.installed; then
  python3 -m venv .venv-bench
  .venv-bench/bin/pip install --quiet --disable-pip-version-check --no-cache-dir -r scripts/requirements-bench.txt
  cp scripts/requirements-bench.txt .venv-bench/requirements.installed
fi

# Records the command of a figure beside its result, and runs it.
run_recorded() {
  local name="$1"; shift
  # Paths as a reader types them: relative to the repo, the target dir by its variable.
  printf '%s\n' "$*" | sed "s|$target_dir|\$CARGO_TARGET_DIR|g; s|$root/||g" >"$results/$name.command"
  echo "== $name: $*" >&2
  "$@"
  # The load while it ran: on a shared machine it says how far to trust the figure.
  cut -d' ' -f1-3 /proc/loadavg >"$results/$name.load"
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)" >"$results/$name.run"
}

# The machine, once per run: figures from a loaded machine are read as such.
.venv-bench/bin/python - "$results/machine.json" <<'EOF'
import json, os, platform, subprocess, sys, datetime
def out(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return ""
model = next((l.split(":", 1)[1].strip() for l in out("lscpu").splitlines() if l.startswith("Model name")), "")
mem_kib = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
json.dump({
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "commit": out("git", "rev-parse", "--short", "HEAD"),
    "dirty": bool(out("git", "status", "--porcelain", "--untracked-files=no")),
    "nproc": out("nproc"),
    "cpu": model,
    "memory_gib": round(mem_kib / 1024 / 1024, 1),
    "load_average_before": open("/proc/loadavg").read().split()[:3],
    "rustc": out("rustc", "-V"),
    "kernel": platform.release(),
}, open(sys.argv[1], "w"), indent=2)
EOF

moto_pid=""
start_moto() {
  [ -n "$moto_pid" ] && return
  local port
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  # --keep-alive: persistent connections, as AWS keeps them; --at-scale: moto's time per call
  # independent of its tables and queues (scripts/moto_server.py says why of both).
  .venv/bin/python scripts/moto_server.py -H 127.0.0.1 -p "$port" --keep-alive --at-scale >"$root/.moto.log" 2>&1 &
  moto_pid=$!
  trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$port/moto-api/" >/dev/null || { echo "moto did not start"; cat "$root/.moto.log"; exit 1; }
  export TCRELAY_TEST_MOTO_URL="http://127.0.0.1:$port"
}

if want decode; then
  # Criterion keeps its estimates in $target_dir/criterion; the report reads them from there.
  run_recorded decode cargo bench --workspace --bench decode -- --warm-up-time 1 --measurement-time "$decode_time"
  .venv-bench/bin/python scripts/bench_report.py collect-criterion "$target_dir/criterion" "$results/decode.json"
fi

if want instructions; then
  # Instructions executed, counted by valgrind's cachegrind: unlike time, the count does not
  # move with the machine's load, so each decode's ratio to its floor is exact and repeatable.
  if command -v valgrind >/dev/null; then
    cargo build --release --workspace --example decode_instructions
    run_recorded instructions .venv-bench/bin/python scripts/bench_instructions.py \
      "$target_dir/release/examples/decode_instructions" | tee "$results/instructions.txt"
  else
    echo "== instructions: skipped, valgrind not found (Debian: apt-get install valgrind)" >&2
  fi
fi

if want poll; then
  start_moto
  cargo build --release --workspace --example bench_poll
  run_recorded poll "$target_dir/release/examples/bench_poll" "$poll_n" | tee "$results/poll.txt"
fi

if want coldstart; then
  start_moto
  # Without --workspace: the default members' feature resolution, as `cargo lambda build --bin`
  # (the zips) has it, so the bootstraps measured are the ones shipped (no SSO providers).
  cargo build --release --bin webhook --bin poller
  cargo build --workspace --example coldstart
  run_recorded coldstart "$target_dir/debug/examples/coldstart" --runs "$runs" --out "$results/coldstart.json" \
    --webhook "$target_dir/release/webhook" --poller "$target_dir/release/poller" \
    --peer "$root/.venv-bench/bin/python" "$root/bench/peer/bootstrap.py"
fi

if want zips; then
  arm_dir="${BENCH_ARM64_TARGET_DIR:-$target_dir-arm64}"
  CARGO_TARGET_DIR="$arm_dir" PATH="$root/.venv-bench/bin:$PATH" \
    run_recorded zips cargo lambda build --release --arm64 --output-format zip --bin webhook --bin poller
  .venv-bench/bin/python - "$arm_dir" "$results/zips.json" <<'EOF'
import json, os, sys, zipfile
sizes = {}
for f in ("webhook", "poller"):
    path = os.path.join(sys.argv[1], "lambda", f, "bootstrap.zip")
    with zipfile.ZipFile(path) as z:
        unzipped = sum(i.file_size for i in z.infolist())
    sizes[f] = {"zip_bytes": os.path.getsize(path), "bootstrap_bytes": unzipped}
json.dump(sizes, open(sys.argv[2], "w"), indent=2)
EOF
fi

if want webhook; then
  # The webhook throughput benchmark (its own script, needs wrk): it writes webhook.json (the
  # summary, which becomes the bench:webhook section) and, beside it, the latency distribution
  # of each connection count (webhook-latency-c<N>.csv, which becomes the latency plot).
  mkdir -p "$results/webhook"
  run_recorded webhook bash scripts/bench-webhook.sh "$results/webhook/webhook.json"
fi

.venv-bench/bin/python scripts/bench_report.py report "$results" BENCHMARKS.md bench
echo "BENCHMARKS.md and bench/*.png regenerated from bench/results"
