// SwiftRCU C ABI (room 3 of 3): the table behind the opaque handles.
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A handle is not a memory address but a slot number, a kind and a generation, so a stale handle
// (already freed or deferred) is recognised and refused even after its slot was reused.

import CLiburcuShim
import Glibc
import Synchronization
import SwiftRCUCore

/// What a handle refers to; the low two bits of every handle. No handle has both bits set (3) or
/// neither (0), so testing a kind's own bit refuses the other kind and NULL.
enum HandleKind: UInt64 {
    case ptr = 1
    case old = 2
}

/// One entry of the handle table: one cache line (64 bytes, 64-aligned), which also carries the
/// deferred destroy of an old handle, so deferring touches no other memory.
///
/// # Invariants
///
/// - `head` is the first field, so the `rcu_head` liburcu hands back to a deferred destroy is also
///   the address of its slot; it is used only between `swiftrcu_old_defer` and its callback;
/// - `index` is the slot's own index, set before its segment is published and never changed;
/// - `stamp` is the full value of the live handle that owns the slot, or 0 while the slot is free
///   or retired; it is set last (release) when a slot is handed out and cleared first (by
///   compare-exchange) when its handle is retired;
/// - for a `ptr` handle: `word0` holds a retained `Unmanaged<PtrState>`, `word1` the published
///   object; for an `old` handle: `word0` the object, `word1` the destroy function, `word2` the
///   context;
/// - a retired slot goes back to the free list only after a grace period, and every use of a slot
///   found through a handle happens inside a read-side critical section; so a thread that saw the
///   stamp match may use the words until its section ends;
/// - `generation` is touched only by the thread that owns the free slot: the one that took it off
///   the free list (or is adding its segment);
/// - `nextFree` links the slot into a free list while it is on one (see `HandleTable`); threads
///   taking slots may read it after the slot left the list, so it is only accessed atomically.
struct HandleSlot: ~Copyable {
    var head = rcu_head()
    let stamp = Atomic<UInt64>(0)
    let word0 = Atomic<UInt>(0)
    let word1 = Atomic<UInt>(0)
    let word2 = Atomic<UInt>(0)
    var generation: UInt32 = 1
    let nextFree = Atomic<UInt32>(HandleTable.noSlot)
    var index: UInt32 = 0
    var padding: UInt32 = 0
}

/// The slots of all live handles: a directory of segments, filled on demand and never freed. A
/// segment holds `segmentSize` slots. The first
/// segment is the shim's static storage, so `lookup` reaches slots 0..<`segmentSize` without the
/// directory.
///
/// # Invariants
///
/// - `directory[i]` is 0 or the address of a segment of `segmentSize` initialised slots, and once
///   set never changes; segments are filled in order, `segmentCount` of them so far;
/// - `directory[0]`, once set, is `firstSegment`; before that, `firstSegment` holds zero bytes,
///   which read as slots whose stamp is 0 (no handle matches it);
/// - free slots are on one of two lists linked through `nextFree` (heads in the shim's storage):
///   `ready`, taken from without a lock (a compare-exchange of the head; the tag in the head's
///   high half makes a compare-exchange based on a stale head fail), and `returned`, pushed onto
///   without a lock by `release` and only ever taken whole. When `ready` is empty, `refill` (with
///   the table lock held) moves all of `returned` to it, or adds a segment when nothing was
///   returned. So slots are reused batch by batch in the order they were released (a slot waits
///   at least until every slot of the batch before its own was taken again), and neither taking
///   nor returning a slot takes a lock in the common case;
/// - only `refill` changes an empty `ready` (a taker leaves an empty list alone).
enum HandleTable {
    static let segmentShift = 12
    static let segmentSize = 1 << segmentShift
    static let directorySize = Int(RCUSHIM_DIRECTORY_SIZE)
    static let noSlot = UInt32.max

    /// The head of the `ready` list: `tag << 32 | index` (see the shim's `rcushim_free_ready`).
    @inline(__always)
    private static var ready: UnsafeMutablePointer<Atomic<UInt64>> {
        // SAFETY: a static, aligned `uint64_t` initialised to a valid value and only ever accessed
        // through this atomic.
        rcushim_free_ready_word().assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// The head of the `returned` list (see the shim's `rcushim_free_returned`).
    @inline(__always)
    private static var returned: UnsafeMutablePointer<Atomic<UInt32>> {
        // SAFETY: as for `ready`, for a `uint32_t`.
        rcushim_free_returned_word().assumingMemoryBound(to: Atomic<UInt32>.self)
    }

    /// The directory of segment addresses (the shim's zero-initialised static array).
    @inline(__always)
    static var directory: UnsafeMutablePointer<Atomic<UInt>> {
        // SAFETY: `Atomic<UInt>` has the size and alignment of `UInt`; the array is static,
        // zero-initialised (a valid `Atomic(0)`) and only ever accessed through these atomics.
        rcushim_directory().assumingMemoryBound(to: Atomic<UInt>.self)
    }

    /// The first segment (static, zero-filled until `grow` first runs).
    @inline(__always)
    static var firstSegment: UnsafeMutablePointer<HandleSlot> {
        // SAFETY: the storage is static, aligned to 64 and `RCUSHIM_FIRST_SEGMENT_BYTES` long, which
        // `grow` checks holds a segment; zero bytes are a valid `HandleSlot` (atomics at 0, plain
        // integers at 0), and its atomic words are only ever accessed as atomics.
        rcushim_first_segment().assumingMemoryBound(to: HandleSlot.self)
    }

    /// The slot of `handle` if it is a live handle of `kind`, else `nil`. Call inside a read-side
    /// critical section and use the slot only until it ends; or, outside one, only to `retire`
    /// the handle (which makes the slot the caller's) before reading anything of it.
    @inline(__always)
    static func lookup(_ handle: UInt, _ kind: HandleKind) -> UnsafeMutablePointer<HandleSlot>? {
        let value = UInt64(handle)
        let slot: UnsafeMutablePointer<HandleSlot>
        // The index is bits 2...31. One test for the common case: the kind's bit is set and the
        // index is in the first segment (bits 14...31 clear).
        let highIndexBits = 0xFFFF_FFFF & ~UInt64(segmentSize << 2 - 1)
        if _fastPath((value ^ kind.rawValue) & (highIndexBits | kind.rawValue) == 0) {
            // SAFETY: the index is inside the first segment, which is static.
            slot = firstSegment + Int(truncatingIfNeeded: (value & ~highIndexBits & 0xFFFF_FFFF) >> 2)
        } else {
            // The kind's bit refuses NULL and the other kind; a value with both bits set is
            // refused by the stamp comparison below (no handle has both).
            guard value & kind.rawValue != 0,
                let found = laterSlot(Int(truncatingIfNeeded: (value & 0xFFFF_FFFF) >> 2))
            else { return nil }
            slot = found
        }
        // Ordering: acquire pairs with the release store in `publish`, so the words written
        // before it are visible.
        guard _fastPath(slot.pointee.stamp.load(ordering: .acquiring) == value) else { return nil }
        return slot
    }

    /// The slot at `index` (at least `segmentSize`) in a later segment, or nil if that segment
    /// does not exist yet.
    @inline(__always)
    private static func laterSlot(_ index: Int) -> UnsafeMutablePointer<HandleSlot>? {
        // Masked rather than bounds-checked: a handle whose index is out of range lands on some
        // slot whose stamp (always an in-range handle) cannot equal it, so `lookup` refuses it.
        let segmentIndex = (index >> segmentShift) & (directorySize - 1)
        // Ordering: acquire pairs with the release store that published the segment, so its
        // initialised slots are visible.
        let base = directory[segmentIndex].load(ordering: .acquiring)
        guard let segment = UnsafeMutablePointer<HandleSlot>(bitPattern: base) else { return nil }
        // SAFETY: `index & (segmentSize - 1)` is inside the segment, which is never freed.
        return segment + (index & (segmentSize - 1))
    }

    /// Takes a free slot for a new handle of `kind`; the handle is not live until `publish`.
    /// Returns `nil` when no memory or no slot is left.
    static func reserve(_ kind: HandleKind) -> (slot: UnsafeMutablePointer<HandleSlot>, handle: UInt)? {
        var index = takeReady()
        while index == noSlot {
            guard refill() else { return nil }
            index = takeReady()
        }
        // The slot is ours now: nothing else touches its generation.
        let slot = slotAddress(index)
        let generation = slot.pointee.generation
        slot.pointee.generation = generation == UInt32.max ? 1 : generation + 1
        let handle = UInt64(generation) << 32 | UInt64(index) << 2 | kind.rawValue
        return (slot, UInt(handle))
    }

    /// Takes the first slot off `ready`; `noSlot` when it is empty.
    @inline(__always)
    private static func takeReady() -> UInt32 {
        // Ordering: acquire pairs with the release store in `refill` (through the release sequence
        // of the takes since), so the links of the list are visible.
        var head = ready.pointee.load(ordering: .acquiring)
        while true {
            let index = UInt32(truncatingIfNeeded: head)
            if index == noSlot { return noSlot }
            // Ordering: relaxed; if another thread took the slot since `head` was read, this may be
            // anything, but then the tag has changed and the exchange below fails.
            let next = slotAddress(index).pointee.nextFree.load(ordering: .relaxed)
            let desired = ((head >> 32) &+ 1) << 32 | UInt64(next)
            // Ordering: acquire-release, to continue the release sequence that publishes the links.
            let (exchanged, original) = ready.pointee.compareExchange(
                expected: head, desired: desired, successOrdering: .acquiringAndReleasing, failureOrdering: .acquiring)
            if exchanged {
                // The next taker's slot (and its link) is most likely not in this CPU's cache:
                // start fetching it now, so the next update does not wait for it.
                if next != noSlot { rcushim_prefetch_for_write(slotAddress(next)) }
                return index
            }
            head = original
        }
    }

    /// With the table lock held: when `ready` is still empty, moves every returned slot to it, or
    /// adds a segment when none was returned. `false` when the table is full or memory is out.
    private static func refill() -> Bool {
        rcushim_table_lock()
        defer { rcushim_table_unlock() }
        // Ordering: relaxed; only this function (serialised by the lock) changes an empty `ready`.
        let head = ready.pointee.load(ordering: .relaxed)
        guard UInt32(truncatingIfNeeded: head) == noSlot else { return true }
        // Ordering: acquire pairs with the release exchange in `release`, so every returned slot's
        // link is visible.
        // The batch is newest first and is not reversed (that would touch every slot once more):
        // slots are reused batch by batch in the order they were released, newest first within
        // a batch.
        var first = returned.pointee.exchange(noSlot, ordering: .acquiring)
        if first == noSlot {
            guard let start = grow() else { return false }
            first = start
        }
        // Ordering: release pairs with the acquire loads in `takeReady`, so the links are visible.
        ready.pointee.store(((head >> 32) &+ 1) << 32 | UInt64(first), ordering: .releasing)
        return true
    }

    /// Makes a reserved slot's handle live, after its words were written.
    static func publish(_ slot: UnsafeMutablePointer<HandleSlot>, _ handle: UInt) {
        // Ordering: release pairs with the acquire load in `lookup`.
        slot.pointee.stamp.store(UInt64(handle), ordering: .releasing)
        rcushim_stats_handle(UInt64(handle), 1)
    }

    /// Retires a live handle: afterwards `lookup` refuses it. Exactly one of several concurrent
    /// callers for the same handle gets `true`.
    static func retire(_ slot: UnsafeMutablePointer<HandleSlot>, _ handle: UInt) -> Bool {
        // Ordering: acquire-release so the winner sees every write made under the live handle.
        let retired = slot.pointee.stamp.compareExchange(
            expected: UInt64(handle), desired: 0, ordering: .acquiringAndReleasing
        ).exchanged
        if retired { rcushim_stats_handle(UInt64(handle), -1) }
        return retired
    }

    /// Returns a retired or never-published slot to the free list. For a retired slot, call only
    /// after a grace period has passed since `retire`.
    static func release(_ handle: UInt) {
        release(slotAddress(UInt32(truncatingIfNeeded: (UInt64(handle) & 0xFFFF_FFFF) >> 2)))
    }

    /// `release` by slot address.
    static func release(_ slot: UnsafeMutablePointer<HandleSlot>) {
        let index = slot.pointee.index
        // Ordering: relaxed; the exchange below publishes the link.
        var head = returned.pointee.load(ordering: .relaxed)
        while true {
            slot.pointee.nextFree.store(head, ordering: .relaxed)
            // Ordering: release pairs with the acquire exchange in `refill`, so this link and
            // everything done with the slot before its release are visible to its next taker.
            let (exchanged, original) = returned.pointee.compareExchange(
                expected: head, desired: index, successOrdering: .releasing, failureOrdering: .relaxed)
            if exchanged { return }
            head = original
        }
    }

    /// The address of slot `index`, which must be in a filled segment.
    @inline(__always)
    private static func slotAddress(_ index: UInt32) -> UnsafeMutablePointer<HandleSlot> {
        let i = Int(index)
        // Ordering: acquire pairs with the release store that published the segment (the caller
        // found the index on a free list or in a handle, which already orders it; this is cheap
        // insurance).
        let base = directory[i >> segmentShift].load(ordering: .acquiring)
        // SAFETY: the segment is filled (caller's contract) and never freed.
        return UnsafeMutablePointer<HandleSlot>(bitPattern: base)! + (i & (segmentSize - 1))
    }

    /// Adds one segment of slots linked into a list, and returns its first slot; `nil` when the
    /// directory is full or memory is out. Requires the table lock.
    private static func grow() -> UInt32? {
        // SAFETY: a static `uint32_t`, only touched with the table lock held, which we hold.
        let count = Int(rcushim_segment_count_word().pointee)
        guard count < directorySize else { return nil }
        let size = MemoryLayout<HandleSlot>.stride * segmentSize
        // One slot per cache line, and the static first segment holds one segment.
        precondition(
            MemoryLayout<HandleSlot>.stride == 64 && size <= Int(RCUSHIM_FIRST_SEGMENT_BYTES)
                && segmentSize == Int(RCUSHIM_SEGMENT_SLOTS))
        let raw: UnsafeMutableRawPointer
        if count == 0 {
            raw = UnsafeMutableRawPointer(firstSegment)
        } else {
            var fresh: UnsafeMutableRawPointer?
            guard posix_memalign(&fresh, 64, size) == 0, let fresh else { return nil }
            raw = fresh
        }
        // SAFETY: 64-aligned memory for `segmentSize` slots, initialised before publication.
        let segment = raw.bindMemory(to: HandleSlot.self, capacity: segmentSize)
        let first = count << segmentShift
        for i in 0..<segmentSize {
            if count != 0 {
                (segment + i).initialize(to: HandleSlot())
            } else {
                // The static segment's zero bytes are already slots whose atomics are 0, which
                // `lookup` may be reading now (for a bogus handle): set only the plain fields,
                // which it never reads.
                segment[i].generation = 1
            }
            segment[i].index = UInt32(first + i)
            // Ordering: relaxed; the release store below publishes the segment.
            segment[i].nextFree.store(i + 1 < segmentSize ? UInt32(first + i + 1) : noSlot, ordering: .relaxed)
        }
        // Ordering: release pairs with the acquire load in `laterSlot` (the first segment is
        // reached without the directory, and its zero bytes need no publication).
        directory[count].store(UInt(bitPattern: raw), ordering: .releasing)
        rcushim_segment_count_word().pointee += 1
        return UInt32(first)
    }
}
