"""Many threads at once: readers never see a released object; every object is released once."""

from __future__ import annotations

import gc
import json
import random
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Dict, List

import pytest

import swiftrcu
from conftest import Obj, Tracker, library_env, run_python

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


# Writers whose copy_update functions each write the next one's Rcu: n threads, n Rcus, thread i
# holds Rcu i's writer lock (its copy_update) and waits for Rcu i+1's (a replace in its function).
# Run in a child interpreter: without detection every thread of the cycle waits forever.
WRITER_CYCLE = textwrap.dedent("""
    import faulthandler, gc, json, os, sys, threading, time, weakref
    import swiftrcu

    faulthandler.dump_traceback_later(60, exit=True)  # a hang after the joins: where, then exit
    n, stagger = int(sys.argv[1]), float(sys.argv[2])

    class Item:
        __slots__ = ("name", "__weakref__")
        def __init__(self, name):
            self.name = name

    live = weakref.WeakSet()
    def make(name):
        item = Item(name)
        live.add(item)
        return item

    rcus = [swiftrcu.Rcu(make(f"r{i}")) for i in range(n)]
    all_inside = threading.Barrier(n, timeout=20)
    outcome = [None] * n

    def writer(i):
        mine, other = rcus[i], rcus[(i + 1) % n]

        def fn(current):
            all_inside.wait()  # every thread holds its own Rcu's writer lock now
            time.sleep(stagger * i)  # with a stagger, thread i starts waiting i-th
            old = other.replace(make(f"replaced by t{i}"))
            if old is not None:
                old.defer()  # inside a read-side section: free() would be refused
            return make(f"updated by t{i}")

        try:
            old = mine.copy_update(fn)
            old.free()
            outcome[i] = "ok"
        except swiftrcu.DeadlockError as exc:
            outcome[i] = ["DeadlockError", exc.status, str(exc)]
        except BaseException as exc:
            outcome[i] = ["other", repr(exc)]

    threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    hung = [i for i, t in enumerate(threads) if t.is_alive()]
    if hung:
        print(json.dumps({"hung": hung, "outcome": outcome}))
        sys.stdout.flush()
        os._exit(3)
    values = [r.read().name for r in rcus]
    swiftrcu.synchronize()  # grace periods end again
    # Both Rcus stay usable, from any thread.
    for i, r in enumerate(rcus):
        r.replace(make(f"after {i}")).free()
        r.copy_update(lambda current: make(current.name + "+")).free()
    after = [r.read().name for r in rcus]
    for r in rcus:
        r.close()
    del r
    for _ in range(3):
        swiftrcu.barrier()
        gc.collect()
    print(json.dumps({"hung": [], "outcome": outcome, "values": values, "after": after,
                      "leaked": len(live)}))
""")


def _run_writer_cycle(n: int, stagger: float = 0.0) -> Dict[str, Any]:
    code = WRITER_CYCLE.replace("sys.argv[1]", repr(str(n))).replace("sys.argv[2]", repr(stagger))
    try:
        done = run_python(code, library_env(), timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail(f"a cycle of {n} writers hung")
    assert done.returncode != 3, f"a cycle of {n} writers hung: {done.stdout[-2000:]}"
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    result: Dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("n,stagger", [(2, 0.0), (3, 0.0), (4, 0.0), (2, 0.2), (3, 0.2)])
def test_a_write_that_would_close_a_cycle_of_writers_is_refused(n: int, stagger: float) -> None:
    result = _run_writer_cycle(n, stagger)
    outcome = result["outcome"]
    refused = [i for i, o in enumerate(outcome) if o != "ok"]
    assert len(refused) == 1, outcome  # exactly one writer of the cycle is refused
    i = refused[0]
    if stagger:
        assert i == n - 1, outcome  # the last to start waiting, whose wait closes the cycle
    kind, status, message = outcome[i]
    assert kind == "DeadlockError" and status == swiftrcu.EDEADLK, outcome
    assert f"replace() would close a cycle of {n} writers waiting on each other" in message, message
    # The refused thread changed nothing: its copy_update published nothing and its replace was
    # refused. Every other Rcu got its copy_update's object, then the previous thread's replace.
    expected = [f"replaced by t{(j - 1) % n}" for j in range(n)]
    expected[(i + 1) % n] = f"updated by t{(i + 1) % n}"
    assert result["values"] == expected, (result, i)
    assert result["after"] == [f"after {j}+" for j in range(n)], result
    assert result["leaked"] == 0, result


def test_a_write_from_inside_the_rcus_own_copy_update_is_refused() -> None:
    r = swiftrcu.Rcu(1)
    refused: List[str] = []

    def fn(current: Any) -> Any:
        for what, call in (("replace", lambda: r.replace(5)),
                           ("copy_update", lambda: r.copy_update(lambda c: 6)),
                           ("close", r.close)):
            with pytest.raises(swiftrcu.DeadlockError) as info:
                call()
            assert f"{what}() from inside this Rcu's own copy_update()" in str(info.value)
            refused.append(what)
        return current + 1

    old = r.copy_update(fn)
    assert old is not None and old.value == 1
    old.free()
    assert refused == ["replace", "copy_update", "close"] and r.read() == 2
    # The writer lock is free again, for this thread and for others.
    other = threading.Thread(target=lambda: r.replace(3).free())  # type: ignore[union-attr]
    other.start()
    other.join(10)
    assert not other.is_alive() and r.read() == 3
    r.close()


def test_the_writer_lock_holder_is_read_from_the_lock() -> None:
    # The cycle detection reads a writer lock's holder from CPython's RLock repr; should that
    # format change, this fails instead of the detection going quiet.
    from swiftrcu import _writer

    lock = threading.RLock()
    assert _writer.holder(lock) == 0
    with lock:
        assert _writer.holder(lock) == threading.get_ident()
        with lock:
            assert _writer.holder(lock) == threading.get_ident()
    assert _writer.holder(lock) == 0
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            taken.set()
            done.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    assert taken.wait(10)
    try:
        assert _writer.holder(lock) == t.ident != threading.get_ident()
    finally:
        done.set()
        t.join(10)
    assert _writer.holder(lock) == 0


# Contended writers that never form a cycle: threads that take Rcu a's writer lock and then b's or
# c's (a write inside a copy_update of a), threads that write only a or only b, slow functions so
# that waiters time out and walk the wait-for chain. No write may be refused.
ACYCLIC_WRITERS = textwrap.dedent("""
    import faulthandler, gc, json, random, sys, threading, time, weakref
    import swiftrcu
    from swiftrcu import _writer

    faulthandler.dump_traceback_later(90, exit=True)
    seconds = float(sys.argv[1])
    walks = [0]
    real_walk = _writer._walk
    def counting_walk(lock):
        walks[0] += 1
        return real_walk(lock)
    _writer._walk = counting_walk

    a, b, c = swiftrcu.Rcu(0), swiftrcu.Rcu(0), swiftrcu.Rcu(object())
    done = {"a": 0, "b": 0}
    count_lock = threading.Lock()
    problems = []
    end = time.monotonic() + seconds

    def bump(name):
        with count_lock:
            done[name] += 1

    def slow_increment(rnd, hold, name):
        def fn(current):
            time.sleep(rnd.random() * hold)
            return current + 1
        return fn

    def nested(seed):  # a, then b inside it
        rnd = random.Random(seed)
        while time.monotonic() < end:
            def fn(current):
                time.sleep(rnd.random() * 0.02)
                if rnd.random() < 0.5:
                    old = b.copy_update(slow_increment(rnd, 0.005, "b"))
                else:
                    c.replace(object()).defer()  # and a third Rcu, in the same order
                    old = b.copy_update(lambda v: v + 1)
                old.defer()
                bump("b")
                return current + 1
            a.copy_update(fn).free()
            bump("a")

    def only(rcu, name, seed, hold):
        rnd = random.Random(seed)
        while time.monotonic() < end:
            rcu.copy_update(slow_increment(rnd, hold, name)).defer()
            bump(name)

    def guarded(target, *args):
        try:
            target(*args)
        except BaseException as exc:
            problems.append(repr(exc))

    threads = [threading.Thread(target=guarded, args=(nested, i), daemon=True) for i in range(3)]
    threads += [threading.Thread(target=guarded, args=(only, a, "a", 10, 0.015), daemon=True),
                threading.Thread(target=guarded, args=(only, b, "b", 11, 0.015), daemon=True),
                threading.Thread(target=guarded, args=(only, b, "b", 12, 0.0), daemon=True)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + seconds + 30
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    hung = [t.name for t in threads if t.is_alive()]
    values = {"a": a.read(), "b": b.read()}
    swiftrcu.synchronize()
    for r in (a, b, c):
        r.close()
    print(json.dumps({"hung": hung, "problems": problems, "done": done, "values": values,
                      "walks": walks[0]}))
""")


def test_contended_writers_without_a_cycle_are_never_refused() -> None:
    done = run_python(ACYCLIC_WRITERS.replace("sys.argv[1]", repr("3")), library_env(),
                      timeout=120)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["hung"] == [] and result["problems"] == [], result
    # Every update counted is in the value: no write was lost or refused.
    assert result["values"] == result["done"], result
    assert result["done"]["a"] > 20 and result["done"]["b"] > 20, result
    assert result["walks"] > 20, result  # the waiters did look for cycles


FORK_WHILE_A_WRITER_WAITS = textwrap.dedent("""
    import os, threading, time
    import swiftrcu
    from swiftrcu import _writer

    r = swiftrcu.Rcu(0)
    r._writer.acquire()  # stands for a writer that holds the lock
    waiter = threading.Thread(target=lambda: r.replace(1).free())
    waiter.start()
    while waiter.ident not in _writer.waiting:
        time.sleep(0.001)
    pid = os.fork()
    if pid == 0:
        # The waiter does not exist here: its wait is forgotten, and the lock it waited for
        # (held by this thread) works.
        forgotten = list(_writer.waiting) == []
        r._writer.release()
        os._exit(0 if forgotten and r.replace(2).value == 0 and r.read() == 2 else 1)
    _, status = os.waitpid(pid, 0)
    r._writer.release()
    waiter.join(10)
    print("ok" if status == 0 and not waiter.is_alive() and r.read() == 1 else f"failed {status}")
""")


def test_a_forked_child_forgets_the_waits_of_threads_it_does_not_have() -> None:
    done = run_python(FORK_WHILE_A_WRITER_WAITS, library_env(), timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", (done.stdout, done.stderr[-2000:])


def test_a_record_of_a_wait_that_is_not_running_never_makes_a_cycle() -> None:
    # Thread U holds b's writer lock without waiting for anything, but a record says it waits
    # for a's (as a record left behind would). Thread T holds a's lock and waits for b's: the
    # chain b -> U -> a comes back to T, yet U's record never ticks, so T keeps waiting, and
    # goes on once U lets go of b.
    from swiftrcu import _writer

    a, b = swiftrcu.Rcu(0), swiftrcu.Rcu(0)
    holding, let_go = threading.Event(), threading.Event()
    outcome: List[Any] = []

    def u() -> None:
        with b._writer:  # type: ignore[attr-defined]
            holding.set()
            let_go.wait(10)

    def t() -> None:
        def fn(current: Any) -> Any:
            old = b.replace(1)
            if old is not None:
                old.defer()
            return current + 1

        try:
            old = a.copy_update(fn)
            assert old is not None
            old.free()
            outcome.append("ok")
        except BaseException as exc:
            outcome.append(exc)

    holder = threading.Thread(target=u)
    holder.start()
    assert holding.wait(10) and holder.ident is not None
    _writer.waiting[holder.ident] = [a._writer, 0, 0]  # type: ignore[attr-defined]
    try:
        writer = threading.Thread(target=t)
        writer.start()
        time.sleep(30 * _writer.TICK)  # many looks for a cycle
        assert outcome == [], outcome
        let_go.set()
        writer.join(10)
        holder.join(10)
    finally:
        let_go.set()
        _writer.waiting.pop(holder.ident, None)
    assert outcome == ["ok"], outcome
    assert (a.read(), b.read()) == (1, 1)
    a.close()
    b.close()
