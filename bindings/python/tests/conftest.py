"""Shared helpers: tracked objects whose finalisation is recorded, and subprocess runs.

The suite tests the installed package when the interpreter has one (`make test` installs the
wheel into a fresh venv and runs from a directory outside the source tree), else the package in
this source tree. `--wheel` says the package under test must be an installed wheel that carries
its library; the run stops if it is not.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import subprocess
import sys
import threading
import weakref
from pathlib import Path
from typing import Dict, List, Optional

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # bindings/python
if importlib.util.find_spec("swiftrcu") is None and str(PACKAGE_ROOT) not in sys.path:
    sys.path.insert(0, str(PACKAGE_ROOT))

import swiftrcu  # noqa: E402

#: The directory of the package under test, and whether it is an installed one.
PACKAGE_DIR = Path(swiftrcu.__file__).resolve().parent
INSTALLED = PACKAGE_DIR.parent != PACKAGE_ROOT


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--wheel", action="store_true",
                     help="the package under test must be the installed wheel with its library")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--wheel") and not INSTALLED:
        raise pytest.UsageError(f"--wheel: swiftrcu is imported from the source tree ({PACKAGE_DIR})")


def pytest_report_header(config: pytest.Config) -> str:
    return f"swiftrcu: package {PACKAGE_DIR}, library {swiftrcu.library_path}"


class Obj:
    """A small object whose finalisation a Tracker records."""

    __slots__ = ("value", "token", "__weakref__")

    def __init__(self, value: object, token: int) -> None:
        self.value = value
        self.token = token

    def __repr__(self) -> str:
        return f"Obj({self.value!r})"


class Tracker:
    """Creates Obj instances and counts how often each one was finalised."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0
        self.created = 0
        self.finalized: Dict[int, int] = {}

    def make(self, value: object = None) -> Obj:
        with self._lock:
            self._next += 1
            token = self._next
            self.created += 1
        obj = Obj(value, token)
        weakref.finalize(obj, self._finalized, token)
        return obj

    def _finalized(self, token: int) -> None:
        with self._lock:
            self.finalized[token] = self.finalized.get(token, 0) + 1

    def is_finalized(self, obj_or_token: object) -> bool:
        token = obj_or_token.token if isinstance(obj_or_token, Obj) else obj_or_token
        return token in self.finalized

    def settle(self) -> None:
        """Runs pending deferred releases and collections."""
        for _ in range(3):
            swiftrcu.barrier()
            gc.collect()
        swiftrcu.barrier()

    def assert_all_finalized_once(self) -> None:
        self.settle()
        assert len(self.finalized) == self.created, (
            f"{self.created - len(self.finalized)} of {self.created} objects never finalised")
        twice = {t: n for t, n in self.finalized.items() if n != 1}
        assert not twice, f"finalised more than once: {twice}"


@pytest.fixture
def tracker() -> Tracker:
    return Tracker()


@pytest.fixture(autouse=True)
def _no_section_left_open():
    """Every test must leave this thread outside read-side sections."""
    yield
    try:
        swiftrcu.synchronize()
    except swiftrcu.DeadlockError:  # pragma: no cover - reports a broken test
        pytest.fail("the test left a read-side section open on the main thread")


def library_env(**extra: Optional[str]) -> Dict[str, str]:
    """An environment for a child interpreter that loads the library under test."""
    env = dict(os.environ)
    env["SWIFTRCU_LIBRARY"] = swiftrcu.library_path
    if not INSTALLED:
        env["PYTHONPATH"] = str(PACKAGE_ROOT) + (
            os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_python(code: str, env: Dict[str, str], timeout: float = 60,
               cwd: Optional[str] = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False)


class SectionHolder(threading.Thread):
    """A thread that enters a read-side section and stays in it until release()."""

    def __init__(self, rcu: Optional["swiftrcu.Rcu"] = None) -> None:
        super().__init__(daemon=True)
        self.rcu = rcu
        self.seen: List[object] = []
        self.entered = threading.Event()
        self._release = threading.Event()
        self.left = threading.Event()

    def run(self) -> None:
        with swiftrcu.read_lock() as guard:
            if self.rcu is not None:
                self.seen.append(self.rcu.dereference(guard))
            self.entered.set()
            self._release.wait(30)
        self.left.set()

    def start(self) -> None:  # type: ignore[override]
        super().start()
        assert self.entered.wait(10)

    def release(self) -> None:
        self._release.set()
        self.join(10)
        assert self.left.is_set()
