// The Swift API: guards, replace, copyUpdate, RcuOld release paths, grace periods, errors.
// SPDX-License-Identifier: LGPL-2.1-or-later

import Glibc
import Synchronization
import SwiftRCUTypes
import SwiftRCUCABI
import CSwiftRCUCore
import Testing
@testable import SwiftRCU
@_spi(CABI) @testable import SwiftRCUCore

struct Boom: Error {}

@Suite("Swift API")
struct RcuTests {
    @Test func errorCasesMirrorCStatusCodes() {
        #expect(RcuError.invalidArgument.rawValue == SWIFTRCU_EINVAL)
        #expect(RcuError.notPermitted.rawValue == SWIFTRCU_EPERM)
        #expect(RcuError.deadlock.rawValue == SWIFTRCU_EDEADLK)
        #expect(RcuError.outOfMemory.rawValue == SWIFTRCU_ENOMEM)
        #expect("\(RcuError.deadlock.name)" == "SWIFTRCU_EDEADLK")
    }

    /// The C ABI's status texts are the Swift error's (one text per status, kept equal here).
    @Test func strerrorTextsAreRcuErrorDescriptions() {
        for error in [RcuError.invalidArgument, .notPermitted, .deadlock, .outOfMemory] {
            #expect(String(cString: swiftrcu_strerror(error.rawValue)) == error.description)
        }
        #expect(String(cString: swiftrcu_strerror(0)) == "SWIFTRCU_OK: success")
        #expect(String(cString: swiftrcu_strerror(12345)) == "SWIFTRCU_UNKNOWN: unknown status")
    }

    @Test func deferredRecordStartsWithItsHead() {
        #expect(MemoryLayout<rcucore_retired>.offset(of: \.head) == 0)
    }

    @Test func emptyPointerDereferencesNil() {
        let x = Rcu<Box>()
        withReadLock { g in
            #expect(x.dereference(g) { $0 == nil })
            #expect(x.dereference(g) == nil)
        }
        #expect(Bool(!isSome(x.replace(nil))))
    }

    @Test func nestedGuardsAndGracePeriodRefusal() throws {
        let outer = readLock()
        let inner = readLock()
        #expect(ReadSide.isInSection)
        #expect(throws: RcuError.deadlock) { try synchronizeRCU() }
        #expect(throws: RcuError.deadlock) { try rcuBarrier() }
        inner.unlock()
        #expect(ReadSide.isInSection)
        outer.unlock()
        #expect(!ReadSide.isInSection)
        try synchronizeRCU()
        try rcuBarrier()
    }

    @Test func guardsMayEndInAnyOrder() throws {
        let tracker = Tracker()
        let x = Rcu(Tracked(1, tracker))
        let outer = readLock()
        let inner = readLock()
        outer.unlock() // the outer one first: each guard is one nesting level, in any order
        #expect(ReadSide.isInSection)
        #expect(throws: RcuError.deadlock) { try synchronizeRCU() }
        // The remaining guard still protects what it reads: the replaced object is not released
        // while it is held, though its release was deferred and the call_rcu thread is free to run.
        let held = x.dereference(inner) { Unmanaged.passUnretained($0!) }
        x.replace(Tracked(2, tracker))?.deferRelease()
        usleep(20_000)
        #expect(Bool(held.takeUnretainedValue().alive.load(ordering: .relaxed)))
        inner.unlock()
        #expect(!ReadSide.isInSection)
        try rcuBarrier()
        #expect(tracker.live == 1)
    }

    @Test func replaceReturnsOldAndFreeReleasesIt() {
        let tracker = Tracker()
        let x = Rcu(Tracked(1, tracker))
        guard let old = x.replace(Tracked(2, tracker)) else {
            Issue.record("replace returned no old object")
            return
        }
        let oldValue = old.value.value
        #expect(oldValue == 1)
        #expect(tracker.live == 2)
        old.free()
        #expect(tracker.live == 1)
        #expect(withReadLock { g in x.dereference(g) { $0?.value } } == 2)
    }

    @Test func droppingOldReleasesAfterGracePeriod() {
        let tracker = Tracker()
        let x = Rcu(Tracked(1, tracker))
        do {
            let old = x.replace(Tracked(2, tracker))
            #expect(Bool(isSome(old)))
        } // dropped here
        #expect(tracker.live == 1)
    }

    @Test func deferredReleaseRunsByBarrier() throws {
        let tracker = Tracker()
        let x = Rcu(Tracked(1, tracker))
        let g = readLock()
        let held = x.dereference(g) { Unmanaged.passUnretained($0!) }
        x.replace(Tracked(2, tracker))?.deferRelease()
        sleepMilliseconds(30)
        // Our own section is open: the release cannot have happened.
        #expect(Bool(held.takeUnretainedValue().alive.load(ordering: .relaxed)))
        #expect(tracker.live == 2)
        g.unlock()
        try rcuBarrier()
        #expect(tracker.live == 1)
    }

    @Test func deferredReleasesRunWithoutABarrier() {
        let tracker = Tracker()
        let x = Rcu(Tracked(0, tracker))
        for i in 1...3 { x.replace(Tracked(i, tracker))?.deferRelease() }
        // Three releases in a batch that never fills: it is queued all the same, no barrier needed.
        var waited = 0
        while tracker.live > 1, waited < 5000 {
            sleepMilliseconds(1)
            waited += 1
        }
        #expect(tracker.live == 1)
    }

    @Test func oldDroppedInsideSectionIsDeferredNotDeadlocked() throws {
        let tracker = Tracker()
        let x = Rcu(Tracked(1, tracker))
        withReadLock { _ in
            _ = x.replace(Tracked(2, tracker)) // dropped inside the section
        }
        try rcuBarrier()
        #expect(tracker.live == 1)
    }

    @Test func copyUpdatePublishesComputedValue() {
        let tracker = Tracker()
        let x = Rcu(Tracked(1, tracker))
        guard let old = x.copyUpdate({ current in Tracked(current!.value + 1, tracker) }) else {
            Issue.record("copyUpdate returned no old object")
            return
        }
        let oldValue = old.value.value
        #expect(oldValue == 1)
        old.free()
        #expect(withReadLock { g in x.dereference(g) { $0?.value } } == 2)
        #expect(tracker.live == 1)
    }

    @Test func copyUpdateReturningCurrentChangesNothing() {
        let tracker = Tracker()
        let first = Tracked(1, tracker)
        let x = Rcu(first)
        let old = x.copyUpdate { $0 }
        #expect(Bool(!isSome(old)))
        #expect(withReadLock { g in x.dereference(g) { $0 === first } })
        let empty = Rcu<Tracked>()
        #expect(Bool(!isSome(empty.copyUpdate { $0 })))
    }

    @Test func copyUpdateErrorPublishesNothing() {
        let tracker = Tracker()
        let x = Rcu(Tracked(1, tracker))
        #expect(throws: Boom.self) {
            _ = try x.copyUpdate { (_: Tracked?) throws(Boom) -> Tracked? in throw Boom() }
        }
        #expect(withReadLock { g in x.dereference(g) { $0?.value } } == 1)
        #expect(tracker.live == 1)
    }

    @Test func droppingRcuReleasesCurrentValue() {
        let tracker = Tracker()
        do {
            let x = Rcu(Tracked(7, tracker))
            #expect(withReadLock { g in x.dereference(g) { $0?.value } } == 7)
        }
        #expect(tracker.live == 0)
    }

    @Test func strongDereferenceOutlivesSection() {
        let tracker = Tracker()
        let x = Rcu(Tracked(5, tracker))
        let kept = withReadLock { g in x.dereference(g) }
        x.replace(nil)?.free()
        #expect(kept?.value == 5)
        #expect(Bool(kept?.alive.load(ordering: .relaxed) == true))
    }
}
