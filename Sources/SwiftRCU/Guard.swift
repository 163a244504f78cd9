// SwiftRCU core (room 2 of 3): the Swift read guard.
// SPDX-License-Identifier: LGPL-2.1-or-later

import CLiburcuShim

/// Evidence that the calling thread holds the RCU read lock (the kernel's `rcu::Guard`).
///
/// Take one with `readLock()`; the section ends when the guard is consumed (`unlock()`) or goes
/// out of scope. Guards nest and may end in any order. A guard cannot leave its thread (it is not
/// `Sendable`) and cannot be copied, so unlike a C guard it needs no identity checked at run
/// time: it is one level of liburcu's per-thread nesting counter and nothing else, which keeps
/// the Swift read path at liburcu's own inline steps.
///
/// # Invariants
///
/// `thread` is the state of the thread that owns the guard, which holds one level of liburcu's
/// read-side nesting for the guard from `init` until `deinit`.
public struct RcuGuard: ~Copyable {
    @usableFromInline let thread: UnsafeMutablePointer<rcushim_thread>

    /// Enters a read-side critical section (`readLock()` says the same).
    ///
    /// Traps when the thread is exiting (its thread-exit handlers are running), or cannot be
    /// registered with liburcu: on its first use in a forked child where grace periods are refused
    /// (see `synchronizeRCU()`).
    @inlinable
    public init() {
        guard let t = rcushim_ready_self() else {
            preconditionFailure("RcuGuard: the thread is exiting, or cannot register (a forked child refusing grace periods)")
        }
        rcushim_read_lock(t)
        // INVARIANT: the section was just entered, on the thread whose state is `t`.
        thread = t
    }

    /// Ends the read-side critical section now.
    @inlinable
    public consuming func unlock() {}

    @inlinable
    deinit {
        rcushim_read_unlock(thread)
    }
}

@available(*, unavailable, message: "an RCU read lock belongs to the thread that took it")
extension RcuGuard: Sendable {}

/// Acquires the RCU read lock (the kernel's `rcu::read_lock()`).
@inlinable
public func readLock() -> RcuGuard { RcuGuard() }

/// Runs `body` inside a read-side critical section.
@inlinable
public func withReadLock<R>(_ body: (borrowing RcuGuard) throws -> R) rethrows -> R {
    let guard_ = RcuGuard()
    return try body(guard_)
}
