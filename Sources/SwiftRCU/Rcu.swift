// SwiftRCU Swift API (room 3 of 3, over the core): the Swift RCU-protected pointer, modelled on the kernel's `Rcu<P>`.
// SPDX-License-Identifier: LGPL-2.1-or-later

import CSwiftRCUCore
@_spi(CABI) import SwiftRCUCore
import Synchronization

/// An RCU-protected pointer to one object (the kernel's `Rcu<P>`).
///
/// Readers take `readLock()` and `dereference` the current object without locks and without
/// writing shared memory: no retain or release of the object in the closure form. Writers `replace`
/// it or `copyUpdate` it and get the previous object back as an `RcuOld`, which releases it only
/// after a grace period, when no reader can still hold it.
///
/// ```swift
/// let x = Rcu(Box(100))
/// let g = readLock()
/// x.dereference(g) { v in assert(v?.value == 100) }
/// ```
///
/// A typed face over the core's pointer cell (`PointerCell`), the writer core it shares with
/// the C ABI's ptr handles: `pointer` is the cell's published word, kept in the object itself so
/// that a reader loads it with no indirection, and `control` holds the cell's writer lock and its
/// destroy function, which releases an `Unmanaged<Value>`.
///
/// # Invariants
///
/// - `pointer` is 0 or the bits of an `Unmanaged<Value>` holding one retain that this `Rcu` owns;
/// - `control` is an initialised cell control, allocated in `init`, freed in `deinit`, whose
///   destroy is `releaseUnmanaged` (context NULL).
public final class Rcu<Value: AnyObject & Sendable>: @unchecked Sendable {
    @usableFromInline let pointer: Atomic<UInt>
    let control: UnsafeMutablePointer<rcucore_cell_control>

    /// Creates a pointer that publishes `value` (or nothing).
    public init(_ value: Value? = nil) {
        // INVARIANT: the retain taken here is owned by the atomic.
        pointer = Atomic(value.map { UInt(bitPattern: Unmanaged.passRetained($0).toOpaque()) } ?? 0)
        control = .allocate(capacity: 1)
        PointerCell.initializeControl(control, destroy: releaseUnmanaged, context: nil)
    }

    /// The view of this pointer's cell; use it only while `self` is alive.
    private var cell: PointerCell {
        // SAFETY: an `Atomic` stored in a class instance lies at a fixed address for the
        // instance's life (atomics are never moved), and borrowing it hands that address over.
        let published = withUnsafePointer(to: pointer) { UnsafeMutablePointer(mutating: $0) }
        return PointerCell(published: published, control: control)
    }

    /// Reads the current object under `guard` and hands it to `body` without retaining it.
    ///
    /// The reference given to `body` is valid for the whole read-side critical section that
    /// `guard` proves; `body` must not let it escape unless it keeps a strong reference.
    @inlinable @inline(__always)
    public func dereference<R>(_ guard: borrowing RcuGuard, _ body: (Value?) throws -> R) rethrows -> R {
        // Ordering: acquire pairs with the release store in `PointerCell.write`, so the
        // object's initialisation is visible before its fields are read.
        let bits = pointer.load(ordering: .acquiring)
        guard let raw = UnsafeRawPointer(bitPattern: bits) else { return try body(nil) }
        // SAFETY: `bits` came from `passRetained` (type invariant). The read section `guard`
        // proves keeps any `RcuOld` holding it from releasing it until the section ends, so the
        // object is alive for the call without a retain of our own.
        return try Unmanaged<Value>.fromOpaque(raw)._withUnsafeGuaranteedRef { try body($0) }
    }

    /// Reads the current object under `guard` and returns a strong reference to it.
    ///
    /// Costs a retain and a release of the object, unlike the closure form; the reference stays
    /// valid after the section ends.
    @inlinable
    public func dereference(_ guard: borrowing RcuGuard) -> Value? {
        dereference(`guard`) { $0 }
    }

    /// Publishes `new` and returns the previous object, or `nil` when there was none.
    ///
    /// Readers that already dereferenced keep the previous object; later readers see `new`. Safe
    /// with concurrent writers (they are serialised) and any number of readers. Never waits for a
    /// grace period, so it may be called inside a read-side critical section.
    ///
    /// Publishing the object published now (`===`), or `nil` when there is none, changes nothing
    /// and returns `nil` (as a `copyUpdate` that returns the current object does).
    ///
    /// Traps when called from inside this pointer's own `copyUpdate` closure, and when waiting for
    /// the writer lock would deadlock: the lock's holder waits, directly or through other writers,
    /// for a writer lock this thread holds (two `copyUpdate` closures each writing the other's
    /// pointer); the message names the threads of the cycle.
    @discardableResult
    public func replace(_ new: Value?) -> RcuOld<Value>? {
        let cell = cell
        precondition(!cell.isWriterHeldByCurrentThread, "Rcu.replace called from inside its own copyUpdate")
        guard let old = cell.write({ current in Self.bitsToPublish(new, current: current) }) else {
            WriterLock.deadlockTrap()
        }
        return RcuOld(bits: old)
    }

    /// Publishes `update(current)` and returns the previous object, with this pointer's other
    /// writers excluded while `update` runs.
    ///
    /// Returning the current object itself (`===`), or `nil` when there is none, publishes nothing
    /// and returns `nil`. An error thrown by `update` publishes nothing and is rethrown. `update`
    /// must return or throw: a thread that exits inside it (`pthread_exit`, cancellation) has the
    /// writer lock released at its exit and publishes nothing; `longjmp` out of it is forbidden.
    ///
    /// Traps when called from inside this pointer's own `copyUpdate` closure, and, naming the
    /// threads of the cycle, when waiting for the writer lock would deadlock (see `replace`).
    public func copyUpdate<E: Error>(_ update: (Value?) throws(E) -> Value?) throws(E) -> RcuOld<Value>? {
        let cell = cell
        precondition(!cell.isWriterHeldByCurrentThread, "Rcu.copyUpdate called from inside its own copyUpdate")
        let old = try cell.write { bits throws(E) -> UInt in
            let next: Value?
            if let raw = UnsafeRawPointer(bitPattern: bits) {
                // SAFETY: the cell holds a retain of it (type invariant) and we hold the writer
                // lock, so it cannot be unpublished (nor released) while `update` borrows it.
                next = try Unmanaged<Value>.fromOpaque(raw)._withUnsafeGuaranteedRef { current in
                    Result { () throws(E) in try update(current) }
                }.get()
            } else {
                next = try update(nil)
            }
            return Self.bitsToPublish(next, current: bits)
        }
        guard let old else { WriterLock.deadlockTrap() }
        return RcuOld(bits: old)
    }

    /// What a write hands the cell for `value`: `current` itself when `value` is the object
    /// published now (the cell then publishes nothing and takes nothing), else `value`'s bits
    /// with a retain, which the cell publishes (the published word then owns it).
    @inline(__always)
    private static func bitsToPublish(_ value: Value?, current: UInt) -> UInt {
        guard let value else { return 0 }
        let bits = UInt(bitPattern: Unmanaged.passUnretained(value).toOpaque())
        guard bits != current else { return current }
        // INVARIANT: the cell publishes these bits (they differ from `current`), so the retain
        // moves into the published word.
        return UInt(bitPattern: Unmanaged.passRetained(value).toOpaque())
    }

    deinit {
        // Ordering: relaxed; no other thread can reach a deinitialising `Rcu` any more.
        let bits = pointer.load(ordering: .relaxed)
        // Readers of other threads may still hold the object: release it after a grace period.
        _ = RcuOld<Value>(bits: bits)
        // SAFETY: allocated in `init`; no writer can reach a deinitialising `Rcu` any more.
        control.deallocate()
    }
}
