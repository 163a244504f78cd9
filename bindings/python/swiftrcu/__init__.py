"""SwiftRCU for Python: an RCU-protected reference (read-copy-update) over libswiftrcu.so.

Readers never block and never see a released object; writers publish a new object and release
the previous one after a grace period, when no reader can still be using it::

    import swiftrcu

    config = swiftrcu.Rcu({"timeout": 5})
    current = config.read()                 # one read: the fastest path
    with swiftrcu.read_lock() as g:        # a read-side critical section for several reads
        current = config.dereference(g)

    old = config.copy_update(lambda c: {**c, "timeout": 10})
    old.free()                               # after a grace period, drop the old dict
    config.close()

The package's modules, by concern: ``_library`` finds and opens the C library, ``_ffi`` declares
its functions, ``_errors`` holds the exceptions, ``_release`` who holds published objects and how
they are released, ``_guard`` the read side, ``_rcu`` Rcu and RcuOld, ``_writer`` the writer locks
and the refusal of a wait that would close a cycle of writers, ``_process`` interpreter exit and
fork(). The guide is docs/python.md in the source tree.
"""

from ._errors import ClosedError, DeadlockError, RcuError
from ._ffi import EDEADLK, EINVAL, ENOMEM, EPERM, OK, library_path, library_version
from ._guard import Guard, read_lock
from ._process import EXIT_TIMEOUT
from ._rcu import Rcu
from ._release import RcuOld, barrier, synchronize
from ._stats import Statistics, stats

__version__ = "0.1.0"

__all__ = [
    "Rcu", "RcuOld", "Guard", "read_lock", "synchronize", "barrier",
    "RcuError", "DeadlockError", "ClosedError", "OK", "EINVAL", "EPERM", "EDEADLK", "ENOMEM",
    "EXIT_TIMEOUT", "library_path", "library_version", "__version__",
    "Statistics", "stats",
]
