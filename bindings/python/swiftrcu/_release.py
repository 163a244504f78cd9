"""Who holds a published object, and how it is released after its grace period.

Every reference that keeps a published or unpublished object alive is an ordinary Python
reference, so the garbage collector sees it (an Rcu whose object refers back to the Rcu is a
cycle it can collect):

* the object an Rcu publishes now is held by the Rcu (``Rcu._value``; ``Rcu._next`` while a
  write is under way);
* an unpublished object is held by its :class:`RcuOld` (``RcuOld._obj``) until it is released;
* a deferred object is held by the table ``retired`` (object address -> list of references)
  until the library calls the destroy callback for it, after its grace period, on a liburcu
  call_rcu thread; the callback drops one of those references.

The library itself owns no reference: a reader's loader takes its own reference (``Py_IncRef``)
inside its read-side section, and every release waits for a grace period first. ``RcuOld.free``
keeps the object in the RcuOld until ``swiftrcu_old_free`` has returned (the destroy callback it
runs on the calling thread does nothing there).

Async exceptions (KeyboardInterrupt)
------------------------------------
A signal handler runs, and may raise, only where the interpreter checks for pending work: after
a call returns, at the start of a function and on backward jumps, never between two plain
loads, stores or subscripts. So each change of state below is made of plain statements
followed by exactly one foreign call that commits it, and every object that owns a step (an
RcuOld's buffer, the Rcu's ``_next``) is in place before that call. Whatever is cut off after
the call is finished later by the owner (an RcuOld's ``__del__`` defers its handle; the Rcu's
next write reads back what it publishes).
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any, Dict, Generic, List, NoReturn, Optional, TypeVar

from . import _ffi
from ._errors import error, released_error

T = TypeVar("T")
_c_void_p = ctypes.c_void_p
_byref = ctypes.byref


class _State:
    """Process-wide flags, bound into finalizers as default arguments so that they still work
    while module globals are being torn down."""

    exiting = False  # the exit handler has run: releases are left undone
    forking = False  # a fork is being prepared: deferred releases wait in `stash`
    deferred = False  # a release was deferred since the last completed barrier


state = _State()

#: Deferred objects by address: one reference per deferred old handle of that object.
retired: Dict[int, List[Any]] = {}


class _Sync(threading.local):
    """Marks the threads that release synchronously (``swiftrcu_old_free``): the destroy
    callback that such a call runs on its own thread has nothing to drop."""

    active = False


sync = _Sync()


def _make_destroy() -> Any:
    table, marks = retired, sync

    def destroy(address: Optional[int], context: Optional[int]) -> None:
        # Plain subscripts only (no call), so the three steps cannot be interleaved with a
        # writer's or another call_rcu thread's. The last reference is dropped by removing the
        # list, after which nothing else is touched.
        if marks.active or address is None:
            return
        try:
            bucket = table[address]
            try:
                bucket[1]
            except IndexError:
                del table[address]
            else:
                del bucket[-1]
        except KeyError:  # not deferred by this package: nothing to drop
            pass

    callback = _ffi.DESTROY_FN(destroy)
    # The library may call it until the process ends: keep it alive through interpreter
    # teardown too.
    _ffi.incref(callback)
    return callback


DESTROY = _make_destroy()


def unretire(address: int) -> None:
    """Takes back one reference that RcuOld._defer added, for a deferral that did not happen."""
    try:
        bucket = retired[address]
        try:
            bucket[1]
        except IndexError:
            del retired[address]
        else:
            del bucket[-1]
    except KeyError:
        pass


#: Old handles deferred while a fork was being prepared; queued again after it.
stash: List[int] = []


def defer_handle(handle: int) -> int:
    """swiftrcu_old_defer, except while a fork is prepared (see _process); returns the status."""
    if state.forking:
        stash.append(handle)
        return _ffi.OK
    state.deferred = True
    return _ffi.old_defer(handle)


def drain_stash() -> None:
    while stash and not state.forking and not state.exiting:
        try:
            handle = stash.pop()
        except IndexError:
            return
        defer_handle(handle)


#: Handles of closed or collected Rcu objects, publishing NULL, for reuse by new ones (a finalizer
#: cannot wait for the grace period that swiftrcu_free needs). At most as many as were alive at
#: once.
pool: List[int] = []


class RcuOld(Generic[T]):
    """An unpublished object that readers may still hold (the kernel's ``RcuOld``).

    Call exactly one of :meth:`free` and :meth:`defer`. One that is garbage-collected without
    either is deferred. A second free/defer, or ``value`` afterwards, raises RcuError
    (SWIFTRCU_EINVAL).
    """

    # _buf: the old handle (the replace call writes it), None once claimed by free or defer;
    # _ref: byref(_buf); _claimed: the handle from its claim until the release call returned (so
    # that __del__ can finish a release an async exception cut short), else 0; _obj: the object
    # until it is released or handed to the retired table.
    __slots__ = ("_buf", "_ref", "_claimed", "_obj", "__weakref__")
    _buf: ctypes.c_void_p
    _ref: Any
    _claimed: int
    _obj: Any

    def __new__(cls, *args: Any, **kwargs: Any) -> "RcuOld[Any]":
        raise TypeError("RcuOld objects are returned by Rcu.replace() and Rcu.copy_update()")

    @property
    def value(self) -> T:
        """The unpublished object."""
        obj = self._obj
        if obj is None or not self._buf.value:
            raise released_error()
        return obj  # type: ignore[no-any-return]

    def free(self) -> None:
        """Waits for a grace period, then releases the object.

        Raises DeadlockError inside a read-side section (the RcuOld stays valid).
        """
        handle = self._buf.value
        if not handle:
            raise released_error()
        # Claimed with plain statements: a concurrent free/defer finds it released.
        self._buf.value = None
        self._claimed = handle
        sync.active = True  # this thread's synchronous destroys drop nothing (see the module)
        status = _ffi.old_free(handle)
        if status:
            if status != _ffi.EINVAL:  # EDEADLK: nothing changed
                self._buf.value = handle
                self._claimed = 0
            raise released_error() if status == _ffi.EINVAL else error(
                status, "free() waits for a grace period")
        self._claimed = 0
        self._obj = None  # the grace period has passed: the last reference may go

    def defer(self) -> None:
        """Releases the object after a grace period, asynchronously (on a liburcu thread).
        Never blocks; allowed inside a read-side section. See :func:`barrier`."""
        handle = self._buf.value
        if not handle:
            raise released_error()
        if state.exiting:
            # At interpreter exit the release is left undone: it could run after the
            # interpreter is gone.
            self._buf.value = None
            return
        if self._defer(handle):
            raise released_error()  # stale: freed or deferred by another thread meanwhile

    def _defer(self, handle: int) -> int:
        """Claims `handle` (if not claimed yet), hands the object to the retired table and
        defers the handle; returns the status."""
        obj = self._obj
        address = id(obj)
        # Plain statements from the claim to the call (see the module).
        self._buf.value = None
        self._claimed = handle
        if obj is not None:  # into the retired table, with no call before the commit
            try:
                bucket = retired[address]
            except KeyError:
                retired[address] = [obj]
            else:
                bucket += (obj,)
            self._obj = None
        if state.forking:
            waiting = stash
            waiting += (handle,)
            status = _ffi.OK
        else:
            state.deferred = True
            status = _ffi.old_defer(handle)
        if status and obj is not None:
            unretire(address)  # not deferred: its destroy will not come
        self._claimed = 0
        return status

    @property
    def released(self) -> bool:
        """True once free() or defer() was called."""
        return not self._buf.value

    def __del__(self, _state: _State = state) -> None:
        try:
            handle = self._buf.value or self._claimed
        except AttributeError:  # never initialised
            return
        if not handle or _state.exiting:
            return
        try:
            self._defer(handle)
        except Exception:
            pass

    def __reduce__(self) -> NoReturn:
        raise TypeError("a swiftrcu.RcuOld cannot be copied or pickled")

    def __repr__(self) -> str:
        return f"<swiftrcu.RcuOld {'released' if not self._buf.value else 'pending'}>"


_new_object = object.__new__


def blank_old() -> "RcuOld[Any]":
    """An RcuOld with an empty handle buffer, for a replace to fill."""
    old: RcuOld[Any] = _new_object(RcuOld)
    old._obj = None
    old._claimed = 0
    buf = _c_void_p()
    old._ref = _byref(buf)
    old._buf = buf
    return old


# --------------------------------------------------------------------------------------------
# Grace periods


def synchronize() -> None:
    """Waits for a grace period: every read-side section open when the call began has ended.

    Raises DeadlockError inside a read-side section.
    """
    status = _ffi.synchronize()
    if status:
        raise error(status, "synchronize() waits for a grace period")


def barrier() -> None:
    """Waits until every release requested by ``RcuOld.defer`` (or by collection of an RcuOld
    or Rcu) before the call has run.

    Raises DeadlockError inside a read-side section or from a deferred release itself.
    """
    state.deferred = False
    status = _ffi.barrier()
    if status:
        state.deferred = True
        raise error(status, "barrier() waits for deferred releases")
