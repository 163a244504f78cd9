"""The API surface: publishing, reading, replacing, copy_update, close, errors."""

from __future__ import annotations

import pickle

import pytest

import swiftrcu
from conftest import Tracker


@pytest.mark.parametrize("value", [None, 0, 100, "text", (1, 2), [1], {"k": "v"}, object(), len])
def test_publish_any_object_and_read_it_back_identical(value: object) -> None:
    r = swiftrcu.Rcu(value)
    assert r.read() is value
    with swiftrcu.read_lock() as g:
        assert r.dereference(g) is value
    r.close()


def test_default_value_is_none() -> None:
    r: swiftrcu.Rcu[object] = swiftrcu.Rcu()
    assert r.read() is None
    r.close()


def test_replace_returns_previous_as_rcuold() -> None:
    a, b = object(), object()
    r = swiftrcu.Rcu(a)
    old = r.replace(b)
    assert isinstance(old, swiftrcu.RcuOld)
    assert old.value is a
    assert r.read() is b
    old.free()
    r.close()


def test_replace_from_none_returns_none_and_to_none_returns_old() -> None:
    a = object()
    r = swiftrcu.Rcu(None)
    assert r.replace(a) is None
    old = r.replace(None)
    assert old is not None and old.value is a
    assert r.read() is None
    assert r.replace(None) is None
    old.defer()
    r.close()


def test_copy_update_publishes_function_result() -> None:
    r = swiftrcu.Rcu({"version": 1})
    seen = []

    def bump(current):
        seen.append(current)
        return {"version": current["version"] + 1}

    first = r.read()
    old = r.copy_update(bump)
    assert seen == [first] and seen[0] is first
    assert old is not None and old.value is first
    assert r.read() == {"version": 2}
    old.free()
    r.close()


def test_copy_update_returning_current_changes_nothing() -> None:
    value = {"same": True}
    r = swiftrcu.Rcu(value)
    assert r.copy_update(lambda current: current) is None
    assert r.read() is value
    n = swiftrcu.Rcu(None)
    assert n.copy_update(lambda current: None) is None
    assert n.read() is None
    old = n.copy_update(lambda current: value)
    assert old is None  # the previous value was None
    assert n.read() is value
    r.close()
    n.close()


def test_copy_update_exception_propagates_and_publishes_nothing(tracker: Tracker) -> None:
    current = tracker.make("current")
    r = swiftrcu.Rcu(current)

    class Boom(Exception):
        pass

    def fail(cur):
        candidate = tracker.make("never published")
        raise Boom(candidate.value)

    with pytest.raises(Boom):
        r.copy_update(fail)
    assert r.read() is current
    tracker.settle()
    assert tracker.is_finalized(2)  # the candidate was not kept by the binding
    assert not tracker.is_finalized(1)

    with pytest.raises(KeyboardInterrupt):
        r.copy_update(lambda cur: (_ for _ in ()).throw(KeyboardInterrupt))
    assert r.read() is current
    r.close()


def test_copy_update_function_runs_inside_read_section() -> None:
    r = swiftrcu.Rcu(1)

    def fn(current):
        with pytest.raises(swiftrcu.DeadlockError):
            swiftrcu.synchronize()
        return current + 1

    old = r.copy_update(fn)
    assert r.read() == 2
    old.free()
    r.close()


def test_context_manager_closes() -> None:
    with swiftrcu.Rcu([1, 2]) as r:
        assert r.read() == [1, 2]
        assert not r.closed
    assert r.closed
    with pytest.raises(swiftrcu.RcuError) as info:
        r.read()
    assert info.value.name == "SWIFTRCU_EINVAL"


def test_close_inside_with_block_is_fine() -> None:
    with swiftrcu.Rcu(1) as r:
        r.close()
    assert r.closed


def test_error_attributes_and_hierarchy() -> None:
    r = swiftrcu.Rcu(1)
    r.close()
    with pytest.raises(swiftrcu.RcuError) as info:
        r.close()
    err = info.value
    assert err.status == swiftrcu.EINVAL == -22
    assert err.name == "SWIFTRCU_EINVAL"
    assert "SWIFTRCU_EINVAL" in str(err)
    assert issubclass(swiftrcu.DeadlockError, swiftrcu.RcuError)
    with swiftrcu.read_lock():
        with pytest.raises(swiftrcu.DeadlockError) as dl:
            swiftrcu.synchronize()
    assert dl.value.status == swiftrcu.EDEADLK == -35
    assert dl.value.name == "SWIFTRCU_EDEADLK"
    copy = pickle.loads(pickle.dumps(dl.value))
    assert type(copy) is swiftrcu.DeadlockError and copy.status == swiftrcu.EDEADLK
    assert swiftrcu.RcuError(12345).name == "SWIFTRCU_UNKNOWN"


def test_status_constants() -> None:
    assert (swiftrcu.OK, swiftrcu.EINVAL, swiftrcu.EPERM, swiftrcu.EDEADLK, swiftrcu.ENOMEM) == (
        0, -22, -1, -35, -12)


def test_library_information() -> None:
    assert swiftrcu.library_version.split(".")[0] == "0"
    assert "libswiftrcu" in swiftrcu.library_path


def test_objects_cannot_be_copied_or_pickled() -> None:
    import copy

    r = swiftrcu.Rcu(1)
    old = r.replace(2)
    with swiftrcu.read_lock() as g:
        for thing in (r, old, g):
            with pytest.raises(TypeError):
                pickle.dumps(thing)
            with pytest.raises(TypeError):
                copy.copy(thing)
    with pytest.raises(TypeError):
        swiftrcu.RcuOld()
    old.free()
    r.close()


def test_generic_subscription_for_type_hints() -> None:
    r: swiftrcu.Rcu[int] = swiftrcu.Rcu[int](5)
    assert r.read() == 5
    assert swiftrcu.RcuOld[int] is not None
    r.close()


def test_reprs() -> None:
    r = swiftrcu.Rcu(1)
    assert "open" in repr(r)
    old = r.replace(2)
    assert "pending" in repr(old)
    with swiftrcu.read_lock() as g:
        assert "held" in repr(g)
    assert "spent" in repr(g)
    old.free()
    assert "released" in repr(old) and old.released
    r.close()
    assert "closed" in repr(r)
