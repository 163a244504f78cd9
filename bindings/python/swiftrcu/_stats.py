"""The C library's statistics: :func:`stats` returns a frozen :class:`Statistics`.

They come from ``swiftrcu_stats_get`` of the ``libswiftrcu.so`` this package loaded, and
describe that copy of the library only: everything done through this package, and through any
other code in the process that calls the same library file (a program that also links the
SwiftRCU Swift package has a second copy, which these do not include).
"""

from __future__ import annotations

import ctypes
import dataclasses
from typing import Any, Callable, Dict, Optional

from . import _ffi
from ._errors import RcuError
from ._library import declare

__all__ = ["Statistics", "stats"]


class _CStats(ctypes.Structure):
    """``swiftrcu_stats`` (include/swiftrcu_types.h): ``size`` then the counters, in order."""

    _fields_ = [("size", ctypes.c_size_t)] + [
        (name, ctypes.c_uint64) for name in (
            "grace_periods", "deferred_queued", "deferred_completed", "deferred_pending",
            "deferred_pending_peak", "objects_destroyed", "ptrs_live", "olds_live",
            "threads_registered", "threads_registered_total", "threads_exited_in_section",
            "writer_pauses", "writer_pause_ns", "edeadlk_refusals", "eperm_refusals",
            "einval_refusals")
    ]


@dataclasses.dataclass(frozen=True)
class Statistics:
    """What the library has done since it was loaded, and what is alive or pending now.

    The counters are read one at a time, not as a consistent snapshot: while other threads
    work, one field may already count an event that another does not yet.
    """

    #: Grace-period waits the library made and completed (synchronize, RcuOld.free, close).
    grace_periods: int
    #: Releases handed to liburcu's call_rcu (RcuOld.defer, a dropped RcuOld or Rcu).
    deferred_queued: int
    #: Deferred releases that have run.
    deferred_completed: int
    #: Deferred releases queued and not yet run, now.
    deferred_pending: int
    #: The highest deferred_pending seen.
    deferred_pending_peak: int
    #: Objects released (destroy functions called), synchronously or deferred.
    objects_destroyed: int
    #: Rcu handles alive now (in the C library: swiftrcu_ptr handles).
    ptrs_live: int
    #: RcuOld handles alive now (neither freed nor deferred).
    olds_live: int
    #: Threads registered with the library now, liburcu's call_rcu worker threads included.
    threads_registered: int
    #: Threads ever registered with the library.
    threads_registered_total: int
    #: Threads that exited holding read locks, which the library released at their exit.
    threads_exited_in_section: int
    #: Back-pressure pauses of deferring writers.
    writer_pauses: int
    #: Total time of those pauses, in nanoseconds.
    writer_pause_ns: int
    #: Calls refused with SWIFTRCU_EDEADLK (DeadlockError).
    edeadlk_refusals: int
    #: Calls refused with SWIFTRCU_EPERM. Refusals without a status (a NULL result) are not counted.
    eperm_refusals: int
    #: Calls refused with SWIFTRCU_EINVAL, likewise.
    einval_refusals: int

    def as_dict(self) -> Dict[str, int]:
        """The fields as a dict, in the order of the C struct."""
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        """One line of key=value pairs, as SWIFTRCU_STATS=1 prints at exit."""
        return " ".join(f"{k}={v}" for k, v in self.as_dict().items())


_stats_get: Optional[Callable[[Any], int]] = None


def _function() -> Callable[[Any], int]:
    """swiftrcu_stats_get of the library the package loaded (the same copy), declared once."""
    global _stats_get
    if _stats_get is None:
        if not hasattr(_ffi.pydll, "swiftrcu_stats_get"):
            raise RuntimeError(f"swiftrcu.stats(): {_ffi.library_path} has no swiftrcu_stats_get "
                               "(a library older than this binding)")
        # PyDLL: never blocks, keeps the interpreter lock.
        _stats_get = declare(_ffi.pydll, "swiftrcu_stats_get", ctypes.c_int, [ctypes.POINTER(_CStats)])
    return _stats_get


def stats() -> Statistics:
    """The library's statistics now (see :class:`Statistics`)."""
    raw = _CStats()
    raw.size = ctypes.sizeof(_CStats)
    status = _function()(ctypes.byref(raw))
    if status != 0:  # pragma: no cover - the size above is always accepted
        raise RcuError(status, "swiftrcu_stats_get refused the statistics buffer")
    if raw.size < ctypes.sizeof(_CStats):  # pragma: no cover - every library with stats_get fills all
        raise RuntimeError(f"swiftrcu_stats_get filled {raw.size} of {ctypes.sizeof(_CStats)} bytes")
    return Statistics(**{f.name: getattr(raw, f.name) for f in dataclasses.fields(Statistics)})
