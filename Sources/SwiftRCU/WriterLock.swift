// SwiftRCU core (room 2 of 3): the lock that serialises the writers of one RCU pointer.
// SPDX-License-Identifier: LGPL-2.1-or-later

import Glibc
import Synchronization

/// Serialises the writers of one RCU pointer and knows which thread holds it, so that a writer
/// re-entering its own pointer (from a copy-update callback) is refused instead of deadlocking.
/// Readers never touch it.
///
/// # Invariants
///
/// - `mutex` points to an initialised `pthread_mutex_t` owned by this lock (freed in `deinit`);
/// - `owner` is the `pthread_self()` of the thread inside `withLock`'s body while one is, else 0.
public struct WriterLock: ~Copyable, @unchecked Sendable {
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    @usableFromInline let owner = Atomic<UInt>(0)

    public init() {
        mutex = .allocate(capacity: 1)
        // SAFETY: fresh memory for one mutex; default attributes cannot fail to initialise.
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// The calling thread's identity as stored in `owner`.
    @inlinable @inline(__always)
    static var currentThread: UInt { UInt(pthread_self()) }

    /// Whether the calling thread is inside `withLock` on this lock.
    @inlinable @inline(__always)
    public var isHeldByCurrentThread: Bool {
        // Ordering: relaxed suffices; only this thread can have stored its own identity.
        owner.load(ordering: .relaxed) == Self.currentThread
    }

    /// Runs `body` with the lock held and `owner` set to the calling thread.
    @inlinable @inline(__always)
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        // Ordering: relaxed; the mutex orders `owner` between holders, and the only reader that
        // acts on the value is the thread that stored it.
        owner.store(Self.currentThread, ordering: .relaxed)
        defer {
            owner.store(0, ordering: .relaxed)
            pthread_mutex_unlock(mutex)
        }
        return try body()
    }
}
