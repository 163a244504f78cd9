"""The Python API over the SwiftRCU C ABI: Rcu, RcuOld, Guard, read_lock and friends.

How a Python object is published
--------------------------------
Publishing takes one strong reference (``Py_IncRef``) and hands the object's address to the
library as the C object. The library calls the destroy callback exactly once per published
object, after a grace period; the callback drops that reference (``Py_DecRef``). ``None`` is
published as NULL. The callback is a ctypes function, which takes the interpreter lock (GIL)
itself, so it may run on a liburcu call_rcu thread.

Why a reader never sees a released object
-----------------------------------------
* ``dereference(guard)`` converts the address to an object while the guard's read-side section
  is held, so the grace period that precedes the release cannot have ended.
* ``read()`` is a loader bound to the Rcu (``swiftrcu_loader_bind``): one foreign call without
  arguments, whose retain function (``Py_IncRef``) takes the caller's reference inside the
  read-side section, so the object cannot be released before the reader holds it. It keeps the
  GIL (``Py_IncRef`` needs it) and needs no argument conversion, which is most of what a ctypes
  call costs. A loader stands in ``None`` for a published NULL. Without a free loader (more than
  SWIFTRCU_LOADERS_MAX at once in the process) ``read()`` calls ``swiftrcu_load_retained``.
* Objects returned by ``RcuOld.value`` are converted while the GIL is held, before any bytecode
  runs; the destroy callback needs the GIL. One gap remains on Python < 3.12, where the small
  result wrapper's allocation may start a garbage collection whose finalizers can release the
  GIL; while a collection runs, the destroy callback therefore postpones its releases (see
  ``_gc_running``).

Writers
-------
Writers of one Rcu are serialised by a lock of the binding. ``copy_update`` runs the user's
function under that lock and inside a read-side section, then publishes with
``swiftrcu_replace``. It does not use ``swiftrcu_copy_update``: if an exception escaped a ctypes
callback before its first line (KeyboardInterrupt, RecursionError), ctypes would hand the library
an uninitialised return value, which it would publish.
"""

from __future__ import annotations

import atexit
import collections
import ctypes
import gc
import os
import sys
import threading
import weakref
from typing import Any, Callable, Generic, List, NoReturn, Optional, TypeVar

from . import _library
from ._library import EDEADLK, EINVAL, ENOMEM, EPERM, OK, Borrowed, GuardStruct, declare

__all__ = [
    "Rcu", "RcuOld", "Guard", "read_lock", "synchronize", "barrier",
    "RcuError", "DeadlockError", "OK", "EINVAL", "EPERM", "EDEADLK", "ENOMEM",
    "library_path", "library_version",
]

T = TypeVar("T")

_cdll, _pydll, library_path, library_version = _library.open_library()

_c_void_p = ctypes.c_void_p
_c_int = ctypes.c_int
_get_ident = threading.get_ident

# Free-threaded builds have no GIL to order readers against the destroy callback.
_GIL = getattr(sys, "_is_gil_enabled", lambda: True)()
# Before 3.12 an allocation may run a garbage collection on the spot (later versions defer it
# to the next bytecode boundary).
_GC_IN_ALLOCATION = _GIL and sys.version_info < (3, 12)


class _State:
    """Process-wide flags, bound into finalizers as default arguments so that they still work
    while module globals are being torn down."""

    exiting = False  # the exit handler has run: releases are left undone
    forking = False  # a fork is being prepared: deferred releases wait in _stash
    deferred = False  # a release was deferred since the last completed barrier


_state = _State()


# --------------------------------------------------------------------------------------------
# Errors

_strerror = declare(_pydll, "swiftrcu_strerror", ctypes.c_char_p, [_c_int])


class RcuError(RuntimeError):
    """A SwiftRCU call failed. ``status`` is the C status code, ``name`` its name
    (``"SWIFTRCU_EINVAL"``, ``"SWIFTRCU_EDEADLK"``, ...)."""

    status: int
    name: str
    detail: Optional[str]

    def __init__(self, status: int, detail: Optional[str] = None) -> None:
        text = (_strerror(status) or b"SWIFTRCU_UNKNOWN: unknown status").decode("utf-8", "replace")
        self.status = status
        self.name = text.split(":", 1)[0]
        self.detail = detail
        super().__init__(text if detail is None else f"{text} ({detail})")

    def __reduce__(self) -> Any:
        return (type(self), (self.status, self.detail))


class DeadlockError(RcuError):
    """The call would wait forever (``SWIFTRCU_EDEADLK``): a grace-period wait inside a read-side
    section, or a write to an Rcu from inside its own copy_update function. Nothing changed."""

    def __init__(self, status: int = EDEADLK, detail: Optional[str] = None) -> None:
        super().__init__(status, detail)


def _error(status: int, detail: Optional[str] = None) -> RcuError:
    return (DeadlockError if status == EDEADLK else RcuError)(status, detail)


def _status_check(detail: str) -> Callable[..., int]:
    """An errcheck that turns a non-zero status into RcuError / DeadlockError."""

    def check(status: int, func: Any, args: Any) -> int:
        if status != OK:
            raise _error(status, detail)
        return status

    return check


def _handle_check(detail: str) -> Callable[..., int]:
    """An errcheck for functions that return a new handle, NULL when out of memory."""

    def check(handle: Optional[int], func: Any, args: Any) -> int:
        if not handle:
            raise RcuError(ENOMEM, detail)
        return handle

    return check


def _closed_error() -> RcuError:
    return RcuError(EINVAL, "the Rcu is closed")


def _released_error() -> RcuError:
    return RcuError(EINVAL, "the RcuOld was already freed or deferred")


# --------------------------------------------------------------------------------------------
# Foreign functions. PyDLL: never blocks, keeps the GIL. CDLL: may wait, releases the GIL.

_api = ctypes.PyDLL(None)  # the running interpreter's C API (what ctypes.pythonapi is)
_incref = declare(_api, "Py_IncRef", None, [ctypes.py_object])
_decref = declare(_api, "Py_DecRef", None, [_c_void_p])
_PY_INCREF = ctypes.cast(_api["Py_IncRef"], _c_void_p).value  # the readers' retain function
_NONE = id(None)  # what a loader returns for a published NULL (None lives as long as Python)

_new = declare(_pydll, "swiftrcu_new", _c_void_p,
               [_c_void_p, _library.DESTROY_FN, _c_void_p], _handle_check("swiftrcu_new"))
_replace = declare(_pydll, "swiftrcu_replace", _c_int,
                   [_c_void_p, _c_void_p, ctypes.POINTER(_c_void_p)],
                   _status_check("swiftrcu_replace"))
_dereference = declare(_pydll, "swiftrcu_dereference", Borrowed,
                       [_c_void_p, ctypes.POINTER(GuardStruct)])
# Takes a reference with Py_IncRef inside the read-side section; the result wrapper takes another
# (a plain py_object result would crash on NULL).
_load_retained = declare(_pydll, "swiftrcu_load_retained", Borrowed, [_c_void_p, _c_void_p])
_loader_bind = declare(_pydll, "swiftrcu_loader_bind", _c_int,
                       [_c_void_p, _c_void_p, _c_void_p, ctypes.POINTER(_c_void_p)])
_loader_unbind = declare(_pydll, "swiftrcu_loader_unbind", _c_int, [_c_void_p])
_UNLOCK_REFUSED = ("the guard is not this thread's innermost held read-side section: already"
                   " unlocked, taken by another thread, or an inner guard is still held")
_read_unlock = declare(_pydll, "swiftrcu_read_unlock", _c_int, [ctypes.POINTER(GuardStruct)],
                       _status_check(_UNLOCK_REFUSED))
# The same function taking the Guard's address as an integer and returning the status unchecked,
# for Guard.unlock and __exit__ (about 150 ns less per unlock than the structure pointer and the
# errcheck). Only ever given the address of a Guard (self).
_read_unlock_at = declare(_pydll, "swiftrcu_read_unlock", _c_int, [_c_void_p])
_addressof = ctypes.addressof
_old_object = declare(_pydll, "swiftrcu_old_object", Borrowed, [_c_void_p])
_thread_unregister = declare(_pydll, "swiftrcu_thread_unregister", _c_int, [],
                             _status_check("swiftrcu_thread_unregister"))
_thread_register = declare(_pydll, "swiftrcu_thread_register", _c_int, [],
                           _status_check("swiftrcu_thread_register"))

# old_defer pauses (at most 10 ms) once too many destroys are pending: it must not hold the GIL
# then, as the destroys it waits for need it.
_old_defer = declare(_cdll, "swiftrcu_old_defer", _c_int, [_c_void_p],
                     _status_check("swiftrcu_old_defer"))
_old_free = declare(_cdll, "swiftrcu_old_free", _c_int, [_c_void_p],
                    _status_check("free() waits for a grace period"))
_synchronize = declare(_cdll, "swiftrcu_synchronize", _c_int, [],
                       _status_check("synchronize() waits for a grace period"))
_barrier = declare(_cdll, "swiftrcu_barrier", _c_int, [],
                   _status_check("barrier() waits for deferred releases"))


# --------------------------------------------------------------------------------------------
# Releasing published references

# Releases postponed while a garbage collection was running (Python < 3.12 only).
_postponed: List[int] = []

if _GC_IN_ALLOCATION:
    # Each OrderedDict's last key is the phase it saw last. The front one is the first gc
    # callback and the back one the last, and both are C methods (no bytecode, so no GIL
    # switch before they record). A collection is running from the front "start" to the back
    # "stop"; after the back "stop" the collecting thread finishes its allocation and takes its
    # reference without running bytecode.
    _gc_front = collections.OrderedDict.fromkeys(("start", "stop"))
    _gc_back = collections.OrderedDict.fromkeys(("start", "stop"))
    _gc_idle = collections.OrderedDict.fromkeys(("start", "stop"))
    # gc calls them as callback(phase, info): move_to_end(key=phase, last=info), info is truthy.
    _gc_front_cb: Any = _gc_front.move_to_end
    _gc_back_cb: Any = _gc_back.move_to_end

    def _gc_running() -> bool:
        # OrderedDict equality is order-sensitive and allocates nothing, so this check cannot
        # start a collection itself.
        try:
            return not (_gc_front == _gc_idle and _gc_back == _gc_idle)
        except RuntimeError:  # mutated while compared
            return True

    def _watch_gc() -> None:
        """Puts the two recorders first and last in gc.callbacks (again, if code moved them)."""
        if _gc_running():
            return
        callbacks = gc.callbacks
        if callbacks and callbacks[0] is _gc_front_cb and callbacks[-1] is _gc_back_cb:
            return
        while _gc_front_cb in callbacks:
            callbacks.remove(_gc_front_cb)
        while _gc_back_cb in callbacks:
            callbacks.remove(_gc_back_cb)
        callbacks.insert(0, _gc_front_cb)
        callbacks.append(_gc_back_cb)

    _watch_gc()
else:
    def _gc_running() -> bool:
        return False

    def _watch_gc() -> None:
        pass


def _make_flush(postponed: List[int], running: Callable[[], bool],
                decref: Any) -> Callable[[], None]:
    def flush() -> None:
        """Drops the postponed references, unless a collection is running."""
        while postponed and not running():
            try:
                address = postponed.pop()
            except IndexError:
                return
            decref(address)

    return flush


_flush_postponed = _make_flush(_postponed, _gc_running, _decref)


def _make_destroy() -> Any:
    decref = _decref
    if not _GC_IN_ALLOCATION:
        def destroy(address: int, context: Optional[int]) -> None:
            decref(address)
    else:
        postponed, running, flush = _postponed, _gc_running, _flush_postponed

        def destroy(address: int, context: Optional[int]) -> None:
            if running():
                postponed.append(address)
                return
            if postponed:
                flush()
            decref(address)

    callback = _library.DESTROY_FN(destroy)
    # The library may call it until the process ends: keep it alive through interpreter
    # teardown too.
    _incref(callback)
    return callback


_DESTROY = _make_destroy()


def _publish(value: Any) -> Optional[int]:
    """Takes the reference that a publication owns; returns the C object (NULL for None)."""
    if value is None:
        return None
    _incref(value)
    return id(value)


def _unpublish(address: Optional[int]) -> None:
    """Gives back a reference taken by _publish for a publication that did not happen."""
    if address is not None:
        _decref(address)


# Handles of closed or collected Rcu objects, publishing NULL, for reuse by new ones (a finalizer
# cannot wait for the grace period that swiftrcu_free needs). At most as many as were alive at
# once.
_pool: List[int] = []

# Old handles deferred while a fork was being prepared; queued again after it.
_stash: List[int] = []


def _defer_old(handle: int) -> None:
    """swiftrcu_old_defer, except while a fork is prepared (see _before_fork)."""
    if _state.forking:
        _stash.append(handle)
        return
    _state.deferred = True
    _old_defer(handle)


def _drain_stash() -> None:
    while _stash and not _state.forking and not _state.exiting:
        try:
            handle = _stash.pop()
        except IndexError:
            return
        _defer_old(handle)


# --------------------------------------------------------------------------------------------
# Read side


class Guard(GuardStruct):
    """Evidence that this thread holds a read-side critical section (the kernel's ``Guard``).

    Returned by :func:`read_lock`. Use it as a context manager or call :meth:`unlock`. Guards
    nest and must be unlocked innermost first, on the thread that took them. A held guard that
    is dropped is unlocked then, if that is still allowed.
    """

    @property
    def held(self) -> bool:
        """False once the guard was unlocked (a spent guard is all zeroes)."""
        return self._thread != 0

    def unlock(self) -> None:
        """Leaves the section. Raises RcuError (SWIFTRCU_EPERM) when this is not the thread's
        innermost held guard: already unlocked, another thread's, or an inner one is held."""
        status = _read_unlock_at(_addressof(self))
        if status:
            raise _error(status, _UNLOCK_REFUSED)

    def __enter__(self) -> "Guard":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._thread:  # unlock() inlined: this is every with-block's exit
            status = _read_unlock_at(_addressof(self))
            if status:
                raise _error(status, _UNLOCK_REFUSED)

    def __del__(self, _state: _State = _state) -> None:
        if self._thread and not _state.exiting:
            try:
                _read_unlock(self)
            except Exception:
                pass

    def __reduce__(self) -> NoReturn:
        raise TypeError("a swiftrcu.Guard cannot be copied or pickled")

    def __copy__(self) -> NoReturn:
        raise TypeError("a swiftrcu.Guard cannot be copied")

    def __deepcopy__(self, memo: Any) -> NoReturn:
        raise TypeError("a swiftrcu.Guard cannot be copied")

    def __repr__(self) -> str:
        return f"<swiftrcu.Guard {'held' if self._thread else 'spent'}>"


_read_lock = declare(_pydll, "swiftrcu_read_lock", Guard, [])


def read_lock() -> Guard:
    """Enters a read-side critical section and returns its :class:`Guard` (the kernel's
    ``rcu::read_lock()``). Nestable; never blocks.

    Inside a section, calls that wait for a grace period (``RcuOld.free``, ``Rcu.close``,
    :func:`synchronize`, :func:`barrier`) raise :class:`DeadlockError`.
    """
    guard = _read_lock()
    if not guard._thread:
        raise RcuError(EPERM, "cannot enter a read-side section: 255 sections are already"
                              " nested, or the thread is exiting")
    return guard


def _current_thread_serial() -> int:
    """The library's identity of the calling thread, from a probe section; 0 if unavailable."""
    probe = _read_lock()
    serial = probe._thread
    if serial:
        _read_unlock(probe)
    return serial


# --------------------------------------------------------------------------------------------
# Rcu and RcuOld


class RcuOld(Generic[T]):
    """An unpublished object that readers may still hold (the kernel's ``RcuOld``).

    Call exactly one of :meth:`free` and :meth:`defer`. One that is garbage-collected without
    either is deferred. A second free/defer, or ``value`` afterwards, raises RcuError
    (SWIFTRCU_EINVAL).
    """

    __slots__ = ("_old", "__weakref__")
    _old: Optional[int]

    def __new__(cls, *args: Any, **kwargs: Any) -> "RcuOld[Any]":
        raise TypeError("RcuOld objects are returned by Rcu.replace() and Rcu.copy_update()")

    @classmethod
    def _adopt(cls, handle: Optional[int]) -> Optional["RcuOld[Any]"]:
        if not handle:
            return None
        self = object.__new__(cls)
        self._old = handle
        return self

    @property
    def value(self) -> T:
        """The unpublished object."""
        handle = self._old
        if handle is None:
            raise _released_error()
        try:
            return _old_object(handle)
        except ValueError:
            raise _released_error() from None

    def free(self) -> None:
        """Waits for a grace period, then releases the object.

        Raises DeadlockError inside a read-side section (the RcuOld stays valid).
        """
        handle = self._old
        if handle is None:
            raise _released_error()
        _old_free(handle)
        self._old = None

    def defer(self) -> None:
        """Releases the object after a grace period, asynchronously (on a liburcu thread).
        Never blocks; allowed inside a read-side section. See :func:`barrier`."""
        handle = self._old
        if handle is None:
            raise _released_error()
        # Spent before the call, which lets other threads run while it may pause.
        self._old = None
        # At interpreter exit the release is left undone: it could run after the interpreter
        # is gone.
        if not _state.exiting:
            _defer_old(handle)

    @property
    def released(self) -> bool:
        """True once free() or defer() was called."""
        return self._old is None

    def __del__(self, _state: _State = _state) -> None:
        handle = getattr(self, "_old", None)
        if handle is None or _state.exiting:
            return
        self._old = None
        try:
            _defer_old(handle)
        except Exception:
            pass

    def __reduce__(self) -> NoReturn:
        raise TypeError("a swiftrcu.RcuOld cannot be copied or pickled")

    def __repr__(self) -> str:
        return f"<swiftrcu.RcuOld {'released' if self._old is None else 'pending'}>"


# --------------------------------------------------------------------------------------------
# Readers: what Rcu.read is. Each owns its Rcu's handle for reading: the handle goes back to
# _pool only when the reader itself is gone, so a thread that fetched rcu.read just before the
# Rcu was closed or collected can never read another Rcu's object through a reused handle (it
# reads None instead).

_LoaderPrototype = ctypes.PYFUNCTYPE(ctypes.py_object)


class _Loader(_LoaderPrototype):  # type: ignore[misc, valid-type]
    """A bound loader: a zero-argument C function that returns the current object with a new
    reference (None for None). Keeps the GIL. Bound with None as if_null, it never returns NULL
    (which a py_object result cannot take)."""

    _flags_ = _LoaderPrototype._flags_
    _restype_ = ctypes.py_object
    _argtypes_ = ()
    __slots__ = ("_address", "_handle", "_recycle")

    def __del__(self, _state: _State = _state) -> None:
        if _state.exiting:
            return
        try:
            _loader_unbind(self._address)
            if self._recycle:
                _pool.append(self._handle)
        except Exception:
            pass


class _SlowReader:
    """Rcu.read when no loader was free: one call with arguments."""

    __slots__ = ("_handle", "_recycle")

    def __init__(self, handle: int) -> None:
        self._handle = handle
        self._recycle = False

    def __call__(self) -> Any:
        try:
            value = _load_retained(self._handle, _PY_INCREF)
        except ValueError:  # NULL: None is published
            return None
        _decref(id(value))  # the reference Py_IncRef took: `value` holds one of its own
        return value

    def __del__(self, _state: _State = _state) -> None:
        if self._recycle and not _state.exiting:
            _pool.append(self._handle)


def _make_reader(handle: int) -> Callable[[], Any]:
    address = _c_void_p()
    if _loader_bind(handle, _PY_INCREF, _NONE, ctypes.byref(address)) != OK:
        return _SlowReader(handle)
    loader = _Loader(address.value)
    loader._address = address.value
    loader._handle = handle
    loader._recycle = False
    return loader


def _read_closed() -> NoReturn:
    raise _closed_error()


class Rcu(Generic[T]):
    """An RCU-protected reference to one Python object (the kernel's ``Rcu<P>``).

    Readers use :meth:`read`, or :func:`read_lock` and :meth:`dereference`: no locks, never
    blocked by writers. Writers :meth:`replace` the object or :meth:`copy_update` it and get the
    previous one back as an :class:`RcuOld`, which releases it after a grace period.

    Every published object is released (its reference dropped) exactly once, after a grace
    period: through its RcuOld, or by :meth:`close` (also used by ``with``) for the current one.
    A collected Rcu releases its current object like a deferred RcuOld. After close() every use
    raises RcuError (SWIFTRCU_EINVAL).

    ``read()`` returns the current object as a strong reference: read-lock, dereference, take a
    reference and unlock in one foreign call. ``read`` is an attribute holding a loader bound to
    this Rcu (not a method), which is what makes that call cheap. After close() it raises
    RcuError; a read that races with close() returns the current object or None.
    """

    __slots__ = ("_ptr", "_writer", "_writer_thread", "read", "__weakref__")
    _ptr: Optional[ctypes.c_void_p]

    read: Callable[[], T]  # see the class docstring

    def __init__(self, value: T = None) -> None:  # type: ignore[assignment]
        self._ptr = None
        self.read = _read_closed
        self._writer = threading.Lock()
        self._writer_thread = 0
        _all_rcus.add(self)
        _watch_gc()
        address = _publish(value)
        try:
            handle = self._fresh_handle(address)
        except BaseException:
            _unpublish(address)
            raise
        self._ptr = _c_void_p(handle)
        self.read = _make_reader(handle)

    @staticmethod
    def _fresh_handle(address: Optional[int]) -> int:
        while _pool:
            try:
                handle = _pool.pop()
            except IndexError:
                break
            previous = _c_void_p()
            try:
                _replace(handle, address, ctypes.byref(previous))
            except RcuError:
                continue
            return handle
        return _new(address, _DESTROY, None)

    # -- reading

    def dereference(self, guard: Guard) -> T:
        """The current object, read under `guard`, which must be held by this thread (the
        innermost or an outer section). It is ``is``-identical to the object published.

        Raises RcuError (SWIFTRCU_EPERM) for a guard that was unlocked or belongs to another
        thread, and (SWIFTRCU_EINVAL) when the Rcu is closed.
        """
        try:
            return _dereference(self._ptr, guard)
        except ValueError:
            pass
        except ctypes.ArgumentError:
            raise TypeError(
                f"dereference() needs a swiftrcu.Guard, not {type(guard).__name__}") from None
        # NULL: None is published, or the call was refused.
        if self._ptr is None:
            raise _closed_error()
        if not isinstance(guard, GuardStruct):
            raise TypeError(f"dereference() needs a swiftrcu.Guard, not {type(guard).__name__}")
        if not guard._thread:
            raise RcuError(EPERM, "the guard was unlocked")
        serial = _current_thread_serial()
        if serial and guard._thread != serial:
            raise RcuError(EPERM, "the guard belongs to another thread")
        return None  # type: ignore[return-value]

    # -- writing

    def _begin_write(self, what: str) -> None:
        me = _get_ident()
        if self._writer_thread == me:
            raise DeadlockError(EDEADLK, f"{what}() from inside this Rcu's own copy_update()")
        self._writer.acquire()
        self._writer_thread = me

    def _end_write(self) -> None:
        self._writer_thread = 0
        self._writer.release()

    def _publish_locked(self, new: Any) -> Optional[RcuOld[T]]:
        ptr = self._ptr
        if ptr is None:
            raise _closed_error()
        if new is not None and self.read() is new:
            return None  # already published: publishing it again changes nothing (as in C)
        address = _publish(new)
        previous = _c_void_p()
        try:
            _replace(ptr, address, ctypes.byref(previous))
        except (RcuError, ctypes.ArgumentError):
            _unpublish(address)  # nothing was published
            raise
        return RcuOld._adopt(previous.value)

    def replace(self, new: T) -> Optional[RcuOld[T]]:
        """Publishes `new` and returns the previous object as an RcuOld, or None when it was
        None. Publishing the object published now changes nothing and returns None. Readers that
        already dereferenced keep the previous object. Never waits for a grace period, so it is
        allowed inside a read-side section.
        """
        self._begin_write("replace")
        try:
            return self._publish_locked(new)
        finally:
            self._end_write()

    def copy_update(self, fn: Callable[[T], T]) -> Optional[RcuOld[T]]:
        """Publishes ``fn(current)``, with this Rcu's other writers excluded while `fn` runs.

        `fn` runs inside a read-side section. Returning `current` itself publishes nothing and
        returns None. An exception raised by `fn` publishes nothing and propagates. Writing
        this Rcu from inside `fn` raises DeadlockError, as do calls that wait for a grace
        period.
        """
        self._begin_write("copy_update")
        try:
            ptr = self._ptr
            if ptr is None:
                raise _closed_error()
            guard = read_lock()
            try:
                try:
                    current = _dereference(ptr, guard)
                except ValueError:
                    current = None
                new = fn(current)
                if new is current:
                    return None
                return self._publish_locked(new)
            finally:
                guard.unlock()
        finally:
            self._end_write()

    def close(self) -> None:
        """Unpublishes the current object, waits until readers that may hold it have left their
        sections, and releases it. The Rcu is closed from the start of the wait on.

        Raises DeadlockError inside a read-side section (nothing changes), and RcuError
        (SWIFTRCU_EINVAL) when already closed.
        """
        ptr = self._ptr
        if ptr is None:
            raise _closed_error()
        if self._writer_thread == _get_ident():
            raise DeadlockError(EDEADLK, "close() from inside this Rcu's own copy_update()")
        if _in_read_section():
            raise DeadlockError(EDEADLK, "close() waits for a grace period")
        # Unpublish under the writer lock, then wait for the readers of the last object. The
        # handle stays with the reader (publishing NULL), which recycles it when it is gone.
        self._begin_write("close")
        try:
            if self._ptr is None:
                raise _closed_error()
            previous = _c_void_p()
            _replace(ptr, None, ctypes.byref(previous))
            self._ptr = None
            reader, self.read = self.read, _read_closed
        finally:
            self._end_write()
        _retire_reader(reader, ptr)
        del reader
        if previous.value:
            try:
                _old_free(previous.value)
            except RcuError:  # not expected after the check above; release it later instead
                _defer_old(previous.value)

    @property
    def closed(self) -> bool:
        """True once close() has been called (successfully)."""
        return self._ptr is None

    def __enter__(self) -> "Rcu[T]":
        if self._ptr is None:
            raise _closed_error()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._ptr is not None:
            self.close()

    def __del__(self, _state: _State = _state) -> None:
        ptr = getattr(self, "_ptr", None)
        if ptr is None or _state.exiting:
            return
        self._ptr = None
        try:
            # Unpublish and defer the current object; keep the handle (publishing NULL) for
            # reuse, as freeing it would wait for a grace period.
            previous = _c_void_p()
            _replace(ptr, None, ctypes.byref(previous))
            if previous.value:
                _defer_old(previous.value)
            _retire_reader(getattr(self, "read", None), ptr)
        except Exception:
            pass

    def __reduce__(self) -> NoReturn:
        raise TypeError("a swiftrcu.Rcu cannot be copied or pickled")

    def __repr__(self) -> str:
        return f"<swiftrcu.Rcu {'closed' if self._ptr is None else 'open'}>"


def _retire_reader(reader: Any, ptr: ctypes.c_void_p) -> None:
    """The Rcu is done with its handle (now publishing NULL): its reader recycles it when it is
    gone itself; without a reader, it is recycled now."""
    if isinstance(reader, (_Loader, _SlowReader)):
        reader._recycle = True
    elif ptr.value:
        _pool.append(ptr.value)


# --------------------------------------------------------------------------------------------
# Grace periods


def synchronize() -> None:
    """Waits for a grace period: every read-side section open when the call began has ended.

    Raises DeadlockError inside a read-side section.
    """
    _synchronize()


def barrier() -> None:
    """Waits until every release requested by ``RcuOld.defer`` (or by collection of an RcuOld
    or Rcu) before the call has run.

    Raises DeadlockError inside a read-side section or from a deferred release itself.
    """
    _state.deferred = False
    try:
        _barrier()
    except BaseException:
        _state.deferred = True
        raise
    _flush_postponed()
    _watch_gc()


# --------------------------------------------------------------------------------------------
# Interpreter exit

#: Seconds the exit handler (and the preparation of a fork) waits for pending deferred
#: releases, unless the environment variable SWIFTRCU_EXIT_TIMEOUT says otherwise.
EXIT_TIMEOUT = 5.0


def _exit_timeout() -> float:
    try:
        return max(0.0, float(os.environ.get("SWIFTRCU_EXIT_TIMEOUT", EXIT_TIMEOUT)))
    except ValueError:
        return EXIT_TIMEOUT

_libc = ctypes.CDLL(None)
_START_ROUTINE = ctypes.CFUNCTYPE(_c_void_p, _c_void_p)
_exit_keepalive: List[Any] = []


def _in_read_section() -> bool:
    """Whether the calling thread holds a read-side section (unregistering is refused then)."""
    try:
        _thread_unregister()
    except RcuError:
        return True
    try:
        _thread_register()  # as it was: registering later might be impossible (after a fork)
    except RcuError:
        pass
    return False


def _wait_for_deferred(timeout: float) -> None:
    """Runs barrier() on a native thread and waits for it at most `timeout` seconds, so that a
    thread parked inside a read-side section cannot hang the caller. Nothing to wait for when
    no release was deferred since the last barrier, or when this thread is inside a read-side
    section (no grace period could end)."""
    if not _state.deferred or _in_read_section():
        return
    _state.deferred = False
    try:
        create = declare(_libc, "pthread_create", _c_int,
                         [ctypes.POINTER(ctypes.c_ulong), _c_void_p, _START_ROUTINE, _c_void_p])
        detach = declare(_libc, "pthread_detach", _c_int, [ctypes.c_ulong])
    except AttributeError:
        create = detach = None
    done = threading.Event()

    def run(_argument: Optional[int]) -> None:
        try:
            _barrier()
        except RcuError:
            _state.deferred = True
        done.set()

    routine = _START_ROUTINE(run)
    _exit_keepalive.append(routine)
    _incref(routine)  # the thread may outlive this handler
    # Each release takes the GIL; shorter turns let them through faster while we wait.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, 0.0002))
    try:
        thread = ctypes.c_ulong()
        if create is None or create(ctypes.byref(thread), None, routine, None) != 0:
            try:
                _barrier()  # no native thread: wait here, without a time limit
            except RcuError:
                _state.deferred = True
            return
        detach(thread)
        if not done.wait(timeout):
            _state.deferred = True
    finally:
        sys.setswitchinterval(interval)


def _at_exit() -> None:
    """Flushes pending deferred releases, then turns later releases into leaks: a release that
    ran after the interpreter is gone would crash the process."""
    _state.exiting = True
    _wait_for_deferred(_exit_timeout())
    _flush_postponed()


atexit.register(_at_exit)


# --------------------------------------------------------------------------------------------
# fork()
#
# liburcu's fork handler waits until its call_rcu threads pause, but one that is running a
# deferred release waits for the GIL, which the forking thread holds: the fork would hang. So
# before a fork the pending deferred releases are run, and releases deferred meanwhile wait
# in _stash until after the fork. In the child, the writer locks of the binding are renewed
# (a thread that held one does not exist there).

_all_rcus: "weakref.WeakSet[Rcu[Any]]" = weakref.WeakSet()


def _before_fork() -> None:
    _state.forking = True
    _wait_for_deferred(_exit_timeout())


def _after_fork_in_parent() -> None:
    _state.forking = False
    _drain_stash()


def _after_fork_in_child() -> None:
    for rcu in list(_all_rcus):
        rcu._writer = threading.Lock()
        rcu._writer_thread = 0
    _state.forking = False
    _drain_stash()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
