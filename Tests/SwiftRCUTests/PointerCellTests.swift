// The pointer cell, the one writer core of both faces: the C ptr handle and the Swift Rcu write
// through it; one barrier waits for the deferred releases of both.
// SPDX-License-Identifier: LGPL-2.1-or-later

import CSwiftRCUABI
import CSwiftRCUCore
import Glibc
import Synchronization
import SwiftRCUCABI
import SwiftRCUTypes
import Testing
@testable import SwiftRCU
@_spi(CABI) @testable import SwiftRCUCore

/// Destroys counted by `countDestroy` (its context points at the counter).
private let countDestroy: swiftrcu_destroy_fn = { _, context in
    context!.assumingMemoryBound(to: Atomic<Int>.self).pointee.add(1, ordering: .relaxed)
}

@Suite("Pointer cell")
struct PointerCellTests {
    @Test func aCellOnItsOwnPublishesRetiresAndDestroys() {
        let counter = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: 1)
        counter.initialize(to: Atomic(0))
        defer { counter.deallocate() }
        let cell = UnsafeMutablePointer<rcucore_cell>.allocate(capacity: 1)
        defer { cell.deallocate() }
        PointerCell.initialize(cell, object: 0x1000, destroy: countDestroy, context: UnsafeMutableRawPointer(counter))
        let view = PointerCell(cell)
        #expect(view.load() == 0x1000)
        #expect(!view.isWriterHeldByCurrentThread)

        // Publishing the current object changes nothing and hands nothing out.
        #expect(view.write { current in current } == 0)
        // A new object: the previous one comes back, the writer lock was held meanwhile.
        var heldInside = false
        let previous = view.write { _ in
            heldInside = view.isWriterHeldByCurrentThread
            return 0x2000
        }
        #expect(previous == 0x1000)
        #expect(heldInside)
        #expect(view.load() == 0x2000)

        // The retired record carries the cell's destroy; releasing it destroys once.
        var record = rcucore_retired()
        view.retire(0x1000, into: &record)
        #expect(record.object == UnsafeMutableRawPointer(bitPattern: 0x1000))
        #expect(releaseAfterGracePeriod(&record))
        #expect(counter.pointee.load(ordering: .relaxed) == 1)

        // The end of the cell destroys the object it still publishes.
        view.destroyCurrent()
        #expect(counter.pointee.load(ordering: .relaxed) == 2)
        #expect(view.load() == 0)
    }

    @Test func oneBarrierWaitsForTheDeferredReleasesOfBothFaces() throws {
        let counter = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: 1)
        counter.initialize(to: Atomic(0))
        defer { counter.deallocate() }
        let p = try #require(swiftrcu_new(UnsafeMutableRawPointer(bitPattern: 1), countDestroy, UnsafeMutableRawPointer(counter)))
        // Many deferrals in a row: most of them wait in open batches while one batch is in
        // flight, and only a barrier that queues those batches first waits for them.
        let n = 500
        for i in 2...(n + 1) {
            var old: swiftrcu_old_ref?
            #expect(swiftrcu_replace(p, UnsafeMutableRawPointer(bitPattern: i), &old) == SWIFTRCU_OK)
            #expect(swiftrcu_old_defer(old) == SWIFTRCU_OK)
        }
        try rcuBarrier() // the Swift API's barrier
        #expect(counter.pointee.load(ordering: .relaxed) == n)
        #expect(swiftrcu_free(p) == SWIFTRCU_OK)
        #expect(counter.pointee.load(ordering: .relaxed) == n + 1)
    }

    @Test func threadsGiveTheirCachedSlotsBackWhenTheyExit() async {
        // Each writer thread caches up to RCUABI_CACHE_SLOTS free slots; if an exiting thread
        // kept its cache, 600 of them would strand over 18,000 slots and the table would grow
        // past four segments of 4096. In a process of its own, so no other test's handles count.
        await #expect(processExitsWith: .success) {
            let p = UInt(bitPattern: swiftrcu_new(nil, nil, nil))
            for _ in 0..<600 {
                TestThread.start {
                    let p = OpaquePointer(bitPattern: p)
                    var old: swiftrcu_old_ref?
                    for i in 1...3 {
                        _ = swiftrcu_replace(p, UnsafeMutableRawPointer(bitPattern: i), &old)
                        _ = swiftrcu_old_free(old)
                    }
                }.join()
            }
            // SAFETY: a plain read of the count; no other thread runs any more.
            let segments = rcuabi_segment_count_word().pointee
            exit(segments <= 2 ? 0 : 1)
        }
    }
}
