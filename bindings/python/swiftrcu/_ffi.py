"""The foreign functions of libswiftrcu.so that the package calls, with their prototypes.

The library is found and opened by :mod:`swiftrcu._library`. It is opened twice:

* ``PyDLL`` for calls that never block. They keep the interpreter lock (GIL), which is what
  makes a read atomic with respect to every Python-level release (see ``_release``).
* ``CDLL`` for calls that may wait for a grace period or pause. They release the GIL, so that
  readers can leave their sections and deferred releases (which take the GIL) can run meanwhile.

No function here has an ``errcheck``: the callers read the status themselves. An errcheck is
Python code that runs after the foreign call, so a ``KeyboardInterrupt`` raised there would lose
the result of a call that already changed state (see ``Rcu.replace``).
"""

from __future__ import annotations

import ctypes
from typing import Any, Callable, Optional

from . import _library
from ._library import EDEADLK, EINVAL, ENOMEM, EPERM, OK, Borrowed, GuardStruct, declare

__all__ = ["OK", "EINVAL", "EPERM", "EDEADLK", "ENOMEM", "library_path", "library_version"]

cdll, pydll, library_path, library_version = _library.open_library()

# Entry points the loader does not check for: a library without them is too old for this package.
_NEWER = ("swiftrcu_region_enter", "swiftrcu_region_exit", "swiftrcu_in_read_section",
          "swiftrcu_prepare_fork", "swiftrcu_read_lock_dereference")
_missing = [name for name in _NEWER if not hasattr(cdll, name)]
if _missing:
    raise ImportError(f"the SwiftRCU library at {library_path} (version {library_version}) is too"
                      f" old for this package: it lacks {', '.join(_missing)}")

c_void_p = ctypes.c_void_p
_c_int = ctypes.c_int

#: destroy(object, context) as the library calls it.
DESTROY_FN = _library.DESTROY_FN

# --- the interpreter's own C API (what ctypes.pythonapi is)
_api = ctypes.PyDLL(None)
incref: Callable[[Any], None] = declare(_api, "Py_IncRef", None, [ctypes.py_object])
decref: Callable[[int], None] = declare(_api, "Py_DecRef", None, [c_void_p])
#: The readers' retain function: a loader calls it on the object inside its read-side section.
PY_INCREF: int = ctypes.cast(_api["Py_IncRef"], c_void_p).value or 0
#: What a loader returns for a published NULL (None lives as long as the interpreter).
NONE_ADDRESS = id(None)

# --- messages
strerror: Callable[[int], Optional[bytes]] = declare(pydll, "swiftrcu_strerror", ctypes.c_char_p,
                                                     [_c_int])

# --- read side (PyDLL: never blocks)
#: Enters an anonymous read-side section (a region); 0, or EPERM entering nothing.
region_enter: Callable[[], int] = declare(pydll, "swiftrcu_region_enter", _c_int, [])
#: Leaves the innermost section if it is a region; 0, or EPERM changing nothing.
region_exit: Callable[[], int] = declare(pydll, "swiftrcu_region_exit", _c_int, [])
#: 1 inside a read-side section of the calling thread, else 0.
in_read_section: Callable[[], int] = declare(pydll, "swiftrcu_in_read_section", _c_int, [])
#: Enters a section whose guard the library writes into the caller's buffer (copy_update's).
read_lock_into: Callable[[Any, Any], Any] = declare(
    pydll, "swiftrcu_read_lock_dereference", c_void_p, [c_void_p, ctypes.POINTER(GuardStruct)])
#: Leaves the section of a guard buffer filled by read_lock_into; EPERM for a zeroed one.
read_unlock: Callable[[Any], int] = declare(pydll, "swiftrcu_read_unlock", _c_int,
                                            [ctypes.POINTER(GuardStruct)])
# Takes a reference with Py_IncRef inside the read-side section; the result wrapper takes another
# (a plain py_object result would crash on NULL), which the caller gives back.
load_retained: Callable[[Any, int], Any] = declare(pydll, "swiftrcu_load_retained", Borrowed,
                                                   [c_void_p, c_void_p])
loader_bind: Callable[[Any, int, int, Any], int] = declare(
    pydll, "swiftrcu_loader_bind", _c_int, [c_void_p, c_void_p, c_void_p, ctypes.POINTER(c_void_p)])
loader_unbind: Callable[[int], int] = declare(pydll, "swiftrcu_loader_unbind", _c_int, [c_void_p])

# --- write side (PyDLL: never waits for a grace period)
new: Callable[[Optional[int], Any, None], Optional[int]] = declare(
    pydll, "swiftrcu_new", c_void_p, [c_void_p, DESTROY_FN, c_void_p])
#: replace(ptr, object, &old): the old handle goes to the caller's buffer (NULL on failure).
replace: Callable[[Any, Optional[int], Any], int] = declare(
    pydll, "swiftrcu_replace", _c_int, [c_void_p, c_void_p, ctypes.POINTER(c_void_p)])

# --- calls that may wait (CDLL: release the GIL). old_defer pauses (at most 10 ms) once too many
# destroys are pending, and the destroys it waits for need the GIL.
old_defer: Callable[[int], int] = declare(cdll, "swiftrcu_old_defer", _c_int, [c_void_p])
old_free: Callable[[int], int] = declare(cdll, "swiftrcu_old_free", _c_int, [c_void_p])
synchronize: Callable[[], int] = declare(cdll, "swiftrcu_synchronize", _c_int, [])
barrier: Callable[[], int] = declare(cdll, "swiftrcu_barrier", _c_int, [])
prepare_fork: Callable[[], int] = declare(cdll, "swiftrcu_prepare_fork", _c_int, [])
