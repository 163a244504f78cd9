// A short torture of the Swift API: readers never see a released object, every object published
// is released exactly once.
// SPDX-License-Identifier: LGPL-2.1-or-later

import Synchronization
import Testing
@testable import SwiftRCU
@_spi(CABI) @testable import SwiftRCUCore

@Suite("Swift torture")
struct TortureTests {
    @Test func readersNeverSeeReleasedObjects() throws {
        let tracker = Tracker()
        let x = Rcu(Tracked(0, tracker))
        let stop = Atomic<Bool>(false)
        let bad = Atomic<Int>(0)
        let reads = Atomic<Int>(0)
        let updates = 4000
        var readers: [TestThread] = []
        for _ in 0..<2 {
            readers.append(TestThread.start {
                var lastSeen = 0
                var n = 0
                while !stop.load(ordering: .relaxed) {
                    let outer = readLock()
                    let inner = readLock()
                    x.dereference(inner) { v in
                        if let v {
                            if !v.alive.load(ordering: .relaxed) { bad.add(1, ordering: .relaxed) }
                            if v.value < lastSeen { bad.add(1, ordering: .relaxed) }
                            lastSeen = v.value
                        }
                    }
                    inner.unlock()
                    x.dereference(outer) { v in
                        if let v, !v.alive.load(ordering: .relaxed) { bad.add(1, ordering: .relaxed) }
                    }
                    outer.unlock()
                    n += 1
                }
                reads.add(n, ordering: .relaxed)
            })
        }
        let writer = TestThread.start {
            for i in 1...updates {
                if i % 2 == 0 {
                    x.replace(Tracked(i, tracker))?.deferRelease()
                } else {
                    x.copyUpdate { Tracked(($0?.value ?? 0) + 1, tracker) }?.free()
                }
            }
        }
        writer.join()
        stop.store(true, ordering: .relaxed)
        for r in readers { r.join() }
        try rcuBarrier()
        #expect(bad.load(ordering: .relaxed) == 0)
        #expect(reads.load(ordering: .relaxed) > 0)
        #expect(tracker.created.load(ordering: .relaxed) == updates + 1)
        #expect(tracker.live == 1) // only the current object is left
    }
}
