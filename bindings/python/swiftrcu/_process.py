"""Interpreter exit and fork().

Exit
----
An ``atexit`` handler waits (at most ``SWIFTRCU_EXIT_TIMEOUT`` seconds) for pending deferred
releases, then turns later releases into leaks: a release that ran after the interpreter is gone
would crash the process.

fork()
------
The library's own fork handler (a ``pthread_atfork`` handler in C) waits for liburcu's call_rcu
threads to pause and for grace-period waits in progress. Both may wait for something that needs
the GIL, which the forking thread holds inside ``fork()``: a deferred release (it takes the GIL),
or a reader that must run Python code to leave its section while another thread waits for a
grace period. So a ``before`` hook, run while the GIL can still be released:

1. runs the pending deferred releases (``barrier`` on a native thread, bounded by the exit
   timeout); releases deferred from then on wait in a stash until after the fork;
2. calls ``swiftrcu_prepare_fork`` without the GIL: it waits for the grace-period waits in
   progress and keeps new ones out until the fork, so the C handler waits for none. A thread
   that then starts a wait blocks inside a call that released the GIL, so nothing holds the GIL
   while waiting for the lock this keeps. Skipped inside a read-side section of the forking
   thread (such a wait would be for this thread itself; see the guide).

In the child the writer locks held by threads that do not exist there are renewed, and those
threads' waits for writer locks are forgotten (see ``_writer``).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import sys
import threading
from typing import Any, Callable, List, Optional

from . import _ffi
from ._library import declare
from ._rcu import all_rcus
from ._release import drain_stash, state
from ._writer import forget_other_threads

#: Seconds the exit handler (and the preparation of a fork) waits for pending deferred
#: releases, unless the environment variable SWIFTRCU_EXIT_TIMEOUT says otherwise.
EXIT_TIMEOUT = 5.0


def exit_timeout() -> float:
    try:
        return max(0.0, float(os.environ.get("SWIFTRCU_EXIT_TIMEOUT", EXIT_TIMEOUT)))
    except ValueError:
        return EXIT_TIMEOUT


_libc = ctypes.CDLL(None)
_START_ROUTINE = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)
_keepalive: List[Any] = []


def _native_thread_starter() -> Optional[Callable[[Any], bool]]:
    """A function that runs a _START_ROUTINE on a detached native thread, or None."""
    try:
        create = declare(_libc, "pthread_create", ctypes.c_int,
                              [ctypes.POINTER(ctypes.c_ulong), ctypes.c_void_p, _START_ROUTINE,
                               ctypes.c_void_p])
        detach = declare(_libc, "pthread_detach", ctypes.c_int, [ctypes.c_ulong])
    except AttributeError:
        return None

    def start(routine: Any) -> bool:
        thread = ctypes.c_ulong()
        if create(ctypes.byref(thread), None, routine, None) != 0:
            return False
        detach(thread)
        return True

    return start


def wait_for_deferred(timeout: float) -> None:
    """Runs barrier() on a native thread and waits for it at most `timeout` seconds, so that a
    thread parked inside a read-side section cannot hang the caller. Nothing to wait for when
    no release was deferred since the last barrier, or when this thread is inside a read-side
    section (no grace period could end)."""
    if not state.deferred or _ffi.in_read_section():
        return
    state.deferred = False
    done = threading.Event()

    def run(_argument: Optional[int]) -> None:
        if _ffi.barrier():
            state.deferred = True
        done.set()

    routine = _START_ROUTINE(run)
    _keepalive.append(routine)
    _ffi.incref(routine)  # the thread may outlive this handler
    # Each release takes the GIL; shorter turns let them through faster while we wait.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, 0.0002))
    try:
        start = _native_thread_starter()
        if start is None or not start(routine):
            if _ffi.barrier():  # no native thread: wait here, without a time limit
                state.deferred = True
            return
        if not done.wait(timeout):
            state.deferred = True
    finally:
        sys.setswitchinterval(interval)


def _at_exit() -> None:
    state.exiting = True
    wait_for_deferred(exit_timeout())


atexit.register(_at_exit)


def _before_fork() -> None:
    state.forking = True
    timeout = exit_timeout()
    deferred = state.deferred
    wait_for_deferred(timeout)
    if not _ffi.in_read_section():
        _ffi.prepare_fork()  # CDLL: waits without the GIL
    if deferred:
        # A defer that was already inside its foreign call when `forking` was set may have
        # queued its release after that barrier: wait for it too.
        state.deferred = True
        wait_for_deferred(timeout)


def _after_fork_in_parent() -> None:
    state.forking = False
    drain_stash()


def _after_fork_in_child() -> None:
    for rcu in list(all_rcus):
        # A writer lock held by a thread that does not exist here can never be released; the
        # forking thread keeps the ones it holds.
        if not rcu._writer._is_owned():  # type: ignore[attr-defined]
            rcu._writer = threading.RLock()
    forget_other_threads()
    state.forking = False
    drain_stash()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
