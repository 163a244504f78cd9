// Swift ports of the three examples in the doc comments of the kernel patch
// "rust: sync: rcu: Add RCU protected pointer" (Rcu::dereference and Rcu::replace).
// SPDX-License-Identifier: LGPL-2.1-or-later

import Synchronization
import Testing
@testable import SwiftRCU
@_spi(CABI) @testable import SwiftRCUCore

final class Box: Sendable {
    let value: Int32
    init(_ value: Int32) { self.value = value }
}

final class Config: Sendable {
    let a: Int32, b: Int32, c: Int32
    let released: Flag
    init(a: Int32, b: Int32, c: Int32, released: Flag) {
        self.a = a; self.b = b; self.c = c; self.released = released
    }
    deinit { released.set() }
}

@Suite("Kernel doc examples")
struct KernelExamplesTests {
    /// `Rcu::dereference`, first example: read under the read lock.
    @Test func dereferenceUnderReadLock() {
        let x = Rcu(Box(100))
        let g = readLock()
        // Read in under RCU read lock protection.
        let v = x.dereference(g) { $0?.value }
        #expect(v == 100)
        g.unlock()
    }

    /// `Rcu::dereference`, second example: a borrowed object outlives the reader's reference to
    /// the `Rcu`, because the read lock keeps it alive; dropping the `Rcu` waits for the reader.
    @Test func borrowOutlivesReference() {
        final class Holder: @unchecked Sendable { var rcu: Rcu<Config>? }
        let released = Flag()
        let config = Config(a: 1, b: 2, c: 3, released: released)
        var shared: Rcu<Config>? = Rcu(config)
        let cloned = Holder()
        cloned.rcu = shared
        _ = consume config
        let flag = Flag()
        let readerSaw = Atomic<Int32>(0)
        let releasedTooEarly = Atomic<Bool>(false)
        let worker = TestThread.start {
            let g = readLock()
            // The read section keeps the object alive; no strong reference is taken here.
            let v = cloned.rcu!.dereference(g) { Unmanaged.passUnretained($0!) }
            cloned.rcu = nil // release the reference to `shared`
            flag.set()
            sleepMilliseconds(50) // let the main thread start dropping `shared`
            // But still need to access `v`.
            if released.value.load(ordering: .acquiring) != 0 { releasedTooEarly.store(true, ordering: .relaxed) }
            readerSaw.store(v.takeUnretainedValue().a, ordering: .relaxed)
            g.unlock()
        }
        // Wait until `cloned` dropped.
        flag.wait()
        shared = nil // the last reference: deinit waits for the worker's read section
        #expect(released.value.load(ordering: .acquiring) == 1)
        worker.join()
        #expect(readerSaw.load(ordering: .relaxed) == 1)
        #expect(releasedTooEarly.load(ordering: .relaxed) == false)
    }

    /// `Rcu::replace` example: a reader keeps the old object, new readers see the new one, and
    /// the old one is freed outside the read-side critical section.
    @Test func replaceKeepsOldForReaders() throws {
        let tracker = Tracker()
        let x = Rcu(Tracked(100, tracker))
        let q = Tracked(101, tracker)

        // Read in under RCU read lock protection.
        let g = readLock()
        let v = x.dereference(g) { Unmanaged.passUnretained($0!) }

        // Replace with a new object.
        let old = x.replace(q)
        #expect(Bool(isSome(old)))

        // `v` should still read the old value.
        #expect(v.takeUnretainedValue().value == 100)
        #expect(Bool(v.takeUnretainedValue().alive.load(ordering: .relaxed)))

        // New readers should get the new value.
        #expect(x.dereference(g) { $0?.value } == 101)
        g.unlock()

        // Can free the object outside the read-side critical section.
        old?.free()
        #expect(tracker.released.load(ordering: .relaxed) == 1)
    }
}
