"""Finding, loading and declaring the SwiftRCU C library (libswiftrcu.so).

Search order (the first library that loads and passes the checks wins):

1. the file named by the environment variable ``SWIFTRCU_LIBRARY`` (and nothing else when it
   is set);
2. the bundled library: ``libswiftrcu.so`` next to this file, which the wheel built by
   ``make wheel`` carries (its liburcu comes along in ``swiftrcu.libs``);
3. the system's library: the dynamic loader's search path (``LD_LIBRARY_PATH``, the ld.so
   cache, the default directories), then the ``libdir`` that ``pkg-config swiftrcu`` reports;
4. the project's own build output, ``build/lib`` at the top of the source tree this package
   sits in (``bindings/python/../../build/lib``); not looked for in an installed package.

The places are tried lazily: ``pkg-config`` runs (as a subprocess) only when no library was
found before it, so an import that finds the bundled or the system's library spawns nothing.

The library is opened twice: as :class:`ctypes.PyDLL` for calls that never block (they keep
the interpreter lock, which the read side relies on) and as :class:`ctypes.CDLL` for calls that
may wait for a grace period (they release the interpreter lock, so that readers can leave their
sections and deferred releases can run meanwhile).
"""

from __future__ import annotations

import ctypes
import operator
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

#: Major and minimum minor version of the C ABI this binding was written against.
ABI_MAJOR = 0
ABI_MIN_MINOR = 1

ENV_VAR = "SWIFTRCU_LIBRARY"
LIBNAME = "libswiftrcu.so"

# Every symbol the binding calls; a library without one of them is the wrong library.
REQUIRED_SYMBOLS = (
    "swiftrcu_version",
    "swiftrcu_strerror",
    "swiftrcu_new",
    "swiftrcu_read_lock",
    "swiftrcu_read_unlock",
    "swiftrcu_dereference",
    "swiftrcu_load_retained",
    "swiftrcu_loader_bind",
    "swiftrcu_loader_unbind",
    "swiftrcu_replace",
    "swiftrcu_old_object",
    "swiftrcu_old_free",
    "swiftrcu_old_defer",
    "swiftrcu_synchronize",
    "swiftrcu_barrier",
    "swiftrcu_thread_register",
    "swiftrcu_thread_unregister",
)

# Status codes (include/swiftrcu_types.h).
OK = 0
EINVAL = -22
EPERM = -1
EDEADLK = -35
ENOMEM = -12


def _source_tree_build_dir() -> Path:
    # This file is bindings/python/swiftrcu/_library.py inside the source tree.
    return Path(__file__).resolve().parents[3] / "build" / "lib"


def _pkg_config_libdir() -> Tuple[Optional[Path], str]:
    exe = shutil.which("pkg-config")
    if exe is None:
        return None, "pkg-config is not installed"
    try:
        done = subprocess.run(
            [exe, "--variable=libdir", "swiftrcu"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"pkg-config failed: {exc}"
    libdir = done.stdout.strip()
    if done.returncode != 0 or not libdir:
        return None, "pkg-config knows no package 'swiftrcu'"
    return Path(libdir), ""


def bundled_library() -> Path:
    """Where the wheel puts the library: next to this file, inside the package."""
    return Path(__file__).resolve().parent / LIBNAME


def _is_installed() -> bool:
    return Path(__file__).resolve().parents[1].name in ("site-packages", "dist-packages")


def _candidates() -> Iterator[Tuple[str, Optional[str], str]]:
    """(description, path or soname to dlopen, reason it was skipped) in search order.

    A generator: a place is looked at only when every earlier one failed.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        yield f"{ENV_VAR}={env}", env, ""
        return
    yield ENV_VAR, None, "not set"
    bundled = bundled_library()
    if bundled.is_file():
        yield f"the bundled library ({bundled})", str(bundled), ""
    else:
        yield f"the bundled library ({bundled})", None, "not there (only the wheel carries one)"
    for soname in (f"{LIBNAME}.{ABI_MAJOR}", LIBNAME):
        yield f"the loader's search path ({soname})", soname, ""
    libdir, why = _pkg_config_libdir()
    if libdir is None:
        yield "pkg-config swiftrcu libdir", None, why
    else:
        yield f"pkg-config swiftrcu libdir ({libdir})", str(libdir / LIBNAME), ""
    if _is_installed():
        yield ("the project's build output", None,
               "not looked for: the package is installed, not in a source tree")
        return
    build = _source_tree_build_dir() / LIBNAME
    if build.exists():
        yield f"the project's build output ({build})", str(build), ""
    else:
        yield f"the project's build output ({build})", None, "no such file"


def _explain(error: OSError) -> str:
    text = str(error)
    if "static TLS" in text:
        text += (" (the library uses more initial-exec thread-local storage than a dlopen()ed"
                 " library may; rebuild it, or raise the reserve with"
                 " GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384)")
    return text


def _check_library(cdll: ctypes.CDLL) -> str:
    """Returns the library's version; raises ImportError when it is not a usable SwiftRCU."""
    missing = [name for name in REQUIRED_SYMBOLS if not hasattr(cdll, name)]
    if missing:
        raise ImportError("not a usable SwiftRCU library: missing " + ", ".join(missing))
    version_fn = cdll.swiftrcu_version
    version_fn.argtypes = []
    version_fn.restype = ctypes.c_char_p
    version = (version_fn() or b"").decode("ascii", "replace")
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        raise ImportError(f"SwiftRCU library reports an unreadable version {version!r}") from None
    if major != ABI_MAJOR or minor < ABI_MIN_MINOR:
        raise ImportError(
            f"SwiftRCU library version {version} is not compatible with this binding"
            f" (needs {ABI_MAJOR}.{ABI_MIN_MINOR} or a later {ABI_MAJOR}.x)")
    return version


def open_library() -> Tuple[ctypes.CDLL, ctypes.PyDLL, str, str]:
    """Finds the library; returns (CDLL, PyDLL, path, version) or raises ImportError."""
    tried: List[str] = []
    for description, target, skipped in _candidates():
        if target is None:
            tried.append(f"  - {description}: {skipped}")
            continue
        try:
            cdll = ctypes.CDLL(target)
        except OSError as exc:
            tried.append(f"  - {description}: {_explain(exc)}")
            continue
        try:
            version = _check_library(cdll)
        except ImportError as exc:
            tried.append(f"  - {description}: {exc}")
            continue
        pydll = ctypes.PyDLL(target)
        return cdll, pydll, _loaded_path(cdll, target), version
    raise ImportError(
        "swiftrcu: cannot load the SwiftRCU C library (libswiftrcu.so). Looked in:\n"
        + "\n".join(tried)
        + "\nInstall the swiftrcu wheel, which carries the library ('make wheel' builds it"
        " into build/dist/), or build and install the library from the SwiftRCU source tree"
        " ('make' then 'make install', which installs the library and its pkg-config file),"
        f" or set {ENV_VAR} to the path of libswiftrcu.so.")


def _loaded_path(cdll: ctypes.CDLL, target: str) -> str:
    """The file the loader actually opened for `target` (a soname resolves to a path)."""
    if os.sep in target:
        return os.path.abspath(target)
    try:
        dladdr_info = _dladdr(ctypes.cast(cdll.swiftrcu_version, ctypes.c_void_p).value)
    except (OSError, AttributeError):
        dladdr_info = None
    return dladdr_info or target


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def _dladdr(address: Optional[int]) -> Optional[str]:
    libc = ctypes.CDLL(None)
    dladdr = libc.dladdr
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    dladdr.restype = ctypes.c_int
    info = _DlInfo()
    if not dladdr(address, ctypes.byref(info)) or not info.dli_fname:
        return None
    return str(Path(os.fsdecode(info.dli_fname)).resolve())


class GuardStruct(ctypes.Structure):
    """``swiftrcu_guard``: two private 64-bit words (the owning thread, the section's identity).

    A spent (unlocked) or refused guard is all zeroes.
    """

    _fields_ = [("_thread", ctypes.c_uint64), ("_word", ctypes.c_uint64)]


class Borrowed(ctypes.py_object):
    """Result type of the functions that return a *borrowed* ``PyObject *``.

    A plain ``py_object`` result is taken to be a new reference and would steal one. Here ctypes
    builds this wrapper and calls ``_check_retval_`` on it, which reads ``.value`` and so takes a
    new reference, all in C before any bytecode runs: the interpreter lock is not released
    between the foreign call and the new reference (except by a garbage collection started by
    the wrapper's allocation on Python < 3.12, which the core module guards against). A NULL
    result raises ValueError.
    """

    _check_retval_ = operator.attrgetter("value")


#: destroy(object, context) as the library calls it.
DESTROY_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


def declare(dll: Any, name: str, restype: Any, argtypes: Sequence[Any],
            errcheck: Optional[Callable[..., Any]] = None) -> Any:
    """A fresh function object for `name` with its prototype (never shared with other users)."""
    fn = dll[name]
    fn.restype = restype
    fn.argtypes = list(argtypes)
    if errcheck is not None:
        fn.errcheck = errcheck
    return fn
