// SwiftRCU Swift API (room 3 of 3, over the core): an unpublished object waiting for its grace period.
// SPDX-License-Identifier: LGPL-2.1-or-later

import CLiburcuShim
import CSwiftRCUCore
@_spi(CABI) import SwiftRCUCore

/// An object that has been unpublished but may still be read by readers that found it earlier
/// (the kernel's `RcuOld<P>`).
///
/// Dropping it (or `free()`) waits for a grace period, then releases the object; `deferRelease()`
/// releases it after a grace period without waiting (liburcu's `call_rcu`); `await release()`
/// suspends the task for the grace period instead of blocking its thread. Inside a read-side
/// critical section a wait could never end, so there a drop defers instead of waiting; since a drop
/// cannot report an error, it is exempt from the C ABI's hard limit on destroys deferred inside
/// read sections (`swiftrcu_old_defer`). Where grace periods are refused (a forked child, see
/// `synchronizeRCU()`) a dropped object is never released.
///
/// In async code, prefer `await release()` or `deferRelease()`: a drop or `free()` blocks one of
/// the few threads of Swift's cooperative pool for a grace period.
///
/// # Invariants
///
/// `bits` is the bits of an `Unmanaged<Value>` holding one retain that this `RcuOld` owns, and no
/// `Rcu` publishes that retain any more.
public struct RcuOld<Value: AnyObject & Sendable>: ~Copyable, @unchecked Sendable {
    let bits: UInt

    /// Takes ownership of the retain in `bits`; `nil` for 0.
    init?(bits: UInt) {
        guard bits != 0 else { return nil }
        // INVARIANT: the caller moved its retain of an unpublished object into `bits`.
        self.bits = bits
    }

    /// The unpublished object (a strong reference).
    public var value: Value {
        // SAFETY: `bits` is a retained `Unmanaged<Value>` (type invariant), alive while `self` is.
        Unmanaged<Value>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!).takeUnretainedValue()
    }

    /// Waits for a grace period, then releases the object (what dropping `self` does).
    public consuming func free() {}

    /// Suspends the task for a grace period, then releases the object; blocks no thread. Inside a
    /// read-side critical section (which cannot wait) it defers the release instead and returns.
    public consuming func release() async {
        let bits = self.bits
        discard self
        if ReadSide.isInSection {
            Self.releaseLater(bits)
            return
        }
        await afterGracePeriod()
        var record = Self.record(bits)
        destroyRetired(&record)
    }

    /// Releases the object after a grace period, asynchronously; never waits.
    public consuming func deferRelease() {
        let bits = self.bits
        discard self
        Self.releaseLater(bits)
    }

    deinit {
        if ReadSide.isInSection {
            Self.releaseLater(bits)
            return
        }
        // Where grace periods are refused (a child forked while one was waiting, see
        // `synchronizeRCU()`) no wait can prove the object unused: it is kept, never released.
        var record = Self.record(bits)
        if !releaseAfterGracePeriod(&record) { _ = RcuError.counted(.notPermitted) }
    }

    /// The retired record of `bits`: the retain this `RcuOld` owned (type invariant), released by
    /// the destroy function of every `Rcu`'s cell.
    private static func record(_ bits: UInt) -> rcucore_retired {
        rcucore_retired(
            head: rcu_head(), object: UnsafeMutableRawPointer(bitPattern: bits), destroy: releaseUnmanaged,
            context: nil)
    }

    private static func releaseLater(_ bits: UInt) {
        let raw = UnsafeMutableRawPointer(bitPattern: bits)
        if !deferDestroy(object: raw, destroy: releaseUnmanaged, context: nil) {
            // No memory for a batch block nor a record: wait here instead, if waiting is allowed.
            if !ReadSide.isInSection {
                var record = Self.record(bits)
                _ = releaseAfterGracePeriod(&record) // refused: kept, see deinit
            } else {
                preconditionFailure("RcuOld: out of memory while deferring a release inside a read section")
            }
        }
    }
}

/// The destroy function of every `Rcu`'s cell: releases the retain held in `object` (an
/// `Unmanaged` of any class).
let releaseUnmanaged: DestroyFunction = { object, _ in
    guard let object else { return }
    // SAFETY: `object` is the bits of an `Unmanaged` whose retain the caller owned and hands over.
    Unmanaged<AnyObject>.fromOpaque(object).release()
}
