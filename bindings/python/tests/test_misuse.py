"""Random call sequences, misuse included: errors are exceptions, never crashes or leaks."""

from __future__ import annotations

import gc
import random
import threading
from typing import Any, Callable, List

import pytest

import swiftrcu
from conftest import Obj, Tracker

ALLOWED = (swiftrcu.RcuError, TypeError)


class Fuzzer:
    def __init__(self, seed: int, tracker: Tracker) -> None:
        self.rnd = random.Random(seed)
        self.tracker = tracker
        self.rcus: List[swiftrcu.Rcu] = []
        self.olds: List[swiftrcu.RcuOld] = []
        self.guards: List[swiftrcu.Guard] = []  # every guard ever taken, spent ones included
        self.errors = 0

    def pick(self, items: List[Any]) -> Any:
        return self.rnd.choice(items) if items else None

    def value(self) -> Any:
        return None if self.rnd.random() < 0.2 else self.tracker.make(self.rnd.random())

    def update_fn(self, rcu: swiftrcu.Rcu) -> Callable[[Any], Any]:
        kind = self.rnd.randrange(6)

        def fn(current: Any) -> Any:
            if kind == 0:
                return current
            if kind == 1:
                raise KeyError("from fn")
            if kind == 2:
                rcu.replace(self.value())  # same Rcu: DeadlockError
            if kind == 3:
                swiftrcu.synchronize()  # DeadlockError inside fn
            if kind == 4:
                other = self.pick(self.rcus)
                if other is not None and other is not rcu:
                    old = other.replace(self.value())
                    if old is not None:
                        self.olds.append(old)
            return self.value()

        return fn

    def step(self) -> None:
        op = self.rnd.randrange(17)
        rcu, old, guard = self.pick(self.rcus), self.pick(self.olds), self.pick(self.guards)
        if op == 0 or rcu is None:
            self.rcus.append(swiftrcu.Rcu(self.value()))
        elif op == 1:
            v = rcu.read()
            assert v is None or isinstance(v, Obj)
        elif op == 2 and guard is not None:
            v = rcu.dereference(guard)
            assert v is None or isinstance(v, Obj)
        elif op == 3:
            self.guards.append(swiftrcu.read_lock())
        elif op == 4 and guard is not None:
            guard.unlock()
        elif op == 5:
            old = rcu.replace(self.value())
            if old is not None:
                self.olds.append(old)
        elif op == 6:
            old = rcu.copy_update(self.update_fn(rcu))
            if old is not None:
                self.olds.append(old)
        elif op == 7 and old is not None:
            old.free()
        elif op == 8 and old is not None:
            old.defer()
        elif op == 9 and old is not None:
            assert isinstance(old.value, Obj)
        elif op == 10:
            rcu.close()
        elif op == 11:
            swiftrcu.synchronize()
        elif op == 12:
            swiftrcu.barrier()
        elif op == 13 and self.rcus:
            self.rcus.pop(self.rnd.randrange(len(self.rcus)))
        elif op == 14 and self.olds:
            self.olds.pop(self.rnd.randrange(len(self.olds)))
        elif op == 15 and self.guards:
            self.guards.pop(self.rnd.randrange(len(self.guards)))  # a held one is unlocked
        elif op == 16:
            rcu.dereference(self.rnd.choice([None, 3, "x", rcu]))

    def run(self, steps: int) -> None:
        for _ in range(steps):
            try:
                self.step()
            except ALLOWED:
                self.errors += 1
            except KeyError:
                self.errors += 1
            if self.rnd.random() < 0.01:
                gc.collect()

    def finish(self) -> None:
        """Unlocks the guards still known (on the fuzzing thread); dropped ones held out of
        order stay open until that thread exits, as documented."""
        for guard in reversed(self.guards):
            if guard.held:
                try:
                    guard.unlock()
                except swiftrcu.RcuError:
                    pass
        self.guards.clear()

    def close_all(self) -> None:
        for rcu in self.rcus:
            if not rcu.closed:
                rcu.close()
        self.rcus.clear()
        self.olds.clear()


@pytest.mark.parametrize("seed", range(6))
def test_random_call_sequences(seed: int, tracker: Tracker) -> None:
    fuzzer = Fuzzer(seed, tracker)
    failure: List[BaseException] = []

    def fuzz() -> None:
        try:
            fuzzer.run(1500)
            fuzzer.finish()
        except BaseException as exc:  # pragma: no cover - reported below
            failure.append(exc)

    # On a thread of its own: read-side sections it leaves open end when it exits.
    t = threading.Thread(target=fuzz)
    t.start()
    t.join(120)
    assert not t.is_alive()
    assert not failure, failure
    fuzzer.close_all()
    assert fuzzer.errors > 0  # misuse happened and was reported as exceptions
    tracker.assert_all_finalized_once()
