// The writer lock: exclusion under contention (waiters park and are woken), holder identity.
// SPDX-License-Identifier: LGPL-2.1-or-later

import CLiburcuShim
import Glibc
import Synchronization
import Testing
@testable import SwiftRCU
@_spi(CABI) @testable import SwiftRCUCore

/// A writer lock and a counter only touched with it held, shared by test threads.
///
/// # Invariants
///
/// `count` and `inside` are only written inside `lock.withLock`; `storage` is the lock's memory,
/// allocated and initialised here, freed in `deinit`.
private final class Guarded: @unchecked Sendable {
    let storage: UnsafeMutablePointer<rcushim_writer_lock> = {
        let lock = UnsafeMutablePointer<rcushim_writer_lock>.allocate(capacity: 1)
        WriterLock.initialize(lock)
        return lock
    }()
    var lock: WriterLock { WriterLock(storage) }
    var count = 0
    var inside = 0
    let overlaps = Atomic<Int>(0)

    var held: Bool { lock.isHeldByCurrentThread }

    deinit { storage.deallocate() }
}

@Suite("Writer lock")
struct WriterLockTests {
    @Test func excludesUnderContention() {
        let g = Guarded()
        let threads = 4
        let rounds = 3000
        var workers: [TestThread] = []
        for t in 0..<threads {
            workers.append(TestThread.start {
                for i in 0..<rounds {
                    g.lock.withLock {
                        g.inside += 1
                        if g.inside != 1 { g.overlaps.add(1, ordering: .relaxed) }
                        // Hold the lock across a sleep now and then, so that waiters park.
                        if (i + t) % 500 == 0 { usleep(2000) }
                        g.count += 1
                        g.inside -= 1
                    }
                }
            })
        }
        for w in workers { w.join() }
        let overlaps = g.overlaps.load(ordering: .relaxed)
        #expect(g.count == threads * rounds)
        #expect(overlaps == 0)
    }

    @Test func knowsItsHolder() {
        let g = Guarded()
        #expect(!g.held)
        let entered = Flag()
        let checked = Flag()
        let otherSawHeld = Atomic<Int>(-1)
        let otherGotIn = Atomic<Bool>(false)
        var other: TestThread?
        g.lock.withLock {
            #expect(g.held)
            // A thread that never used the library: it gets its identity on first use.
            other = TestThread.start {
                otherSawHeld.store(g.held ? 1 : 0, ordering: .relaxed)
                entered.set()
                g.lock.withLock {
                    otherGotIn.store(true, ordering: .relaxed)
                    checked.set(g.held ? 1 : 2)
                }
            }
            entered.wait()
            usleep(20000)
            let gotIn = otherGotIn.load(ordering: .relaxed)
            #expect(!gotIn) // the other thread waits while this one holds the lock
        }
        checked.wait()
        other?.join()
        let sawHeld = otherSawHeld.load(ordering: .relaxed)
        let heldInside = checked.value.load(ordering: .relaxed)
        #expect(sawHeld == 0)
        #expect(heldInside == 1)
        #expect(!g.held)
    }
}
