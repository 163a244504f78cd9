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
/// A thread that exits inside `withLock`'s body (`pthread_exit`, cancellation) has the lock
/// released at its exit, its update abandoned. A writer whose wait would close a wait-for cycle
/// (it holds a lock that the holder of this one waits for, directly or through other writers) is
/// refused: `withLock` traps naming the cycle (the C ABI's writers return `SWIFTRCU_EDEADLK`).
///
/// A view: the lock's memory belongs to the pointer cell it lies in (`PointerCell`), in a C ptr
/// handle's slot or beside a Swift `Rcu`'s published word.
///
/// # Invariants
///
/// - `lock` points to an initialised `rcushim_writer_lock` that outlives every use of this view;
/// - the serial it holds, if any, names the thread inside `withLock`'s body, or (in a forked
///   child) a thread of the parent that does not exist here, whose lock the next writer takes.
///
/// SPI rather than `package`, like `ReadSide`: the C ABI's writers inline it.
@_spi(CABI) public struct WriterLock {
    @usableFromInline let lock: UnsafeMutablePointer<rcushim_writer_lock>

    @inlinable @inline(__always)
    public init(_ lock: UnsafeMutablePointer<rcushim_writer_lock>) { self.lock = lock }

    /// Makes `lock` (memory the caller owns, not shared yet) a free lock with no waiter.
    public static func initialize(_ lock: UnsafeMutablePointer<rcushim_writer_lock>) {
        // SAFETY: the caller's memory for one lock, not shared yet; all zero is a free lock.
        lock.initialize(to: rcushim_writer_lock())
    }

    /// Whether the calling thread is inside `withLock` on this lock.
    @inlinable @inline(__always)
    public var isHeldByCurrentThread: Bool {
        // SAFETY: `lock` is live while this view is used (type invariant).
        rcushim_writer_lock_held(lock, rcushim_writer_serial()) != 0
    }

    /// Runs `body` with the lock held by the calling thread. Not re-entrant: check
    /// `isHeldByCurrentThread` first.
    ///
    /// Traps with a message naming the threads of the cycle when waiting for the lock would
    /// deadlock (see the type's description).
    @inlinable @inline(__always)
    public func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        guard let result = try withLockUnlessDeadlock(abandon: nil, 0, body) else { Self.deadlockTrap() }
        return result
    }

    /// Runs `body` with the lock held by the calling thread and returns its result, or returns
    /// `nil`, running nothing, when waiting for the lock would close a wait-for cycle. If the
    /// thread exits inside `body`, its exit handler calls `abandon(argument)` (when not nil)
    /// before it releases the lock (the C ABI returns a reserved handle slot). Not re-entrant:
    /// check `isHeldByCurrentThread` first.
    @inlinable @inline(__always)
    public func withLockUnlessDeadlock<R, E: Error>(
        abandon: (@convention(c) (UInt) -> Void)?, _ argument: UInt, _ body: () throws(E) -> R
    ) throws(E) -> R? {
        let t = rcushim_writer_self()
        // SAFETY: `lock` is live while this view is used (type invariant); the serial is this
        // thread's.
        guard rcushim_writer_lock_acquire(lock, t, rcushim_writer_serial()) == 0 else { return nil }
        // SAFETY: as above; this thread holds the lock, and `t` is the state it was taken with.
        defer { rcushim_writer_lock_release(lock, t) }
        if let abandon { rcushim_writer_lock_on_exit(lock, t, abandon, argument) }
        return try body()
    }

    /// The trap of `withLock` after a refused wait, with the cycle the shim recorded.
    public static func deadlockTrap() -> Never {
        fatalError("SwiftRCU writer deadlock: \(lastCycleDescription)")
    }

    /// The wait-for cycle the calling thread's last refused wait found, in words.
    public static var lastCycleDescription: String {
        var serials = [UInt64](repeating: 0, count: 16)
        let n = Int(rcushim_writer_cycle(&serials, Int32(serials.count)))
        guard n > 0 else { return "a cycle of writers each waiting for another's pointer (threads not recorded)" }
        let threads = serials.prefix(min(n, serials.count)).map { "thread \($0)" }
        let others = threads.dropFirst().joined(separator: ", which waits for one held by ")
        return "\(threads.first ?? "this thread") would wait for a pointer's writer lock held by \(others)"
            + ", which waits for one \(threads.first ?? "this thread") holds (a cycle of \(n) writers)"
    }
}
