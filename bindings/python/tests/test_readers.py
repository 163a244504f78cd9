"""Rcu.read: a loader bound to the Rcu (one foreign call without arguments), the fallback when
no loader is free, reference counts, and reads that race with close() or collection."""

from __future__ import annotations

import ctypes
import gc
import sys
import threading

import pytest

import swiftrcu
from swiftrcu import _ffi, _rcu, _release


def test_read_is_a_bound_loader_returning_new_references() -> None:
    value = object()
    r = swiftrcu.Rcu(value)
    assert isinstance(r.read, _rcu._Loader)
    before = sys.getrefcount(value)
    results = [r.read() for _ in range(1000)]
    assert all(x is value for x in results)
    assert sys.getrefcount(value) == before + 1000  # one reference per result, none stolen
    del results
    assert sys.getrefcount(value) == before
    r.close()


def test_loader_follows_replace_and_maps_none() -> None:
    a, b = object(), object()
    r = swiftrcu.Rcu(None)
    assert r.read() is None
    r.replace(a)
    assert r.read() is a
    r.replace(b).free()
    assert r.read() is b
    r.replace(None).free()
    assert r.read() is None
    r.close()


def test_read_after_close_raises_and_a_racing_read_sees_none() -> None:
    a = object()
    r = swiftrcu.Rcu(a)
    fetched = r.read  # as a thread that fetched rcu.read just before another one closed it
    r.close()
    with pytest.raises(swiftrcu.RcuError) as info:
        r.read()
    assert info.value.name == "SWIFTRCU_EINVAL"
    assert fetched() is None
    # New Rcu objects cannot reuse the handle while the old reader exists.
    others = [swiftrcu.Rcu(object()) for _ in range(20)]
    assert fetched() is None
    for o in others:
        o.close()


def test_handles_are_recycled_once_the_reader_is_gone() -> None:
    r = swiftrcu.Rcu(1)
    handle = r._ptr.value
    fetched = r.read
    r.close()
    assert handle not in _release.pool
    del fetched
    gc.collect()
    assert handle in _release.pool
    n = swiftrcu.Rcu(2)  # takes a handle from the pool
    assert n.read() == 2
    n.close()


def test_collected_rcu_unbinds_its_loader() -> None:
    # More Rcu objects over time than there are loaders: each collected one gives its back.
    for i in range(3 * 1024):
        r = swiftrcu.Rcu(i)
        assert isinstance(r.read, _rcu._Loader)
        assert r.read() == i
        del r
    gc.collect()


def test_without_a_free_loader_read_falls_back() -> None:
    lib = ctypes.PyDLL(swiftrcu.library_path)
    bind = lib.swiftrcu_loader_bind
    bind.restype = ctypes.c_int
    bind.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    unbind = lib.swiftrcu_loader_unbind
    unbind.restype = ctypes.c_int
    unbind.argtypes = [ctypes.c_void_p]
    holder = swiftrcu.Rcu(None)
    taken = []
    try:
        while True:  # take every free loader
            out = ctypes.c_void_p()
            if bind(holder._ptr, _ffi.PY_INCREF, None, ctypes.byref(out)) != swiftrcu.OK:
                break
            taken.append(out.value)
        assert len(taken) <= 1024
        a, b = object(), object()
        r = swiftrcu.Rcu(a)
        assert isinstance(r.read, _rcu._SlowReader)
        before = sys.getrefcount(a)
        assert r.read() is a
        assert sys.getrefcount(a) == before
        r.replace(None).free()
        assert r.read() is None
        r.replace(b)
        assert r.read() is b
        fetched = r.read
        r.close()
        with pytest.raises(swiftrcu.RcuError):
            r.read()
        assert fetched() is None
    finally:
        for address in taken:
            assert unbind(address) == swiftrcu.OK
    holder.close()
    assert isinstance(swiftrcu.Rcu(0).read, _rcu._Loader)


def test_readers_race_writers_and_close() -> None:
    # Readers only ever see published values (or None after close), writers replace them.
    r = swiftrcu.Rcu(("v", 0))
    stop = threading.Event()
    bad = []

    def reader() -> None:
        read = r.read
        while not stop.is_set():
            value = read()
            if value is not None and (not isinstance(value, tuple) or value[0] != "v"):
                bad.append(value)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(1, 2000):
        old = r.replace(("v", i))
        if old is not None:
            old.defer() if i % 2 else old.free()
    r.close()
    stop.set()
    for t in threads:
        t.join()
    swiftrcu.barrier()
    assert bad == []
