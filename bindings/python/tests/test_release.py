"""Every published object is released exactly once, after a grace period."""

from __future__ import annotations

import gc
import sys
import time
import weakref

import pytest

import swiftrcu
from conftest import SectionHolder, Tracker


def test_publication_holds_exactly_one_reference() -> None:
    obj = object()
    base = sys.getrefcount(obj)
    r = swiftrcu.Rcu(obj)
    assert sys.getrefcount(obj) == base + 1
    for _ in range(1000):
        r.read()
    with swiftrcu.read_lock() as g:
        for _ in range(1000):
            r.dereference(g)
    assert sys.getrefcount(obj) == base + 1
    old = r.replace(None)
    assert sys.getrefcount(obj) == base + 1  # still owned by the RcuOld
    for _ in range(100):
        assert old.value is obj
    assert sys.getrefcount(obj) == base + 1
    old.free()
    assert sys.getrefcount(obj) == base
    r.close()


def test_object_published_in_two_rcus_is_released_once_per_publication() -> None:
    obj = object()
    base = sys.getrefcount(obj)
    r1 = swiftrcu.Rcu(obj)
    r2 = swiftrcu.Rcu(obj)
    assert sys.getrefcount(obj) == base + 2
    assert r1.replace(obj) is None  # the current object again: nothing changes
    assert sys.getrefcount(obj) == base + 2
    old = r1.replace(None)
    assert old is not None and old.value is obj
    old.free()
    assert sys.getrefcount(obj) == base + 1
    r1.close()
    r2.close()
    assert sys.getrefcount(obj) == base


def test_replace_with_current_object_neither_releases_nor_leaks_it() -> None:
    class Value:
        pass

    obj = Value()
    ref = weakref.ref(obj)
    r = swiftrcu.Rcu(obj)
    for _ in range(3):
        assert r.replace(obj) is None
    del obj
    swiftrcu.barrier()
    gc.collect()
    assert ref() is not None and r.read() is ref()  # still published, never released
    r.close()
    gc.collect()
    assert ref() is None  # released once the Rcu let it go: no reference leaked


def test_free_releases_after_readers_leave(tracker: Tracker) -> None:
    obj = tracker.make("old")
    r = swiftrcu.Rcu(obj)
    reader = SectionHolder(r)
    reader.start()
    old = r.replace(tracker.make("new"))
    del obj
    reader.seen.clear()  # the reader's own strong reference; the published one remains

    import threading
    freed = threading.Event()
    t = threading.Thread(target=lambda: (old.free(), freed.set()))
    t.start()
    time.sleep(0.2)
    assert not freed.is_set(), "free() returned while a reader could still hold the object"
    assert not tracker.is_finalized(1)
    reader.release()
    t.join(10)
    assert freed.is_set()
    assert tracker.is_finalized(1)
    r.close()


def test_defer_waits_for_readers_and_barrier_waits_for_defer(tracker: Tracker) -> None:
    r = swiftrcu.Rcu(tracker.make("old"))
    reader = SectionHolder(r)
    reader.start()
    reader.seen.clear()
    old = r.replace(None)
    old.defer()
    assert old.released
    time.sleep(0.2)
    assert not tracker.is_finalized(1), "released while a reader's section was open"
    reader.release()
    swiftrcu.barrier()
    assert tracker.is_finalized(1)
    r.close()


def test_rcuold_collected_without_free_or_defer_is_deferred(tracker: Tracker) -> None:
    r = swiftrcu.Rcu(tracker.make("old"))
    reader = SectionHolder(r)
    reader.start()
    reader.seen.clear()
    old = r.replace(None)
    del old  # deferred, not leaked and not released at once
    time.sleep(0.1)
    assert not tracker.is_finalized(1)
    reader.release()
    swiftrcu.barrier()
    assert tracker.is_finalized(1)
    r.close()


def test_rcuold_in_reference_cycle_is_deferred_when_collected(tracker: Tracker) -> None:
    r = swiftrcu.Rcu(tracker.make("old"))
    old = r.replace(None)
    cycle: list = [old]
    cycle.append(cycle)
    del old, cycle
    swiftrcu.barrier()
    assert not tracker.is_finalized(1)  # the cycle keeps the RcuOld alive
    gc.collect()
    swiftrcu.barrier()
    assert tracker.is_finalized(1)
    r.close()


def test_close_releases_current_after_readers_leave(tracker: Tracker) -> None:
    import threading

    r = swiftrcu.Rcu(tracker.make("current"))
    reader = SectionHolder(r)
    reader.start()
    reader.seen.clear()
    closed = threading.Event()
    t = threading.Thread(target=lambda: (r.close(), closed.set()))
    t.start()
    time.sleep(0.2)
    assert not closed.is_set(), "close() returned while a reader was in its section"
    assert not tracker.is_finalized(1)
    reader.release()
    t.join(10)
    assert closed.is_set()
    swiftrcu.barrier()
    assert tracker.is_finalized(1)


def test_collected_rcu_releases_current_like_a_deferred_rcuold(tracker: Tracker) -> None:
    r = swiftrcu.Rcu(tracker.make("current"))
    reader = SectionHolder(r)
    reader.start()
    reader.seen.clear()
    reader.rcu = None
    del r
    time.sleep(0.1)
    assert not tracker.is_finalized(1)
    reader.release()
    swiftrcu.barrier()
    assert tracker.is_finalized(1)


def test_rcu_collected_inside_a_read_section(tracker: Tracker) -> None:
    r = swiftrcu.Rcu(tracker.make("current"))
    with swiftrcu.read_lock() as g:
        v = r.dereference(g)
        del r  # its finalizer cannot wait for a grace period here, and does not
        assert v.value == "current"
        del v
    swiftrcu.barrier()
    assert tracker.is_finalized(1)


def test_many_rcus_created_and_collected_reuse_handles(tracker: Tracker) -> None:
    for i in range(2000):
        r = swiftrcu.Rcu(tracker.make(i))
        assert r.read().value == i
        del r
    tracker.assert_all_finalized_once()


def test_released_objects_are_finalised_exactly_once(tracker: Tracker) -> None:
    r = swiftrcu.Rcu(tracker.make(0))
    olds = []
    for i in range(1, 300):
        old = r.replace(tracker.make(i)) if i % 3 else r.copy_update(
            lambda cur, i=i: tracker.make(i))
        mode = i % 4
        if mode == 0:
            old.free()
        elif mode == 1:
            old.defer()
        elif mode == 2:
            olds.append(old)
        del old
    olds.clear()
    r.close()
    tracker.assert_all_finalized_once()


def test_second_free_or_defer_raises_einval() -> None:
    r = swiftrcu.Rcu(1)
    for first in ("free", "defer"):
        for second in ("free", "defer"):
            old = r.replace([first, second])  # a new object each time
            assert old is not None
            getattr(old, first)()
            with pytest.raises(swiftrcu.RcuError) as info:
                getattr(old, second)()
            assert info.value.name == "SWIFTRCU_EINVAL"
            with pytest.raises(swiftrcu.RcuError) as info:
                old.value
            assert info.value.status == swiftrcu.EINVAL
    r.close()
