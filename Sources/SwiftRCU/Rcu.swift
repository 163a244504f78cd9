// SwiftRCU Swift API (room 3 of 3, over the core): the Swift RCU-protected pointer, modelled on the kernel's `Rcu<P>`.
// SPDX-License-Identifier: LGPL-2.1-or-later

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
/// # Invariants
///
/// `pointer` is 0 or the bits of an `Unmanaged<Value>` holding one retain that this `Rcu` owns.
public final class Rcu<Value: AnyObject & Sendable>: @unchecked Sendable {
    @usableFromInline let pointer: Atomic<UInt>
    let writer = WriterLock()

    /// Creates a pointer that publishes `value` (or nothing).
    public init(_ value: Value? = nil) {
        // INVARIANT: the retain taken here is owned by the atomic.
        pointer = Atomic(value.map { UInt(bitPattern: Unmanaged.passRetained($0).toOpaque()) } ?? 0)
    }

    /// Reads the current object under `guard` and hands it to `body` without retaining it.
    ///
    /// The reference given to `body` is valid for the whole read-side critical section that
    /// `guard` proves; `body` must not let it escape unless it keeps a strong reference.
    @inlinable @inline(__always)
    public func dereference<R>(_ guard: borrowing RcuGuard, _ body: (Value?) throws -> R) rethrows -> R {
        // Ordering: acquire pairs with the release half of the exchange in `publish`, so the
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
        precondition(!writer.isHeldByCurrentThread, "Rcu.replace called from inside its own copyUpdate")
        let old = writer.withLock { () -> UInt in
            let newBits = new.map { UInt(bitPattern: Unmanaged.passUnretained($0).toOpaque()) } ?? 0
            // Ordering: relaxed; writers are serialised by `writer`, which orders their stores.
            guard pointer.load(ordering: .relaxed) != newBits else { return 0 }
            return publish(new)
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
        precondition(!writer.isHeldByCurrentThread, "Rcu.copyUpdate called from inside its own copyUpdate")
        let outcome: Result<UInt, E> = writer.withLock {
            // Ordering: relaxed; writers are serialised by `writer`, which orders their stores.
            let bits = pointer.load(ordering: .relaxed)
            let attempt: Result<Value?, E>
            if let raw = UnsafeRawPointer(bitPattern: bits) {
                // SAFETY: we hold the writer lock, so the object cannot be unpublished (nor
                // released) while `update` borrows it.
                attempt = Unmanaged<Value>.fromOpaque(raw)._withUnsafeGuaranteedRef { current in
                    Result { () throws(E) in try update(current) }
                }
            } else {
                attempt = Result { () throws(E) in try update(nil) }
            }
            let next: Value?
            switch attempt {
            case .success(let value): next = value
            case .failure(let error): return .failure(error)
            }
            let nextBits = next.map { UInt(bitPattern: Unmanaged.passUnretained($0).toOpaque()) } ?? 0
            if nextBits == bits { return .success(0) }
            return .success(publish(next))
        }
        return RcuOld(bits: try outcome.get())
    }

    /// Stores `new` (retained) and returns the bits of the previous object, whose retain moves to
    /// the caller. Requires the writer lock.
    private func publish(_ new: Value?) -> UInt {
        let bits = new.map { UInt(bitPattern: Unmanaged.passRetained($0).toOpaque()) } ?? 0
        // Ordering: release so readers that acquire-load `bits` see the object initialised;
        // acquire so this thread owns the previous object's state before it is released.
        // INVARIANT: the retain of `new` moves into the atomic, the previous one out of it.
        return pointer.exchange(bits, ordering: .acquiringAndReleasing)
    }

    deinit {
        // Ordering: relaxed; no other thread can reach a deinitialising `Rcu` any more.
        let bits = pointer.load(ordering: .relaxed)
        // Readers of other threads may still hold the object: release it after a grace period.
        _ = RcuOld<Value>(bits: bits)
    }
}
