#!/usr/bin/env python3
"""Per-call cost of the SwiftRCU Python read side, against plain ctypes calls and locks.

Every case runs the same loop shape, ``for _ in range(ops): <body>`` with the callables bound
to locals, for a fixed number of operations; each case is repeated and the median per-operation
time (ns) is reported with the spread (min, max, and (max - min) / median). Ratios are against
one trivial ctypes call, swiftrcu_version() through a PyDLL handle (the kind of handle the read
side uses), and against a raw one-argument call, swiftrcu_load(ptr). read() itself is a loader
bound to the Rcu (swiftrcu_loader_bind): one call without arguments. The same trivial call with
its result ignored (restype None, no Python object made) is measured too, as the cheapest call
ctypes makes. The guard path (``with read_lock() as g: dereference(g)``, alone and as a nested
pair) is set beside a dict read under a ``threading.Lock`` and under an ``RLock``.

    PYTHONPATH=bindings/python python3 bench/bench_python.py --ops 200000 --json out.json

The library is found like the package finds it (SWIFTRCU_LIBRARY, installed, build output).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List

try:
    import swiftrcu
except ModuleNotFoundError:  # not installed and no PYTHONPATH: use the source tree's package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bindings" / "python"))
    import swiftrcu

#: read() may cost at most this many trivial ctypes calls (the performance issue's target).
TARGET_READ_RATIO = 1.5


def make_cases() -> Dict[str, Callable[[int], int]]:
    """Each case takes an operation count and returns the elapsed nanoseconds."""
    lib = ctypes.PyDLL(swiftrcu.library_path)
    version = lib.swiftrcu_version
    version.argtypes = []
    version.restype = ctypes.c_void_p
    version_void = lib["swiftrcu_version"]  # a function object of its own, result ignored
    version_void.argtypes = []
    version_void.restype = None
    # The C call read() makes, returning the raw address (no reference taken: unsafe to use).
    load = lib.swiftrcu_load
    load.argtypes = [ctypes.c_void_p]
    load.restype = ctypes.c_void_p

    config = {"timeout": 5, "servers": ("a", "b")}
    rcu = swiftrcu.Rcu(config)
    handle = rcu._ptr  # the Rcu's C handle, for the raw call
    data = {"a": 1}

    class Holder:
        value = config

    holder = Holder()
    lock = threading.Lock()
    rlock = threading.RLock()
    read_lock = swiftrcu.read_lock

    def empty_loop(ops: int) -> int:
        t0 = time.perf_counter_ns()
        for _ in range(ops):
            pass
        return time.perf_counter_ns() - t0

    def ctypes_call(ops: int) -> int:
        call = version
        t0 = time.perf_counter_ns()
        for _ in range(ops):
            call()
        return time.perf_counter_ns() - t0

    def ctypes_call_void(ops: int) -> int:
        call = version_void
        t0 = time.perf_counter_ns()
        for _ in range(ops):
            call()
        return time.perf_counter_ns() - t0

    def ctypes_call_one_arg(ops: int) -> int:
        call = load
        ptr = handle
        t0 = time.perf_counter_ns()
        for _ in range(ops):
            call(ptr)
        return time.perf_counter_ns() - t0

    def rcu_read(ops: int) -> int:
        read = rcu.read
        t0 = time.perf_counter_ns()
        for _ in range(ops):
            read()
        return time.perf_counter_ns() - t0

    def trio(ops: int) -> int:
        lock_ = read_lock
        deref = rcu.dereference
        t0 = time.perf_counter_ns()
        for _ in range(ops):
            g = lock_()
            deref(g)
            g.unlock()
        return time.perf_counter_ns() - t0

    def with_statement(ops: int) -> int:
        lock_ = read_lock
        deref = rcu.dereference
        t0 = time.perf_counter_ns()
        for _ in range(ops):
            with lock_() as g:
                deref(g)
        return time.perf_counter_ns() - t0

    def lock_attribute(ops: int) -> int:
        lk = lock
        h = holder
        t0 = time.perf_counter_ns()
        for _ in range(ops):
            with lk:
                h.value
        return time.perf_counter_ns() - t0

    def nested_pair(ops: int) -> int:
        lock_ = read_lock
        deref = rcu.dereference
        t0 = time.perf_counter_ns()
        for _ in range(ops):
            with lock_() as g:
                with lock_() as h:
                    deref(h)
        return time.perf_counter_ns() - t0

    def lock_dict(ops: int) -> int:
        lk = lock
        d = data
        t0 = time.perf_counter_ns()
        for _ in range(ops):
            with lk:
                d["a"]
        return time.perf_counter_ns() - t0

    def rlock_dict(ops: int) -> int:
        lk = rlock
        d = data
        t0 = time.perf_counter_ns()
        for _ in range(ops):
            with lk:
                d["a"]
        return time.perf_counter_ns() - t0

    return {
        "empty loop": empty_loop,
        "ctypes call: swiftrcu_version()": ctypes_call,
        "ctypes call: swiftrcu_version(), result ignored": ctypes_call_void,
        "raw ctypes call: swiftrcu_load(ptr) -> address": ctypes_call_one_arg,
        "Rcu.read()": rcu_read,
        "read_lock() + dereference() + unlock()": trio,
        "with read_lock() as g: dereference(g)": with_statement,
        "with read_lock() x2 (nested): dereference(inner)": nested_pair,
        "threading.Lock-protected attribute read": lock_attribute,
        LOCK: lock_dict,
        "with threading.RLock(): d['a']": rlock_dict,
    }


BASELINE = "ctypes call: swiftrcu_version()"
BASELINE_ONE_ARG = "raw ctypes call: swiftrcu_load(ptr) -> address"
CHEAPEST_CALL = "ctypes call: swiftrcu_version(), result ignored"
LOCK = "with threading.Lock(): d['a']"
GUARD = "with read_lock() as g: dereference(g)"
#: The guard path may cost at most this many Lock-protected reads (the Python issue's target).
TARGET_GUARD_RATIO = 5.0


def measure(cases: Dict[str, Callable[[int], int]], ops: int, repeat: int) -> Dict[str, dict]:
    samples: Dict[str, List[float]] = {name: [] for name in cases}
    for fn in cases.values():
        fn(min(ops, 10000))  # warm-up
    for _ in range(repeat):
        for name, fn in cases.items():  # interleaved, so drift hits every case alike
            gc.collect()
            samples[name].append(fn(ops) / ops)
    results = {}
    for name, values in samples.items():
        median = statistics.median(values)
        results[name] = {
            "median_ns": median,
            "min_ns": min(values),
            "max_ns": max(values),
            "spread_pct": 100.0 * (max(values) - min(values)) / median if median else 0.0,
            "samples_ns": values,
        }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=200_000, help="operations per repetition")
    parser.add_argument("--repeat", type=int, default=7, help="repetitions per case")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    args = parser.parse_args()
    if args.ops <= 0 or args.repeat <= 0:
        parser.error("--ops and --repeat must be positive")

    results = measure(make_cases(), args.ops, args.repeat)
    base = results[BASELINE]["median_ns"]
    base_one = results[BASELINE_ONE_ARG]["median_ns"]
    for entry in results.values():
        entry["ratio_vs_ctypes_call"] = entry["median_ns"] / base
        entry["ratio_vs_raw_load"] = entry["median_ns"] / base_one

    read_ratio = results["Rcu.read()"]["ratio_vs_ctypes_call"]
    read_ratio_cheapest = results["Rcu.read()"]["median_ns"] / results[CHEAPEST_CALL]["median_ns"]
    width = max(len(name) for name in results)
    print(f"SwiftRCU Python read side: {args.ops} ops x {args.repeat} repetitions, "
          f"Python {platform.python_version()}, library {swiftrcu.library_version}")
    print(f"{'case':<{width}}  {'median ns':>9}  {'min':>7}  {'max':>7}  {'spread':>6}  "
          f"{'x call':>6}  {'x raw load':>10}")
    for name, r in results.items():
        print(f"{name:<{width}}  {r['median_ns']:9.1f}  {r['min_ns']:7.1f}  {r['max_ns']:7.1f}  "
              f"{r['spread_pct']:5.1f}%  {r['ratio_vs_ctypes_call']:6.2f}  "
              f"{r['ratio_vs_raw_load']:10.2f}")
    met = read_ratio <= TARGET_READ_RATIO
    print(f"target: Rcu.read() <= {TARGET_READ_RATIO}x one trivial ctypes call: "
          f"{read_ratio:.2f}x -> {'met' if met else 'NOT met'}; "
          f"against the same call with its result ignored: {read_ratio_cheapest:.2f}x")

    guard_ratio = results[GUARD]["median_ns"] / results[LOCK]["median_ns"]
    read_vs_lock = results["Rcu.read()"]["median_ns"] / results[LOCK]["median_ns"]
    guard_met = guard_ratio <= TARGET_GUARD_RATIO
    print(f"target: guard path <= {TARGET_GUARD_RATIO}x {LOCK}: {guard_ratio:.2f}x -> "
          f"{'met' if guard_met else 'NOT met'}; Rcu.read(): {read_vs_lock:.2f}x the lock")

    if args.json:
        report = {
            "ops": args.ops,
            "repeat": args.repeat,
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "machine": platform.machine(),
            "library_version": swiftrcu.library_version,
            "baseline": BASELINE,
            "results": results,
            "target": {"read_ratio_max": TARGET_READ_RATIO, "read_ratio": read_ratio, "met": met,
                       "read_ratio_vs_result_ignored": read_ratio_cheapest,
                       "guard_ratio_vs_lock_max": TARGET_GUARD_RATIO,
                       "guard_ratio_vs_lock": guard_ratio, "guard_met": guard_met,
                       "read_ratio_vs_lock": read_vs_lock},
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
