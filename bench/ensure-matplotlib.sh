#!/usr/bin/env bash
# Makes sure matplotlib (for the benchmark chart) is importable; installs it with pip when missing.
set -euo pipefail
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import matplotlib' >/dev/null 2>&1; then
  echo "ensure-matplotlib: installing matplotlib with pip"
  "$PYTHON" -m pip install --quiet matplotlib
fi
