#!/usr/bin/env bash
# Makes sure the system packages the build needs are present: liburcu-dev (liburcu-memb, 0.13 or
# later) and pkg-config. Installs them with apt-get when running as root on Debian; otherwise says
# exactly what to install. Extra packages for optional targets can be named as arguments
# (Debian package names), e.g. `scripts/ensure-deps.sh valgrind`.
set -euo pipefail

need=()
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
if ! pkg-config --exists 'liburcu-memb >= 0.13' 2>/dev/null; then
  need+=(liburcu-dev)
fi
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-deps: installing ${need[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || apt-get update
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || apt-get install -y --no-install-recommends "${need[@]}"
  exit 0
fi

echo "ensure-deps: missing: ${need[*]}" >&2
echo "ensure-deps: install them first, e.g.: sudo apt-get install ${need[*]}" >&2
exit 1
