"""The read side: read_lock() and its Guard.

A guard's section is an anonymous region of the C library (``swiftrcu_region_enter`` /
``swiftrcu_region_exit``: argument-free calls, the cheapest a ctypes call can be). What the C
guard would check (this thread's guard, still held, the innermost) is checked here, on a
per-thread stack: each held guard owns an entry (an ``_Entry``), the entry knows its thread's
stack, and the stack holds the entries' keys, innermost last. The stack holds keys, not entries
or guards, so that a guard that is dropped while held lets its entry go, whose finalizer leaves
the section then. Entries of unlocked guards are kept for reuse, so a guard that is unlocked
and then dropped runs no finalizer: that is most of what a finalizer would cost per section.

A region closes the thread's innermost section and refuses (``EPERM``, changing nothing) when
that is a C guard's, so a guard can only close its own section: the stack says it is the
innermost of this thread's Python guards, the library that no C guard is open inside it.

Each change of state is made of plain statements (no call) followed by the one foreign call
that commits it, so an async exception (KeyboardInterrupt) cannot fall between them (see
``_release``).
"""

from __future__ import annotations

import _thread
from typing import Any, List, NoReturn, Optional, Type

from . import _ffi
from ._errors import UNLOCK_REFUSED, error, unlock_refused
from ._release import _State, state

_region_enter = _ffi.region_enter
_region_exit = _ffi.region_exit

# The calling thread's stack of held guards' keys, innermost last, as the attribute `stack` (set
# on a thread's first read_lock). A plain _thread._local: cheaper to read than a subclass.
_stacks: Any = _thread._local()


class _Entry:
    """A held guard's place on its thread's stack.

    Invariants: while a guard holds it, ``stack`` is its thread's stack, which holds ``key`` at
    the guard's depth; while it waits in ``_spare``, ``stack`` is None and no guard holds it.
    """

    __slots__ = ("stack", "key")
    stack: Optional[List[Any]]
    key: Any

    def __del__(self, _state: _State = state) -> None:
        # Only a held guard's entry is ever dropped: its guard was dropped while held.
        try:
            stack = self.stack
            if stack is None or _state.exiting:
                return
            if stack is _stacks.stack and stack[-1] is self.key:
                del stack[-1]
                self.stack = None
                if _region_exit():
                    stack += (self.key,)
                    self.stack = stack
        except Exception:
            pass


#: Entries of unlocked guards, for reuse (at most as many as were held at once).
_spare: List[_Entry] = []


def _new_entry() -> _Entry:
    entry: _Entry = object.__new__(_Entry)
    entry.stack = None
    entry.key = []  # an object of its own, compared by identity
    return entry


class Guard:
    """Evidence that this thread holds a read-side critical section (the kernel's ``Guard``).

    Returned by :func:`read_lock`. Use it as a context manager or call :meth:`unlock`. Guards
    nest and must be unlocked innermost first, on the thread that took them. A held guard that
    is dropped is unlocked then, if that is still allowed.
    """

    # _entry: the guard's entry while held, None once spent.
    __slots__ = ("_entry",)
    _entry: Optional[_Entry]

    def __new__(cls, *args: Any, **kwargs: Any) -> "Guard":
        raise TypeError("Guard objects are returned by swiftrcu.read_lock()")

    @property
    def held(self) -> bool:
        """False once the guard was unlocked."""
        return self._entry is not None

    def unlock(self) -> None:
        """Leaves the section. Raises RcuError (SWIFTRCU_EPERM) when this is not the thread's
        innermost held guard: already unlocked, another thread's, or an inner one is held."""
        self.__exit__(None, None, None)

    def __enter__(self) -> "Guard":
        return self

    def __exit__(self, kind: Any, value: Any, traceback: Any, _spare: List[_Entry] = _spare) -> None:
        entry: Any = self._entry
        try:
            stack = entry.stack
            innermost = stack is _stacks.stack and stack[-1] is entry.key
        except (AttributeError, IndexError):  # spent, or a thread that never took a guard
            innermost = False
        if not innermost:
            raise unlock_refused()
        del stack[-1]
        self._entry = None
        entry.stack = None
        status = _region_exit()
        if status:  # a C guard's section is the innermost: put everything back
            entry.stack = stack
            self._entry = entry
            stack += (entry.key,)
            raise error(status, UNLOCK_REFUSED)
        _spare += (entry,)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a swiftrcu.Guard cannot be copied or pickled")

    def __copy__(self) -> NoReturn:
        raise TypeError("a swiftrcu.Guard cannot be copied")

    def __deepcopy__(self, memo: Any) -> NoReturn:
        raise TypeError("a swiftrcu.Guard cannot be copied")

    def __repr__(self) -> str:
        return f"<swiftrcu.Guard {'held' if self._entry is not None else 'spent'}>"


def read_lock(_new: Any = object.__new__, _cls: Type[Guard] = Guard,
              _spare: List[_Entry] = _spare) -> Guard:
    """Enters a read-side critical section and returns its :class:`Guard` (the kernel's
    ``rcu::read_lock()``). Nestable; never blocks.

    Inside a section, calls that wait for a grace period (``RcuOld.free``, ``Rcu.close``,
    :func:`synchronize`, :func:`barrier`) raise :class:`DeadlockError`.
    """
    guard: Guard = _new(_cls)
    try:
        entry = _spare[-1]
        del _spare[-1]
    except IndexError:
        entry = _new_entry()
    try:
        stack = _stacks.stack
    except AttributeError:  # the thread's first guard
        stack = _stacks.stack = []
    # Held before the section is entered, so that if an async exception arrives right after
    # region_enter returned, the dropped guard's entry leaves the section again.
    entry.stack = stack
    guard._entry = entry
    stack += (entry.key,)
    if _region_enter():
        del stack[-1]
        guard._entry = None
        entry.stack = None
        _spare += (entry,)
        raise unlock_refused("cannot enter a read-side section: 255 sections are already"
                             " nested, or the thread is exiting")
    return guard


def stacks() -> Any:
    """The per-thread holder of the guard stacks (for Rcu.dereference)."""
    return _stacks
