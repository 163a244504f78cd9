"""Interpreter exit with pending deferred releases neither hangs nor crashes."""

from __future__ import annotations

import time

import pytest

from conftest import library_env, run_python

PRELUDE = """
import sys, threading, time
import swiftrcu

class Noisy:
    released = 0
    def __del__(self):
        Noisy.released += 1

def report():
    sys.stdout.write(f"released={Noisy.released}\\n")
    sys.stdout.flush()
"""


def run_exit_script(body: str, timeout: float = 60, **env: str) -> "tuple[int, str, str, float]":
    started = time.monotonic()
    done = run_python(PRELUDE + body, library_env(**env), timeout=timeout)
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


def test_exit_with_many_pending_deferred_releases() -> None:
    rc, out, err, _ = run_exit_script("""
import atexit
r = swiftrcu.Rcu(Noisy())
for i in range(20000):
    r.replace(Noisy()).defer()
olds = [r.replace(Noisy()) for _ in range(1000)]   # collected at exit: deferred
r2 = swiftrcu.Rcu(Noisy())                          # never closed
atexit.register(report)                             # runs before the binding's handler
""")
    assert rc == 0, err
    assert "Traceback" not in err and "Fatal" not in err, err


def test_exit_runs_the_pending_deferred_releases_first() -> None:
    # atexit runs handlers last-registered first: this one, registered before the binding was
    # imported, runs after the binding's handler and must find every release done.
    code = """
import atexit, sys
class Noisy:
    released = 0
    def __del__(self):
        Noisy.released += 1
atexit.register(lambda: print(f"released={Noisy.released}", flush=True))
import swiftrcu
r = swiftrcu.Rcu(None)
for i in range(20000):
    r.replace(Noisy())
    r.replace(None).defer()
"""
    done = run_python(code, library_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "released=20000", (done.stdout, done.stderr[-2000:])


def test_exit_while_daemon_threads_read_and_write() -> None:
    rc, out, err, _ = run_exit_script("""
r = swiftrcu.Rcu(Noisy())
def reader():
    while True:
        with swiftrcu.read_lock() as g:
            r.dereference(g)
        r.read()
def writer():
    while True:
        old = r.replace(Noisy())
        if old is not None:
            old.defer()
for target in (reader, reader, writer):
    threading.Thread(target=target, daemon=True).start()
time.sleep(0.5)
""")
    assert rc == 0, err
    assert "Fatal" not in err and "Segmentation" not in err, err


def test_exit_while_a_daemon_thread_is_parked_in_a_read_section() -> None:
    rc, out, err, elapsed = run_exit_script("""
r = swiftrcu.Rcu(Noisy())
parked = threading.Event()
def park():
    with swiftrcu.read_lock():
        parked.set()
        threading.Event().wait()     # never leaves its section
threading.Thread(target=park, daemon=True).start()
parked.wait()
for i in range(1000):
    r.replace(Noisy()).defer()      # cannot run: the grace period never ends
""", SWIFTRCU_EXIT_TIMEOUT="1")
    assert rc == 0, err
    assert elapsed < 30


def test_exit_while_main_thread_holds_a_guard() -> None:
    rc, out, err, elapsed = run_exit_script("""
r = swiftrcu.Rcu(Noisy())
for i in range(100):
    r.replace(Noisy()).defer()
g = swiftrcu.read_lock()            # never unlocked
sys.exit(3)
""")
    assert rc == 3, err
    assert "Traceback" not in err, err
    assert elapsed < 30


def test_exit_from_inside_copy_update_and_sections() -> None:
    rc, out, err, _ = run_exit_script("""
r = swiftrcu.Rcu(Noisy())
def fn(current):
    r.replace  # a reference only
    raise SystemExit(0)
for i in range(100):
    r.replace(Noisy()).defer()
with swiftrcu.read_lock():
    r.copy_update(fn)
""")
    assert rc == 0, err
    assert "Traceback" not in err, err


@pytest.mark.parametrize("how", ["free", "defer", "close", "synchronize", "barrier"])
def test_calls_from_atexit_handlers_of_the_program_work(how: str) -> None:
    rc, out, err, _ = run_exit_script(f"""
import atexit
r = swiftrcu.Rcu(Noisy())
old = r.replace(Noisy())
def at_exit():
    if "{how}" == "free":
        old.free()
    elif "{how}" == "defer":
        old.defer()
    elif "{how}" == "close":
        r.close()
    elif "{how}" == "synchronize":
        swiftrcu.synchronize()
    else:
        swiftrcu.barrier()
    print("ok")
atexit.register(at_exit)
""")
    assert rc == 0, err
    assert out.strip() == "ok"
    assert "Traceback" not in err, err
