// Swift concurrency: read sections in tasks, writers in tasks and an actor, and the async grace
// periods, which must suspend tasks rather than block the cooperative pool's threads.
// SPDX-License-Identifier: LGPL-2.1-or-later

import Glibc
import Synchronization
import Testing
@testable import SwiftRCU
@testable import SwiftRCUCore

/// Ends the process with a message if a test has not finished in time: a hang must fail CI, not
/// stall it.
final class Watchdog: Sendable {
    private let done = Atomic<Bool>(false)

    init(seconds: Int, _ what: String) {
        _ = TestThread.start { [self] in
            for _ in 0..<(seconds * 100) {
                if self.done.load(ordering: .acquiring) { return }
                usleep(10_000)
            }
            let msg = "watchdog: \(what) did not finish in \(seconds) s\n"
            _ = msg.withCString { write(2, $0, strlen($0)) }
            exit(3)
        }
    }

    func finish() { done.store(true, ordering: .releasing) }
}

/// Counters shared by the tasks of one test.
final class Counts: Sendable {
    let bad = Atomic<Int>(0)
    let reads = Atomic<Int>(0)
    let early = Atomic<Int>(0)
    let finished = Atomic<Int>(0)
    let stop = Atomic<Bool>(false)
}

/// A writer that is an actor: its updates are serialised by the actor and by the pointer alike.
actor ConfigWriter {
    let x: Rcu<Tracked>
    let tracker: Tracker
    var n = 0

    init(_ x: Rcu<Tracked>, _ tracker: Tracker) {
        self.x = x
        self.tracker = tracker
    }

    func update() async {
        n += 1
        switch n % 4 {
        case 0: x.replace(Tracked(n, tracker))?.free()
        case 1: x.copyUpdate { Tracked(($0?.value ?? 0) + 1, tracker) }?.deferRelease()
        case 2: await x.replace(Tracked(n, tracker))?.release()
        default: _ = x.replace(Tracked(n, tracker)) // dropped: waits for a grace period
        }
    }
}

@Suite("Swift concurrency")
struct ConcurrencyTests {
    /// Readers in a task group, writers in tasks and in an actor: every object is released exactly
    /// once, and none while a reader can see it (its deinit poisons it).
    @Test func tasksAndAnActorReadAndWrite() async throws {
        let watchdog = Watchdog(seconds: 120, "tasksAndAnActorReadAndWrite")
        defer { watchdog.finish() }
        let tracker = Tracker()
        let x = Rcu(Tracked(0, tracker))
        let actorWriter = ConfigWriter(x, tracker)
        let c = Counts()
        let updates = 400
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    while !c.stop.load(ordering: .relaxed) {
                        withReadLock { g in
                            x.dereference(g) { v in
                                if let v, !v.alive.load(ordering: .relaxed) { c.bad.add(1, ordering: .relaxed) }
                            }
                            if let strong = x.dereference(g), !strong.alive.load(ordering: .relaxed) {
                                c.bad.add(1, ordering: .relaxed)
                            }
                        }
                        if readOnce(x) < 0 { c.bad.add(1, ordering: .relaxed) }
                        c.reads.add(1, ordering: .relaxed)
                        await Task.yield()
                    }
                }
            }
            group.addTask {
                for i in 1...updates {
                    if i % 2 == 0 {
                        x.replace(Tracked(i, tracker))?.deferRelease()
                    } else {
                        await x.copyUpdate { Tracked(($0?.value ?? 0) + 1, tracker) }?.release()
                    }
                }
            }
            group.addTask {
                for _ in 0..<updates { await actorWriter.update() }
            }
            // Stop the readers once both writers are done.
            group.addTask {
                while tracker.created.load(ordering: .relaxed) < 2 * updates + 1 { await Task.yield() }
                c.stop.store(true, ordering: .relaxed)
            }
        }
        try await rcuBarrier()
        #expect(c.bad.load(ordering: .relaxed) == 0)
        #expect(c.reads.load(ordering: .relaxed) > 0)
        #expect(tracker.created.load(ordering: .relaxed) == 2 * updates + 1)
        #expect(tracker.live == 1) // only the current object: every other one released exactly once
    }

    /// More tasks wait for grace periods (and barriers, and releases) than the pool has threads,
    /// while a reader thread holds a section open: the waits suspend their tasks, so the task that
    /// lets the reader go still gets a thread, and no wait ends before the reader has left. Each
    /// runs in a process of its own: the held section stalls every grace period of the process,
    /// and other tests blocking pool threads in the meantime would starve this one.
    @Test func asyncSynchronizeDoesNotBlockThePool() async {
        await #expect(processExitsWith: .success) { exit(await poolScenario("synchronizeRCU") ? 0 : 1) }
    }

    @Test func asyncBarrierDoesNotBlockThePool() async {
        await #expect(processExitsWith: .success) { exit(await poolScenario("rcuBarrier") ? 0 : 1) }
    }

    @Test func asyncReleaseDoesNotBlockThePool() async {
        await #expect(processExitsWith: .success) { exit(await poolScenario("release") ? 0 : 1) }
    }
}

/// The scenario of the `...DoesNotBlockThePool` tests, with `form` the wait the tasks use; true
/// when every wait ended, none before the reader left. A blocking wait starves the pool: the
/// watchdog then ends the process (exit status 3).
func poolScenario(_ form: String) async -> Bool {
    let watchdog = Watchdog(seconds: 60, "poolScenario(\(form))")
    defer { watchdog.finish() }
    let tracker = Tracker()
    let x = Rcu(Tracked(0, tracker))
    let entered = Flag()
    let letGo = Flag()
    let reader = TestThread.start {
        withReadLock { _ in
            entered.set()
            letGo.wait()
        }
    }
    entered.wait()
    // A deferred release queued now waits for the reader, and so does a barrier after it.
    x.replace(Tracked(1, tracker))?.deferRelease()
    let waiters = 64
    let c = Counts()
    do {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<waiters {
                group.addTask {
                    switch form {
                    case "synchronizeRCU": try await synchronizeRCU()
                    case "rcuBarrier": try await rcuBarrier()
                    default: await x.replace(Tracked(100 + i, tracker))?.release()
                    }
                    if letGo.value.load(ordering: .acquiring) == 0 { c.early.add(1, ordering: .relaxed) }
                    c.finished.add(1, ordering: .relaxed)
                }
            }
            // Runs only if a pool thread is free while the waiters wait.
            group.addTask {
                try await Task.sleep(for: .milliseconds(50))
                if c.finished.load(ordering: .relaxed) != 0 { c.early.add(1, ordering: .relaxed) }
                letGo.set()
            }
            try await group.waitForAll()
        }
        reader.join()
        try await rcuBarrier()
    } catch {
        return false
    }
    return c.finished.load(ordering: .relaxed) == waiters && c.early.load(ordering: .relaxed) == 0
        && tracker.live == 1
}

/// A plain read through the closure form, usable from async code.
func readOnce(_ x: Rcu<Tracked>) -> Int {
    withReadLock { g in x.dereference(g) { $0?.value ?? 0 } }
}
