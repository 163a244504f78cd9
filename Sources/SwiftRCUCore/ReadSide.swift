// SwiftRCU core (room 2 of 3): read-side critical sections and their identities.
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Calls only the liburcu shim (CLiburcuShim). The named sections (tokens) serve the C ABI's guards
// (swiftrcu_read_lock / swiftrcu_read_unlock / swiftrcu_dereference); the Swift API's RcuGuard
// needs no token and uses the shim's read lock directly; both use the internal sections here.

import CLiburcuShim

/// The identity of one read-side critical section: the thread that entered it, its nesting level
/// and a per-thread sequence number.
///
/// # Invariants
///
/// - `thread` is the `serial` of the thread that entered the section (never 0 for a real section);
/// - `word` is `seq << 8 | depth`, where `depth` (1...255) is the section's nesting level and `seq`
///   the value that thread recorded in `ids[depth]` when it entered the section.
///
/// A token names a *held* section exactly while that thread's `ids[depth] == seq` and its depth
/// is at least `depth`; sequence numbers never repeat at one level of a thread, so a copy of a
/// spent token never names a later section at the same level.
// SPI rather than `package`: the C ABI's read path must inline these across modules, and the
// compiler does not inline `@inlinable package` bodies into another module of the package in
// this build (measured: the C trio at 185 instructions per section instead of 104). SPI
// declarations are invisible to `import SwiftRCU` and to a plain `import SwiftRCUCore`.
@_spi(CABI) public struct ReadToken: Equatable, Sendable {
    public var thread: UInt64
    public var word: UInt64

    @inlinable
    public init(thread: UInt64, word: UInt64) {
        self.thread = thread
        self.word = word
    }

    /// A token that names no section (what a zeroed C guard holds).
    public static var none: ReadToken { ReadToken(thread: 0, word: 0) }

    @inlinable var depth: UInt32 { UInt32(truncatingIfNeeded: word & 0xff) }
    @inlinable var seq: UInt64 { word >> 8 }
}

/// Read-side critical sections of the calling thread, on top of liburcu's memb flavour.
///
/// Every function here acts on the calling thread only; none writes memory shared with other
/// threads except liburcu's own per-thread reader counter (which is what a read lock is).
@_spi(CABI) public enum ReadSide {
    /// Enters a read-side critical section, registering the thread with liburcu on first use.
    ///
    /// Returns `nil`, entering nothing, when the thread is exiting or already holds
    /// `RCUSHIM_MAX_NESTING` sections.
    @inlinable @inline(__always)
    public static func lock() -> ReadToken? {
        guard let t = rcushim_ready_self() else { return nil }
        return lock(ready: t)
    }

    /// `lock()` for a thread whose state `t` is ready (`rcushim_ready_self()` returned it).
    @inlinable @inline(__always)
    public static func lock(ready t: UnsafeMutablePointer<rcushim_thread>) -> ReadToken? {
        let depth = t.pointee.depth
        guard depth < UInt32(RCUSHIM_MAX_NESTING) else { return nil }
        rcushim_read_lock(t)
        // The level is claimed (depth stored) before its entry is written, so that a signal
        // handler running in between takes its sections at the levels above (see
        // rcushim_thread); the barriers keep the compiler from moving the stores.
        let level = depth &+ 1
        t.pointee.depth = level
        rcushim_compiler_barrier()
        // SAFETY: `level <= RCUSHIM_MAX_NESTING`, the last index of `ids`; the thread owns
        // its state.
        let ids = rcushim_ids(t)
        let seq = ids[Int(level)] &+ 1
        ids[Int(level)] = seq
        rcushim_compiler_barrier()
        return ReadToken(thread: t.pointee.serial, word: seq << 8 | UInt64(level))
    }

    /// Enters an anonymous region: a read-side critical section without a token, on the same
    /// depth and identity stack as the tokens' sections, for the C ABI's region entry points.
    /// `t` must be ready (`rcushim_ready_self()` returned it).
    ///
    /// The region takes the level's next number, which no token is given, with
    /// RCUSHIM_REGION_BIT set: no guard's token (numbers below 2^56) names a region, so the guard
    /// checks need no test of their own for regions. Returns `false`, entering nothing, at
    /// `RCUSHIM_MAX_NESTING` sections.
    @inlinable @inline(__always)
    public static func enterRegion(ready t: UnsafeMutablePointer<rcushim_thread>) -> Bool {
        let depth = t.pointee.depth
        guard depth < UInt32(RCUSHIM_MAX_NESTING) else { return false }
        rcushim_read_lock(t)
        // As in `lock(ready:)`: the level is claimed before its entry is written.
        let level = depth &+ 1
        t.pointee.depth = level
        rcushim_compiler_barrier()
        // SAFETY: `level <= RCUSHIM_MAX_NESTING`, the last index of `ids`; the thread owns its
        // state. The entry has no region bit (a region's exit clears it).
        let ids = rcushim_ids(t)
        ids[Int(level)] = (ids[Int(level)] &+ 1) | RCUSHIM_REGION_BIT
        rcushim_compiler_barrier()
        return true
    }

    /// Whether the innermost section the library tracks on the thread whose state is `t` (the
    /// calling thread's, from `rcushim_self()`) is an anonymous region; `false` when there is none.
    @inlinable @inline(__always)
    public static func innermostIsRegion(of t: UnsafeMutablePointer<rcushim_thread>) -> Bool {
        let depth = Int(t.pointee.depth)
        // SAFETY: `depth <= RCUSHIM_MAX_NESTING`, so the index is in `ids`.
        return depth != 0 && rcushim_ids(t)[depth] & RCUSHIM_REGION_BIT != 0
    }

    /// Leaves the innermost section of the calling thread (state `t`), which is an anonymous
    /// region (`innermostIsRegion` said so), without liburcu's wake-up step: returns `true` when
    /// a writer waits, and then the caller must call `rcushim_wake_writer()` next.
    @inlinable @inline(__always)
    public static func leaveRegion(of t: UnsafeMutablePointer<rcushim_thread>) -> Bool {
        let depth = t.pointee.depth
        // SAFETY: `1 <= depth <= RCUSHIM_MAX_NESTING`, so the index is in `ids`. The level keeps
        // its number, unmarked, so the next section there counts on from it; then the level is
        // given up, before liburcu's counter (a signal handler in between reuses it).
        rcushim_ids(t)[Int(depth)] &= ~RCUSHIM_REGION_BIT
        rcushim_compiler_barrier()
        t.pointee.depth = depth &- 1
        rcushim_compiler_barrier()
        return rcushim_read_leave(t) != 0
    }

    /// Whether `token` names a section the calling thread holds now (the innermost or an outer one).
    @inlinable @inline(__always)
    public static func holds(_ token: ReadToken) -> Bool {
        let t = rcushim_self()
        guard token.thread == t.pointee.serial else { return false }
        let depth = Int(token.depth)
        guard depth <= Int(t.pointee.depth) else { return false }
        // SAFETY: `depth <= t.depth <= RCUSHIM_MAX_NESTING`, so the index is in `ids`; depth 0
        // reads `ids[0]`, RCUSHIM_NO_ID, which no `seq` equals.
        return rcushim_ids(t)[depth] == token.seq
    }

    /// Whether `token` names the innermost section held by the thread whose state is `t` (the
    /// calling thread's, from `rcushim_self()`).
    @inlinable @inline(__always)
    public static func isInnermost(_ token: ReadToken, of t: UnsafeMutablePointer<rcushim_thread>) -> Bool {
        guard token.thread == t.pointee.serial else { return false }
        let depth = Int(token.depth)
        guard depth == Int(t.pointee.depth) else { return false }
        // SAFETY: `depth <= RCUSHIM_MAX_NESTING`, so the index is in `ids`; depth 0 reads
        // `ids[0]`, RCUSHIM_NO_ID, which no `seq` equals.
        return rcushim_ids(t)[depth] == token.seq
    }

    /// Leaves the innermost section of the calling thread (state `t`), which `token` names
    /// (`isInnermost` said so), without liburcu's wake-up step: returns `true` when a writer
    /// waits, and then the caller must call `rcushim_wake_writer()` next.
    @inlinable @inline(__always)
    public static func leave(_ token: ReadToken, of t: UnsafeMutablePointer<rcushim_thread>) -> Bool {
        t.pointee.depth = token.depth &- 1
        // The level is given up before liburcu's counter; a signal handler in between reuses it.
        rcushim_compiler_barrier()
        return rcushim_read_leave(t) != 0
    }

    /// Whether the calling thread is inside any liburcu memb read-side critical section: one of
    /// the library's (guards, or a copy-update callback) or one the program opened with liburcu.
    @inlinable @inline(__always)
    public static var isInSection: Bool { rcushim_read_ongoing() != 0 }

    /// Whether the calling thread is running a deferred destroy on a liburcu call_rcu thread.
    @inlinable
    public static var isInDeferredCallback: Bool { rcushim_self().pointee.in_callback != 0 }

    /// Runs `body` inside a read-side critical section that has no guard (used by writers to keep
    /// handles alive while they use them). Returns `nil` when the thread is exiting.
    @inlinable @inline(__always)
    public static func withInternalSection<R>(_ body: () throws -> R) rethrows -> R? {
        guard let t = rcushim_ready_self() else { return nil }
        rcushim_read_lock(t)
        defer { rcushim_read_unlock(t) }
        return try body()
    }

    /// Registers the calling thread with liburcu now (it otherwise happens on first use).
    /// Returns `false` when the thread is exiting.
    public static func register() -> Bool {
        rcushim_ready_self() != nil
    }

    /// Undoes the library's registration of the calling thread; `false`, changing nothing, while
    /// the thread is inside a read-side critical section.
    public static func unregister() -> Bool {
        let t = rcushim_self()
        guard t.pointee.depth == 0, !isInSection else { return false }
        rcushim_thread_fini()
        return true
    }
}
