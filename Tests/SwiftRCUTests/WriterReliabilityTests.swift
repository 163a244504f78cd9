// Writers of the Swift API in the hard cases: publishing the current object again, a writer whose
// thread exits inside copyUpdate, and two copyUpdate closures each writing the other's pointer.
// SPDX-License-Identifier: LGPL-2.1-or-later

import Glibc
import Synchronization
import Testing
@testable import SwiftRCU

/// Runs `body` on a new thread and waits for it at most `seconds`; whether it finished (a thread
/// that did not is left behind, so a hang fails the test instead of stopping the run).
private func finishes(within seconds: Double, _ body: @escaping @Sendable () -> Void) -> Bool {
    let done = Flag()
    let thread = TestThread.start {
        body()
        done.set()
    }
    var waited = 0.0
    while done.value.load(ordering: .acquiring) == 0, waited < seconds {
        sleepMilliseconds(5)
        waited += 0.005
    }
    guard done.value.load(ordering: .acquiring) != 0 else { return false }
    thread.join()
    return true
}

@Suite("Writers: hard cases")
struct WriterReliabilityTests {
    @Test func replaceWithCurrentChangesNothingAndLeaksNothing() throws {
        let tracker = Tracker()
        do {
            let first = Tracked(1, tracker)
            let x = Rcu(first)
            let old = x.replace(first)
            #expect(Bool(!isSome(old)))
            _ = consume old
            #expect(withReadLock { g in x.dereference(g) { $0 === first } })
            #expect(Bool(first.alive.load(ordering: .relaxed)))
            let empty = Rcu<Tracked>()
            #expect(Bool(!isSome(empty.replace(nil))))
        }
        try rcuBarrier()
        // Each object released exactly once: nothing leaked, nothing released twice.
        #expect(tracker.created.load(ordering: .relaxed) == 1)
        #expect(tracker.released.load(ordering: .relaxed) == 1)
    }

    @Test(arguments: [false, true])
    func writerThreadExitingInsideCopyUpdateReleasesTheLock(cancelled: Bool) throws {
        let tracker = Tracker()
        let x = Rcu(Tracked(1, tracker))
        let inside = Flag()
        let writer = TestThread.start {
            _ = x.copyUpdate { (_: Tracked?) -> Tracked? in
                inside.set()
                if !cancelled { pthread_exit(nil) }
                while true {
                    pthread_testcancel()
                    usleep(1000)
                }
            }
        }
        inside.wait()
        if cancelled { pthread_cancel(writer.id) }
        writer.join()
        // Nothing was published; the lock was released at the thread's exit.
        #expect(withReadLock { g in x.dereference(g) { $0?.value } } == 1)
        #expect(finishes(within: 5) { try? synchronizeRCU() })
        #expect(finishes(within: 5) { x.replace(Tracked(2, tracker))?.free() })
        #expect(withReadLock { g in x.dereference(g) { $0?.value } } == 2)
    }

    @Test func crossedCopyUpdatesTrapNamingTheCycle() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            alarm(20) // a silent deadlock ends here (SIGALRM), without the message checked below
            let a = Rcu(Tracked(1, Tracker()))
            let b = Rcu(Tracked(2, Tracker()))
            let inA = Flag()
            let inB = Flag()
            let first = TestThread.start {
                _ = a.copyUpdate { current in
                    inA.set()
                    inB.wait()
                    b.replace(Tracked(3, Tracker()))?.deferRelease()
                    return current
                }
            }
            let second = TestThread.start {
                _ = b.copyUpdate { current in
                    inB.set()
                    inA.wait()
                    a.replace(Tracked(4, Tracker()))?.deferRelease()
                    return current
                }
            }
            first.join()
            second.join()
            // Not reached: one of the two writes closes the cycle and traps.
        }
        let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(stderr.contains("SwiftRCU writer deadlock"))
        #expect(stderr.contains("a cycle of 2 writers"))
    }
}
