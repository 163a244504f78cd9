#!/usr/bin/env python3
"""SwiftRCU scale benchmark driver: runs bench_scale over its grid (reader threads, live pointers,
deferring writers), each point for SwiftRCU, liburcu used directly and pthread_rwlock, one process
per measurement, repetitions interleaved; prints the tables and writes
results/scale.{json,md} and one chart per series (results/scale-*.png).

Run it through bench/Makefile (`make bench-scale`, `make bench-scale-smoke`); see bench/README.md.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

IMPLS = ["swiftrcu", "urcu", "rwlock"]
LABELS = {"swiftrcu": "SwiftRCU C ABI", "urcu": "liburcu memb, direct [reference]", "rwlock": "pthread_rwlock"}
COLORS = {"swiftrcu": "tab:blue", "urcu": "tab:green", "rwlock": "tab:gray"}

MODES = {
    "full": dict(readers=[1, 2, 4, 8, 16, 32, 64], thread_s=2.0, live=[1, 1000, 100_000, 1_000_000],
                 pointer_s=1.0, writers=[1, 2, 4], flood_s=10.0, reps=3, flood_reps=1),
    "smoke": dict(readers=[1, 4, 64], thread_s=0.05, live=[1, 1000], pointer_s=0.05, writers=[1, 2],
                  flood_s=0.2, reps=1, flood_reps=1),
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(binary, series, impl, n, seconds, env):
    out = subprocess.run([binary, series, impl, str(n), str(seconds)], capture_output=True, text=True,
                         env=env, timeout=seconds * 3 + 300, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{series} {impl} {n}: exit {out.returncode}: {out.stderr.strip()[-400:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def grid(binary, series, points, seconds, reps, env):
    """{(impl, n): [result, ...]}: every repetition runs every point of every implementation."""
    results = {}
    for rep in range(reps):
        for n in points:
            for impl in (IMPLS if rep % 2 == 0 else list(reversed(IMPLS))):
                r = run(binary, series, impl, n, seconds, env)
                results.setdefault((impl, n), []).append(r)
        log(f"{series}: repetition {rep + 1}/{reps} done")
    return results


def med(rs, key):
    vals = [r[key] for r in rs if r.get(key) is not None and r[key] >= 0]
    return statistics.median(vals) if vals else None


def fmt(x, digits=3):
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if abs(x) >= 1e9:
        return f"{x / 1e9:.{digits}g} G"
    if abs(x) >= 1e6:
        return f"{x / 1e6:.{digits}g} M"
    if abs(x) >= 1e3:
        return f"{x / 1e3:.{digits}g} k"
    return f"{x:.{digits}g}"


def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b not in (None, 0) else "-"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def summarise(raw, mode):
    th, pt, fl = raw["threads"], raw["pointers"], raw["flood"]
    s = {"threads": [], "pointers": [], "flood": []}
    for n in mode["readers"]:
        row = {"readers": n}
        for impl in IMPLS:
            rs = th[(impl, n)]
            row[impl] = {"reads_per_s": med(rs, "reads_per_s"), "lat_p50_ns": med(rs, "lat_p50_ns"),
                         "lat_p99_ns": med(rs, "lat_p99_ns"), "writer_ops": med(rs, "writer_ops")}
        s["threads"].append(row)
    for n in mode["live"]:
        row = {"live": n}
        for impl in IMPLS:
            rs = pt[(impl, n)]
            row[impl] = {"ns_per_read": med(rs, "ns_per_read"), "ns_per_plain_read": med(rs, "ns_per_plain_read"),
                         "bytes_per_ptr": med(rs, "bytes_per_ptr")}
        s["pointers"].append(row)
    for n in mode["writers"]:
        row = {"writers": n}
        for impl in IMPLS:
            rs = fl[(impl, n)]
            row[impl] = {k: med(rs, k) for k in ("updates_per_s", "peak_rss_kb", "rss_start_kb", "pending_peak",
                                                 "writer_pauses", "writer_pause_s", "drain_s")}
            row[impl]["stopped_early"] = any(r["stopped_early"] for r in rs)
        s["flood"].append(row)
    return s


def render(s, meta):
    out = [f"Scale run: {meta['mode']}, {meta['cpus']} CPUs ({meta['machine']}), "
           f"{meta['reps']} interleaved repetition(s) per point (median), one process per measurement; "
           f"flood {meta['flood_s']} s per point.", ""]
    out.append(f"**Readers** (flat out, under one writer replacing back to back; readers beyond "
               f"{meta['cpus']} CPUs are over-subscribed). Read throughput is the readers' total; latency is "
               "one replace + free, with the number of writer operations it is taken from "
               "(ours: replace + old_free; liburcu: xchg + synchronize_rcu + free; rwlock: wrlock + store + "
               "unlock + free).")
    out.append("")
    rows = []
    for r in s["threads"]:
        a, u, w = r["swiftrcu"], r["urcu"], r["rwlock"]
        rows.append([r["readers"], fmt(a["reads_per_s"]), fmt(u["reads_per_s"]), fmt(w["reads_per_s"]),
                     ratio(a["reads_per_s"], u["reads_per_s"]),
                     f"{fmt(a['lat_p50_ns'])} / {fmt(a['lat_p99_ns'])} ({fmt(a['writer_ops'])})",
                     f"{fmt(u['lat_p50_ns'])} / {fmt(u['lat_p99_ns'])} ({fmt(u['writer_ops'])})",
                     f"{fmt(w['lat_p50_ns'])} / {fmt(w['lat_p99_ns'])} ({fmt(w['writer_ops'])})",
                     ratio(a["lat_p99_ns"], u["lat_p99_ns"])])
    out.append(table(["readers", "SwiftRCU reads/s", "liburcu reads/s", "rwlock reads/s", "ours / liburcu",
                      "SwiftRCU p50 / p99 ns (ops)", "liburcu p50 / p99 ns (ops)", "rwlock p50 / p99 ns (ops)",
                      "p99 ours / liburcu"], rows))
    out.append("")
    out.append("**Live pointers** (one thread reads them at random, no writer; \"plain\" is the same loop "
               "reading through an unprotected pointer array: index, pointer and field loads). Bytes per "
               "pointer: the program's own entry (handle, pointer, or lock + pointer) plus the resident "
               "set the library added while creating them.")
    out.append("")
    rows = []
    for r in s["pointers"]:
        a, u, w = r["swiftrcu"], r["urcu"], r["rwlock"]
        rows.append([f"{r['live']:,}", fmt(a["ns_per_read"]), fmt(u["ns_per_read"]), fmt(w["ns_per_read"]),
                     fmt(a["ns_per_plain_read"]), ratio(a["ns_per_read"], u["ns_per_read"]),
                     fmt(a["bytes_per_ptr"]), fmt(u["bytes_per_ptr"]), fmt(w["bytes_per_ptr"])])
    out.append(table(["live pointers", "SwiftRCU ns/read", "liburcu ns/read", "rwlock ns/read", "plain ns/read",
                      "ours / liburcu", "SwiftRCU B/ptr", "liburcu B/ptr", "rwlock B/ptr"], rows))
    out.append("")
    out.append("**Deferred-destroy flood** (each writer replaces its own pointer with a new 64-byte object "
               "and defers the old one's destroy, back to back; one reader reads them all; ours: "
               "replace + old_defer; liburcu: xchg + call_rcu; rwlock: frees at once). Peak RSS sampled "
               "every 10 ms; pending peak: ours from swiftrcu_stats_get, liburcu's counted the same way "
               "by the benchmark.")
    out.append("")
    rows = []
    for r in s["flood"]:
        a, u, w = r["swiftrcu"], r["urcu"], r["rwlock"]

        def mb(x):
            return "-" if x is None else f"{x / 1024:.0f}"
        rows.append([r["writers"], fmt(a["updates_per_s"]), fmt(u["updates_per_s"]), fmt(w["updates_per_s"]),
                     mb(a["peak_rss_kb"]) + (" (stopped)" if a["stopped_early"] else ""),
                     mb(u["peak_rss_kb"]) + (" (stopped)" if u["stopped_early"] else ""),
                     mb(w["peak_rss_kb"]), fmt(a["pending_peak"]), fmt(u["pending_peak"]),
                     f"{fmt(a['writer_pauses'])} / {fmt(a['writer_pause_s'])} s"])
    out.append(table(["writers", "SwiftRCU updates/s", "liburcu updates/s", "rwlock updates/s",
                      "SwiftRCU peak RSS MiB", "liburcu peak RSS MiB", "rwlock peak RSS MiB",
                      "SwiftRCU pending peak", "liburcu pending peak", "SwiftRCU writer pauses / time"], rows))
    return "\n".join(out)


def charts(s, meta, prefix):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ["matplotlib not installed: no charts (make bench-scale installs it)"]
    made = []

    def line(ax, xs, key_of, impl, label=None, style="-o"):
        ys = [key_of(impl, i) for i in range(len(xs))]
        pts = [(x, y) for x, y in zip(xs, ys) if y is not None and y > 0]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=COLORS[impl], label=label or LABELS[impl])

    # Readers.
    xs = [r["readers"] for r in s["threads"]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(14, 5))
    for impl in IMPLS:
        line(a, xs, lambda im, i: s["threads"][i][im]["reads_per_s"], impl)
        line(b, xs, lambda im, i: s["threads"][i][im]["lat_p50_ns"], impl, LABELS[impl] + " p50", "-o")
        line(b, xs, lambda im, i: s["threads"][i][im]["lat_p99_ns"], impl, LABELS[impl] + " p99", "--^")
    for ax in (a, b):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs])
        ax.set_xlabel(f"reader threads ({meta['cpus']} CPUs: beyond that over-subscribed)")
        ax.axvline(meta["cpus"], color="k", lw=0.5, ls=":")
        ax.legend(fontsize=7)
    a.set_ylabel("reads/s, all readers (log; higher is better)")
    a.set_title("Read throughput under one writer")
    b.set_ylabel("ns per replace + free (log; lower is better)")
    b.set_title("Writer latency: replace + free (p50, p99)")
    fig.tight_layout()
    fig.savefig(prefix + "threads.png", dpi=100)
    plt.close(fig)
    made.append(prefix + "threads.png")

    # Live pointers.
    xs = [r["live"] for r in s["pointers"]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(14, 5))
    for impl in IMPLS:
        line(a, xs, lambda im, i: s["pointers"][i][im]["ns_per_read"], impl)
        line(b, xs, lambda im, i: s["pointers"][i][im]["bytes_per_ptr"], impl)
    plain = [(x, r["swiftrcu"]["ns_per_plain_read"]) for x, r in zip(xs, s["pointers"])]
    a.plot([p[0] for p in plain], [p[1] for p in plain], ":x", color="k", label="plain loads (no protection)")
    for ax in (a, b):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("live pointers, read at random")
        ax.legend(fontsize=7)
    a.set_ylabel("ns per read section (log; lower is better)")
    a.set_title("Read cost vs live pointers (1 thread)")
    b.set_ylabel("bytes per live pointer (log)")
    b.set_title("Memory per live pointer (entry + library's resident set)")
    fig.tight_layout()
    fig.savefig(prefix + "pointers.png", dpi=100)
    plt.close(fig)
    made.append(prefix + "pointers.png")

    # Flood.
    xs = [r["writers"] for r in s["flood"]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(14, 5))
    width = 0.27
    for k, impl in enumerate(IMPLS):
        a.bar([i + (k - 1) * width for i in range(len(xs))],
              [(s["flood"][i][impl]["peak_rss_kb"] or 0) / 1024 for i in range(len(xs))], width,
              color=COLORS[impl], label=LABELS[impl])
        if impl != "rwlock":
            b.bar([i + (k - 0.5) * width for i in range(len(xs))],
                  [s["flood"][i][impl]["pending_peak"] or 0 for i in range(len(xs))], width,
                  color=COLORS[impl], label=LABELS[impl])
    for ax in (a, b):
        ax.set_xticks(range(len(xs)))
        ax.set_xticklabels([f"{x} writer(s)" for x in xs])
        ax.legend(fontsize=7)
    a.set_ylabel("peak resident set, MiB (lower is better)")
    a.set_title(f"Deferred-destroy flood, {meta['flood_s']} s: peak RSS")
    b.set_yscale("log")
    b.set_ylabel("destroys pending at the peak (log)")
    b.set_title("Peak of pending deferred destroys")
    fig.tight_layout()
    fig.savefig(prefix + "flood.png", dpi=100)
    plt.close(fig)
    made.append(prefix + "flood.png")
    return made


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="the bench_scale program")
    ap.add_argument("--prefix", required=True, help="where SwiftRCU is installed (lib/ is used)")
    ap.add_argument("--mode", choices=sorted(MODES), default="full")
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    ap.add_argument("--reps", type=int, help="repetitions of the reader and pointer series")
    ap.add_argument("--flood-seconds", type=float, help="length of each flood")
    ap.add_argument("--rerender", metavar="JSON", help="only rebuild the tables and charts from a scale.json")
    args = ap.parse_args()
    mode = dict(MODES[args.mode])
    if args.reps:
        mode["reps"] = args.reps
    if args.flood_seconds:
        mode["flood_s"] = args.flood_seconds
    out_dir = args.results if args.mode == "full" else os.path.join(args.results, "smoke")
    os.makedirs(out_dir, exist_ok=True)

    if args.rerender:
        with open(args.rerender) as f:
            doc = json.load(f)
        s, meta = doc["summary"], doc["meta"]
    else:
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = os.path.join(args.prefix, "lib") + (
            ":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
        env.pop("SWIFTRCU_STATS", None)
        meta = {"mode": args.mode, "cpus": os.cpu_count(), "machine": platform.machine(), "reps": mode["reps"],
                "flood_s": mode["flood_s"]}
        raw = {
            "threads": grid(args.bin, "threads", mode["readers"], mode["thread_s"], mode["reps"], env),
            "pointers": grid(args.bin, "pointers", mode["live"], mode["pointer_s"], mode["reps"], env),
            "flood": grid(args.bin, "flood", mode["writers"], mode["flood_s"], mode["flood_reps"], env),
        }
        s = summarise(raw, mode)
        doc = {"meta": meta, "summary": s,
               "raw": {k: [{"impl": i, "n": n, "runs": rs} for (i, n), rs in v.items()] for k, v in raw.items()}}
        with open(os.path.join(out_dir, "scale.json"), "w") as f:
            json.dump(doc, f, indent=1)
    text = render(s, meta)
    with open(os.path.join(out_dir, "scale.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    for made in charts(s, meta, os.path.join(out_dir, "scale-")):
        log(f"chart: {made}")
    # Every implementation ran every point and read something.
    bad = [(k, r) for k in ("threads", "pointers") for r in s[k] for impl in IMPLS
           if not r[impl][("reads_per_s" if k == "threads" else "ns_per_read")]]
    if bad:
        log(f"run_scale: missing results: {bad}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
