"""Ports of the three examples in the doc comments of the Linux kernel Rust `Rcu<P>` patch."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from dataclasses import dataclass

import swiftrcu
from conftest import Tracker


def test_example_1_dereference_under_read_lock() -> None:
    x = swiftrcu.Rcu(100)
    g = swiftrcu.read_lock()
    assert isinstance(g, swiftrcu.Guard)
    # Read under RCU read lock protection.
    v = x.dereference(g)
    assert v == 100
    g.unlock()
    x.close()


@dataclass
class Config:
    a: int
    b: int
    c: int


def test_example_2_reader_keeps_object_while_rcu_is_dropped() -> None:
    config = Config(a=1, b=2, c=3)
    released = threading.Event()
    weakref.finalize(config, released.set)
    cfg = swiftrcu.Rcu(config)
    del config

    dereferenced = threading.Event()
    main_closing = threading.Event()
    events = []  # (what, time) in order
    result = {}

    def worker(cfg_ref: list) -> None:
        with swiftrcu.read_lock() as g:
            v = cfg_ref.pop().dereference(g)  # takes the worker's only reference to the Rcu
            assert not cfg_ref
            dereferenced.set()
            assert main_closing.wait(10)
            time.sleep(0.2)  # main is inside close() now and must be waiting for us
            result["a"] = v.a
            result["released_while_reading"] = released.is_set()
            events.append(("reader left", time.monotonic()))
            del v

    t = threading.Thread(target=worker, args=([cfg],))
    t.start()
    assert dereferenced.wait(10)
    main_closing.set()
    cfg.close()  # waits for the worker's read-side section
    events.append(("close returned", time.monotonic()))
    del cfg
    t.join(10)

    assert result == {"a": 1, "released_while_reading": False}
    assert [what for what, _ in events] == ["reader left", "close returned"]
    gc.collect()
    assert released.is_set()


def test_example_3_replace_under_guard_then_free_old(tracker: Tracker) -> None:
    first, second = tracker.make(100), tracker.make(101)
    x = swiftrcu.Rcu(first)
    g = swiftrcu.read_lock()
    v = x.dereference(g)
    assert v.value == 100

    old = x.replace(second)
    assert isinstance(old, swiftrcu.RcuOld)
    assert v.value == 100  # the reader keeps the object it found
    v = x.dereference(g)
    assert v.value == 101  # a new dereference sees the new one
    g.unlock()

    del v, first
    assert not tracker.is_finalized(1)
    old.free()  # grace period, then the old object is released
    assert tracker.is_finalized(1)
    assert not tracker.is_finalized(2)
    del second
    x.close()
    assert tracker.is_finalized(2)
