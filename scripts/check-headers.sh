#!/usr/bin/env bash
# Checks the headers of an installed prefix as a C or C++ user meets them.
#
#   scripts/check-headers.sh PREFIX              the headers in PREFIX/include
#   scripts/check-headers.sh --selftest PREFIX   shows that each check can fail
#
# For the headers PREFIX/include/swiftrcu*.h (and swiftrcu*.hpp, in C++ modes only):
# - none contains a pragma (so none can silence a warning: no `#pragma GCC system_header`, no
#   diagnostic pragmas) other than `#pragma once`;
# - each header alone, and a file that calls into the API, compile with gcc and clang as C99, C11
#   and C2x, and with g++ and clang++ as C++17 and C++20, under -Wall -Wextra -pedantic -Werror;
#   clang also with SWIFTRCU_NULLABILITY (clang's nullability qualifiers) and
#   -Wnullability-completeness;
# - in every one of those modes, every macro the headers define beyond those of the standard
#   headers they include (`cc -dM -E` against a baseline), and every typedef, function, variable,
#   struct / union / enum tag and enumerator the C headers declare at file scope
#   (scripts/header-names.py), starts with SWIFTRCU_ or swiftrcu_.
# clang and clang++ are the Swift toolchain's (first on PATH). Ends with "N passed, M failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python3}

selftest=0
if [ "${1:-}" = "--selftest" ]; then selftest=1; shift; fi
[ $# -eq 1 ] || { sed -n '2,6p' "$0" >&2; exit 2; }
prefix=$1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# check_headers INCLUDE_DIR MATRIX: runs every check, prints failures, sets $passed and $failed.
# MATRIX "full" is every compiler and standard; "quick" one C and one C++ mode.
check_headers() {
  local inc=$1 matrix=$2 work
  work=$(mktemp -d "$tmp/run.XXXX")
  passed=0 failed=0
  ok() { passed=$((passed + 1)); }
  fail() { failed=$((failed + 1)); echo "FAIL: $1"; [ -s "$work/err" ] && sed 's/^/    /' "$work/err" | head -15; }

  local c_headers=() cxx_headers=() h
  for h in "$inc"/swiftrcu*.h; do [ -f "$h" ] && c_headers+=("$(basename "$h")"); done
  for h in "$inc"/swiftrcu*.hpp; do [ -f "$h" ] && cxx_headers+=("$(basename "$h")"); done
  if [ ${#c_headers[@]} -eq 0 ] || [ ! -f "$inc/swiftrcu.h" ]; then
    : > "$work/err"; fail "no swiftrcu.h in $inc"; return
  fi

  # No pragmas (warning suppression or otherwise), except `#pragma once`.
  if grep -nE '^[[:space:]]*#[[:space:]]*pragma|_Pragma|__pragma' "${c_headers[@]/#/$inc/}" \
       ${cxx_headers[@]+"${cxx_headers[@]/#/$inc/}"} | grep -vE '#[[:space:]]*pragma[[:space:]]+once' > "$work/err"; then
    fail "pragmas in the installed headers"
  else ok; fi

  # The standard headers ours include, for the baseline of macros.
  grep -hoE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<[^>]+>' "$inc"/swiftrcu*.h* \
    | sed -E 's/.*<([^>]+)>.*/\1/' | grep -v '^swiftrcu' | sort -u > "$work/std-headers"

  # Sources: each header alone, and a user of the API.
  for h in "${c_headers[@]}" ${cxx_headers[@]+"${cxx_headers[@]}"}; do
    printf '#include <%s>\n' "$h" > "$work/alone-$h.src"
  done
  { printf '#include <%s>\n' "${c_headers[@]}"
    cat <<'C'
int swiftrcu_check_use(void);
int swiftrcu_check_use(void) {
    swiftrcu_ptr *p = swiftrcu_new(0, 0, 0);
    swiftrcu_guard g = swiftrcu_read_lock();
    const void *o = swiftrcu_dereference(p, &g);
    int field = 0;
    swiftrcu_old *old = 0;
    int rc = swiftrcu_read_unlock(&g);
    if (swiftrcu_read_copy(p, 0, &field, sizeof field) == o && o != 0) rc |= 1;
    rc |= swiftrcu_replace(p, 0, &old) | swiftrcu_old_free(old) | swiftrcu_free(p);
    return rc + (swiftrcu_version()[0] == '0') + (swiftrcu_strerror(SWIFTRCU_EINVAL)[0] == 'S');
}
C
  } > "$work/all.src"
  while read -r h; do
    printf '#if __has_include(<%s>)\n#include <%s>\n#endif\n' "$h" "$h"
  done < "$work/std-headers" > "$work/baseline.src"

  local modes
  if [ "$matrix" = quick ]; then
    modes="gcc:c:c11 clang++:c++:c++17"
  else
    modes="gcc:c:c99 gcc:c:c11 gcc:c:c2x clang:c:c99 clang:c:c11 clang:c:c2x \
g++:c++:c++17 g++:c++:c++20 clang++:c++:c++17 clang++:c++:c++20"
  fi
  local mode cc lang std ext flags src what
  for mode in $modes; do
    IFS=: read -r cc lang std <<< "$mode"
    command -v "$cc" > /dev/null || { echo "compiler $cc not found" > "$work/err"; fail "$cc"; continue; }
    ext=$([ "$lang" = c ] && echo c || echo cpp)
    flags=(-std="$std" -Wall -Wextra -pedantic -Werror -I"$inc")
    for src in "$work"/alone-*.h.src "$work"/all.src \
               $([ "$lang" = c++ ] && ls "$work"/alone-*.hpp.src 2>/dev/null); do
      [ -f "$src" ] || continue
      what=$(basename "$src" .src); what=${what#alone-}
      cp "$src" "$work/t.$ext"
      if "$cc" "${flags[@]}" -c "$work/t.$ext" -o "$work/t.o" 2> "$work/err"; then ok
      else fail "$cc -std=$std -Wall -Wextra -pedantic -Werror: $what"; fi
    done
    # Identifiers: macros against the baseline, declarations of the C headers.
    cp "$work/all.src" "$work/t.$ext"
    cp "$work/baseline.src" "$work/b.$ext"
    if [ "$lang" = c++ ] && [ ${#cxx_headers[@]} -gt 0 ]; then
      printf '#include <%s>\n' "${cxx_headers[@]}" >> "$work/t.$ext"
    fi
    if "$cc" -std="$std" -I"$inc" -dM -E "$work/b.$ext" > "$work/b.dm" 2> "$work/err" &&
       "$cc" -std="$std" -I"$inc" -dM -E "$work/t.$ext" > "$work/t.dm" 2>> "$work/err" &&
       "$PYTHON" "$here/header-names.py" macros "$work/b.dm" "$work/t.dm" > "$work/err" 2>&1; then ok
    else fail "$cc -std=$std: macros without the SWIFTRCU_ prefix"; fi
    if "$cc" -std="$std" -I"$inc" -E "$work/t.$ext" > "$work/t.i" 2> "$work/err" &&
       "$PYTHON" "$here/header-names.py" decls "$work/t.i" "$inc" > "$work/err" 2>&1; then ok
    else fail "$cc -std=$std: file-scope names without the swiftrcu_ prefix"; fi
  done

  # clang's nullability qualifiers, when asked for, are complete and accepted.
  if [ "$matrix" = full ] && command -v clang > /dev/null; then
    cp "$work/all.src" "$work/t.c"
    if clang -std=c11 -DSWIFTRCU_NULLABILITY -Wall -Wextra -Werror -Wnullability-completeness \
         -I"$inc" -c "$work/t.c" -o "$work/t.o" 2> "$work/err"; then ok
    else fail "clang -DSWIFTRCU_NULLABILITY -Wnullability-completeness"; fi
  fi
}

if [ "$selftest" -eq 0 ]; then
  check_headers "$prefix/include" full
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
fi

# Self-test: each flaw, added to a copy of the installed headers, must make a check fail.
flaws=(
  '#pragma GCC system_header'
  '#define UNPREFIXED_MACRO 1'
  'typedef int unprefixed_type;'
  'int unprefixed_function(void);'
  'enum swiftrcu_selftest { UNPREFIXED_ENUMERATOR };'
  'struct unprefixed_tag;'
  'typedef int swiftrcu_zero_length[0];'
)
self_passed=0 self_failed=0
for flaw in "${flaws[@]}"; do
  rm -rf "$tmp/bad"; mkdir -p "$tmp/bad"
  cp "$prefix"/include/swiftrcu*.h* "$tmp/bad/"
  # Before the include guard's #endif at the end of swiftrcu_types.h.
  "$PYTHON" - "$tmp/bad/swiftrcu_types.h" "$flaw" <<'PY'
import sys
path, flaw = sys.argv[1], sys.argv[2]
text = open(path).read()
at = text.rindex("#endif")
open(path, "w").write(text[:at] + flaw + "\n" + text[at:])
PY
  check_headers "$tmp/bad" quick > "$tmp/selftest.log"
  if [ "$failed" -gt 0 ]; then self_passed=$((self_passed + 1))
  else self_failed=$((self_failed + 1)); echo "FAIL: the checks did not notice: $flaw"; fi
done
echo "check-headers selftest: $self_passed passed, $self_failed failed"
[ "$self_failed" -eq 0 ]
