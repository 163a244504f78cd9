// SwiftRCU core (room 2 of 3): the library's statistics, read from the shim's counters.
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Calls only the liburcu shim (CLiburcuShim, rcushim_stats.h).

import CLiburcuShim
import SwiftRCUCore

/// What the library has done since it was loaded, and what is alive or pending now: the Swift
/// face of the C ABI's `swiftrcu_stats` (`swiftrcu_stats_get`), with the same fields.
///
/// Read it with ``current``. The counters are read one at a time, not as a consistent snapshot:
/// while other threads work, one field may already count an event that another does not yet.
///
/// ```swift
/// let before = RcuStatistics.current
/// try synchronizeRCU()
/// assert(RcuStatistics.current.gracePeriods - before.gracePeriods >= 1)
/// ```
///
/// **Which library it describes.** Every copy of the library in a process counts on its own.
/// ``current`` reports the copy linked into this Swift program: the SwiftRCU package, together
/// with the C ABI target (SwiftRCUCABI) when the program links that too, since both share one
/// copy of the shim. A program that also loads `libswiftrcu.so` has a second copy, whose
/// counters only `swiftrcu_stats_get` from that library reports (and which counts nothing done
/// through the Swift package).
///
/// # Invariants
///
/// A value describes one read of the counters; it never changes afterwards.
public struct RcuStatistics: Sendable, Hashable, CustomStringConvertible {
    /// Grace-period waits this library made and completed (`synchronizeRCU()`, dropping or
    /// freeing an `RcuOld`; in C: synchronize, old_free, free). The waits liburcu's call_rcu
    /// threads make internally are not counted.
    public let gracePeriods: UInt64
    /// Destroys handed to liburcu's call_rcu (`RcuOld.deferRelease()`, drops inside a read
    /// section; in C: `swiftrcu_old_defer`).
    public let deferredQueued: UInt64
    /// Deferred destroys that have run.
    public let deferredCompleted: UInt64
    /// Deferred destroys queued and not yet run, now.
    public let deferredPending: UInt64
    /// The highest `deferredPending` seen (by a deferring call or a read of the statistics).
    public let deferredPendingPeak: UInt64
    /// Objects destroyed: destroy functions called (C) and objects released after their grace
    /// period (Swift `RcuOld`), synchronously or deferred.
    public let objectsDestroyed: UInt64
    /// C ABI `swiftrcu_ptr` handles alive now (Swift `Rcu` objects are not counted).
    public let ptrsLive: UInt64
    /// C ABI `swiftrcu_old` handles alive now, neither freed nor deferred (Swift `RcuOld` values
    /// are not counted).
    public let oldsLive: UInt64
    /// Threads registered with this library now, liburcu's call_rcu worker threads included
    /// (the library adopts each one when it first runs a deferred destroy).
    public let threadsRegistered: UInt64
    /// Threads ever registered with this library.
    public let threadsRegisteredTotal: UInt64
    /// Threads that exited holding C guards' read locks, which the library released at their exit.
    public let threadsExitedInSection: UInt64
    /// Back-pressure pauses of deferring writers that outran the call_rcu workers.
    public let writerPauses: UInt64
    /// Total time of those pauses, in nanoseconds.
    public let writerPauseNanoseconds: UInt64
    /// Calls refused with `RcuError.deadlock` (`SWIFTRCU_EDEADLK`): thrown by the Swift API or
    /// returned by the C ABI.
    public let deadlockRefusals: UInt64
    /// Calls refused with `RcuError.notPermitted` (`SWIFTRCU_EPERM`). Refusals that return nil, NULL
    /// or a zeroed guard instead of a status (such as `swiftrcu_dereference` with a foreign guard)
    /// are not counted.
    public let notPermittedRefusals: UInt64
    /// Calls refused with `RcuError.invalidArgument` (`SWIFTRCU_EINVAL`), likewise.
    public let invalidArgumentRefusals: UInt64

    /// The statistics now (one relaxed load per counter).
    public static var current: RcuStatistics {
        var v = [UInt64](repeating: 0, count: Int(RCUSHIM_STAT_COUNT))
        // SAFETY: the buffer holds RCUSHIM_STAT_COUNT values, exactly what rcushim_stats_read writes.
        v.withUnsafeMutableBufferPointer { rcushim_stats_read($0.baseAddress!) }
        return RcuStatistics(values: v)
    }

    /// The statistics from the shim's values, in the order of its `RCUSHIM_STAT_*` indices.
    init(values v: [UInt64]) {
        gracePeriods = v[Int(RCUSHIM_STAT_GRACE_PERIODS)]
        deferredQueued = v[Int(RCUSHIM_STAT_DEFERRED_QUEUED)]
        deferredCompleted = v[Int(RCUSHIM_STAT_DEFERRED_COMPLETED)]
        deferredPending = v[Int(RCUSHIM_STAT_DEFERRED_PENDING)]
        deferredPendingPeak = v[Int(RCUSHIM_STAT_DEFERRED_PENDING_PEAK)]
        objectsDestroyed = v[Int(RCUSHIM_STAT_OBJECTS_DESTROYED)]
        ptrsLive = v[Int(RCUSHIM_STAT_PTRS_LIVE)]
        oldsLive = v[Int(RCUSHIM_STAT_OLDS_LIVE)]
        threadsRegistered = v[Int(RCUSHIM_STAT_THREADS_REGISTERED)]
        threadsRegisteredTotal = v[Int(RCUSHIM_STAT_THREADS_REGISTERED_TOTAL)]
        threadsExitedInSection = v[Int(RCUSHIM_STAT_THREADS_EXITED_IN_SECTION)]
        writerPauses = v[Int(RCUSHIM_STAT_WRITER_PAUSES)]
        writerPauseNanoseconds = v[Int(RCUSHIM_STAT_WRITER_PAUSE_NS)]
        deadlockRefusals = v[Int(RCUSHIM_STAT_EDEADLK_REFUSALS)]
        notPermittedRefusals = v[Int(RCUSHIM_STAT_EPERM_REFUSALS)]
        invalidArgumentRefusals = v[Int(RCUSHIM_STAT_EINVAL_REFUSALS)]
    }

    /// The fields as (C name, value) pairs, in the order of the C struct `swiftrcu_stats`.
    public var fields: [(name: String, value: UInt64)] {
        [
            ("grace_periods", gracePeriods), ("deferred_queued", deferredQueued),
            ("deferred_completed", deferredCompleted), ("deferred_pending", deferredPending),
            ("deferred_pending_peak", deferredPendingPeak), ("objects_destroyed", objectsDestroyed),
            ("ptrs_live", ptrsLive), ("olds_live", oldsLive), ("threads_registered", threadsRegistered),
            ("threads_registered_total", threadsRegisteredTotal),
            ("threads_exited_in_section", threadsExitedInSection), ("writer_pauses", writerPauses),
            ("writer_pause_ns", writerPauseNanoseconds), ("edeadlk_refusals", deadlockRefusals),
            ("eperm_refusals", notPermittedRefusals), ("einval_refusals", invalidArgumentRefusals),
        ]
    }

    /// One line of `key=value` pairs with the C field names, as `SWIFTRCU_STATS=1` prints at exit.
    public var description: String {
        fields.map { "\($0.name)=\($0.value)" }.joined(separator: " ")
    }
}

extension RcuError {
    /// `error`, counted as a refusal in the statistics: what the Swift API throws.
    static func counted(_ error: RcuError) -> RcuError {
        _ = rcushim_stats_refuse(error.rawValue)
        return error
    }
}
