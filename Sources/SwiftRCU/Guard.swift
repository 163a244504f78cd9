// SwiftRCU core (room 2 of 3): the Swift read guard.
// SPDX-License-Identifier: LGPL-2.1-or-later

/// Evidence that the calling thread holds the RCU read lock (the kernel's `rcu::Guard`).
///
/// Take one with `readLock()`; the section ends when the guard is consumed (`unlock()`) or goes
/// out of scope. Guards nest; they must end innermost first. A guard cannot leave its thread (it
/// is not `Sendable`) and cannot be copied.
///
/// # Invariants
///
/// `token` names a read-side critical section held by the thread that owns the guard, from
/// `init` until `deinit`.
public struct RcuGuard: ~Copyable {
    @usableFromInline let token: ReadToken

    /// Enters a read-side critical section (`readLock()` says the same).
    ///
    /// Traps when the thread already holds 255 nested sections or is exiting.
    @inlinable
    public init() {
        guard let token = ReadSide.lock() else {
            preconditionFailure("RcuGuard: read sections nested deeper than 255, or thread exiting")
        }
        // INVARIANT: `ReadSide.lock()` just entered the section that `token` names.
        self.token = token
    }

    /// Ends the read-side critical section now.
    @inlinable
    public consuming func unlock() {}

    @inlinable
    deinit {
        if !ReadSide.unlock(token) {
            preconditionFailure("RcuGuard: released out of order; inner guards must end first")
        }
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
