// SwiftRCU C ABI (room 3 of 3): swiftrcu_stats_get, and the counting of refused calls.
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The counters live in the shim (rcushim_stats.h); this file copies them into the caller's
// swiftrcu_stats (include/swiftrcu_types.h) as far as the caller's size reaches.

import CLiburcuShim
@_spi(CABI) import SwiftRCUCore
import SwiftRCUTypes

/// `error`'s status code, counted as a refusal (EDEADLK, EPERM, EINVAL; ENOMEM is not counted).
/// The count is an out-of-line call of the shim, so a refusal branch ends in a tail call and a
/// read function's common path does not change.
@inline(__always)
func refusal(_ error: RcuError) -> CInt {
    rcushim_stats_refuse(error.rawValue)
}

/// Byte offset of the first counter in swiftrcu_stats (after `size`).
private let firstCounterOffset = MemoryLayout<swiftrcu_stats>.offset(of: \swiftrcu_stats.grace_periods)!

/// Fills *stats with the library's statistics (see swiftrcu_stats in swiftrcu_types.h).
///
/// Set stats->size to the number of bytes provided, normally sizeof(swiftrcu_stats). The library
/// fills every counter that lies entirely within stats->size bytes, in the header's order, leaves
/// any bytes after them untouched, and writes the number of bytes it filled (the size member
/// included) back into stats->size. So a caller with an older, shorter struct gets the counters it
/// knows, and a caller with a newer, longer one can tell from stats->size which counters this
/// library filled. The counters are read one at a time, not as a consistent snapshot.
///
/// Any thread may call it, also inside a read-side critical section; it never blocks. It
/// reports this instance of the library only (a Swift program linking the SwiftRCU package has
/// a separate one).
///
/// Returns SWIFTRCU_OK; SWIFTRCU_EINVAL, changing nothing, for a NULL stats or a stats->size too
/// small to hold the size member and one counter.
@c(swiftrcu_stats_get)
public func swiftrcu_stats_get(_ stats: UnsafeMutablePointer<swiftrcu_stats>?) -> CInt {
    guard let stats else { return refusal(.invalidArgument) }
    // SAFETY: the caller provides at least the `size` member (first, size_t), and then as many
    // bytes as it says; nothing beyond them is touched, and every counter written lies within.
    let raw = UnsafeMutableRawPointer(stats)
    let provided = raw.load(as: Int.self)
    guard provided >= firstCounterOffset + MemoryLayout<UInt64>.size else { return refusal(.invalidArgument) }
    let count = min((provided - firstCounterOffset) / MemoryLayout<UInt64>.size, Int(RCUSHIM_STAT_COUNT))
    withUnsafeTemporaryAllocation(of: UInt64.self, capacity: Int(RCUSHIM_STAT_COUNT)) { values in
        // SAFETY: the temporary buffer holds RCUSHIM_STAT_COUNT values, what the shim writes.
        rcushim_stats_read(values.baseAddress!)
        for i in 0..<count {
            raw.storeBytes(of: values[i], toByteOffset: firstCounterOffset + i * MemoryLayout<UInt64>.size, as: UInt64.self)
        }
    }
    raw.storeBytes(of: firstCounterOffset + count * MemoryLayout<UInt64>.size, as: Int.self)
    return SWIFTRCU_OK
}
