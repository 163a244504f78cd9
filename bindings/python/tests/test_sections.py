"""Read-side sections: guards, nesting, calls that would deadlock, and use after close."""

from __future__ import annotations

import threading

import pytest

import swiftrcu
from conftest import Tracker


def test_guards_nest_and_unlock_innermost_first() -> None:
    r = swiftrcu.Rcu("v")
    with swiftrcu.read_lock() as outer:
        with swiftrcu.read_lock() as inner:
            assert r.dereference(inner) == "v"
            assert r.dereference(outer) == "v"  # an outer guard is still held
        assert not inner.held and outer.held
        assert r.dereference(outer) == "v"
        with pytest.raises(swiftrcu.RcuError):
            r.dereference(inner)
    assert not outer.held
    r.close()


def test_out_of_order_unlock_is_refused_and_changes_nothing() -> None:
    outer = swiftrcu.read_lock()
    inner = swiftrcu.read_lock()
    with pytest.raises(swiftrcu.RcuError) as info:
        outer.unlock()
    assert info.value.name == "SWIFTRCU_EPERM"
    assert outer.held and inner.held
    inner.unlock()
    outer.unlock()
    with pytest.raises(swiftrcu.RcuError):
        outer.unlock()  # already spent


def test_nesting_limit_raises_instead_of_crashing() -> None:
    guards = []
    try:
        with pytest.raises(swiftrcu.RcuError) as info:
            for _ in range(1000):
                guards.append(swiftrcu.read_lock())
        assert info.value.name == "SWIFTRCU_EPERM"
        assert len(guards) == 255
    finally:
        for g in reversed(guards):
            g.unlock()


def test_dereference_with_spent_guard_raises() -> None:
    r = swiftrcu.Rcu({"x": 1})
    with swiftrcu.read_lock() as g:
        pass
    with pytest.raises(swiftrcu.RcuError) as info:
        r.dereference(g)
    assert info.value.name == "SWIFTRCU_EPERM"
    r.close()


def test_dereference_of_none_with_valid_guard_is_none() -> None:
    r = swiftrcu.Rcu(None)
    with swiftrcu.read_lock() as g:
        assert r.dereference(g) is None
    r.close()


def test_dereference_needs_a_guard() -> None:
    r = swiftrcu.Rcu(1)
    for bad in (None, 1, "guard", object()):
        with pytest.raises(TypeError):
            r.dereference(bad)  # type: ignore[arg-type]
    r.close()


def test_guard_used_on_another_thread_raises() -> None:
    r = swiftrcu.Rcu("value")
    errors = {}
    with swiftrcu.read_lock() as g:
        def other() -> None:
            for name, call in (("dereference", lambda: r.dereference(g)),
                               ("unlock", g.unlock)):
                try:
                    call()
                except swiftrcu.RcuError as exc:
                    errors[name] = exc.name
        t = threading.Thread(target=other)
        t.start()
        t.join(10)
        assert g.held
        assert r.dereference(g) == "value"
    assert errors == {"dereference": "SWIFTRCU_EPERM", "unlock": "SWIFTRCU_EPERM"}
    r.close()


def test_dropped_guard_is_unlocked() -> None:
    swiftrcu.read_lock()  # dropped at once
    swiftrcu.synchronize()  # would raise DeadlockError if the section were still open

    def forgetful() -> None:
        g = swiftrcu.read_lock()
        assert g.held
        raise ValueError("left without unlocking")

    with pytest.raises(ValueError):
        forgetful()
    swiftrcu.synchronize()


def test_thread_exiting_with_held_guard_does_not_block_writers(tracker: Tracker) -> None:
    r = swiftrcu.Rcu(tracker.make("x"))
    keep = []
    t = threading.Thread(target=lambda: keep.append(swiftrcu.read_lock()))
    t.start()
    t.join(10)
    old = r.replace(None)
    old.free()  # returns: the exited thread's section ended with it
    swiftrcu.synchronize()
    assert tracker.is_finalized(1)
    keep.clear()
    r.close()


@pytest.mark.parametrize("call", ["free", "synchronize", "barrier", "close"])
def test_waiting_calls_inside_read_section_raise_deadlock_and_change_nothing(
        call: str, tracker: Tracker) -> None:
    r = swiftrcu.Rcu(tracker.make("current"))
    old = r.replace(tracker.make("next"))
    with swiftrcu.read_lock():
        with pytest.raises(swiftrcu.DeadlockError) as info:
            if call == "free":
                old.free()
            elif call == "synchronize":
                swiftrcu.synchronize()
            elif call == "barrier":
                swiftrcu.barrier()
            else:
                r.close()
        assert info.value.name == "SWIFTRCU_EDEADLK"
    # Nothing changed: the RcuOld and the Rcu still work.
    assert not old.released and old.value.value == "current"
    assert not r.closed and r.read().value == "next"
    old.free()
    assert tracker.is_finalized(1)
    r.close()
    assert tracker.is_finalized(2)


def test_writes_and_defer_are_allowed_inside_read_section() -> None:
    r = swiftrcu.Rcu(1)
    with swiftrcu.read_lock() as g:
        old = r.replace(2)
        assert r.dereference(g) == 2
        old2 = r.copy_update(lambda cur: cur + 1)
        old.defer()
        old2.defer()
        assert r.read() == 3
    swiftrcu.barrier()
    r.close()


@pytest.mark.parametrize("write", ["replace", "copy_update", "close"])
def test_writing_same_rcu_inside_copy_update_raises_deadlock(write: str) -> None:
    r = swiftrcu.Rcu(1)
    other = swiftrcu.Rcu("other")

    def fn(current):
        if write == "replace":
            r.replace(99)
        elif write == "copy_update":
            r.copy_update(lambda c: 99)
        else:
            r.close()
        return current + 1

    with pytest.raises(swiftrcu.DeadlockError):
        r.copy_update(fn)
    assert r.read() == 1 and not r.closed

    def write_other(current):
        old = other.replace("changed")  # a different Rcu may be written
        old.defer()
        return current + 1

    old = r.copy_update(write_other)
    assert other.read() == "changed" and r.read() == 2
    old.free()
    r.close()
    other.close()


def test_every_use_of_closed_rcu_raises_einval() -> None:
    r = swiftrcu.Rcu(1)
    r.close()
    g = swiftrcu.read_lock()
    calls = {
        "read": r.read,
        "dereference": lambda: r.dereference(g),
        "replace": lambda: r.replace(2),
        "copy_update": lambda: r.copy_update(lambda c: 2),
        "close": r.close,
        "enter": lambda: r.__enter__(),
    }
    try:
        for name, call in calls.items():
            with pytest.raises(swiftrcu.RcuError) as info:
                call()
            assert info.value.name == "SWIFTRCU_EINVAL", name
            assert isinstance(info.value, ValueError), name  # as for a closed file
            assert isinstance(info.value, swiftrcu.ClosedError), name
    finally:
        g.unlock()


def test_a_guard_never_closes_a_c_guards_section() -> None:
    import ctypes

    from swiftrcu._library import GuardStruct

    lib = ctypes.PyDLL(swiftrcu.library_path)
    c_lock = lib.swiftrcu_read_lock
    c_lock.restype = GuardStruct
    c_unlock = lib.swiftrcu_read_unlock
    c_unlock.argtypes = [ctypes.POINTER(GuardStruct)]
    outer = swiftrcu.read_lock()
    c_guard = c_lock()  # a C guard's section inside the Python guard's
    with pytest.raises(swiftrcu.RcuError) as info:
        outer.unlock()
    assert info.value.name == "SWIFTRCU_EPERM"
    assert outer.held  # nothing changed
    assert c_unlock(ctypes.byref(c_guard)) == 0
    outer.unlock()
    assert not outer.held


def test_replace_on_closed_rcu_does_not_keep_the_new_object(tracker: Tracker) -> None:
    r = swiftrcu.Rcu(None)
    r.close()
    with pytest.raises(swiftrcu.RcuError):
        r.replace(tracker.make("new"))
    tracker.assert_all_finalized_once()
