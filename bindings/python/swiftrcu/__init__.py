"""SwiftRCU for Python: an RCU-protected reference (read-copy-update) over libswiftrcu.so.

Readers never block and never see a released object; writers publish a new object and release
the previous one after a grace period, when no reader can still be using it::

    import swiftrcu

    config = swiftrcu.Rcu({"timeout": 5})
    with swiftrcu.read_lock() as g:        # a read-side critical section
        current = config.dereference(g)
    current = config.read()                 # the same in one call

    old = config.copy_update(lambda c: {**c, "timeout": 10})
    old.free()                               # after a grace period, drop the old dict
    config.close()

The C library is found through SWIFTRCU_LIBRARY, else the installed library, else the build
output of the source tree this package belongs to (see swiftrcu._library).
"""

from ._core import (
    EDEADLK,
    EINVAL,
    ENOMEM,
    EPERM,
    EXIT_TIMEOUT,
    OK,
    DeadlockError,
    Guard,
    Rcu,
    RcuError,
    RcuOld,
    barrier,
    library_path,
    library_version,
    read_lock,
    synchronize,
)

from ._stats import Statistics, stats  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Rcu", "RcuOld", "Guard", "read_lock", "synchronize", "barrier",
    "RcuError", "DeadlockError", "OK", "EINVAL", "EPERM", "EDEADLK", "ENOMEM",
    "EXIT_TIMEOUT", "library_path", "library_version", "__version__",
    "Statistics", "stats",
]
