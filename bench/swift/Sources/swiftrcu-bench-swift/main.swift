// SwiftRCU's Swift benchmark: read sections through the Swift API, through the C ABI called from
// Swift, and through liburcu's inline read path (the floor), with the same loop shape, a fixed op
// count and interleaved repetitions, on one thread.
//
//   swiftrcu-bench-swift [--ops N] [--reps R] [--json FILE]
//
// Prints the raw per-repetition nanoseconds per read section as JSON (stdout by default);
// bench/run_bench.py computes medians, spreads and ratios.

import CBenchFloor
import Glibc
import SwiftRCU

final class Box: Sendable {
    let value: UInt64
    init(_ value: UInt64) { self.value = value }
}

@inline(__always) func nowNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

// Swift API, closure form: readLock + dereference (no retain) + field + unlock.
@inline(never) func loopSwiftAPI(_ r: Rcu<Box>, _ n: Int) -> UInt64 {
    var sum: UInt64 = 0
    for _ in 0..<n {
        let g = readLock()
        sum &+= r.dereference(g) { $0!.value }
        g.unlock()
    }
    return sum
}

// Swift API, strong form: the returned reference costs a retain and a release.
@inline(never) func loopSwiftAPIStrong(_ r: Rcu<Box>, _ n: Int) -> UInt64 {
    var sum: UInt64 = 0
    for _ in 0..<n {
        let g = readLock()
        let b = r.dereference(g)
        sum &+= b!.value
        g.unlock()
    }
    return sum
}

// Swift API, scoped form: withReadLock { dereference }.
@inline(never) func loopSwiftAPIScoped(_ r: Rcu<Box>, _ n: Int) -> UInt64 {
    var sum: UInt64 = 0
    for _ in 0..<n {
        sum &+= withReadLock { g in r.dereference(g) { $0!.value } }
    }
    return sum
}

// The C ABI's three calls, from Swift.
@inline(never) func loopCABI(_ p: OpaquePointer, _ n: Int) -> UInt64 {
    var sum: UInt64 = 0
    for _ in 0..<n {
        var g = swiftrcu_read_lock()
        let o = swiftrcu_dereference(p, &g)
        sum &+= o.unsafelyUnwrapped.load(as: UInt64.self)
        swiftrcu_read_unlock(&g)
    }
    return sum
}

// liburcu memb's inline read path (static inline C functions built with _LGPL_SOURCE).
@inline(never) func loopFloor(_ n: Int) -> UInt64 {
    var sum: UInt64 = 0
    for _ in 0..<n {
        bench_floor_read_lock()
        let o = bench_floor_dereference()
        sum &+= o!.pointee.value
        bench_floor_read_unlock()
    }
    return sum
}

func progress(_ s: String) {
    _ = s.withCString { Glibc.write(2, $0, strlen($0)) }
}

func parseArgs() -> (ops: Int, reps: Int, json: String?) {
    var ops = 5_000_000, reps = 7
    var json: String? = nil
    var args = CommandLine.arguments.dropFirst().makeIterator()
    while let a = args.next() {
        guard let v = args.next() else { fatalError("missing value for \(a)") }
        switch a {
        case "--ops": ops = Int(v)!
        case "--reps": reps = Int(v)!
        case "--json": json = v
        default: fatalError("unknown option \(a)")
        }
    }
    return (ops, reps, json)
}

let (ops, reps, jsonPath) = parseArgs()

// Register with liburcu first; the SwiftRCU module and libswiftrcu then adopt the registration.
bench_floor_register()
guard swiftrcu_thread_register() == SWIFTRCU_OK else { fatalError("swiftrcu_thread_register") }

// The value comes from run time: with a constant, the optimiser folds the `let` field (every Box
// would hold 1) and the loops would never read the object.
let rcu = Rcu(Box(UInt64(CommandLine.arguments.count)))
let cObject = UnsafeMutablePointer<UInt64>.allocate(capacity: 8)
cObject.initialize(repeating: 1, count: 8)
guard let cPtr = swiftrcu_new(cObject, nil, nil) else { fatalError("swiftrcu_new") }

let variants: [(name: String, loop: (Int) -> UInt64)] = [
    ("swift_api", { loopSwiftAPI(rcu, $0) }),
    ("swift_api_scoped", { loopSwiftAPIScoped(rcu, $0) }),
    ("swift_api_strong", { loopSwiftAPIStrong(rcu, $0) }),
    ("swift_cabi_trio", { loopCABI(cPtr, $0) }),
    ("swift_urcu_inline", { loopFloor($0) }),
]

var results = [[Double]](repeating: [], count: variants.count)
var sink: UInt64 = 0
for rep in 0..<reps {
    progress("swiftrcu-bench-swift: repetition \(rep + 1)/\(reps)\n")
    for (i, v) in variants.enumerated() {
        sink &+= v.loop(max(ops / 20, 1))
        let t0 = nowNs()
        sink &+= v.loop(ops)
        let t1 = nowNs()
        results[i].append(Double(t1 - t0) / Double(ops))
    }
}

var out = "{\n  \"program\": \"swiftrcu-bench-swift\",\n"
out += "  \"config\": {\"ops\": \(ops), \"reps\": \(reps)},\n  \"read\": {\n"
out += variants.indices.map { i in
    "    \"\(variants[i].name)\": {\"t1_ns_per_read\": [" + results[i].map { "\($0)" }.joined(separator: ", ") + "]}"
}.joined(separator: ",\n")
out += "\n  },\n  \"sink\": \(sink & 1)\n}\n"

if let jsonPath {
    guard let f = fopen(jsonPath, "w") else { fatalError("cannot write \(jsonPath)") }
    fputs(out, f)
    fclose(f)
} else {
    print(out, terminator: "")
}

guard swiftrcu_free(cPtr) == SWIFTRCU_OK else { fatalError("swiftrcu_free") }
cObject.deallocate()
