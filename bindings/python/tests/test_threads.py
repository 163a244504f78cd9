"""Many threads at once: readers never see a released object; every object is released once."""

from __future__ import annotations

import gc
import random
import sys
import threading
import time
from typing import List

import pytest

import swiftrcu
from conftest import Obj, Tracker

DURATION = 2.0


def test_torture_readers_and_writers(tracker: Tracker) -> None:
    r = swiftrcu.Rcu(tracker.make(0))
    stop = threading.Event()
    failures: List[str] = []
    counts = {"reads": 0, "writes": 0}
    counts_lock = threading.Lock()

    def check(v: object, how: str) -> None:
        if not isinstance(v, Obj):
            failures.append(f"{how}: got {v!r}")
        elif tracker.is_finalized(v):
            failures.append(f"{how}: object {v.token} was already finalised")

    def reader(seed: int) -> None:
        rnd = random.Random(seed)
        n = 0
        try:
            while not stop.is_set():
                mode = rnd.randrange(3)
                if mode == 0:
                    check(r.read(), "read()")
                elif mode == 1:
                    with swiftrcu.read_lock() as g:
                        v = r.dereference(g)
                        check(v, "dereference")
                        with swiftrcu.read_lock() as inner:  # nested
                            check(r.dereference(inner), "nested dereference")
                        check(v, "dereference, later in the section")
                else:
                    held = r.read()
                    time.sleep(0.0005)  # a strong reference outlives its read
                    check(held, "held read()")
                n += 1
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(f"reader raised {exc!r}")
        with counts_lock:
            counts["reads"] += n

    def writer(seed: int) -> None:
        rnd = random.Random(seed)
        n = 0
        try:
            while not stop.is_set():
                if rnd.random() < 0.5:
                    old = r.replace(tracker.make(n))
                else:
                    old = r.copy_update(lambda cur: tracker.make((cur.value, n)))
                how = rnd.randrange(3)
                if how == 0:
                    old.free()
                elif how == 1:
                    old.defer()
                del old  # how == 2: deferred when collected
                n += 1
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(f"writer raised {exc!r}")
        with counts_lock:
            counts["writes"] += n

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(3)]
    threads += [threading.Thread(target=writer, args=(100 + i,)) for i in range(2)]
    for t in threads:
        t.start()
    time.sleep(DURATION)
    stop.set()
    for t in threads:
        t.join(30)
        assert not t.is_alive()

    assert not failures, failures[:5]
    assert counts["reads"] > 100 and counts["writes"] > 100, counts
    r.close()
    tracker.assert_all_finalized_once()


def test_concurrent_close_and_use_never_crash(tracker: Tracker) -> None:
    for _ in range(20):
        r = swiftrcu.Rcu(tracker.make("x"))
        errors: List[BaseException] = []
        start = threading.Barrier(4)

        def user() -> None:
            start.wait()
            for _ in range(200):
                try:
                    v = r.read()
                    assert v is None or isinstance(v, Obj)
                    with swiftrcu.read_lock() as g:
                        r.dereference(g)
                    old = r.replace(tracker.make("y"))
                    if old is not None:
                        old.defer()
                except swiftrcu.RcuError as exc:
                    if exc.status != swiftrcu.EINVAL:
                        errors.append(exc)
                except BaseException as exc:  # pragma: no cover
                    errors.append(exc)

        def closer() -> None:
            start.wait()
            time.sleep(0.001)
            try:
                r.close()
            except swiftrcu.RcuError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=user) for _ in range(3)]
        threads.append(threading.Thread(target=closer))
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors, errors[:3]
        assert r.closed
    tracker.assert_all_finalized_once()


def test_concurrent_free_of_one_rcuold_releases_once(tracker: Tracker) -> None:
    r = swiftrcu.Rcu(None)
    for _ in range(50):
        r.replace(tracker.make("v"))
        old = r.replace(None)
        outcomes: List[str] = []
        start = threading.Barrier(3)

        def release(how: str) -> None:
            start.wait()
            try:
                getattr(old, how)()
                outcomes.append("ok")
            except swiftrcu.RcuError as exc:
                outcomes.append(exc.name)

        threads = [threading.Thread(target=release, args=(how,))
                   for how in ("free", "defer", "free")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcomes) == ["SWIFTRCU_EINVAL", "SWIFTRCU_EINVAL", "ok"], outcomes
    r.close()
    tracker.assert_all_finalized_once()


class _GilReleasingGarbage:
    """Cyclic garbage whose finalizer releases the GIL while Rcu.read() is collecting."""

    __slots__ = ("me", "__weakref__")

    def __del__(self) -> None:
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_name != "read":
            frame = frame.f_back
        if frame is not None:
            time.sleep(0.0005)


def test_read_survives_collection_that_releases_the_gil(tracker: Tracker) -> None:
    # On Python < 3.12 the allocation inside read() may run a collection whose finalizers
    # release the GIL; a writer then frees the very object being read, unless the binding
    # postpones releases while a collection runs.
    r = swiftrcu.Rcu(tracker.make(0))
    stop = threading.Event()
    writes = [0]

    def writer() -> None:
        i = 1
        while not stop.is_set():
            old = r.replace(tracker.make(i))
            if i % 2:
                old.free()
            else:
                old.defer()
            i += 1
        writes[0] = i

    w = threading.Thread(target=writer)
    thresholds = gc.get_threshold()
    gc.set_threshold(2)
    bad = []
    w.start()
    try:
        deadline = time.monotonic() + DURATION
        while time.monotonic() < deadline:
            garbage = _GilReleasingGarbage()
            garbage.me = garbage
            del garbage
            v = r.read()
            if tracker.is_finalized(v.token):
                bad.append(v.token)
            del v
    finally:
        stop.set()
        w.join(30)
        gc.set_threshold(*thresholds)
    assert writes[0] > 100
    assert not bad, f"read() returned released objects: {bad[:5]}"
    r.close()
    tracker.assert_all_finalized_once()


FORK_SCRIPT = """
import os, signal, sys, threading, time, swiftrcu
r = swiftrcu.Rcu({"v": 1})
stop = threading.Event()
def churn():
    while not stop.is_set():
        r.replace({"v": 1}).defer()   # releases keep running on liburcu threads
        time.sleep(0.0002)
t = threading.Thread(target=churn, daemon=True)
t.start()
for i in range(20):
    pid = os.fork()
    if pid == 0:
        signal.alarm(5)
        try:
            assert r.read() == {"v": 1}
            with swiftrcu.read_lock() as g:
                assert r.dereference(g) == {"v": 1}
            r.replace({"v": 2}).defer()
            swiftrcu.barrier()
            CHILD_EXTRA
        except BaseException as exc:
            print("child failed:", repr(exc), flush=True)
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, (i, status)
stop.set()
t.join()
r.close()
print("ok")
"""


def _run_fork_script(child_extra: str) -> None:
    import os

    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    from conftest import library_env, run_python

    code = FORK_SCRIPT.replace("CHILD_EXTRA", child_extra)
    done = run_python(code, library_env(), timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("ok")


def test_fork_while_releases_are_deferred() -> None:
    # liburcu's fork handler waits for its call_rcu threads, which may be waiting for the GIL
    # that the forking thread holds: the binding drains deferred releases before a fork.
    _run_fork_script("pass")


def test_fork_child_waits_for_grace_periods() -> None:
    _run_fork_script("swiftrcu.synchronize(); r.replace({'v': 3}).free(); r.close()")
