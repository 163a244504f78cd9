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

/// One entry of the handle table.
///
/// # Invariants
///
/// - `stamp` is the full value of the live handle that owns the slot, or 0 while the slot is free
///   or retired; it is set last (release) when a slot is handed out and cleared first (by
///   compare-exchange) when its handle is retired;
/// - for a `ptr` handle: `word0` holds a retained `Unmanaged<PtrState>`, `word1` the published
///   object; for an `old` handle: `word0` the object, `word1` the destroy function, `word2` the
///   context;
/// - a retired slot goes back to the free list only after a grace period, and every use of a slot
///   found through a handle happens inside a read-side critical section; so a thread that saw the
///   stamp match may use the words until its section ends;
/// - `generation` and `nextFree` are touched only with the free-list lock (the shim's table lock)
///   held.
struct HandleSlot: ~Copyable {
    let stamp = Atomic<UInt64>(0)
    let word0 = Atomic<UInt>(0)
    let word1 = Atomic<UInt>(0)
    let word2 = Atomic<UInt>(0)
    var generation: UInt32 = 1
    var nextFree: UInt32 = HandleTable.noSlot
}

/// The slots of all live handles: a directory of segments, filled on demand and never freed. A
/// segment holds `segmentSize` slots followed by one deferred-destroy record per slot. The first
/// segment is the shim's static storage, so `lookup` reaches slots 0..<`segmentSize` without the
/// directory.
///
/// # Invariants
///
/// - `directory[i]` is 0 or the address of a segment of `segmentSize` initialised slots, and once
///   set never changes; segments are filled in order, `segmentCount` of them so far;
/// - `directory[0]`, once set, is `firstSegment`; before that, `firstSegment` holds zero bytes,
///   which read as slots whose stamp is 0 (no handle matches it);
/// - free slots form a FIFO list through `nextFree` (`freeHead` ... `freeTail`), so a slot is
///   reused as late as possible.
enum HandleTable {
    static let segmentShift = 12
    static let segmentSize = 1 << segmentShift
    static let directorySize = Int(RCUSHIM_DIRECTORY_SIZE)
    static let noSlot = UInt32.max

    /// Runs `body` on the free list (in the shim's storage) with the table lock held.
    static func withFreeList<R>(_ body: (inout rcushim_free_list) -> R) -> R {
        rcushim_table_lock()
        defer { rcushim_table_unlock() }
        // SAFETY: the free list is only touched with the table lock held, which we hold.
        return body(&rcushim_free_list().pointee)
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

    /// The deferred-destroy record that belongs to the slot of `handle` (a live or retired handle
    /// this caller owns): each slot has one, next to it in its segment, so deferring needs no
    /// allocation.
    static func deferredRecord(_ handle: UInt) -> UnsafeMutablePointer<DeferredDestroy> {
        let i = Int((UInt64(handle) & 0xFFFF_FFFF) >> 2)
        // Ordering: relaxed; the caller found the handle live, which ordered the segment.
        let base = directory[i >> segmentShift].load(ordering: .relaxed)
        // SAFETY: a segment holds `segmentSize` slots followed by `segmentSize` records.
        let records = UnsafeMutableRawPointer(bitPattern: base)!
            .advanced(by: MemoryLayout<HandleSlot>.stride * segmentSize)
            .assumingMemoryBound(to: DeferredDestroy.self)
        return records + (i & (segmentSize - 1))
    }

    /// The slot of `handle` if it is a live handle of `kind`, else `nil`. Call inside a read-side
    /// critical section and use the slot only until it ends.
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
        withFreeList { list -> (slot: UnsafeMutablePointer<HandleSlot>, handle: UInt)? in
            if list.head == noSlot, !grow(&list) { return nil }
            let index = list.head
            let slot = slotAddress(index)
            list.head = slot.pointee.nextFree
            if list.head == noSlot { list.tail = noSlot }
            let generation = slot.pointee.generation
            slot.pointee.generation = generation == UInt32.max ? 1 : generation + 1
            let handle = UInt64(generation) << 32 | UInt64(index) << 2 | kind.rawValue
            return (slot, UInt(handle))
        }
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
        let index = UInt32(truncatingIfNeeded: (UInt64(handle) & 0xFFFF_FFFF) >> 2)
        withFreeList { list in
            let slot = slotAddress(index)
            slot.pointee.nextFree = noSlot
            if list.tail == noSlot {
                list.head = index
            } else {
                slotAddress(list.tail).pointee.nextFree = index
            }
            list.tail = index
        }
    }

    /// The address of slot `index`, which must be in a filled segment.
    private static func slotAddress(_ index: UInt32) -> UnsafeMutablePointer<HandleSlot> {
        let i = Int(index)
        // Ordering: relaxed; the caller holds the free-list lock, which orders segment publication.
        let base = directory[i >> segmentShift].load(ordering: .relaxed)
        // SAFETY: the segment is filled (caller's contract) and never freed.
        return UnsafeMutablePointer<HandleSlot>(bitPattern: base)! + (i & (segmentSize - 1))
    }

    /// Adds one segment of free slots; `false` when the directory is full or memory is out.
    private static func grow(_ list: inout rcushim_free_list) -> Bool {
        let count = Int(list.segment_count)
        guard count < directorySize else { return false }
        let slotBytes = MemoryLayout<HandleSlot>.stride * segmentSize
        let size = slotBytes + MemoryLayout<DeferredDestroy>.stride * segmentSize
        // The static first segment must hold one.
        precondition(size <= Int(RCUSHIM_FIRST_SEGMENT_BYTES) && segmentSize == Int(RCUSHIM_SEGMENT_SLOTS))
        let raw: UnsafeMutableRawPointer
        if count == 0 {
            raw = UnsafeMutableRawPointer(firstSegment)
        } else {
            guard let fresh = malloc(size) else { return false }
            raw = fresh
        }
        // SAFETY: memory for `segmentSize` slots then as many records (64-byte or malloc's
        // alignment covers both, and `slotBytes` keeps the records aligned), initialised before
        // publication; records are only used through handles, so none is in use yet.
        let records = raw.advanced(by: slotBytes).bindMemory(to: DeferredDestroy.self, capacity: segmentSize)
        records.initialize(repeating: DeferredDestroy(), count: segmentSize)
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
            segment[i].nextFree = i + 1 < segmentSize ? UInt32(first + i + 1) : noSlot
        }
        // Ordering: release pairs with the acquire load in `laterSlot` (the first segment is
        // reached without the directory, and its zero bytes need no publication).
        directory[count].store(UInt(bitPattern: raw), ordering: .releasing)
        list.head = UInt32(first)
        list.tail = UInt32(first + segmentSize - 1)
        list.segment_count += 1
        return true
    }
}
