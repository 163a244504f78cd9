// SwiftRCU Swift API (room 3 of 3, over the core): the Swift read guard.
// SPDX-License-Identifier: LGPL-2.1-or-later

import CLiburcuShim

/// Evidence that the calling thread holds the RCU read lock (the kernel's `rcu::Guard`).
///
/// Take one with `readLock()` in synchronous code, or let `withReadLock(_:)` scope one; the
/// section ends when the guard is consumed (`unlock()`) or goes out of scope. Guards nest and may
/// end in any order. A guard cannot be copied and is not `Sendable`.
///
/// A read section never spans a suspension point. `readLock()` and `RcuGuard()` are unavailable
/// in asynchronous code (a compile error in the Swift 6 language mode, a warning in Swift 5
/// mode); async code reads with `withReadLock { }` or `Rcu.dereference(_:)` and a synchronous
/// closure, which cannot suspend inside. A guard that reaches async code by another way (returned
/// by a synchronous helper) and is carried across an `await` may end on another thread: that
/// guard traps with a message when it ends, without touching any thread's read-side state. The
/// check cannot see a task that resumes on the thread that took the guard: then the section has
/// lasted the whole `await`, grace periods waited for it, and the other tasks that thread ran
/// meanwhile ran inside it.
///
/// # Invariants
///
/// `thread` is the state and `serial` the serial of the thread that took the guard, which holds
/// one level of liburcu's read-side nesting for the guard from `init` until `deinit`. `thread` is
/// used only on the thread whose serial is `serial` (a thread's state lives as long as it does).
public struct RcuGuard: ~Copyable {
    @usableFromInline let thread: UnsafeMutablePointer<rcushim_thread>
    @usableFromInline let serial: UInt64

    /// Enters a read-side critical section (`readLock()` says the same).
    ///
    /// Traps when the thread is exiting (its thread-exit handlers are running), or cannot be
    /// registered with liburcu: on its first use in a forked child where grace periods are refused
    /// (see `synchronizeRCU()`).
    @available(
        *, noasync,
        message: "a read section must not span an await: use withReadLock { } or Rcu.dereference with a synchronous closure"
    )
    @inlinable
    public init() {
        guard let t = rcushim_ready_self() else { guardOnExitingThread() }
        rcushim_read_lock(t)
        // INVARIANT: the section was just entered, on the thread whose state is `t`.
        thread = t
        serial = t.pointee.serial
    }

    /// Ends the read-side critical section now.
    @inlinable
    public consuming func unlock() {}

    @inlinable
    deinit {
        // Ends the calling thread's section, after checking that this is the thread that took
        // the guard; on any other thread it stops the program with a message, touching nothing.
        rcushim_guard_unlock(thread, serial)
    }
}

@available(*, unavailable, message: "an RCU read lock belongs to the thread that took it")
extension RcuGuard: Sendable {}

/// Stops the program: a read section cannot be entered on a thread that is exiting.
@usableFromInline @inline(never)
func guardOnExitingThread() -> Never {
    fatalError("RcuGuard: the thread is exiting, or cannot register (a forked child refusing grace periods)")
}

/// Acquires the RCU read lock (the kernel's `rcu::read_lock()`).
///
/// Unavailable in asynchronous code: a read section must not span an `await`.
@available(
    *, noasync,
    message: "a read section must not span an await: use withReadLock { } or Rcu.dereference with a synchronous closure"
)
@inlinable
public func readLock() -> RcuGuard { RcuGuard() }

/// Runs `body` inside a read-side critical section, with the section's guard.
///
/// Usable from async code: `body` is synchronous, so the section cannot span a suspension point.
@inlinable
public func withReadLock<R, E: Error>(_ body: (borrowing RcuGuard) throws(E) -> R) throws(E) -> R {
    let guard_ = RcuGuard()
    return try body(guard_)
}
