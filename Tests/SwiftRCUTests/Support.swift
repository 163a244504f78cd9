// Test support: threads without Foundation, and objects that count their own deinit.
// SPDX-License-Identifier: LGPL-2.1-or-later

import Glibc
import Synchronization

/// A running thread that can be joined.
struct TestThread {
    let id: pthread_t

    /// Starts `body` on a new thread.
    static func start(_ body: @escaping @Sendable () -> Void) -> TestThread {
        final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var id = pthread_t()
        let rc = pthread_create(&id, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed")
        return TestThread(id: id)
    }

    func join() { pthread_join(id, nil) }
}

/// Counts live and released instances of `Tracked`, per test.
final class Tracker: Sendable {
    let created = Atomic<Int>(0)
    let released = Atomic<Int>(0)
    var live: Int { created.load(ordering: .relaxed) - released.load(ordering: .relaxed) }
}

/// An object that records its release and poisons itself, so a reader can tell a released one.
final class Tracked: Sendable {
    let value: Int
    let tracker: Tracker
    let alive = Atomic<Bool>(true)

    init(_ value: Int, _ tracker: Tracker) {
        self.value = value
        self.tracker = tracker
        tracker.created.add(1, ordering: .relaxed)
    }

    deinit {
        alive.store(false, ordering: .relaxed)
        tracker.released.add(1, ordering: .relaxed)
    }
}

/// A one-shot flag threads can wait on.
final class Flag: Sendable {
    let value = Atomic<Int>(0)
    func set(_ v: Int = 1) { value.store(v, ordering: .releasing) }
    func wait(for v: Int = 1) {
        while value.load(ordering: .acquiring) < v { sched_yield() }
    }
}

func sleepMilliseconds(_ ms: Int) { usleep(UInt32(ms * 1000)) }

/// Whether a noncopyable optional holds a value (`#expect` cannot compare those with nil).
func isSome<T: ~Copyable>(_ value: borrowing T?) -> Bool {
    switch value {
    case .some: true
    case .none: false
    }
}
