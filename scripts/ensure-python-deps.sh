#!/usr/bin/env bash
# Makes sure the Python test runner is present (pytest); installs it with pip when missing.
set -euo pipefail
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import pytest' >/dev/null 2>&1; then
  echo "ensure-python-deps: installing pytest with pip"
  "$PYTHON" -m pip install --quiet pytest
fi
