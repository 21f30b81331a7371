#!/usr/bin/env bash
# Developer entry point. `bash dev.sh demo` renders the bundled synthetic example;
# `bash dev.sh test` runs the whole test suite; `bash dev.sh trajcrafter ARGS` runs the CLI.
# All create/refresh .venv first (CPU torch).
set -euo pipefail
cd "$(dirname "$0")"
VENV="${TRAJCRAFTER_VENV:-.venv}"
PY="$VENV/bin/python"

setup() {
  if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
  fi
  # Install torch first, pinned to the local CPU build: an unpinned torch pulls GBs of CUDA wheels.
  "$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install -q "torch==2.13.0"
  local stamp="$VENV/.trajcrafter-installed"
  local want
  want=$(cat pyproject.toml requirements.txt | sha1sum | cut -c1-16)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$PY" -m pip install -q -e ".[dev]"
    echo "$want" > "$stamp"
  fi
}

cmd="${1:-}"
shift || true
case "$cmd" in
  demo)
    setup
    exec "$PY" -m trajcrafter_core demo "$@"
    ;;
  test)
    setup
    exec "$PY" -m pytest -q tests "$@"
    ;;
  setup)
    setup
    ;;
  trajcrafter)
    setup
    exec "$VENV/bin/trajcrafter" "$@"
    ;;
  *)
    echo "usage: bash dev.sh demo|test|setup|trajcrafter [args...]" >&2
    exit 2
    ;;
esac
