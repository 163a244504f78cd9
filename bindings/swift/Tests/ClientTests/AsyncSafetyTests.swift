// The Swift API in async code, from a client package: read sections that cannot span an await,
// a guard that is carried across one anyway (it must trap, not hang), and grace periods after
// thousands of tasks have read.
// SPDX-License-Identifier: LGPL-2.1-or-later

import Glibc
import SwiftRCU
import Synchronization
import Testing

final class Config: Sendable {
    let version: Int
    init(_ version: Int) { self.version = version }
}

/// A guard taken in a synchronous helper: `noasync` does not follow it into async code.
func takeGuard() -> RcuGuard { readLock() }

/// A task executor with two threads of its own; every job it is given runs on the thread that
/// `lane` names at that moment, so a task can be sent from one known thread to the other.
final class TwoThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let lanes = [Lane(), Lane()]
    let lane = Atomic<Int>(0)

    init() {
        for lane in lanes { lane.start(self) }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        lanes[lane.load(ordering: .acquiring)].push(UnownedJob(job))
    }

    /// One thread and the jobs waiting for it.
    final class Lane: @unchecked Sendable {
        private let jobs = Mutex<[UnownedJob]>([])
        private var ready = sem_t()

        init() { sem_init(&ready, 0, 0) }

        func push(_ job: UnownedJob) {
            jobs.withLock { $0.append(job) }
            sem_post(&ready)
        }

        func start(_ executor: TwoThreadExecutor) {
            let box = Unmanaged.passRetained(Starter(lane: self, executor: executor)).toOpaque()
            var thread = pthread_t()
            precondition(pthread_create(&thread, nil, { raw in
                let s = Unmanaged<Starter>.fromOpaque(raw!).takeRetainedValue()
                s.lane.run(s.executor)
                return nil
            }, box) == 0)
        }

        private func run(_ executor: TwoThreadExecutor) {
            while true {
                while sem_wait(&ready) != 0 {}
                let job = jobs.withLock { $0.removeFirst() }
                job.runSynchronously(on: executor.asUnownedTaskExecutor())
            }
        }
    }

    final class Starter {
        let lane: Lane
        let executor: TwoThreadExecutor
        init(lane: Lane, executor: TwoThreadExecutor) {
            self.lane = lane
            self.executor = executor
        }
    }
}

/// Runs `body` on a new thread and waits for it at most `seconds`; false if it did not return.
func returnsWithin(seconds: Int, _ body: @escaping @Sendable () -> Void) -> Bool {
    final class Run: Sendable {
        let body: @Sendable () -> Void
        let done = Atomic<Bool>(false)
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let run = Run(body)
    var thread = pthread_t()
    precondition(pthread_create(&thread, nil, { raw in
        let run = Unmanaged<Run>.fromOpaque(raw!).takeRetainedValue()
        run.body()
        run.done.store(true, ordering: .releasing)
        return nil
    }, Unmanaged.passRetained(run).toOpaque()) == 0)
    pthread_detach(thread)
    for _ in 0..<(seconds * 100) {
        if run.done.load(ordering: .acquiring) { return true }
        usleep(10_000)
    }
    return false
}

@Suite("SwiftRCU from a client package, in async code")
struct AsyncSafetyTests {
    /// The scenario without the misuse: 2000 tasks read with `withReadLock` around an
    /// await, then a grace period on another thread returns.
    @Test func thousandsOfTasksThenAGracePeriod() async {
        let x = Rcu(Config(1))
        let seen = Atomic<Int>(0)
        await withTaskGroup(of: Int.self) { group in
            for _ in 0..<2000 {
                group.addTask {
                    var sum = withReadLock { g in x.dereference(g) { $0?.version ?? 0 } }
                    await Task.yield()
                    for _ in 0..<50 { sum += withReadLock { g in x.dereference(g) { $0?.version ?? 0 } } }
                    return sum
                }
            }
            for await s in group { seen.add(s, ordering: .relaxed) }
        }
        #expect(seen.load(ordering: .relaxed) == 2000 * 51)
        #expect(returnsWithin(seconds: 10) { try! synchronizeRCU() })
    }

    /// A guard carried across an await to another thread stops the program with a message when
    /// it ends, rather than ending another thread's section (which hangs grace periods).
    @Test func guardCarriedAcrossAnAwaitTraps() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let executor = TwoThreadExecutor()
            let task = Task(executorPreference: executor) {
                await Task.yield() // now on the executor's first thread
                let g = takeGuard()
                let taker = pthread_self()
                executor.lane.store(1, ordering: .releasing)
                // Resume on the executor's second thread (a yield may be served by the thread
                // it left, so yield until the thread has changed).
                for _ in 0..<1000 where pthread_equal(pthread_self(), taker) != 0 { await Task.yield() }
                if pthread_equal(pthread_self(), taker) != 0 { exit(42) } // the move never happened
                g.unlock()
            }
            await task.value
        }
        let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(stderr.contains("RcuGuard ended on another thread than the one that took it"))
    }

    /// The same carried guard, ended on the thread that took it, is accepted (the check cannot
    /// see it, as the docs say) and the program goes on.
    @Test func guardEndedOnItsOwnThreadIsAccepted() async {
        let g = takeGuard()
        g.unlock()
        #expect(returnsWithin(seconds: 10) { try! synchronizeRCU() })
    }

    /// The async grace periods, as async code uses them.
    @Test func asyncGracePeriods() async throws {
        let x = Rcu(Config(1))
        try await synchronizeRCU()
        await x.replace(Config(2))?.release()
        x.replace(Config(3))?.deferRelease()
        try await rcuBarrier()
        #expect(withReadLock { g in x.dereference(g) { $0?.version } } == 3)
    }
}
