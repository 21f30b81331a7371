#!/usr/bin/env bash
# Speed and memory of the full-size TrajectoryCrafter models on one GPU, in one run of at most
# 8 minutes on an H100 (bench/gpu_suite.py: memory options with the plan's predictions, ours vs
# the official attention maths, attention backends, renderer, DepthCrafter, torch.compile).
#
#   bash bench/gpu.sh                          # GPU, writes out/gpu_bench.json and prints a table
#   bash bench/gpu.sh --tiny                   # the same script at toy size on the CPU (smoke run)
#   bash bench/gpu.sh --budget 300 --out X.json
#
# Uses .venv/bin/python when present (bash dev.sh setup), else the python on PATH (a GPU machine
# with torch + this package's requirements installed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
[ -n "${TRAJCRAFTER_PYTHON:-}" ] && PY="$TRAJCRAFTER_PYTHON"
exec timeout --signal=INT 480 "$PY" bench/gpu_suite.py "$@"
