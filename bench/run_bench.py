#!/usr/bin/env python3
"""SwiftRCU benchmark driver: runs the C, Swift and Python parts, the callgrind instruction counts
and the disassembly check, and prints ONE table in which every figure is also a ratio to the
liburcu references. Writes results/latest.{json,csv,md} and results/chart.png; the previous
latest.json is kept as results/previous.json and the terminal table shows the change against it.

Run it through bench/Makefile (`make bench`, `make bench-smoke`); see bench/README.md.
"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Op counts: full run and smoke run (tiny, no thresholds).
MODES = {
    "full": dict(ops=20_000_000, reps=9, lat_ops=5000, defer_ops=200_000, swift_ops=20_000_000,
                 python_ops=300_000, cg_k1=100_000, cg_k2=1_100_000, cg_all=True),
    "smoke": dict(ops=20_000, reps=3, lat_ops=50, defer_ops=2000, swift_ops=20_000,
                  python_ops=2000, cg_k1=10_000, cg_k2=110_000, cg_all=False),
}

C_LABELS = {
    "swiftrcu_trio": "SwiftRCU C ABI: read_lock + dereference + read_unlock",
    "swiftrcu_lock_deref": "SwiftRCU C ABI: read_lock_dereference + read_unlock",
    "swiftrcu_load": "SwiftRCU C ABI: load",
    "swiftrcu_section": "SwiftRCU C ABI: read_section (one call, field read in the callback)",
    "swiftrcu_read_copy": "SwiftRCU C ABI: read_copy (one call, field copied out inside it)",
    "cpp_ptr_read": "SwiftRCU C++: ptr::read (swiftrcu.hpp, field read in the lambda)",
    "urcu_inline": "liburcu memb inline (_LGPL_SOURCE) [reference]",
    "urcu_exported": "liburcu memb exported functions [reference]",
    "rwlock": "pthread_rwlock (rdlock/unlock)",
    "mutex": "pthread_mutex (lock/unlock)",
    "refcount": "atomic refcount (increment, read, decrement)",
    "plain": "plain load (no protection)",
    "call_floor": "3 calls of swiftrcu_version() + plain load (floor of any 3-call path)",
}
WRITER_LABELS = {  # the writer each reader variant runs against
    "swiftrcu_trio": "SwiftRCU replace + old_free (readers: trio)",
    "swiftrcu_lock_deref": "SwiftRCU replace + old_free (readers: read_lock_dereference)",
    "swiftrcu_load": "SwiftRCU replace + old_free (readers: load)",
    "swiftrcu_section": "SwiftRCU replace + old_free (readers: read_section)",
    "swiftrcu_read_copy": "SwiftRCU replace + old_free (readers: read_copy)",
    "urcu_inline": "liburcu xchg + synchronize_rcu (readers: inline) [reference]",
    "urcu_exported": "liburcu xchg + synchronize_rcu (readers: exported) [reference]",
    "rwlock": "pthread_rwlock wrlock + store + unlock",
    "mutex": "pthread_mutex lock + store + unlock",
}
DEFER_WRITER_LABELS = {  # the deferring writer each reader variant runs against
    "swiftrcu_trio": "SwiftRCU replace + old_defer (readers: trio)",
    "swiftrcu_lock_deref": "SwiftRCU replace + old_defer (readers: read_lock_dereference)",
    "urcu_inline": "liburcu xchg + call_rcu (readers: inline) [reference]",
    "urcu_exported": "liburcu xchg + call_rcu (readers: exported) [reference]",
}
SWIFT_LABELS = {
    "swift_api": "Swift API: readLock + dereference { } + unlock",
    "swift_api_scoped": "Swift API: withReadLock { dereference { } }",
    "swift_api_strong": "Swift API: readLock + dereference (strong ref) + unlock",
    "swift_cabi_trio": "C ABI trio called from Swift",
    "swift_urcu_inline": "liburcu memb inline, from Swift [floor]",
}
PY_LABELS = {
    "py_read": "Python: Rcu.read()",
    "py_trio": "Python: read_lock + dereference + read_unlock",
    "py_ctypes_trivial": "Python: one trivial ctypes call, swiftrcu_version() [reference]",
    "py_lock_attr": "Python: threading.Lock-protected attribute read",
}
CALLGRIND_SMOKE = ["swiftrcu_trio", "urcu_inline", "urcu_exported"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def spread_pct(xs):
    """Interquartile range / median over the repetitions, in percent."""
    if len(xs) < 2:
        return 0.0
    m = median(xs)
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return (q[2] - q[0]) / m * 100 if m else None


def range_pct(xs):
    """(max - min) / median over the repetitions, in percent."""
    if len(xs) < 2:
        return 0.0
    m = median(xs)
    return (max(xs) - min(xs)) / m * 100 if m else None


def ratio(a, b):
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def first_line(cmd):
    try:
        r = sh(cmd)
        return (r.stdout or r.stderr).strip().splitlines()[0] if r.returncode == 0 else None
    except (OSError, IndexError):
        return None


def machine_info():
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    git = first_line(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = sh(["git", "-C", ROOT, "status", "--porcelain", "--", "Sources", "include"]).stdout.strip()
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "liburcu": first_line(["pkg-config", "--modversion", "liburcu-memb"]),
        "swift": first_line(["swift", "--version"]),
        "python": platform.python_version(),
        "loadavg_start": [round(x, 2) for x in load] if load else None,
        "git": (git + ("+dirty" if dirty else "")) if git else None,
    }


def run_json(cmd, env, what, timeout):
    """Runs a benchmark program that writes JSON to a file; returns (data, error)."""
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        log("run: " + " ".join(cmd + ["--json", path]))
        # The program's own report (stdout) goes to our stderr, with the progress.
        r = subprocess.run(cmd + ["--json", path], env=env, stdout=sys.stderr, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            return None, "%s exited with %d: %s" % (what, r.returncode, r.stderr.strip()[-800:])
        with open(path) as f:
            return json.load(f), None
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        return None, "%s failed: %s" % (what, e)
    finally:
        os.unlink(path)


def callgrind(c_bin, env, variants, k1, k2):
    """Instructions per read section: (Ir(K2) - Ir(K1)) / (K2 - K1), one variant per process."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for v in variants:
            totals = []
            for k in (k1, k2):
                cg = os.path.join(tmp, "cg.%s.%d" % (v, k))
                r = sh(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + cg, c_bin, "--count", v, str(k)],
                       env=env)
                if r.returncode != 0:
                    raise RuntimeError("callgrind %s %d: %s" % (v, k, r.stderr.strip()[-500:]))
                with open(cg) as f:
                    tot = [int(line.split()[1]) for line in f if line.startswith(("totals:", "summary:"))]
                totals.append(tot[0])
            out[v] = {"k1": k1, "k2": k2, "ir_k1": totals[0], "ir_k2": totals[1],
                      "per_section": (totals[1] - totals[0]) / (k2 - k1),
                      "by_function": by_function(os.path.join(tmp, "cg.%s.%d" % (v, k1)),
                                                 os.path.join(tmp, "cg.%s.%d" % (v, k2)), k1, k2)}
            log("callgrind: %-20s %.2f instructions per section" % (v, out[v]["per_section"]))
    return out


def function_totals(cg_file):
    """Self instructions of each function in a callgrind output (callgrind_annotate); {} without it."""
    if not shutil.which("callgrind_annotate"):
        return {}
    out = {}
    for line in sh(["callgrind_annotate", "--threshold=100", cg_file]).stdout.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\([\s\d.]+%\)\s+(\S+?):(\S+)", line)
        if m and "PROGRAM" not in line:
            out[m.group(3)] = out.get(m.group(3), 0) + int(m.group(1).replace(",", ""))
    return out


def by_function(file1, file2, k1, k2):
    """Per function: (self Ir in the K2 run - in the K1 run) / (K2 - K1), at least 0.5, largest first."""
    a, b = function_totals(file1), function_totals(file2)
    per = {f: (b[f] - a.get(f, 0)) / (k2 - k1) for f in b}
    return {f: round(x, 2) for f, x in sorted(per.items(), key=lambda kv: -kv[1]) if x >= 0.5}


def series(entry, *keys):
    """A list of per-repetition numbers from a variant's entry (tolerates a bare list)."""
    if isinstance(entry, list):
        return [float(x) for x in entry]
    for k in keys:
        if isinstance(entry, dict) and k in entry:
            return [float(x) for x in entry[k]]
    return []


# ---- Table rows ----

def make_row(group, variant, label, xs, unit, better, ref_inline=None, ref_exported=None, value=None):
    v = median(xs) if value is None else value
    return {
        "group": group, "variant": variant, "label": label, "median": v, "unit": unit,
        "spread_pct": spread_pct(xs) if xs else None, "range_pct": range_pct(xs) if xs else None,
        "better": better,
        "x_inline": ratio(v, ref_inline), "x_exported": ratio(v, ref_exported),
        "targets": [], "n": len(xs),
    }


def per_rep(a, b, f):
    return [f(x, y) for x, y in zip(a, b)]


def build_rows(c, swift, py, cg):
    rows = []
    read = c["read"]
    t1 = {v: series(e, "t1_ns_per_read") for v, e in read.items()}
    t2 = {v: [x / 1e6 for x in series(e, "t2_reads_per_s")] for v, e in read.items()}
    wr = {v: [x / 1e6 for x in series(e, "writer_reads_per_s")] for v, e in read.items() if "writer_reads_per_s" in e}
    wu = {v: series(e, "writer_updates_per_s") for v, e in read.items() if "writer_updates_per_s" in e}
    order = [v for v in C_LABELS if v in read] + [v for v in read if v not in C_LABELS]

    def ref(d, v):
        return median(d[v]) if v in d and d[v] else None

    g = "Read section, 1 thread"
    for v in order:
        rows.append(make_row(g, v, C_LABELS.get(v, v), t1[v], "ns/read", "lower",
                             ref(t1, "urcu_inline"), ref(t1, "urcu_exported")))
    g = "Read throughput, 2 threads (aggregate)"
    for v in order:
        rows.append(make_row(g, v, C_LABELS.get(v, v), t2[v], "M reads/s", "higher",
                             ref(t2, "urcu_inline"), ref(t2, "urcu_exported")))
    scal = {v: per_rep(t2[v], t1[v], lambda a, b: a / (1e3 / b)) for v in order}
    g = "Scaling, 2 threads / 1 thread"
    for v in order:
        rows.append(make_row(g, v, C_LABELS.get(v, v), scal[v], "x", "higher",
                             ref(scal, "urcu_inline"), ref(scal, "urcu_exported")))
    wv = [v for v in order if v in wr]
    g = "2 readers + 1 continuous writer: readers"
    for v in wv:
        rows.append(make_row(g, v, C_LABELS.get(v, v), wr[v], "M reads/s", "higher",
                             ref(wr, "urcu_inline"), ref(wr, "urcu_exported")))
    kept = {v: per_rep(wr[v], t2[v], lambda a, b: a / b) for v in wv}
    g = "Readers kept under the writer (with / without)"
    for v in wv:
        rows.append(make_row(g, v, C_LABELS.get(v, v), kept[v], "x", "higher",
                             ref(kept, "urcu_inline"), ref(kept, "urcu_exported")))
    sh2 = {v: series(read[v], "t2_cpu_share") for v in wv}
    shw = {v: series(read[v], "writer_cpu_share") for v in wv}
    if all(sh2[v] and shw[v] for v in wv):
        # Reads per CPU-second with the writer over without: leaves out the readers' loss of CPU
        # time to the writer (3 busy threads on 2 CPUs); the "own CPUs" rows isolate interference.
        kept_cpu = {v: [k / (w / t) if w and t else float("nan") for k, w, t in zip(kept[v], shw[v], sh2[v])]
                    for v in wv}
        g = "Readers kept per CPU-second (with / without)"
        for v in wv:
            rows.append(make_row(g, v, C_LABELS.get(v, v), kept_cpu[v], "x", "higher",
                                 ref(kept_cpu, "urcu_inline"), ref(kept_cpu, "urcu_exported")))
    g = "2 readers + 1 continuous writer: writer"
    for v in wv:
        rows.append(make_row(g, v, WRITER_LABELS.get(v, v), [x / 1e3 for x in wu[v]], "k updates/s", "higher",
                             ref({k: [x / 1e3 for x in s] for k, s in wu.items()}, "urcu_inline"),
                             ref({k: [x / 1e3 for x in s] for k, s in wu.items()}, "urcu_exported")))
    rows += writer_scenario_rows(read, order, t1, t2)

    lat = c["latency"]
    lat_ref_med = median(series(lat["urcu"], "median_ns"))
    lat_ref_p99 = median(series(lat["urcu"], "p99_ns"))
    g = "Writer latency, median (idle registered reader)"
    rows.append(make_row(g, "swiftrcu_replace_free", "SwiftRCU: replace + old_free",
                         [x / 1e3 for x in series(lat["swiftrcu"], "median_ns")], "us", "lower", lat_ref_med / 1e3))
    rows.append(make_row(g, "urcu_xchg_sync_free", "liburcu: xchg + synchronize_rcu + free [reference]",
                         [x / 1e3 for x in series(lat["urcu"], "median_ns")], "us", "lower", lat_ref_med / 1e3))
    g = "Writer latency, p99 (idle registered reader)"
    rows.append(make_row(g, "swiftrcu_replace_free", "SwiftRCU: replace + old_free",
                         [x / 1e3 for x in series(lat["swiftrcu"], "p99_ns")], "us", "lower", lat_ref_p99 / 1e3))
    rows.append(make_row(g, "urcu_xchg_sync_free", "liburcu: xchg + synchronize_rcu + free [reference]",
                         [x / 1e3 for x in series(lat["urcu"], "p99_ns")], "us", "lower", lat_ref_p99 / 1e3))
    d = c["deferred"]
    dref = median(series(d["urcu"], "updates_per_s")) / 1e3
    g = "Deferred updates (final barrier included)"
    rows.append(make_row(g, "swiftrcu_replace_defer", "SwiftRCU: replace + old_defer + barrier",
                         [x / 1e3 for x in series(d["swiftrcu"], "updates_per_s")], "k updates/s", "higher", dref))
    rows.append(make_row(g, "urcu_xchg_call_rcu", "liburcu: xchg + call_rcu + rcu_barrier [reference]",
                         [x / 1e3 for x in series(d["urcu"], "updates_per_s")], "k updates/s", "higher", dref))

    if cg:
        g = "Instructions per read section (callgrind)"
        ci = cg.get("urcu_inline", {}).get("per_section")
        ce = cg.get("urcu_exported", {}).get("per_section")
        for v in [v for v in order if v in cg]:
            rows.append(make_row(g, v, C_LABELS.get(v, v), [], "instr", "lower", ci, ce,
                                 value=cg[v]["per_section"]))

    c_inline, c_exported = ref(t1, "urcu_inline"), ref(t1, "urcu_exported")
    if swift:
        g = "Swift process, 1 thread"
        st1 = {v: series(e, "t1_ns_per_read") for v, e in swift["read"].items()}
        sfloor = ref(st1, "swift_urcu_inline")
        for v in [v for v in SWIFT_LABELS if v in st1] + [v for v in st1 if v not in SWIFT_LABELS]:
            rows.append(make_row(g, v, SWIFT_LABELS.get(v, v), st1[v], "ns/read", "lower", sfloor, c_exported))
    if py:
        g = "Python, 1 thread"
        pt1 = python_series(py)
        for v in [v for v in PY_LABELS if v in pt1] + [v for v in pt1 if v not in PY_LABELS]:
            rows.append(make_row(g, v, PY_LABELS.get(v, "Python: " + v), pt1[v], "ns/op", "lower", c_inline, c_exported))
        if pt1.get("py_read") and pt1.get("py_ctypes_trivial"):
            r = per_rep(pt1["py_read"], pt1["py_ctypes_trivial"], lambda a, b: a / b)
            rows.append(make_row(g, "py_read_over_ctypes", "Python: Rcu.read() / one trivial ctypes call",
                                 r, "x", "lower"))
    return rows


def writer_scenario_rows(read, order, t1, t2):
    """Rows of the runs that separate the writer's costs: 1 reader + 1 writer on CPUs of their own
    (no CPU shared), and 2 readers under a deferring writer (no grace-period wait in the writer)."""
    rows = []

    def ref(d, v):
        return median(d[v]) if v in d and d[v] else None

    def add(g, d, unit, labels=C_LABELS):
        for v in [v for v in order if v in d]:
            rows.append(make_row(g, v, labels.get(v, v), d[v], unit, "higher",
                                 ref(d, "urcu_inline"), ref(d, "urcu_exported")))

    # 1 reader + 1 writer: "without" is the 1-thread run of the same repetition (t1 is ns per read).
    orr = {v: [x / 1e6 for x in series(e, "own_cpus_reads_per_s")] for v, e in read.items()
           if "own_cpus_reads_per_s" in e}
    if orr:
        add("1 reader + 1 writer, own CPUs: reader", orr, "M reads/s")
        add("1 reader + 1 writer, own CPUs: reader kept (with / without)",
            {v: per_rep(orr[v], t1[v], lambda a, b: a / (1e3 / b)) for v in orr}, "x")
        add("1 reader + 1 writer, own CPUs: writer",
            {v: [x / 1e3 for x in series(read[v], "own_cpus_updates_per_s")] for v in orr}, "k updates/s",
            WRITER_LABELS)
    # 2 readers + 1 deferring writer: "without" is the 2-thread run of the same repetition.
    dr = {v: [x / 1e6 for x in series(e, "defer_reads_per_s")] for v, e in read.items() if "defer_reads_per_s" in e}
    if dr:
        add("2 readers + 1 deferring writer: readers", dr, "M reads/s")
        kept = {v: per_rep(dr[v], t2[v], lambda a, b: a / b) for v in dr}
        add("2 readers + 1 deferring writer: readers kept (with / without)", kept, "x")
        sh2 = {v: series(read[v], "t2_cpu_share") for v in dr}
        shd = {v: series(read[v], "defer_cpu_share") for v in dr}
        if all(sh2[v] and shd[v] for v in dr):
            add("2 readers + 1 deferring writer: kept per CPU-second",
                {v: [k / (w / t) if w and t else float("nan") for k, w, t in zip(kept[v], shd[v], sh2[v])]
                 for v in dr}, "x")
        add("2 readers + 1 deferring writer: writer",
            {v: [x / 1e3 for x in series(read[v], "defer_updates_per_s")] for v in dr}, "k updates/s",
            DEFER_WRITER_LABELS)
    return rows


# bench_python.py's case names -> our variant names (other cases keep their own names).
PY_CASES = {
    "Rcu.read()": "py_read",
    "read_lock() + dereference() + unlock()": "py_trio",
    "threading.Lock-protected attribute read": "py_lock_attr",
}


def python_series(py):
    """Per-repetition ns per op of each bench_python.py case, under our variant names."""
    out = {}
    for name, entry in py["results"].items():
        key = "py_ctypes_trivial" if name == py.get("baseline") else PY_CASES.get(name, name)
        out[key] = series(entry, "samples_ns")
    return out


def find(rows, group_prefix, variant):
    for r in rows:
        if r["group"].startswith(group_prefix) and r["variant"] == variant:
            return r
    return None


def apply_targets(rows, smoke):
    """Marks each target on its row: met / not met (never asserted). Returns the summary list."""
    specs = [  # (summary text, row group prefix, row variant, field, op, limit, text on the row)
        ("C ABI read section <= 0.75 x liburcu exported", "Read section, 1 thread", "swiftrcu_trio",
         "x_exported", "<=", 0.75, "<= 0.75x exported"),
        ("C ABI read section <= 4 x liburcu inline (stretch)", "Read section, 1 thread", "swiftrcu_trio",
         "x_inline", "<=", 4.0, "stretch <= 4x inline"),
        ("C ABI read section in one call (read_section) <= 4 x liburcu inline (stretch)",
         "Read section, 1 thread", "swiftrcu_section", "x_inline", "<=", 4.0, "stretch <= 4x inline"),
        ("C ABI read section in one call (read_copy) <= 4 x liburcu inline (stretch)",
         "Read section, 1 thread", "swiftrcu_read_copy", "x_inline", "<=", 4.0, "stretch <= 4x inline"),
        ("2-thread read throughput >= 1.8 x one thread", "Scaling", "swiftrcu_trio", "median", ">=", 1.8,
         ">= 1.8"),
        ("Readers under a continuous writer keep >= 0.75 x", "Readers kept", "swiftrcu_trio", "median", ">=",
         0.75, ">= 0.75"),
        ("replace + old_free latency <= 1.5 x liburcu", "Writer latency, median", "swiftrcu_replace_free",
         "x_inline", "<=", 1.5, "<= 1.5x liburcu"),
        ("replace + old_defer throughput >= 0.7 x liburcu", "Deferred", "swiftrcu_replace_defer", "x_inline",
         ">=", 0.7, ">= 0.7x liburcu"),
        ("Python read() <= 1.5 x one trivial ctypes call", "Python", "py_read_over_ctypes", "median", "<=", 1.5,
         "<= 1.5"),
        ("Swift API read <= 2 x the inline floor", "Swift process", "swift_api", "x_inline", "<=", 2.0,
         "<= 2x inline floor"),
    ]
    summary = []
    # The C++ read path beside the C ABI trio it stands for: a ratio of two rows of one run.
    cpp, trio = find(rows, "Read section, 1 thread", "cpp_ptr_read"), find(rows, "Read section, 1 thread", "swiftrcu_trio")
    if cpp and trio and trio.get("median"):
        value = cpp["median"] / trio["median"]
        cpp["targets"].append({"target": "<= 1.1x the C ABI trio (%.2fx)" % value, "met": value <= 1.1})
        summary.append({"target": "C++ ptr::read <= 1.1 x the C ABI trio", "value": value, "op": "<=",
                        "limit": 1.1, "met": None if smoke else value <= 1.1, "measured": True})
    for name, group, variant, field, op, limit, text in specs:
        row = find(rows, group, variant)
        value = row[field] if row else None
        met = None if value is None else (value <= limit if op == "<=" else value >= limit)
        if row:
            row["targets"].append({"target": text, "met": met})
        summary.append({"target": name, "value": value, "op": op, "limit": limit,
                        "met": None if smoke else met, "measured": value is not None})
    return summary


# ---- Formatting ----

def fmt(x, digits=3):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    ax = abs(x)
    if ax >= 1000:
        return "%.0f" % x
    if ax >= 100:
        return "%.1f" % x
    if ax >= 10:
        return "%.2f" % x
    return "%.*g" % (digits, x)


def fmt_ratio(x):
    return "-" if x is None else "%.2fx" % x


def target_text(r, smoke):
    if not r["targets"]:
        return "-"
    return "; ".join("%s: %s" % (t["target"], "not judged (smoke)" if smoke else "**met**" if t["met"] else "**NOT met**")
                     for t in r["targets"])


def table_lines(rows, smoke, prev=None):
    head = ["Measure", "Variant", "Median", "Unit", "Spread", "x liburcu inline", "x liburcu exported", "Target"]
    if prev is not None:
        head.append("Change vs previous")
    body = []
    for r in rows:
        tgt = target_text(r, smoke)
        cells = [r["group"], r["label"], fmt(r["median"]), r["unit"],
                 "-" if r["spread_pct"] is None else "%.0f%%" % r["spread_pct"],
                 fmt_ratio(r["x_inline"]), fmt_ratio(r["x_exported"]), tgt]
        if prev is not None:
            p = prev.get((r["group"], r["variant"]))
            cells.append("-" if p is None or not p else "%+.1f%%" % ((r["median"] / p - 1) * 100))
        body.append(cells)
    return padded(head, body)


def padded(head, body):
    """A markdown table with its columns padded to equal width (readable as plain text too)."""
    widths = [max(len(str(row[i])) for row in [head] + body) for i in range(len(head))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    return [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(b) for b in body]


def cpu_shares(c):
    """Median CPU share of the reader threads per scenario, over all variants and repetitions."""
    out = {}
    for key, name in (("t1_cpu_share", "1 thread"), ("t2_cpu_share", "2 threads"),
                      ("writer_cpu_share", "2 readers + writer"), ("own_cpus_cpu_share", "1 reader + writer, own CPUs"),
                      ("defer_cpu_share", "2 readers + deferring writer")):
        xs = [x for e in c["read"].values() for x in e.get(key, [])]
        if xs:
            out[name] = median(xs)
    return out


def machine_lines(m, c, cfg, mode):
    shares = cpu_shares(c)
    return [
        "- Machine: %s; nproc %s; kernel %s; liburcu %s (sys_membarrier: %s); %s; load average at start %s." % (
            m["cpu"], m["nproc"], m["kernel"], m["liburcu"],
            "yes" if c.get("has_sys_membarrier") else "no", m.get("swift") or "swift: -",
            " / ".join(str(x) for x in m["loadavg_start"]) if m["loadavg_start"] else "-"),
        "- Run: %s, %s mode, %d repetitions of %d read sections per thread (Swift %d, Python %d), latency %d "
        "updates, deferred %d updates; SwiftRCU %s, commit %s, C compiler %s." % (
            m["date_utc"], mode, cfg["reps"], cfg["ops"], cfg["swift_ops"], cfg["python_ops"], cfg["lat_ops"],
            cfg["defer_ops"], c.get("swiftrcu_version"), m.get("git") or "-", c.get("compiler")),
        "- CPU share of the reader threads (CPU time / wall time, median; 1.00 = a CPU each throughout): %s." % (
            ", ".join("%s %.2f" % kv for kv in shares.items()) or "-"),
    ]


def breakdown_lines(cg):
    """One line per SwiftRCU / liburcu variant: where its instructions per section go."""
    out = []
    for v, e in (cg or {}).items():
        if e.get("by_function") and v.startswith(("swiftrcu", "urcu")):
            out.append("- %s: %s" % (v, ", ".join("%s %g" % kv for kv in e["by_function"].items())))
    return out


def readpath_lines(rp):
    if not rp:
        return []
    head = ["Function", "Instructions", "__tls_get_addr calls", "%fs TLS accesses", "retain", "release",
            "beginAccess", "endAccess", "malloc", "lock", "mfence", "mfence (no-membarrier fallback)", "Other calls"]
    body = [[f["function"] + ("" if f["ours"] else " (liburcu)"), f["instructions"], f["tls_get_addr"], f["fs_tls"],
             f["retain"], f["release"], f["beginAccess"], f["endAccess"], f["malloc"], f["lock"], f["mfence"],
             f["mfence_fallback"], ", ".join(f["other_calls"]) or "-"] for f in rp["functions"]]
    return padded(head, body) + ["", "Disassembly check: **%s**." % ("OK" if rp["ok"] else "FAILED")]


def write_csv(path, rows):
    import csv
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["group", "variant", "label", "median", "unit", "spread_pct", "x_liburcu_inline",
                    "x_liburcu_exported", "target", "met"])
        for r in rows:
            w.writerow([r["group"], r["variant"], r["label"], r["median"], r["unit"], r["spread_pct"],
                        r["x_inline"], r["x_exported"], "; ".join(t["target"] for t in r["targets"]),
                        "; ".join("" if t["met"] is None else "met" if t["met"] else "not met" for t in r["targets"])])


def chart(path, rows):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed: no chart (make bench installs it)"
    one = [r for r in rows if r["unit"] in ("ns/read", "ns/op")]
    t1 = {r["variant"]: r for r in rows if r["group"] == "Read section, 1 thread"}
    t2 = {r["variant"]: r for r in rows if r["group"].startswith("Read throughput, 2 threads")}
    fig, (a, b) = plt.subplots(1, 2, figsize=(15, max(5, 0.38 * len(one) + 1.5)))
    labels = [r["label"] for r in one]
    colors = ["tab:green" if "[reference]" in l or "[floor]" in l else
              "tab:blue" if ("SwiftRCU" in l or "Swift" in l or "Python: Rcu" in l or "Python: read_lock" in l)
              else "tab:gray" for l in labels]
    a.barh(range(len(one)), [r["median"] for r in one], color=colors)
    a.set_yticks(range(len(one)))
    a.set_yticklabels(labels, fontsize=8)
    a.invert_yaxis()
    a.set_xscale("log")
    a.set_xlabel("ns per read section (median, log scale; lower is better)")
    a.set_title("Read section cost, 1 thread")
    for i, r in enumerate(one):
        a.text(r["median"], i, " " + fmt(r["median"]), va="center", fontsize=7)
    vs = [v for v in t1 if v in t2]
    x = range(len(vs))
    one_t = [1e3 / t1[v]["median"] for v in vs]
    two_t = [t2[v]["median"] for v in vs]
    b.bar([i - 0.2 for i in x], one_t, width=0.4, label="1 thread")
    b.bar([i + 0.2 for i in x], two_t, width=0.4, label="2 threads (aggregate)")
    b.set_xticks(list(x))
    b.set_xticklabels(vs, rotation=35, ha="right", fontsize=8)
    b.set_yscale("log")
    b.set_ylabel("M reads/s (log scale; higher is better)")
    b.set_title("Read throughput: 1 vs 2 threads")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def no_nan(x):
    """x with NaN floats replaced by None (JSON has no NaN)."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: no_nan(v) for k, v in x.items()}
    if isinstance(x, list):
        return [no_nan(v) for v in x]
    return x


BEGIN_MARK, END_MARK = "<!-- latest results: begin -->", "<!-- latest results: end -->"


def update_readme(path, md, chart_copy=None):
    with open(path) as f:
        text = f.read()
    if BEGIN_MARK not in text or END_MARK not in text:
        log("update-readme: no markers in %s; left unchanged" % path)
        return
    head, rest = text.split(BEGIN_MARK, 1)
    _, tail = rest.split(END_MARK, 1)
    body = [line for line in md[1:]]  # without the page title
    if chart_copy:
        body += ["", "![ns per read section, and 1-thread vs 2-thread throughput, of this run](%s)"
                 % os.path.relpath(chart_copy, os.path.dirname(os.path.abspath(path)))]
    with open(path, "w") as f:
        f.write(head + BEGIN_MARK + "\n" + "\n".join(body).strip() + "\n" + END_MARK + tail)
    log("update-readme: refreshed the latest results in %s" % path)


def measure(args, cfg, prefix):
    """Runs every part; returns the saved form of a run (without rows, which report() derives)."""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.path.join(prefix, "lib") + (
        ":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    errors, notes = [], []
    machine = machine_info()

    c, err = run_json([args.c_bin, "--ops", str(cfg["ops"]), "--reps", str(cfg["reps"]), "--lat-ops",
                       str(cfg["lat_ops"]), "--defer-ops", str(cfg["defer_ops"])], env, "C benchmark", 3600)
    if err:
        raise SystemExit("ERROR: " + err)

    cg = None
    if args.no_callgrind:
        notes.append("callgrind skipped (--no-callgrind)")
    elif shutil.which("valgrind"):
        variants = list(c["read"]) if cfg["cg_all"] else [v for v in CALLGRIND_SMOKE if v in c["read"]]
        try:
            cg = callgrind(args.c_bin, env, variants, cfg["cg_k1"], cfg["cg_k2"])
        except (RuntimeError, OSError, IndexError, ValueError) as e:
            errors.append("callgrind: %s" % e)
    else:
        notes.append("valgrind not installed: no instruction counts (make bench installs it)")

    swift = None
    if args.swift_bin and os.path.exists(args.swift_bin):
        swift, err = run_json([args.swift_bin, "--ops", str(cfg["swift_ops"]), "--reps", str(cfg["reps"])],
                              env, "Swift benchmark", 3600)
        if err:
            errors.append(err)
    else:
        notes.append("Swift benchmark not built: no Swift rows")

    py = None
    if os.path.exists(args.python_bench):
        penv = dict(env)
        penv["SWIFTRCU_LIBRARY"] = os.path.join(prefix, "lib", "libswiftrcu.so")
        penv["PYTHONPATH"] = os.path.join(ROOT, "bindings", "python") + (
            ":" + penv["PYTHONPATH"] if penv.get("PYTHONPATH") else "")
        py, err = run_json([sys.executable, args.python_bench, "--ops", str(cfg["python_ops"]), "--repeat",
                            str(cfg["reps"])], penv, "bench_python.py", 3600)
        if err:
            errors.append(err)
        elif not isinstance(py, dict) or not isinstance(py.get("results"), dict):
            errors.append("bench_python.py: JSON has no \"results\" object")
            py = None
    else:
        notes.append("bench/bench_python.py not present: no Python rows")

    rp = None
    fd, rp_path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    r = sh([os.path.join(HERE, "check-readpath.sh"), "--json", rp_path, os.path.join(prefix, "lib", "libswiftrcu.so")])
    try:
        with open(rp_path) as f:
            rp = json.load(f)
    except (OSError, ValueError):
        errors.append("check-readpath.sh: %s" % (r.stderr.strip() or r.stdout.strip())[-500:])
    os.unlink(rp_path)
    return {"machine": machine, "mode": args.mode, "config": cfg, "run_notes": notes, "errors": errors,
            "readpath": rp, "callgrind": cg, "raw": {"c": c, "swift": swift, "python": py}}


def report(run, results, update_readme_path, rotate):
    """Derives rows and targets from a run, writes results/latest.*, prints the table."""
    machine, cfg, mode = run["machine"], run["config"], run["mode"]
    c, swift, py = run["raw"]["c"], run["raw"]["swift"], run["raw"]["python"]
    cg, rp, errors = run["callgrind"], run["readpath"], list(run["errors"])
    smoke = mode == "smoke"
    notes = []
    if machine.get("loadavg_start") and machine["loadavg_start"][0] > 0.5:
        notes.append("load average %.2f at start: other processes share the CPUs; figures are noisier"
                     % machine["loadavg_start"][0])
    notes += run["run_notes"]
    if c.get("own_cpus_run") == 0:
        notes.append("nproc %s: the 1 reader + 1 writer (own CPUs) runs need 2 CPUs and were skipped" % c.get("nproc"))
    share2 = cpu_shares(c).get("2 threads")
    if share2 is not None and share2 < 0.9:
        notes.append("the 2-thread runs got %.0f%% of two CPUs (other load): their scaling understates the "
                     "code's" % (share2 * 100))
    rows = build_rows(c, swift, py, cg)
    targets = apply_targets(rows, smoke)

    os.makedirs(results, exist_ok=True)
    latest = os.path.join(results, "latest.json")
    prev, prev_cfg = None, None
    if os.path.exists(latest):
        try:
            with open(latest) as f:
                old = json.load(f)
            prev = {(x["group"], x["variant"]): x["median"] for x in old.get("rows", [])}
            prev_cfg = old.get("config")
            if rotate:
                shutil.copyfile(latest, os.path.join(results, "previous.json"))
        except (OSError, ValueError, KeyError, TypeError):
            prev = None
    if not rotate:  # re-rendering: compare with the run before, as the measuring run did
        try:
            with open(os.path.join(results, "previous.json")) as f:
                old = json.load(f)
            prev = {(x["group"], x["variant"]): x["median"] for x in old.get("rows", [])}
            prev_cfg = old.get("config")
        except (OSError, ValueError, KeyError, TypeError):
            prev = None
    if prev is not None and prev_cfg != cfg:
        notes.append("the previous run had other op counts or repetitions: compare its changes with care")

    with open(latest, "w") as f:
        json.dump(no_nan(dict(run, rows=rows, targets=targets, notes=notes)), f, indent=1)
    write_csv(os.path.join(results, "latest.csv"), rows)
    chart_note = chart(os.path.join(results, "chart.png"), rows)
    if chart_note:
        notes.append(chart_note)

    met = [t for t in targets if t["measured"]]
    summary = "Targets met: %d of %d measured (%s)." % (
        sum(1 for t in met if t["met"]), len(met),
        "; ".join("%s: %s" % (t["target"], "met" if t["met"] else "NOT met") for t in met)) if not smoke \
        else "Smoke run: tiny op counts, targets not judged."
    md = ["# SwiftRCU benchmark: latest results", ""] + machine_lines(machine, c, cfg, mode) + [""]
    md += table_lines(rows, smoke) + ["", summary, ""]
    if breakdown_lines(cg):
        md += ["Instructions per read section by function (callgrind, self cost):", ""] + breakdown_lines(cg) + [""]
    if rp:
        md += ["Read path disassembly (check-readpath.sh):", ""] + readpath_lines(rp) + [""]
    md += ["Note: " + n for n in notes] + ["Error: " + e for e in errors]
    with open(os.path.join(results, "latest.md"), "w") as f:
        f.write("\n".join(md).rstrip() + "\n")

    print()
    print("\n".join(machine_lines(machine, c, cfg, mode)))
    print()
    print("\n".join(table_lines(rows, smoke, prev)))
    print()
    print(summary)
    if breakdown_lines(cg):
        print()
        print("\n".join(breakdown_lines(cg)))
    if rp:
        print()
        print("\n".join(readpath_lines(rp)))
    for n in notes:
        print("Note: " + n)
    for e in errors:
        print("ERROR: " + e)
    if update_readme_path and not smoke:
        chart_copy = None
        if not chart_note:
            # The README shows the chart of the run it reports: a copy kept next to it.
            chart_copy = os.path.join(os.path.dirname(os.path.abspath(update_readme_path)), "latest-chart.png")
            shutil.copyfile(os.path.join(results, "chart.png"), chart_copy)
        update_readme(update_readme_path, md, chart_copy)
    print("\nWrote %s/latest.{json,csv,md}%s" % (os.path.relpath(results), "" if chart_note else " and chart.png"))
    return 1 if errors else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=sorted(MODES), default="full")
    ap.add_argument("--prefix", help="installed SwiftRCU prefix (lib/, include/)")
    ap.add_argument("--c-bin")
    ap.add_argument("--swift-bin")
    ap.add_argument("--python-bench", default=os.path.join(HERE, "bench_python.py"))
    ap.add_argument("--results", default=os.path.join(HERE, "results"),
                    help="results directory; a smoke run writes to its smoke/ subdirectory")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--rerender", metavar="JSON",
                    help="measure nothing: rebuild the table and outputs from a saved latest.json")
    ap.add_argument("--update-readme", metavar="README",
                    help="replace the text between the latest-results markers of README with latest.md")
    for k in ("ops", "reps", "lat_ops", "defer_ops", "swift_ops", "python_ops"):
        ap.add_argument("--" + k.replace("_", "-"), type=int, help="override the mode's %s" % k)
    args = ap.parse_args()

    if args.rerender:
        with open(args.rerender) as f:
            run = json.load(f)
        results = os.path.join(args.results, "smoke") if run["mode"] == "smoke" else args.results
        return report(run, results, args.update_readme, rotate=False)
    if not args.prefix or not args.c_bin:
        ap.error("--prefix and --c-bin are required (unless --rerender)")
    cfg = dict(MODES[args.mode])
    for k in ("ops", "reps", "lat_ops", "defer_ops", "swift_ops", "python_ops"):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    run = measure(args, cfg, os.path.abspath(args.prefix))
    results = os.path.join(args.results, "smoke") if args.mode == "smoke" else args.results
    return report(run, results, args.update_readme, rotate=True)


if __name__ == "__main__":
    sys.exit(main())
