// SwiftRCU core (room 2 of 3): the lock that serialises the writers of one RCU pointer.
// SPDX-License-Identifier: LGPL-2.1-or-later

import CLiburcuShim

/// Serialises the writers of one RCU pointer and knows which thread holds it, so that a writer
/// re-entering its own pointer (from a copy-update callback) is refused instead of deadlocking.
/// Readers never touch it.
///
/// The lock word is the holder's thread serial (`rcushim_writer_lock` in the shim), so the holder
/// is known at every instant, also to a forked child: there a lock held by another thread of the
/// parent (which does not exist in the child) is taken over by the child's next writer, and that
/// holder's unfinished update is lost; the forking thread keeps the locks it held.
///
/// # Invariants
///
/// - `lock` points to an initialised `rcushim_writer_lock` owned by this lock (freed in `deinit`);
/// - the serial it holds, if any, names the thread inside `withLock`'s body, or (in a forked
///   child) a thread of the parent that does not exist here, whose lock the next writer takes.
package struct WriterLock: ~Copyable, @unchecked Sendable {
    @usableFromInline let lock: UnsafeMutablePointer<rcushim_writer_lock>

    package init() {
        lock = .allocate(capacity: 1)
        // SAFETY: fresh memory for one lock; all zero is a free lock with no waiter.
        lock.initialize(to: rcushim_writer_lock(word: 0, wake_seq: 0))
    }

    deinit {
        // SAFETY: `lock` was initialised in `init` and nothing uses it after the owner is gone.
        lock.deinitialize(count: 1)
        lock.deallocate()
    }

    /// Whether the calling thread is inside `withLock` on this lock.
    @inlinable @inline(__always)
    package var isHeldByCurrentThread: Bool {
        // SAFETY: `lock` is live while `self` is (type invariant).
        rcushim_writer_lock_held(lock, rcushim_writer_serial()) != 0
    }

    /// Runs `body` with the lock held by the calling thread. Not re-entrant: check
    /// `isHeldByCurrentThread` first.
    @inlinable @inline(__always)
    package func withLock<R>(_ body: () throws -> R) rethrows -> R {
        // SAFETY: `lock` is live while `self` is (type invariant); the serial is this thread's.
        rcushim_writer_lock_acquire(lock, rcushim_writer_serial())
        // SAFETY: as above; this thread holds the lock.
        defer { rcushim_writer_lock_release(lock) }
        return try body()
    }
}
