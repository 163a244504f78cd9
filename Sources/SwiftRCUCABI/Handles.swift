// SwiftRCU C ABI (room 3 of 3): the table behind the opaque handles. Its storage and the slot
// layout are declared in C (Sources/CSwiftRCUABI/include/swiftrcu_abi.h, `struct rcuabi_slot`),
// so their sizes are checked by the compiler.
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A handle is not a memory address but a slot number, a kind and a generation, so a stale handle
// (already freed or deferred) is recognised and refused even after its slot was reused.

import CLiburcuShim
import CSwiftRCUABI
import Glibc
import CSwiftRCUCore
import Synchronization
@_spi(CABI) import SwiftRCUCore

/// What a handle refers to; the low two bits of every handle. No handle has both bits set (3) or
/// neither (0), so testing a kind's own bit refuses the other kind and NULL.
enum HandleKind: UInt64 {
    case ptr = 1
    case old = 2
}

/// One entry of the handle table (`struct rcuabi_slot`, whose comment states its invariants).
/// Besides those: a retired slot goes back to a free list only after a grace period, and every use
/// of a slot found through a handle happens inside a read-side critical section (or after the
/// caller retired the handle itself); so a thread that saw the stamp match may use the words
/// until its section ends.
typealias HandleSlot = rcuabi_slot

/// The atomic fields of a slot. The C declaration fixes where they are; these only view them.
extension UnsafeMutablePointer where Pointee == rcuabi_slot {
    @inline(__always) var stamp: UnsafeMutablePointer<Atomic<UInt64>> {
        // SAFETY: an aligned `uint64_t` of a live slot (segments are never freed), only ever
        // accessed through this atomic view (the slot's invariant).
        UnsafeMutableRawPointer(rcuabi_slot_stamp(self)).assumingMemoryBound(to: Atomic<UInt64>.self)
    }
    /// The pointer cell a live ptr slot holds in place (the slot's invariant).
    @inline(__always) var cell: PointerCell { PointerCell(rcuabi_slot_cell(self)) }
    @inline(__always) var nextFree: UnsafeMutablePointer<Atomic<UInt32>> {
        // SAFETY: as for `stamp`, for a `uint32_t`.
        UnsafeMutableRawPointer(rcuabi_slot_next_free(self)).assumingMemoryBound(to: Atomic<UInt32>.self)
    }
}

/// The slots of all live handles: a directory of segments, filled on demand and never freed. The
/// first segment is static, so `lookup` reaches slots 0..<`segmentSize` without the directory.
///
/// # Invariants
///
/// - `directory[i]` is 0 or the address of a segment of `segmentSize` initialised slots, and once
///   set never changes; segments are filled in order, `rcuabi_segment_count` of them so far;
/// - `directory[0]`, once set, is `firstSegment`; before that, `firstSegment` holds zero bytes,
///   which read as slots whose stamp is 0 (no handle matches it);
/// - every free slot is on one list of one shard, linked through `nextFree`: `ready`, taken from
///   without a lock (a compare-exchange of the head; the tag in the head's high half makes a
///   compare-exchange based on a stale head fail), or `returned`, pushed onto without a lock by
///   `release` and only ever taken whole. A writer takes from the shard of its thread serial, and
///   a slot goes back to the shard it was taken from. When a shard's `ready` is empty, `refill`
///   (with the table lock held) moves its `returned` to it, or else another shard's `returned`,
///   or else another shard's `ready`, or else adds a segment. So slots are reused batch by batch
///   in the order they were released (a slot waits at least until the batch before its own was
///   taken again), and neither taking nor returning a slot takes a lock in the common case;
/// - only `refill` changes an empty `ready` (a taker leaves an empty list alone);
/// - besides the lists, free slots lie in threads' caches (`rcuabi_cache`, at most
///   `RCUABI_CACHE_SLOTS` each): a writer takes a chain of its shard's `ready` at once and
///   releases into its own cache while it has room; a thread's cache goes back onto the
///   `returned` lists when it exits (in a forked child, the caches of the threads left behind
///   are lost: at most `RCUABI_CACHE_SLOTS` slots each).
enum HandleTable {
    static let segmentShift = Int(RCUABI_SEGMENT_SHIFT)
    static let segmentSize = Int(RCUABI_SEGMENT_SLOTS)
    static let directorySize = Int(RCUABI_DIRECTORY_SIZE)
    static let shards = UInt32(RCUABI_SHARDS)
    static let noSlot = UInt32.max

    /// The head of shard `shard`'s `ready` list: `tag << 32 | index`.
    @inline(__always)
    private static func ready(_ shard: UInt32) -> UnsafeMutablePointer<Atomic<UInt64>> {
        // SAFETY: a static, aligned `uint64_t` initialised to a valid value and only ever accessed
        // through this atomic view.
        UnsafeMutableRawPointer(rcuabi_free_ready(shard)).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// The head of shard `shard`'s `returned` list (an index in the low half, nothing above).
    @inline(__always)
    private static func returned(_ shard: UInt32) -> UnsafeMutablePointer<Atomic<UInt64>> {
        // SAFETY: as for `ready`.
        UnsafeMutableRawPointer(rcuabi_free_returned(shard)).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// The directory of segment addresses (a zero-initialised static array).
    @inline(__always)
    static var directory: UnsafeMutablePointer<Atomic<UInt>> {
        // SAFETY: `Atomic<UInt>` has the size and alignment of `UInt`; the array is static,
        // zero-initialised (a valid `Atomic(0)`) and only ever accessed through these atomics.
        rcuabi_directory_words().assumingMemoryBound(to: Atomic<UInt>.self)
    }

    /// The first segment (static, zero-filled until `grow` first runs).
    @inline(__always)
    static var firstSegment: UnsafeMutablePointer<HandleSlot> { rcuabi_first_segment_slots() }

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
        guard _fastPath(slot.stamp.pointee.load(ordering: .acquiring) == value) else { return nil }
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
    ///
    /// From the calling thread's cache (see `rcuabi_cache`), which it refills with up to
    /// `RCUABI_CACHE_SLOTS` slots of its shard's `ready` list in one compare-exchange; a thread
    /// that cannot adopt a cache takes one slot at a time.
    @inline(__always)
    static func reserve(_ kind: HandleKind) -> (slot: UnsafeMutablePointer<HandleSlot>, handle: UInt)? {
        let cache = rcuabi_cache_word()
        // SAFETY: the calling thread's own word (initial-exec TLS), touched by no other thread.
        let word = cache.pointee
        let index: UInt32
        if _fastPath(word & cacheCountMask != 0) {
            index = UInt32(truncatingIfNeeded: word)
            let count = (word & cacheCountMask) - (1 << 32)
            // Ordering: relaxed; the cached slots are this thread's alone.
            let next = count == 0 ? noSlot : slotAddress(index).nextFree.pointee.load(ordering: .relaxed)
            cache.pointee = (word & cacheAdopted) | count | UInt64(next)
        } else {
            guard let taken = reserveSlow(word) else { return nil }
            index = taken
        }
        // The slot is ours now: nothing else touches its generation or shard.
        let slot = slotAddress(index)
        let generation = slot.pointee.generation
        slot.pointee.generation = generation == UInt32.max ? 1 : generation + 1
        slot.pointee.shard = UInt32(truncatingIfNeeded: rcushim_writer_serial()) & (shards - 1)
        let handle = UInt64(generation) << 32 | UInt64(index) << 2 | kind.rawValue
        return (slot, UInt(handle))
    }

    static let cacheAdopted = UInt64(RCUABI_CACHE_ADOPTED)
    static let cacheCountMask: UInt64 = 0xFFFF << 32
    static let cacheLimit = UInt64(RCUABI_CACHE_SLOTS)

    /// `reserve` with an empty cache (word `word`): takes a chain of slots off the shard's
    /// `ready` (refilling it when empty), keeps all but the first in the cache and returns the
    /// first; `nil` when the table is full or memory is out.
    @inline(never)
    private static func reserveSlow(_ word: UInt64) -> UInt32? {
        // First cache of this thread: registered so that its exit returns it (`returnCache`).
        let adopted = word & cacheAdopted != 0 || rcuabi_cache_adopt() != 0
        let shard = UInt32(truncatingIfNeeded: rcushim_writer_serial()) & (shards - 1)
        let want = adopted ? UInt32(cacheLimit) + 1 : 1
        var chain = takeReady(shard, upTo: want)
        while chain.first == noSlot {
            guard refill(shard) else { return nil }
            chain = takeReady(shard, upTo: want)
        }
        if chain.count > 1 {
            // Ordering: relaxed; the chain is this thread's alone since the take.
            let rest = slotAddress(chain.first).nextFree.pointee.load(ordering: .relaxed)
            rcuabi_cache_word().pointee = cacheAdopted | UInt64(chain.count - 1) << 32 | UInt64(rest)
        }
        return chain.first
    }

    /// The exit step of a thread's cache: its slots go back to the table's lists.
    fileprivate static let returnCache: @convention(c) (UInt64) -> Void = { word in
        var index = UInt32(truncatingIfNeeded: word)
        var count = (word & cacheCountMask) >> 32
        while count > 0 {
            let slot = slotAddress(index)
            // Ordering: relaxed; the slots are this thread's alone (read before `release` relinks).
            index = slot.nextFree.pointee.load(ordering: .relaxed)
            releaseToList(slot)
            count -= 1
        }
    }

    /// Takes the first `upTo` (at least 1) slots off shard `shard`'s `ready` in one
    /// compare-exchange, fewer when the list is shorter: the first one and how many (their links
    /// chain them; the last one's link means nothing to the taker); `noSlot` when it is empty.
    ///
    /// The links of the slots on `ready` do not change while they are on it, and a slot leaves
    /// it only by a take, which moves the tag on: so a walk that raced with another take may read
    /// anything, but then its compare-exchange fails. The walk stops at an index whose segment
    /// does not exist, which only such a race can produce.
    @inline(__always)
    private static func takeReady(_ shard: UInt32, upTo: UInt32) -> (first: UInt32, count: UInt32) {
        let ready = ready(shard)
        // Ordering: acquire pairs with the release store in `refill` (through the release sequence
        // of the takes since), so the links of the list are visible.
        var head = ready.pointee.load(ordering: .acquiring)
        while true {
            let first = UInt32(truncatingIfNeeded: head)
            if first == noSlot { return (noSlot, 0) }
            var count: UInt32 = 1
            // Ordering: relaxed; see above (a stale link makes the exchange below fail).
            var next = slotAddress(first).nextFree.pointee.load(ordering: .relaxed)
            while count < upTo, next != noSlot, let slot = existingSlot(next) {
                count += 1
                next = slot.nextFree.pointee.load(ordering: .relaxed)
            }
            let desired = ((head >> 32) &+ 1) << 32 | UInt64(next)
            // Ordering: acquire-release, to continue the release sequence that publishes the links.
            let (exchanged, original) = ready.pointee.compareExchange(
                expected: head, desired: desired, successOrdering: .acquiringAndReleasing, failureOrdering: .acquiring)
            if exchanged {
                // The next taker's slot (and its link) is most likely not in this CPU's cache:
                // start fetching it now.
                if next != noSlot, let slot = existingSlot(next) { rcuabi_prefetch_for_write(slot) }
                return (first, count)
            }
            head = original
        }
    }

    /// The slot at `index` if its segment exists, else nil (an index from a racing read).
    @inline(__always)
    private static func existingSlot(_ index: UInt32) -> UnsafeMutablePointer<HandleSlot>? {
        let i = Int(index)
        guard i >> segmentShift < directorySize else { return nil }
        // Ordering: acquire pairs with the release store that published the segment.
        let base = directory[i >> segmentShift].load(ordering: .acquiring)
        guard let segment = UnsafeMutablePointer<HandleSlot>(bitPattern: base) else { return nil }
        return segment + (i & (segmentSize - 1))
    }

    /// With the table lock held: when shard `shard`'s `ready` is still empty, fills it with a
    /// whole list of free slots (see the type's invariants for where it comes from). `false` when
    /// the table is full or memory is out.
    private static func refill(_ shard: UInt32) -> Bool {
        rcuabi_table_lock()
        defer { rcuabi_table_unlock() }
        let ready = ready(shard)
        // Ordering: relaxed; only this function (serialised by the lock) changes an empty `ready`.
        let head = ready.pointee.load(ordering: .relaxed)
        guard UInt32(truncatingIfNeeded: head) == noSlot else { return true }
        guard let first = takeReturned(from: shard) ?? stealReady(from: shard) ?? grow() else { return false }
        // Ordering: release pairs with the acquire loads in `takeReady`, so the links are visible.
        ready.pointee.store(((head >> 32) &+ 1) << 32 | UInt64(first), ordering: .releasing)
        return true
    }

    /// Takes the whole `returned` list of `shard`, or else of the first other shard that has one.
    /// The list is newest first and is not reversed (that would touch every slot once more).
    private static func takeReturned(from shard: UInt32) -> UInt32? {
        for k in 0..<shards {
            // Ordering: acquire pairs with the release exchange in `release`, so every returned
            // slot's link is visible.
            let first = returned((shard + k) & (shards - 1)).pointee.exchange(UInt64(noSlot), ordering: .acquiring)
            if UInt32(truncatingIfNeeded: first) != noSlot { return UInt32(truncatingIfNeeded: first) }
        }
        return nil
    }

    /// Takes the whole `ready` list of another shard (whose writers refill it when they find it
    /// empty), so free slots are never stranded on a shard nobody takes from while the table grows.
    private static func stealReady(from shard: UInt32) -> UInt32? {
        for k in 1..<shards {
            let other = ready((shard + k) & (shards - 1))
            // Ordering: acquire pairs with the release store of the refill that installed the list.
            var head = other.pointee.load(ordering: .acquiring)
            while UInt32(truncatingIfNeeded: head) != noSlot {
                // Ordering: acquire-release, as in `takeReady`; the tag makes a racing take fail.
                let (exchanged, original) = other.pointee.compareExchange(
                    expected: head, desired: ((head >> 32) &+ 1) << 32 | UInt64(noSlot),
                    successOrdering: .acquiringAndReleasing, failureOrdering: .acquiring)
                if exchanged { return UInt32(truncatingIfNeeded: head) }
                head = original
            }
        }
        return nil
    }

    /// Makes a reserved slot's handle live, after its words were written.
    static func publish(_ slot: UnsafeMutablePointer<HandleSlot>, _ handle: UInt) {
        // Ordering: release pairs with the acquire load in `lookup`.
        slot.stamp.pointee.store(UInt64(handle), ordering: .releasing)
        rcushim_stats_handle(UInt64(handle), 1)
    }

    /// Retires a live handle: afterwards `lookup` refuses it. Exactly one of several concurrent
    /// callers for the same handle gets `true`.
    static func retire(_ slot: UnsafeMutablePointer<HandleSlot>, _ handle: UInt) -> Bool {
        // Ordering: acquire-release so the winner sees every write made under the live handle.
        let retired = slot.stamp.pointee.compareExchange(
            expected: UInt64(handle), desired: 0, ordering: .acquiringAndReleasing
        ).exchanged
        if retired { rcushim_stats_handle(UInt64(handle), -1) }
        return retired
    }

    /// Returns a retired or never-published slot to the free lists. For a retired ptr slot, call
    /// only after a grace period has passed since `retire` (readers may still use its cell); a
    /// retired old slot may go back at once (its record is only read by `swiftrcu_old_object`,
    /// which checks the stamp again after the read). Into the calling thread's cache while it
    /// has room (a writer that also frees), else onto its shard's `returned` list.
    @inline(__always)
    static func release(_ slot: UnsafeMutablePointer<HandleSlot>) {
        let cache = rcuabi_cache_word()
        // SAFETY: the calling thread's own word (initial-exec TLS), touched by no other thread.
        let word = cache.pointee
        if word & cacheAdopted != 0, (word & cacheCountMask) >> 32 < cacheLimit {
            // Ordering: relaxed; the slot is this thread's from now on.
            slot.nextFree.pointee.store(UInt32(truncatingIfNeeded: word), ordering: .relaxed)
            cache.pointee = cacheAdopted | ((word & cacheCountMask) + (1 << 32)) | UInt64(slot.pointee.index)
            return
        }
        releaseToList(slot)
    }

    /// Returns a chain of slots of one shard, linked through `nextFree` from `first` to `last`,
    /// onto that shard's `returned` list with one compare-exchange.
    static func releaseChain(_ first: UnsafeMutablePointer<HandleSlot>, _ last: UnsafeMutablePointer<HandleSlot>) {
        let index = first.pointee.index
        let returned = returned(first.pointee.shard)
        // Ordering: relaxed; the exchange below publishes the links.
        var head = returned.pointee.load(ordering: .relaxed)
        while true {
            last.nextFree.pointee.store(UInt32(truncatingIfNeeded: head), ordering: .relaxed)
            // Ordering: release pairs with the acquire exchange in `takeReturned`, so the links
            // and everything done with the slots before their release are visible to their next
            // takers.
            let (exchanged, original) = returned.pointee.compareExchange(
                expected: head, desired: UInt64(index), successOrdering: .releasing, failureOrdering: .relaxed)
            if exchanged { return }
            head = original
        }
    }

    /// `release` onto the `returned` list of the slot's shard.
    static func releaseToList(_ slot: UnsafeMutablePointer<HandleSlot>) { releaseChain(slot, slot) }

    /// `release` by handle: the slot of a reserved or retired handle.
    static func release(_ handle: UInt) {
        release(slotAddress(UInt32(truncatingIfNeeded: (UInt64(handle) & 0xFFFF_FFFF) >> 2)))
    }

    /// The slot at `index`, which must be in a filled segment (a slot the caller found on a list).
    @inline(__always)
    static func slot(at index: UInt32) -> UnsafeMutablePointer<HandleSlot> { slotAddress(index) }

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
        let count = Int(rcuabi_segment_count_word().pointee)
        guard count < directorySize else { return nil }
        let segment: UnsafeMutablePointer<HandleSlot>
        if count == 0 {
            segment = firstSegment
            // Before the first handle exists: an exiting thread returns its cached slots.
            rcuabi_cache_on_exit(returnCache)
        } else {
            var fresh: UnsafeMutableRawPointer?
            let size = MemoryLayout<HandleSlot>.stride * segmentSize
            guard posix_memalign(&fresh, Int(RCUABI_SLOT_BYTES), size) == 0, let fresh else { return nil }
            // SAFETY: aligned memory for `segmentSize` slots; zero bytes are free slots (atomics
            // at 0, plain fields at 0), and the loop below sets the rest before publication.
            memset(fresh, 0, size)
            segment = fresh.bindMemory(to: HandleSlot.self, capacity: segmentSize)
        }
        // The first segment's zero bytes are already slots whose atomics are 0, which `lookup`
        // may be reading now (for a bogus handle): set only the fields it never reads, and the
        // link atomically.
        let first = count << segmentShift
        for i in 0..<segmentSize {
            segment[i].generation = 1
            segment[i].index = UInt32(first + i)
            // Ordering: relaxed; the release store below (or the refill's) publishes the segment.
            (segment + i).nextFree.pointee.store(
                i + 1 < segmentSize ? UInt32(first + i + 1) : noSlot, ordering: .relaxed)
        }
        // Ordering: release pairs with the acquire load in `laterSlot` (the first segment is
        // reached without the directory, and its zero bytes need no publication).
        directory[count].store(UInt(bitPattern: UnsafeMutableRawPointer(segment)), ordering: .releasing)
        rcuabi_segment_count_word().pointee += 1
        return UInt32(first)
    }
}
