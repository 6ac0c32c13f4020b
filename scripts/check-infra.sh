#!/usr/bin/env bash
# Packages and checks the deployment: builds both Lambda zips for arm64 with cargo-lambda,
# lints the SAM template with cfn-lint and `sam validate --lint`, and runs `sam build`.
# Installs its tools into .venv-infra inside the repo (git-ignored); only `sam deploy` needs an
# AWS account, and it is not run here.
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0

if [ ! -x .venv-infra/bin/sam ] || ! cmp -s scripts/requirements-infra.txt .venv-infra/requirements.installed; then
  python3 -m venv .venv-infra
  .venv-infra/bin/pip install --quiet --disable-pip-version-check --no-cache-dir -r scripts/requirements-infra.txt
  cp scripts/requirements-infra.txt .venv-infra/requirements.installed
fi
export PATH="$(pwd)/.venv-infra/bin:$PATH"

echo "== cfn-lint"
cfn-lint infra/template.yaml
echo "== sam validate --lint"
sam validate --lint --region us-east-1 -t infra/template.yaml

echo "== one crypto library in the bootstraps (docs/architecture.md, TLS)"
# `cargo lambda build --bin` unifies every default member's normal dependencies: a member that
# turns on reqwest's `rustls` or the SDK's `default-https-client` brings aws-lc-rs back.
if cargo tree -e normal,build --workspace --locked -i aws-lc-rs 2>/dev/null | grep -q '^aws-lc-rs v'; then
  echo "aws-lc-rs is in a normal build again; the chain that brings it:"
  cargo tree -e normal,build --workspace --locked -i aws-lc-rs
  exit 1
fi

echo "== cargo lambda build --release --arm64"
cargo lambda build --release --arm64 --output-format zip --bin webhook --bin poller
target_dir="${CARGO_TARGET_DIR:-target}"
for f in webhook poller; do
  zip="$target_dir/lambda/$f/bootstrap.zip"
  [ -s "$zip" ] || { echo "missing $zip"; exit 1; }
  echo "$zip: $(stat -c %s "$zip") bytes"
done

# TCRELAY_SKIP_SAM_BUILD=1 leaves `sam build` out (a developer's quicker run; .ci/run refuses
# it), and the last line says so, so such a run is never taken for a full one.
if [ "${TCRELAY_SKIP_SAM_BUILD:-}" != 1 ]; then
  echo "== sam build"
  (cd infra && sam build --region us-east-1)
  echo "infra checks passed"
else
  echo "infra checks passed WITHOUT sam build (TCRELAY_SKIP_SAM_BUILD=1): not a full check"
fi
