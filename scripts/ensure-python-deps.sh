#!/usr/bin/env bash
# Makes sure the Python test tools are present (pytest, mypy); installs them with pip when missing.
set -euo pipefail
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import pytest' >/dev/null 2>&1; then
  echo "ensure-python-deps: installing pytest with pip"
  "$PYTHON" -m pip install --quiet pytest
fi
if ! "$PYTHON" -m mypy --version >/dev/null 2>&1; then
  echo "ensure-python-deps: installing mypy with pip"
  "$PYTHON" -m pip install --quiet mypy
fi
