#!/usr/bin/env bash
# Runs each fuzz target (fuzz/: the decoders and the webhook router) for a short while: a smoke
# test, not the long run (README, "Fuzzing"). CI runs it with its default.
# Usage: scripts/fuzz-smoke.sh [SECONDS per target, default 20] [TARGET ...]
#
# Needs the nightly toolchain and cargo-fuzz; installs both when they are missing (rustup does
# not install a `+nightly` toolchain on its own where auto-install is off: RUSTUP_AUTO_INSTALL=0
# or `rustup set auto-install disable`, and CI would stop here on a fresh machine). New inputs
# go to a scratch folder, so the committed corpus stays as it is; a finding is written to
# fuzz/artifacts/<target>/ and stops the script with a non-zero status (add it under
# fuzz/regressions/<target>/ once understood, so `cargo test` replays it).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-20}"
shift || true
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then targets=(decode_json decode_txml decode_any router); fi

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo +nightly install cargo-fuzz --locked
fi

# The decoders: Tradecloud's bodies are at most a few MB, 1 MiB inputs reach far enough. The
# router: a request head and a body a few KB long reach every branch; longer inputs only slow
# the run. Memory over 2 GiB or a single input over 10 s is a finding.
limits_for() {
  case "$1" in
    router) echo "-rss_limit_mb=2048 -max_len=8192 -timeout=10" ;;
    *) echo "-rss_limit_mb=2048 -max_len=1048576 -timeout=10" ;;
  esac
}

# With CARGO_TARGET_DIR set, build under it (in fuzz/, apart from stable builds: the
# instrumented nightly artifacts share nothing with them); else in fuzz/target.
dir=()
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then dir=(--target-dir "$CARGO_TARGET_DIR/fuzz"); fi
cargo +nightly fuzz build "${dir[@]}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in "${targets[@]}"; do
  echo "== $target: ${seconds}s"
  mkdir -p "$scratch/$target"
  # shellcheck disable=SC2046
  cargo +nightly fuzz run "${dir[@]}" "$target" "$scratch/$target" "corpus/$target" -- \
    $(limits_for "$target") -max_total_time="$seconds" -print_final_stats=1
done
echo "fuzz smoke: ${targets[*]} ran ${seconds}s each without a finding"
