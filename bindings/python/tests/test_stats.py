"""swiftrcu.stats(): a frozen dataclass equal to the C library's counters read in the same
process, and the exact change of each counter across a known scenario."""

from __future__ import annotations

import ctypes
import dataclasses
import gc
import threading
import time
from typing import Iterator, List

import pytest

import swiftrcu
from swiftrcu._stats import _CStats

FIELDS = [
    "grace_periods", "deferred_queued", "deferred_completed", "deferred_pending",
    "deferred_pending_peak", "objects_destroyed", "ptrs_live", "olds_live",
    "threads_registered", "threads_registered_total", "threads_exited_in_section",
    "writer_pauses", "writer_pause_ns", "edeadlk_refusals", "eperm_refusals", "einval_refusals",
]


def c_counters() -> List[int]:
    """The counters through a ctypes call of our own to the same library file."""
    fn = ctypes.PyDLL(swiftrcu.library_path).swiftrcu_stats_get
    fn.argtypes = [ctypes.POINTER(_CStats)]
    fn.restype = ctypes.c_int
    raw = _CStats()
    raw.size = ctypes.sizeof(raw)
    assert fn(ctypes.byref(raw)) == 0
    assert raw.size == 8 + 8 * len(FIELDS)
    return [getattr(raw, name) for name in FIELDS]


@pytest.fixture
def quiet() -> Iterator[None]:
    """No collection (whose finalisers could release objects) while the test reads counters."""
    swiftrcu.barrier()
    gc.collect()
    swiftrcu.barrier()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def delta(before: swiftrcu.Statistics, after: swiftrcu.Statistics) -> dict:
    return {k: getattr(after, k) - getattr(before, k) for k in FIELDS}


def test_fields_and_frozen() -> None:
    s = swiftrcu.stats()
    assert [f.name for f in dataclasses.fields(s)] == FIELDS
    assert list(s.as_dict()) == FIELDS
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.grace_periods = 0  # type: ignore[misc]
    assert str(s).split(" ")[0].startswith("grace_periods=")
    assert len(str(s).split(" ")) == len(FIELDS)


def test_equals_c_counters_in_same_process(quiet: None) -> None:
    py = swiftrcu.stats()
    c = c_counters()
    assert [getattr(py, k) for k in FIELDS] == c
    swiftrcu.synchronize()
    c2 = c_counters()
    assert c2[0] == c[0] + 1  # the wait just made, seen by the C call
    assert swiftrcu.stats().grace_periods == c2[0]


def test_exact_deltas(quiet: None) -> None:
    # Warm up: this thread registered, liburcu's call_rcu worker adopted.
    with swiftrcu.read_lock():
        pass

    n, m, k = 4, 6, 3
    before = swiftrcu.stats()
    r = swiftrcu.Rcu(["v0"])
    for i in range(n):
        old = r.replace([f"v{i + 1}"])
        assert old is not None
        old.free()
    d = delta(before, swiftrcu.stats())
    assert d["grace_periods"] == n
    assert d["objects_destroyed"] == n
    assert d["ptrs_live"] in (0, 1)  # the binding may reuse the handle of a closed Rcu
    assert d["olds_live"] == 0

    before = swiftrcu.stats()
    olds = [r.replace([f"w{i}"]) for i in range(m)]
    assert delta(before, swiftrcu.stats())["olds_live"] == m
    for old in olds:
        assert old is not None
        old.defer()
    del olds
    swiftrcu.barrier()
    after = swiftrcu.stats()
    d = delta(before, after)
    assert d["deferred_queued"] == m
    assert d["deferred_completed"] == m
    assert d["objects_destroyed"] == m
    assert d["olds_live"] == 0
    assert d["grace_periods"] == 0
    assert after.deferred_pending == 0
    assert after.deferred_pending_peak >= 1

    # k threads that exit holding a read lock (the guards are kept alive past the threads' exit).
    kept: List[swiftrcu.Guard] = []
    before = swiftrcu.stats()
    threads = [threading.Thread(target=lambda: kept.append(swiftrcu.read_lock())) for _ in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Thread.join() returns when the Python thread is done, which can be just before its OS
    # thread runs the library's exit handler: wait (boundedly) for the handlers.
    deadline = time.monotonic() + 10
    while True:
        after = swiftrcu.stats()
        if (after.threads_exited_in_section - before.threads_exited_in_section >= k
                and after.threads_registered <= before.threads_registered) or time.monotonic() > deadline:
            break
        time.sleep(0.001)
    # The guards stay referenced here: dropped on their own threads they would have been unlocked
    # there. Dropped later on this thread, they do nothing (their sections ended with their threads).
    d = delta(before, after)
    assert d["threads_registered_total"] == k
    assert d["threads_exited_in_section"] == k
    assert d["threads_registered"] == 0
    swiftrcu.synchronize()  # nobody waits for the dead threads

    # Refusals: EDEADLK from a wait inside a section (returned by the C library); the binding's
    # own refusals (an out-of-order unlock, a closed Rcu) never reach it and are not counted.
    before = swiftrcu.stats()
    with swiftrcu.read_lock() as outer:
        with pytest.raises(swiftrcu.DeadlockError):
            swiftrcu.synchronize()
        with pytest.raises(swiftrcu.DeadlockError):
            swiftrcu.barrier()
        inner = swiftrcu.read_lock()
        with pytest.raises(swiftrcu.RcuError):
            outer.unlock()  # not the innermost
        inner.unlock()
    r.close()
    with pytest.raises(swiftrcu.RcuError):
        r.replace(["after close"])
    d = delta(before, swiftrcu.stats())
    assert d["edeadlk_refusals"] == 2
    assert d["eperm_refusals"] == 0  # the binding checks its guards' order itself
    assert d["einval_refusals"] == 0
    assert d["grace_periods"] == 1  # close() waits once
    assert d["objects_destroyed"] == 1
