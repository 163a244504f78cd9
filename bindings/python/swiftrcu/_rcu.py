"""Rcu and its readers.

How a read works
----------------
``Rcu.read`` is a loader bound to the Rcu (``swiftrcu_loader_bind``): one foreign call without
arguments, whose retain function (``Py_IncRef``) takes the caller's reference inside its own
read-side section, so the object cannot be released before the reader holds it. It keeps the GIL
and needs no argument conversion, which is most of what a ctypes call costs. A loader stands in
``None`` for a published NULL. Without a free loader (more than SWIFTRCU_LOADERS_MAX at once in
the process) ``read()`` calls ``swiftrcu_load_retained``. ``dereference(guard)`` checks the guard
and then reads the same way, inside the guard's section.

Writers
-------
Writers of one Rcu are serialised by a lock of the binding (a ``threading.RLock``, whose owner is
tracked in C, so a write from inside the Rcu's own copy_update is refused without bookkeeping an
async exception could leave stale). ``copy_update`` runs the user's function under that lock and
inside a read-side section, then publishes with ``swiftrcu_replace``. It does not use
``swiftrcu_copy_update``: if an exception escaped a ctypes callback before its first line
(KeyboardInterrupt, RecursionError), ctypes would hand the library an uninitialised return value,
which it would publish. Who holds the objects, and why an interrupted write stays consistent, is
told in ``_release``.

The rule for writers that wait for each other: a write that would wait for a writer lock whose
holder waits, directly or through other writers, for a writer lock this thread holds (``fn`` of
``a.copy_update`` calls ``b.replace`` while ``fn`` of ``b.copy_update`` calls ``a.replace`` on
another thread) raises DeadlockError and changes nothing. One writer of such a cycle is refused,
the last to start waiting; the others go on once it has unwound. How the cycle is found without
trusting anything an async exception could leave stale is told in ``_writer``.

A write takes its lock with ``acquire(False)`` and waits (``_writer.wait``) only when that fails,
both inside the ``try`` whose ``finally`` releases the lock. (Not ``with self._writer``: its
``__enter__`` would wait without a time limit, so a cycle could never be noticed.) An async
exception can land right after any call returns, the acquire's included, before the write has
noted anything. So the ``finally`` does not ask whether the lock is held (a second call, after
which another interrupt could land) but calls ``release()`` at once, with no call before it. The
write started without holding the lock (``_enter_write`` checked ``_is_owned()``), so
``release()`` either releases exactly what this write took or, when it took nothing (refused, or
interrupted before it had the lock), raises RuntimeError, which the ``finally`` ignores.
"""

from __future__ import annotations

import ctypes
import threading
import weakref
from typing import Any, Callable, Generic, NoReturn, Optional, TypeVar

from . import _ffi
from ._errors import ClosedError, DeadlockError, RcuError, error
from ._guard import Guard, stacks
from ._library import GuardStruct
from ._release import DESTROY, RcuOld, _State, blank_old, pool, state
from ._writer import wait

T = TypeVar("T")

_c_void_p = ctypes.c_void_p
_byref = ctypes.byref
_replace = _ffi.replace
_stacks = stacks()
_IDLE: Any = object()  # Rcu._next when no write is under way


# --------------------------------------------------------------------------------------------
# Readers: what Rcu.read is. Each owns its Rcu's handle for reading: the handle goes back to the
# pool only when the reader itself is gone, so a thread that fetched rcu.read just before the Rcu
# was closed or collected can never read another Rcu's object through a reused handle (it reads
# None instead).

_LoaderPrototype = ctypes.PYFUNCTYPE(ctypes.py_object)


class _Loader(_LoaderPrototype):  # type: ignore[misc, valid-type]
    """A bound loader: a zero-argument C function that returns the current object with a new
    reference (None for None). Keeps the GIL. Bound with None as if_null, it never returns NULL
    (which a py_object result cannot take)."""

    _flags_ = _LoaderPrototype._flags_
    _restype_ = ctypes.py_object
    _argtypes_ = ()
    __slots__ = ("_address", "_handle", "_recycle")

    def __del__(self, _state: _State = state) -> None:
        if _state.exiting:
            return
        try:
            _ffi.loader_unbind(self._address)
            if self._recycle:
                pool.append(self._handle)
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
            value = _ffi.load_retained(self._handle, _ffi.PY_INCREF)
        except ValueError:  # NULL: None is published
            return None
        _ffi.decref(id(value))  # the reference Py_IncRef took: `value` holds one of its own
        return value

    def __del__(self, _state: _State = state) -> None:
        if self._recycle and not _state.exiting:
            pool.append(self._handle)


def _make_reader(handle: int) -> Callable[[], Any]:
    address = _c_void_p()
    if _ffi.loader_bind(handle, _ffi.PY_INCREF, _ffi.NONE_ADDRESS, _byref(address)) != _ffi.OK:
        return _SlowReader(handle)
    loader = _Loader(address.value)
    loader._address = address.value
    loader._handle = handle
    loader._recycle = False
    return loader


def _read_closed() -> NoReturn:
    raise ClosedError()


def _retire_reader(reader: Any, ptr: ctypes.c_void_p) -> None:
    """The Rcu is done with its handle (now publishing NULL): its reader recycles it when it is
    gone itself; without a reader, it is recycled now."""
    if isinstance(reader, (_Loader, _SlowReader)):
        reader._recycle = True
    elif ptr.value:
        pool.append(ptr.value)


def _fresh_handle(address: Optional[int]) -> int:
    """A handle publishing `address`: a pooled one (publishing NULL), else a new one."""
    while pool:
        try:
            handle = pool.pop()
        except IndexError:
            break
        previous = _c_void_p()
        if _replace(handle, address, _byref(previous)) == _ffi.OK:
            return handle
    fresh = _ffi.new(address, DESTROY, None)
    if not fresh:
        raise RcuError(_ffi.ENOMEM, "swiftrcu_new")
    return fresh


#: Every live Rcu, for the fork handler (see _process).
all_rcus: "weakref.WeakSet[Rcu[Any]]" = weakref.WeakSet()


class Rcu(Generic[T]):
    """An RCU-protected reference to one Python object (the kernel's ``Rcu<P>``).

    Readers use :meth:`read`, or :func:`read_lock` and :meth:`dereference`: no locks, never
    blocked by writers. Writers :meth:`replace` the object or :meth:`copy_update` it and get the
    previous one back as an :class:`RcuOld`, which releases it after a grace period. ``None``
    may always be published.

    Every published object is released (its reference dropped) exactly once, after a grace
    period: through its RcuOld, or by :meth:`close` (also used by ``with``) for the current one.
    A collected Rcu releases its current object like a deferred RcuOld. After close() every use
    raises :class:`ClosedError` (an RcuError with SWIFTRCU_EINVAL, and a ValueError).

    ``read()`` returns the current object as a strong reference: read-lock, dereference, take a
    reference and unlock in one foreign call. ``read`` is an attribute holding a loader bound to
    this Rcu (not a method), which is what makes that call cheap. After close() it raises
    ClosedError; a read that races with close() returns the current object or None.
    """

    # _value: the object published now (held here, where the collector sees it); _next: the
    # object being published while a write is under way, else _IDLE.
    __slots__ = ("_ptr", "_writer", "_value", "_next", "read", "__weakref__")
    _ptr: Optional[ctypes.c_void_p]

    read: Callable[[], Optional[T]]  # see the class docstring

    def __init__(self, value: Optional[T] = None) -> None:
        self._ptr = None
        self.read = _read_closed
        self._writer = threading.RLock()
        self._value = value
        self._next = _IDLE
        all_rcus.add(self)
        handle = _fresh_handle(None if value is None else id(value))
        self._ptr = _c_void_p(handle)
        self.read = _make_reader(handle)

    # -- reading

    def dereference(self, guard: Guard) -> Optional[T]:
        """The current object, read under `guard`, which must be held by this thread (the
        innermost or an outer section). It is ``is``-identical to the object published.

        Raises RcuError (SWIFTRCU_EPERM) for a guard that was unlocked or belongs to another
        thread, and ClosedError when the Rcu is closed.
        """
        try:
            if guard._entry.stack is _stacks.stack:  # type: ignore[union-attr]
                # Held, and by this thread. The object the Rcu holds as published is the one
                # the library publishes, except while a write is under way or was cut short
                # (then _next is set): the library says which. A closed Rcu's read raises.
                if self._next is _IDLE and self._ptr is not None:
                    return self._value
                return self.read()
        except AttributeError:  # not a Guard, spent, or a thread that never took a guard
            pass
        return self._refuse(guard)

    def _refuse(self, guard: Any) -> NoReturn:
        if self._ptr is None:
            raise ClosedError()
        if not isinstance(guard, Guard):
            raise TypeError(f"dereference() needs a swiftrcu.Guard, not {type(guard).__name__}")
        if guard._entry is None:
            raise RcuError(_ffi.EPERM, "the guard was unlocked")
        raise RcuError(_ffi.EPERM, "the guard belongs to another thread")

    # -- writing

    def _settle(self) -> None:
        """With the writer lock held: after a write that an async exception cut short, takes
        what the library publishes (the old or the new object) as the current object."""
        if self._next is not _IDLE:
            self._value = self.read()
            self._next = _IDLE

    def _publish_locked(self, ptr: ctypes.c_void_p, new: Any) -> Optional[RcuOld[T]]:
        """With the writer lock held and settled: publishes `new` (not the current object)."""
        address = None if new is None else id(new)
        old = blank_old()
        # Plain statements up to the call; the call commits (see _release).
        old._obj = self._value
        self._next = new
        status = _replace(ptr, address, old._ref)
        if status:
            self._next = _IDLE
            old._obj = None
            raise error(status, "swiftrcu_replace")
        self._value = new
        self._next = _IDLE
        if not old._buf.value:  # the previous object was None
            old._obj = None
            return None
        return old

    def _enter_write(self, what: str, writer: Any) -> ctypes.c_void_p:
        """Refuses a write to this Rcu from inside its own copy_update, and one to a closed Rcu.
        On return this thread does not hold `writer`, so the write's ``finally`` releases
        exactly what the write took."""
        if writer._is_owned():
            raise DeadlockError(_ffi.EDEADLK, f"{what}() from inside this Rcu's own copy_update()")
        ptr = self._ptr
        if ptr is None:
            raise ClosedError()
        return ptr

    def replace(self, new: Optional[T]) -> Optional[RcuOld[T]]:
        """Publishes `new` and returns the previous object as an RcuOld, or None when it was
        None. Publishing the current object again changes nothing and returns None. Readers
        that already dereferenced keep the previous object. Never waits for a grace period, so
        it is allowed inside a read-side section.

        Raises DeadlockError, changing nothing, from inside this Rcu's own copy_update, and when
        waiting for this Rcu's writer lock would close a cycle of writers waiting for each
        other's locks (see the module).
        """
        writer = self._writer
        self._enter_write("replace", writer)
        try:
            if not writer.acquire(False):
                wait(writer, "replace")
            ptr = self._ptr
            if ptr is None:
                raise ClosedError()
            self._settle()
            if new is self._value:
                return None
            return self._publish_locked(ptr, new)
        finally:
            try:  # first, with no call before it (see the module)
                writer.release()
            except RuntimeError:  # not taken: refused, or interrupted before it was
                pass

    def copy_update(self, fn: Callable[[Optional[T]], Optional[T]]) -> Optional[RcuOld[T]]:
        """Publishes ``fn(current)``, with this Rcu's other writers excluded while `fn` runs.

        `fn` runs inside a read-side section. Returning `current` itself publishes nothing and
        returns None. An exception raised by `fn` publishes nothing and propagates. Writing
        this Rcu from inside `fn` raises DeadlockError, as do calls that wait for a grace
        period, and so does a write (here or inside `fn`) whose wait for a writer lock would
        close a cycle of writers (see the module).
        """
        writer = self._writer
        self._enter_write("copy_update", writer)
        try:
            if not writer.acquire(False):
                wait(writer, "copy_update")
            ptr = self._ptr
            if ptr is None:
                raise ClosedError()
            self._settle()
            section = GuardStruct()
            where = _byref(section)
            try:
                # The library writes the guard into `section`: an async exception after the
                # call still finds it, and a zeroed one (nothing entered) unlocks nothing.
                _ffi.read_lock_into(ptr, where)
                current = self._value
                new = fn(current)
                if new is current:
                    return None
                return self._publish_locked(ptr, new)
            finally:
                _ffi.read_unlock(where)
        finally:
            try:  # first, with no call before it (see the module)
                writer.release()
            except RuntimeError:  # not taken: refused, or interrupted before it was
                pass

    def close(self) -> None:
        """Unpublishes the current object, waits until readers that may hold it have left their
        sections, and releases it. The Rcu is closed from the start of the wait on.

        Raises DeadlockError inside a read-side section and when its wait for the writer lock
        would close a cycle of writers (nothing changes then), and ClosedError when already
        closed.
        """
        writer = self._writer
        ptr = self._enter_write("close", writer)
        if _ffi.in_read_section():
            raise DeadlockError(_ffi.EDEADLK, "close() waits for a grace period")
        # Unpublish under the writer lock, then wait for the readers of the last object. The
        # handle stays with the reader (publishing NULL), which recycles it when it is gone.
        try:
            if not writer.acquire(False):
                wait(writer, "close")
            ptr = self._ptr  # type: ignore[assignment]
            if ptr is None:
                raise ClosedError()
            self._settle()
            old = self._publish_locked(ptr, None) if self._value is not None else None
            self._ptr = None
            reader, self.read = self.read, _read_closed
        finally:
            try:  # first, with no call before it (see the module)
                writer.release()
            except RuntimeError:  # not taken: refused, or interrupted before it was
                pass
        _retire_reader(reader, ptr)
        del reader
        if old is not None:
            try:
                old.free()
            except RcuError:  # not expected after the check above; release it later instead
                old.defer()

    @property
    def closed(self) -> bool:
        """True once close() has been called (successfully)."""
        return self._ptr is None

    def __enter__(self) -> "Rcu[T]":
        if self._ptr is None:
            raise ClosedError()
        return self

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        if self._ptr is not None:
            self.close()

    def __del__(self, _state: _State = state) -> None:
        ptr = getattr(self, "_ptr", None)
        if ptr is None or _state.exiting:
            return
        try:
            # Unpublish and defer the current object; keep the handle (publishing NULL) for
            # reuse, as freeing it would wait for a grace period.
            self._settle()
            old = self._publish_locked(ptr, None) if self._value is not None else None
            self._ptr = None
            reader, self.read = self.read, _read_closed
            _retire_reader(reader, ptr)
            if old is not None:
                old.defer()
        except Exception:
            pass

    def __reduce__(self) -> NoReturn:
        raise TypeError("a swiftrcu.Rcu cannot be copied or pickled")

    def __repr__(self) -> str:
        return f"<swiftrcu.Rcu {'closed' if self._ptr is None else 'open'}>"


__all__ = ["Rcu"]
