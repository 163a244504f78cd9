#!/usr/bin/env bash
# Checks an installed prefix the way a packager would: files, SONAME, exported symbols, no Swift
# runtime dependency, pkg-config, and that the installed headers compile cleanly as C99 and C++17
# with gcc and clang under -Wall -Wextra -pedantic -Werror.
# Usage: check-install.sh PREFIX      Ends with "N passed, M failed".
set -uo pipefail
prefix=$1
lib="$prefix/lib"
export PKG_CONFIG_PATH="$lib/pkgconfig"
passed=0 failed=0
check() { # description, command...
  local what=$1; shift
  if "$@" >/dev/null 2>"${TMPDIR:-/tmp}/check-install.err"; then passed=$((passed+1));
  else failed=$((failed+1)); echo "FAIL: $what"; sed 's/^/    /' "${TMPDIR:-/tmp}/check-install.err" | head -20; fi
}
real=$(ls "$lib"/libswiftrcu.so.*.*.* 2>/dev/null | head -1)
check "real library installed" test -f "$real"
check "SONAME link" test -L "$lib/libswiftrcu.so.0"
check "dev link" test -L "$lib/libswiftrcu.so"
check "headers installed" test -f "$prefix/include/swiftrcu.h" -a -f "$prefix/include/swiftrcu_types.h" -a -f "$prefix/include/swiftrcu_generated.h"
check "pkg-config file" test -f "$lib/pkgconfig/swiftrcu.pc"
check "C++ header installed" test -f "$prefix/include/swiftrcu.hpp"
check "CMake package installed" test -f "$lib/cmake/swiftrcu/swiftrcu-config.cmake" -a -f "$lib/cmake/swiftrcu/swiftrcu-config-version.cmake"
check "SONAME is libswiftrcu.so.0" bash -c "readelf -d '$real' | grep -q 'Library soname: \[libswiftrcu.so.0\]'"
check "only swiftrcu_* exported" bash -c "! nm -D --defined-only '$real' | awk '{print \$NF}' | grep -v '^swiftrcu_'"
check "all contract functions exported" bash -c "for f in version strerror new free read_lock read_unlock dereference replace copy_update old_object old_free old_defer synchronize barrier thread_register thread_unregister region_enter region_exit in_read_section retire call; do nm -D --defined-only '$real' | grep -q \" T swiftrcu_\$f\$\" || { echo missing \$f; exit 1; }; done"
check "no Swift toolchain library needed" bash -c "! ldd '$real' | grep -iE 'swift|/opt/|libdispatch|libBlocksRuntime|libFoundation'"
check "loads with dlopen (small TLS segment)" python3 -c "import ctypes,sys; ctypes.CDLL(sys.argv[1])" "$real"
check "TLS segment under 128 bytes" bash -c "sz=\$(readelf -lW '$real' | awk '\$1==\"TLS\"{print \$6}'); [ -n \"\$sz\" ] && [ \$((sz)) -lt 128 ]"
check "pkg-config knows swiftrcu" pkg-config --exists swiftrcu
check "pkg-config libs name the library" bash -c "pkg-config --libs swiftrcu | grep -q -- -lswiftrcu"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/use.c" <<'C'
#include <swiftrcu.h>
int main(void) {
    swiftrcu_ptr *p = swiftrcu_new(0, 0, 0);
    swiftrcu_guard g = swiftrcu_read_lock();
    void *o = swiftrcu_dereference(p, &g);
    swiftrcu_old *old = 0;
    int rc = swiftrcu_read_unlock(&g) | swiftrcu_replace(p, o, &old) | swiftrcu_free(p);
    return rc == 0 && swiftrcu_version() != 0 ? 0 : 1;
}
C
cp "$tmp/use.c" "$tmp/use.cpp"
for cc in gcc clang; do
  command -v $cc >/dev/null || continue
  check "$cc C99 -Werror" $cc -std=c99 -Wall -Wextra -pedantic -Werror -c "$tmp/use.c" -o "$tmp/use-$cc.o" $(pkg-config --cflags swiftrcu)
  check "$cc C11 links and runs" bash -c "$cc -std=c11 -Wall -Wextra -pedantic -Werror '$tmp/use.c' -o '$tmp/use-$cc' \$(pkg-config --cflags --libs swiftrcu) && LD_LIBRARY_PATH='$lib' '$tmp/use-$cc'"
done
for cxx in g++ clang++; do
  command -v $cxx >/dev/null || continue
  check "$cxx C++17 -Werror" $cxx -std=c++17 -Wall -Wextra -pedantic -Werror -c "$tmp/use.cpp" -o "$tmp/use-$cxx.o" $(pkg-config --cflags swiftrcu)
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
