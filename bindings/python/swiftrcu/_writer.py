"""The writer locks of Rcu objects: one writer at a time per Rcu, and no silent hang when writers
wait for each other in a cycle.

The rule
--------
The writers of one Rcu are serialised by its ``threading.RLock``. A write (``replace``,
``copy_update``, ``close``) that would wait for a writer lock whose holder waits, directly or
through other writers, for a writer lock this thread holds is refused with DeadlockError and
changes nothing: thread 1 in ``a.copy_update(f)`` whose ``f`` calls ``b.replace(x)``, thread 2 in
``b.copy_update(g)`` whose ``g`` calls ``a.replace(y)``. Of the writers of a cycle exactly one is
refused, the last to start waiting; the others keep waiting and go on once it has unwound. (A
write to the Rcu whose own copy_update is running on this thread is refused before any of this,
by ``_is_owned()``.)

How a write takes the lock
--------------------------
With one non-blocking ``acquire``, inside the ``try`` whose ``finally`` releases the lock (see
``Rcu.replace``). Only when that fails does it call :func:`wait`, which lists the thread in
``waiting`` and waits in ``acquire(timeout=TICK)`` steps. After each step that timed out it adds
a tick to its record and walks the wait-for chain: the holder of the lock it waits for, the lock
that holder waits for (its record), that lock's holder, and so on, until a lock this thread holds
(a cycle), a free lock, a holder that waits for nothing, or a thread seen already (a cycle that
does not pass through this thread: its own last writer refuses itself).

Why a refusal is never false
----------------------------
* A lock's holder is read from the lock itself, never from a note its holder would keep: such a
  note could only be written after ``acquire`` returned, and an async exception (Ctrl-C) between
  the two would leave it stale. CPython's RLock keeps its owner in C, set inside ``acquire`` and
  cleared inside ``release``; its ``repr`` shows it (:func:`holder`). This thread's own holdings
  are asked with ``_is_owned()``.
* A record is listed by a plain store just before the ``try`` whose ``finally`` removes it, with
  no call in between. An async exception is raised only after a call returns, at the start of a
  function or on a backward jump (see ``_release``), so none, single or repeated, can leave a
  record listed once its thread has stopped waiting. A record that is still listed a few
  statements after its ``acquire`` succeeded names a lock its own thread holds, which ends a
  walk. (A record left listed by other means would never tick again, so no cycle through it
  would ever count.)
* The walk is not a snapshot: other threads run between its steps. So a cycle counts only when
  two walks, one after the other, found the same records (the same objects) and the same
  holders, and every other writer's tick count advanced between them. Each of those writers was
  then waiting from before the first walk to after the second (its record, a new object for each
  wait, is removed when its wait ends) and still running its loop. A waiting thread takes and
  releases no lock, so each held throughout that time what the second walk read it holding: in
  that interval every writer of the cycle waited for a lock the next one held, and none of them
  can stop waiting unless one is refused (or interrupted).
* The refused writer is the one with the highest serial, the last to start waiting. Serials
  never change, so the writers of a cycle agree on it.

What remains: a signal handler or a finalizer that writes an Rcu while its thread waits here can
hold a writer lock for a moment while the thread's record is listed. Counting a false cycle from
that takes such a write holding the same lock at the moment of each of two walks, with a tick
between (a double coincidence; never seen). A cycle goes unnoticed, its writers waiting forever
as they would without this module, when the RLock's ``repr`` does not show its owner (not
CPython), and in a child made by a ``fork()`` that skipped Python's fork hooks (records of the
parent's other threads stay listed there but never tick; the locks they held are never released
either). No corner is left to async exceptions, single or repeated: they cannot leave a record
listed, nor a lock taken (see ``_rcu``).
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, Dict, List, Optional, Tuple

from . import _ffi
from ._errors import DeadlockError

#: Seconds a waiting writer sleeps in one acquire before it looks for a cycle again.
TICK = 0.01

#: Thread ident -> the record of the writer lock that thread waits for: [lock, serial, ticks].
waiting: Dict[int, List[Any]] = {}

_serials = itertools.count(1)
_get_ident = threading.get_ident


def holder(lock: Any) -> int:
    """The ident of the thread that holds the RLock `lock`, or 0 when it is free or its holder
    cannot be told. From CPython's repr, ``<locked _thread.RLock object owner=140... count=1 at
    0x...>``: owner and count are set and cleared in C with the GIL held, so what it shows is
    exact at the moment it is read."""
    text = repr(lock)
    if not text.startswith("<locked "):
        return 0
    start = text.find(" owner=") + 7
    if start < 7:
        return 0
    digits = text[start:text.find(" ", start)]
    return int(digits) if digits.isdigit() else 0


_Link = Tuple[int, List[Any], int]  # (holder, its record, its ticks when read)


def _walk(lock: Any) -> Optional[List[_Link]]:
    """The other writers of a wait-for cycle through this thread, waiting for `lock`, in order
    (the holder of `lock` first); None when the chain from `lock` does not come back here."""
    links: List[_Link] = []
    seen: List[int] = []
    while not lock._is_owned():
        owner = holder(lock)
        if not owner or owner in seen:
            return None
        record = waiting.get(owner)
        if record is None:
            return None
        seen.append(owner)
        links.append((owner, record, record[2]))
        lock = record[0]
    return links or None


def _same_waits(earlier: List[_Link], later: List[_Link]) -> bool:
    return len(earlier) == len(later) and all(
        a[0] == b[0] and a[1] is b[1] for a, b in zip(earlier, later))


def _names(idents: List[int]) -> str:
    names = {t.ident: t.name for t in threading.enumerate()}
    return " -> ".join(repr(names.get(i, str(i))) for i in idents)


def wait(lock: Any, what: str) -> None:
    """Takes `lock`, a writer lock this thread does not hold and found held, or raises
    DeadlockError, holding nothing more, when this wait would close a wait-for cycle and this
    writer is the last of the cycle to have started waiting. An async exception may leave this
    thread holding `lock`: the caller's ``finally`` releases it."""
    me = _get_ident()
    record = [lock, next(_serials), 0]
    outer = waiting.get(me)  # a wait of this thread that a signal handler or finalizer interrupted
    # Plain statements from here to the `try` and at the start of the `finally` (see the module).
    waiting[me] = record
    try:
        first: Optional[List[_Link]] = None  # the first walk that found the current cycle
        while True:
            if lock.acquire(True, TICK):
                return
            record[2] += 1
            links = _walk(lock)
            if links is None or first is None or not _same_waits(first, links):
                first = links
                continue
            if any(now[2] <= then[2] for then, now in zip(first, links)):
                continue  # not every writer of the cycle shown waiting since the first walk
            if record[1] > max(link[1][1] for link in links):
                cycle = [me] + [link[0] for link in links]
                raise DeadlockError(
                    _ffi.EDEADLK,
                    f"{what}() would close a cycle of {len(cycle)} writers waiting on each other: "
                    f"{_names(cycle + [me])}, each waiting for a writer lock the next one holds")
            # Another writer of the cycle started waiting last: it is refused; keep waiting.
    finally:
        if outer is None:
            waiting.pop(me, None)
        else:
            waiting[me] = outer


def forget_other_threads() -> None:
    """In a forked child: the records of threads that do not exist there."""
    me = _get_ident()
    for ident in list(waiting):
        if ident != me:
            waiting.pop(ident, None)
