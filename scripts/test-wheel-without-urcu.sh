#!/usr/bin/env bash
# Runs the Python suite against the installed wheel on a machine that, as far as the test can
# tell, has no liburcu and no Swift toolchain: in a private mount namespace, every liburcu file
# the dynamic loader knows is covered by an empty file and the toolchain directory by an empty
# tmpfs. The wheel must then run on what it carries. Needs root and unshare(1); without them it
# says so and does nothing.
# Usage: scripts/test-wheel-without-urcu.sh VENV_PYTHON TESTS_DIR WORK_DIR [pytest args...]
set -euo pipefail
python=${1:?} tests=${2:?} work=${3:?}
shift 3

if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null 2>&1 || ! unshare --mount --propagation private true 2>/dev/null; then
  echo "test-wheel-without-urcu: skipped (needs root and a working 'unshare --mount')"
  exit 0
fi

swift_root=
if swift_bin=$(command -v "${SWIFT:-swift}" 2>/dev/null); then
  swift_root=$(cd "$(dirname "$(readlink -f "$swift_bin")")/../.." && pwd)  # <root>/usr/bin/swift
fi

mkdir -p "$work"
export python tests work swift_root
exec unshare --mount --propagation private bash -euo pipefail -c '
  hidden=0
  for f in $(ldconfig -p | awk "/liburcu/ { print \$NF }" | xargs -r readlink -f | sort -u); do
    mount --bind /dev/null "$f"; hidden=$((hidden + 1))
  done
  if [ -n "$swift_root" ] && [ "$swift_root" != / ] && [ "$swift_root" != /usr ]; then
    mount -t tmpfs none "$swift_root"
  fi
  # The hiding must work, or this run proves nothing.
  if env -i "$python" -c "import ctypes; ctypes.CDLL(\"liburcu-memb.so.8\")" 2>/dev/null; then
    echo "test-wheel-without-urcu: the system liburcu-memb still loads" >&2; exit 1
  fi
  echo "test-wheel-without-urcu: $hidden liburcu files hidden${swift_root:+, $swift_root hidden}"
  cd "$work"
  env -i PATH=/usr/bin:/bin HOME="$work" "$python" -m pytest "$tests" "$@"
' test-wheel-without-urcu "$@"
