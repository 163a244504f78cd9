#!/usr/bin/env python3
"""SwiftRCU from Python: reader threads and a writer share one configuration dict.

Readers look at the current configuration without locks, either with Rcu.read() or inside a
read-side section (read_lock + dereference); the writer publishes a new version with
copy_update and releases the old one after a grace period. Every configuration carries a
checksum of its own contents, so a reader would notice a torn or released one.

Run from the top of the source tree (the library is found through SWIFTRCU_LIBRARY, the
installed library, or the project's build output):

    PYTHONPATH=bindings/python python3 examples/demo.py --readers 3 --seconds 2
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import weakref
from pathlib import Path

try:
    import swiftrcu
except ModuleNotFoundError:  # not installed and no PYTHONPATH: use the source tree's package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bindings" / "python"))
    import swiftrcu


class Config(dict):
    """A configuration version (a dict that can be weakly referenced)."""

    __slots__ = ("__weakref__",)


def checksum(version: int, timeout: float, servers: tuple) -> int:
    return hash((version, timeout, servers))


class Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.published = 0
        self.released = 0
        self.reads = 0
        self.bad = 0

    def add(self, **deltas: int) -> None:
        with self.lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)


def make_config(version: int, counters: Counters) -> Config:
    servers = tuple(f"10.0.0.{(version + i) % 250 + 1}" for i in range(3))
    timeout = 1.0 + version % 7
    config = Config(version=version, timeout=timeout, servers=servers,
                    checksum=checksum(version, timeout, servers))
    counters.add(published=1)
    weakref.finalize(config, counters.add, released=1)
    return config


def consistent(config: Config) -> bool:
    return config["checksum"] == checksum(config["version"], config["timeout"], config["servers"])


def reader(rcu: "swiftrcu.Rcu[Config]", stop: threading.Event, counters: Counters) -> None:
    reads = bad = 0
    last_version = -1
    while not stop.is_set():
        for _ in range(100):
            if reads % 2:
                config = rcu.read()
            else:
                with swiftrcu.read_lock() as guard:
                    config = rcu.dereference(guard)
            if not consistent(config) or config["version"] < last_version:
                bad += 1
            last_version = config["version"]
            reads += 1
    counters.add(reads=reads, bad=bad)


def writer(rcu: "swiftrcu.Rcu[Config]", stop: threading.Event, counters: Counters,
           pause: float) -> None:
    updates = 0
    while not stop.is_set():
        old = rcu.copy_update(lambda current: make_config(current["version"] + 1, counters))
        if old is not None:
            if updates % 2:
                old.free()   # waits for a grace period here
            else:
                old.defer()  # released later on a liburcu thread
        updates += 1
        if pause:
            time.sleep(pause)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--pause", type=float, default=0.0,
                        help="seconds the writer sleeps between updates (default: none)")
    args = parser.parse_args()

    counters = Counters()
    rcu = swiftrcu.Rcu(make_config(0, counters))
    stop = threading.Event()
    threads = [threading.Thread(target=reader, args=(rcu, stop, counters))
               for _ in range(args.readers)]
    threads.append(threading.Thread(target=writer, args=(rcu, stop, counters, args.pause)))
    started = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    final_version = rcu.read()["version"]
    rcu.close()
    swiftrcu.barrier()  # deferred releases have run

    updates = counters.published - 1
    print(f"demo: {args.readers} readers, 1 writer, {elapsed:.2f} s, library "
          f"{swiftrcu.library_version}: {counters.reads} reads ({counters.reads / elapsed:,.0f}/s), "
          f"{updates} updates ({updates / elapsed:,.0f}/s), versions published "
          f"{counters.published}, released {counters.released}, last version {final_version}, "
          f"inconsistent reads {counters.bad}")
    ok = counters.bad == 0 and counters.published == counters.released
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
