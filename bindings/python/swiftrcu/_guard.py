"""The read side: read_lock() and its Guard.

A guard's section is an anonymous region of the C library (``swiftrcu_region_enter`` /
``swiftrcu_region_exit``: argument-free calls, the cheapest a ctypes call can be). What the C
guard would check (this thread's guard, still held, the innermost) is checked here, on a
per-thread stack of entries: a guard holds its thread's stack and its own entry (an empty list,
made without a call and compared by identity), and the stack holds the entries of the thread's
held guards, innermost last. The stack holds entries, not guards, so that a guard that is
dropped while held is finalized (and unlocked then).

A region closes the thread's innermost section and refuses (``EPERM``, changing nothing) when
that is a C guard's, so a guard can only close its own section: the stack says it is the
innermost of this thread's Python guards, the library that no C guard is open inside it.
"""

from __future__ import annotations

import threading
from typing import Any, List, NoReturn, Optional, Type

from . import _ffi
from ._errors import UNLOCK_REFUSED, error, unlock_refused
from ._release import _State, state

_region_enter = _ffi.region_enter
_region_exit = _ffi.region_exit


class _Stacks(threading.local):
    """The calling thread's stack of held guards' entries, innermost last."""

    def __init__(self) -> None:
        self.stack: List[Any] = []


_stacks = _Stacks()


class Guard:
    """Evidence that this thread holds a read-side critical section (the kernel's ``Guard``).

    Returned by :func:`read_lock`. Use it as a context manager or call :meth:`unlock`. Guards
    nest and must be unlocked innermost first, on the thread that took them. A held guard that
    is dropped is unlocked then, if that is still allowed.
    """

    # _stack: the owning thread's stack while held, None once spent; _number: its entry there.
    __slots__ = ("_stack", "_number")
    _stack: Optional[List[Any]]
    _number: Any

    def __new__(cls, *args: Any, **kwargs: Any) -> "Guard":
        raise TypeError("Guard objects are returned by swiftrcu.read_lock()")

    @property
    def held(self) -> bool:
        """False once the guard was unlocked."""
        return self._stack is not None

    def unlock(self) -> None:
        """Leaves the section. Raises RcuError (SWIFTRCU_EPERM) when this is not the thread's
        innermost held guard: already unlocked, another thread's, or an inner one is held."""
        self.__exit__(None, None, None)

    def __enter__(self) -> "Guard":
        return self

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        stack = self._stack
        # The bookkeeping comes first and is plain statements; the foreign call is last, so an
        # async exception cannot separate them (see _release).
        try:
            innermost = stack is _stacks.stack and stack[-1] is self._number
        except IndexError:  # pragma: no cover - a held guard's entry is on its stack
            innermost = False
        if innermost:
            del stack[-1]  # type: ignore[union-attr]
            self._stack = None
            status = _region_exit()
            if status:  # a C guard's section is the innermost: it changed nothing
                stack += (self._number,)  # type: ignore[operator]
                self._stack = stack
                raise error(status, UNLOCK_REFUSED)
            return
        raise unlock_refused()

    def __del__(self, _state: _State = state) -> None:
        stack = getattr(self, "_stack", None)
        if stack is None or _state.exiting:
            return
        try:
            if stack is _stacks.stack and stack[-1] is self._number:
                del stack[-1]
                self._stack = None
                if _region_exit():
                    stack += (self._number,)
                    self._stack = stack
        except Exception:
            pass

    def __reduce__(self) -> NoReturn:
        raise TypeError("a swiftrcu.Guard cannot be copied or pickled")

    def __copy__(self) -> NoReturn:
        raise TypeError("a swiftrcu.Guard cannot be copied")

    def __deepcopy__(self, memo: Any) -> NoReturn:
        raise TypeError("a swiftrcu.Guard cannot be copied")

    def __repr__(self) -> str:
        return f"<swiftrcu.Guard {'held' if self._stack is not None else 'spent'}>"


_new_guard = object.__new__


def read_lock(_new: Any = _new_guard, _cls: Type[Guard] = Guard) -> Guard:
    """Enters a read-side critical section and returns its :class:`Guard` (the kernel's
    ``rcu::read_lock()``). Nestable; never blocks.

    Inside a section, calls that wait for a grace period (``RcuOld.free``, ``Rcu.close``,
    :func:`synchronize`, :func:`barrier`) raise :class:`DeadlockError`.
    """
    guard: Guard = _new(_cls)
    number: Any = []  # an object of its own: the guard's entry, compared by identity
    stack = _stacks.stack
    # Held before the section is entered, so that if an async exception arrives right after
    # region_enter returned, the dropped guard's __del__ leaves the section again.
    guard._stack = stack
    guard._number = number
    stack += (number,)
    if _region_enter():
        del stack[-1]
        guard._stack = None
        raise unlock_refused("cannot enter a read-side section: 255 sections are already"
                             " nested, or the thread is exiting")
    return guard


def this_threads_stack() -> List[Any]:
    """The calling thread's stack of held guards (for Rcu.dereference)."""
    return _stacks.stack


def stacks() -> _Stacks:
    return _stacks
