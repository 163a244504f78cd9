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
/// `owner` is the `pthread_self()` of the thread inside `withLock`'s body while one is, else 0.
public struct WriterLock: ~Copyable, @unchecked Sendable {
    let mutex = Mutex<Void>(())
    let owner = Atomic<UInt>(0)

    public init() {}

    /// The calling thread's identity as stored in `owner`.
    @inline(__always)
    static var currentThread: UInt { UInt(pthread_self()) }

    /// Whether the calling thread is inside `withLock` on this lock.
    public var isHeldByCurrentThread: Bool {
        // Ordering: relaxed suffices; only this thread can have stored its own identity.
        owner.load(ordering: .relaxed) == Self.currentThread
    }

    /// Runs `body` with the lock held and `owner` set to the calling thread.
    public func withLock<R>(_ body: () -> R) -> R {
        mutex.withLock { _ in
            // Ordering: relaxed; the mutex orders `owner` between holders, and the only reader
            // that acts on the value is the thread that stored it.
            owner.store(Self.currentThread, ordering: .relaxed)
            defer { owner.store(0, ordering: .relaxed) }
            return body()
        }
    }
}
