#!/usr/bin/env bash
# Runs the tests of the crates whose code differs by CPU architecture on arm64, the Lambda
# functions' architecture, under qemu: tcrelay-json-string, whose SIMD escape takes NEON there
# and SSE2/AVX2 here. Run by scripts/test.sh.
#
# Installs what it needs when missing (Debian: qemu-user, the aarch64 cross linker and C
# library) and the Rust target aarch64-unknown-linux-gnu (rustup), the one
# `cargo lambda build --arm64` uses.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v qemu-aarch64 >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null \
  || [ ! -d /usr/aarch64-linux-gnu/lib ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    qemu-user gcc-aarch64-linux-gnu libc6-arm64-cross >/dev/null
fi
# A fresh machine has the host's target only (the test run of one failed here): rustup adds it.
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
  || rustup target add aarch64-unknown-linux-gnu

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
cargo test --locked --target aarch64-unknown-linux-gnu -p tcrelay-json-string "$@"
