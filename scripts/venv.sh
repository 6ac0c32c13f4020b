# Sourced by the scripts: creates .venv inside the repo (git-ignored) with the pinned Python tools.
if [ ! -x .venv/bin/moto_server ] || ! cmp -s scripts/requirements.txt .venv/requirements.installed; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check --no-cache-dir -r scripts/requirements.txt
  cp scripts/requirements.txt .venv/requirements.installed
fi
