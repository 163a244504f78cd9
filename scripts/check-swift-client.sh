#!/usr/bin/env bash
# Tests the Swift package from outside, as a user's package meets it:
#   1. the module's public symbols (from the symbol graph) equal bindings/swift/public-api.txt;
#   2. the client package in bindings/swift (Swift 6 language mode) builds and its tests pass;
#   3. each snippet in bindings/swift/compile-fail/ is rejected by the compiler with every
#      diagnostic its `// expect-error: TEXT` lines name.
# `scripts/check-swift-client.sh --update-api` rewrites the list after a deliberate API change.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
SWIFT=${SWIFT:-swift}
out=$root/build/swift-client-check
mkdir -p "$out"

# 1. The public surface.
"$SWIFT" package --package-path "$root" dump-symbol-graph >/dev/null
# The module and the core, whose one public type (RcuError) the module re-exports: the core
# must have nothing else public.
graphs=$(find "$root/.build" -path '*symbolgraph/SwiftRCU*.symbols.json' \
  \( -name SwiftRCU.symbols.json -o -name SwiftRCUCore.symbols.json \))
python3 - $graphs > "$out/public-api.txt" <<'PY'
import json, sys
rows = set()
for s in (s for path in sys.argv[1:] for s in json.load(open(path))["symbols"]):
    if s["accessLevel"] == "public":
        decl = "".join(f["spelling"] for f in s["declarationFragments"])
        rows.add(f'{s["kind"]["identifier"]:18} {".".join(s["pathComponents"])}: {decl}')
print("\n".join(sorted(rows)))
PY
if [ "${1:-}" = "--update-api" ]; then
  cp "$out/public-api.txt" "$root/bindings/swift/public-api.txt"
  echo "check-swift-client: bindings/swift/public-api.txt updated"
  exit 0
fi
if ! diff -u "$root/bindings/swift/public-api.txt" "$out/public-api.txt"; then
  echo "check-swift-client: the public Swift API changed; if that is meant, run" \
       "'scripts/check-swift-client.sh --update-api', document it in docs/swift.md and commit both" >&2
  exit 1
fi
echo "check-swift-client: public API matches bindings/swift/public-api.txt ($(wc -l < "$out/public-api.txt") symbols)"

# 2. The client package's tests.
"$SWIFT" test --package-path "$root/bindings/swift" --scratch-path "$root/build/swift-client"

# 3. Snippets that must not compile, each as the only source of a probe package.
probe=$out/probe
failures=0
for snippet in "$root"/bindings/swift/compile-fail/*.swift; do
  name=$(basename "$snippet")
  rm -rf "$probe" && mkdir -p "$probe/Sources/Probe"
  cat > "$probe/Package.swift" <<PKG
// swift-tools-version: 6.1
import PackageDescription
let package = Package(
    name: "Probe",
    dependencies: [.package(name: "SwiftRCU", path: "$root")],
    targets: [.target(name: "Probe", dependencies: [.product(name: "SwiftRCU", package: "SwiftRCU")])],
    swiftLanguageModes: [.v6]
)
PKG
  cp "$snippet" "$probe/Sources/Probe/probe.swift"
  if "$SWIFT" build --package-path "$probe" --scratch-path "$out/probe-build" > "$out/$name.log" 2>&1; then
    echo "check-swift-client: FAIL: $name compiled, but must be rejected" >&2
    failures=$((failures + 1))
    continue
  fi
  while IFS= read -r expected; do
    if ! grep -F -- "error: " "$out/$name.log" | grep -qF -- "$expected"; then
      echo "check-swift-client: FAIL: $name: no error saying: $expected" >&2
      failures=$((failures + 1))
    fi
  done < <(sed -n 's|^// expect-error: ||p' "$snippet")
  echo "check-swift-client: $name rejected as expected"
done
[ "$failures" -eq 0 ] || { echo "check-swift-client: $failures failure(s); logs in $out" >&2; exit 1; }
echo "check-swift-client: all checks passed"
