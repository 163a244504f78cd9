// RcuStatistics: exact deltas of a known scenario, and the same counters as the C ABI's
// swiftrcu_stats_get built into this package (one copy of the library).
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Other suites run in parallel with this one in a plain `swift test` and move the same counters,
// so there the deltas are checked as lower bounds; `make test-swift` runs this suite once more
// on its own with SWIFTRCU_STATS_EXCLUSIVE=1, where every delta must be exact.

import Glibc
import Synchronization
import SwiftRCUCABI
import SwiftRCUTypes
import Testing
@testable import SwiftRCU
@_spi(CABI) @testable import SwiftRCUCore

private let exclusive = getenv("SWIFTRCU_STATS_EXCLUSIVE").map { String(cString: $0) == "1" } ?? false

/// The C ABI's statistics (the same copy of the library as RcuStatistics.current).
private func cStatistics() -> swiftrcu_stats {
    var s = swiftrcu_stats()
    s.size = MemoryLayout<swiftrcu_stats>.size
    let rc = swiftrcu_stats_get(&s)
    #expect(rc == SWIFTRCU_OK)
    #expect(s.size == MemoryLayout<swiftrcu_stats>.size)
    return s
}

/// Checks `after.field - before.field`: exactly `expected` when this suite runs alone, at least
/// `expected` otherwise (only for counters that never go down).
private func expectDelta(
    _ name: String, _ before: RcuStatistics, _ after: RcuStatistics, _ field: KeyPath<RcuStatistics, UInt64>,
    _ expected: Int64, counter: Bool = true, sourceLocation: SourceLocation = #_sourceLocation
) {
    let delta = Int64(bitPattern: after[keyPath: field] &- before[keyPath: field])
    if exclusive {
        #expect(delta == expected, "\(name)", sourceLocation: sourceLocation)
    } else if counter {
        #expect(delta >= expected, "\(name)", sourceLocation: sourceLocation)
    }
}

@Suite("Statistics", .serialized)
struct StatisticsTests {
    @Test func swiftFaceEqualsCFace() throws {
        try rcuBarrier()
        let s = RcuStatistics.current
        let c = cStatistics()
        let cFields: [UInt64] = [
            c.grace_periods, c.deferred_queued, c.deferred_completed, c.deferred_pending,
            c.deferred_pending_peak, c.objects_destroyed, c.ptrs_live, c.olds_live, c.threads_registered,
            c.threads_registered_total, c.threads_exited_in_section, c.writer_pauses, c.writer_pause_ns,
            c.edeadlk_refusals, c.eperm_refusals, c.einval_refusals,
        ]
        #expect(s.fields.count == Int(SWIFTRCU_STATS_FIELDS))
        for (i, field) in s.fields.enumerated() {
            if exclusive {
                #expect(field.value == cFields[i], "\(field.name)")
            } else if ![3, 6, 7, 8].contains(i) {  // counters only grow between the two reads
                #expect(field.value <= cFields[i], "\(field.name)")
            }
        }
        #expect(s.description.hasPrefix("grace_periods="))
        #expect(s.description.split(separator: " ").count == Int(SWIFTRCU_STATS_FIELDS))
    }

    @Test func exactDeltasOfAKnownScenario() throws {
        // Warm up: this thread registered, liburcu's call_rcu worker adopted.
        let warm = Rcu(Box(0))
        warm.replace(Box(1))?.deferRelease()
        try rcuBarrier()
        withReadLock { _ in }

        // n replace + free (each waits for a grace period and releases its object).
        let n = 4
        var before = RcuStatistics.current
        let x = Rcu(Box(0))
        for i in 1...n { x.replace(Box(Int32(i)))?.free() }
        var after = RcuStatistics.current
        expectDelta("grace_periods", before, after, \.gracePeriods, Int64(n))
        expectDelta("objects_destroyed", before, after, \.objectsDestroyed, Int64(n))
        expectDelta("deferred_queued", before, after, \.deferredQueued, 0)
        expectDelta("ptrs_live", before, after, \.ptrsLive, 0, counter: false)

        // m replace + deferRelease, then a barrier.
        let m = 6
        before = RcuStatistics.current
        for i in 1...m { x.replace(Box(Int32(100 + i)))?.deferRelease() }
        try rcuBarrier()
        after = RcuStatistics.current
        expectDelta("deferred_queued", before, after, \.deferredQueued, Int64(m))
        expectDelta("deferred_completed", before, after, \.deferredCompleted, Int64(m))
        expectDelta("objects_destroyed", before, after, \.objectsDestroyed, Int64(m))
        expectDelta("grace_periods", before, after, \.gracePeriods, 0)
        #expect(after.deferredPendingPeak >= 1)
        if exclusive { #expect(after.deferredPending == 0) }

        // C ABI handles of the same copy of the library: one ptr, one old, both freed.
        before = RcuStatistics.current
        let first = malloc(8), second = malloc(8)
        defer { free(first); free(second) }
        let p = swiftrcu_new(first, nil, nil)
        var old: swiftrcu_old_ref? = nil
        #expect(swiftrcu_replace(p, second, &old) == SWIFTRCU_OK)
        after = RcuStatistics.current
        expectDelta("ptrs_live", before, after, \.ptrsLive, 1, counter: false)
        expectDelta("olds_live", before, after, \.oldsLive, 1, counter: false)
        #expect(swiftrcu_old_free(old) == SWIFTRCU_OK)
        #expect(swiftrcu_free(p) == SWIFTRCU_OK)
        after = RcuStatistics.current
        expectDelta("ptrs_live", before, after, \.ptrsLive, 0, counter: false)
        expectDelta("olds_live", before, after, \.oldsLive, 0, counter: false)
        expectDelta("grace_periods", before, after, \.gracePeriods, 2)
        expectDelta("objects_destroyed", before, after, \.objectsDestroyed, 0)  // no destroy function

        // k threads that exit holding a C guard's read lock, one that exits outside.
        let k = 3
        before = RcuStatistics.current
        var threads: [TestThread] = []
        for _ in 0..<k { threads.append(TestThread.start { _ = swiftrcu_read_lock() }) }
        threads.append(TestThread.start { withReadLock { _ in } })
        for t in threads { t.join() }
        after = RcuStatistics.current
        expectDelta("threads_registered_total", before, after, \.threadsRegisteredTotal, Int64(k + 1))
        expectDelta("threads_exited_in_section", before, after, \.threadsExitedInSection, Int64(k))
        expectDelta("threads_registered", before, after, \.threadsRegistered, 0, counter: false)
        try synchronizeRCU()  // nobody waits for the dead threads' sections

        // Refusals: two thrown by the Swift API, one of each from the C ABI; NULL results are not
        // counted.
        before = RcuStatistics.current
        withReadLock { _ in
            #expect(throws: RcuError.deadlock) { try synchronizeRCU() }
            #expect(throws: RcuError.deadlock) { try rcuBarrier() }
        }
        #expect(swiftrcu_old_free(nil) == SWIFTRCU_EINVAL)
        var g = swiftrcu_read_lock()
        var bogus = g
        bogus._private.1 ^= 0x100
        #expect(swiftrcu_read_unlock(&bogus) == SWIFTRCU_EPERM)
        #expect(swiftrcu_dereference(nil, &bogus) == nil)
        #expect(swiftrcu_synchronize() == SWIFTRCU_EDEADLK)
        #expect(swiftrcu_read_unlock(&g) == SWIFTRCU_OK)
        after = RcuStatistics.current
        expectDelta("edeadlk_refusals", before, after, \.deadlockRefusals, 3)
        expectDelta("eperm_refusals", before, after, \.notPermittedRefusals, 1)
        expectDelta("einval_refusals", before, after, \.invalidArgumentRefusals, 1)
        expectDelta("grace_periods", before, after, \.gracePeriods, 0)
        expectDelta("writer_pauses", before, after, \.writerPauses, 0)
    }
}
