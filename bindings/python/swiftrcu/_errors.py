"""The exceptions of the package: C status codes (``SWIFTRCU_*``) turned into Python errors."""

from __future__ import annotations

from typing import Any, Optional, Tuple

from ._ffi import EDEADLK, EINVAL, EPERM, strerror


class RcuError(RuntimeError):
    """A SwiftRCU call failed. ``status`` is the C status code, ``name`` its name
    (``"SWIFTRCU_EINVAL"``, ``"SWIFTRCU_EDEADLK"``, ...)."""

    status: int
    name: str
    detail: Optional[str]

    def __init__(self, status: int, detail: Optional[str] = None) -> None:
        text = (strerror(status) or b"SWIFTRCU_UNKNOWN: unknown status").decode("utf-8", "replace")
        self.status = status
        self.name = text.split(":", 1)[0]
        self.detail = detail
        super().__init__(text if detail is None else f"{text} ({detail})")

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self.status, self.detail))


class DeadlockError(RcuError):
    """The call would wait forever (``SWIFTRCU_EDEADLK``): a grace-period wait inside a read-side
    section, a write to an Rcu from inside its own copy_update function, or a write that would
    close a cycle of writers waiting for each other's locks. Nothing changed."""

    def __init__(self, status: int = EDEADLK, detail: Optional[str] = None) -> None:
        super().__init__(status, detail)


class ClosedError(RcuError, ValueError):
    """The Rcu is closed (``SWIFTRCU_EINVAL``). Also a ValueError, as for a closed file."""

    def __init__(self, status: int = EINVAL, detail: Optional[str] = "the Rcu is closed") -> None:
        super().__init__(status, detail)


def error(status: int, detail: Optional[str] = None) -> RcuError:
    """The exception for a non-zero status."""
    return (DeadlockError if status == EDEADLK else RcuError)(status, detail)


def released_error() -> RcuError:
    return RcuError(EINVAL, "the RcuOld was already freed or deferred")


UNLOCK_REFUSED = ("the guard is not this thread's innermost held read-side section: already"
                  " unlocked, taken by another thread, or an inner section is still held")


def unlock_refused(detail: str = UNLOCK_REFUSED) -> RcuError:
    return RcuError(EPERM, detail)
