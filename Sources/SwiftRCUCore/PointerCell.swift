// SwiftRCU core (room 2 of 3): the pointer cell, the one writer core of both faces of an RCU
// pointer (the Swift `Rcu` and the C ABI's ptr handles).
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Calls only the core's C part (CSwiftRCUCore: the cell's layout) and the liburcu shim (the
// writer lock). Knows nothing of handles: the C ABI hands it cells that lie in its slots.

import CLiburcuShim
import CSwiftRCUCore
import Synchronization

/// A view of one pointer cell (`struct rcucore_cell`, whose comment states its invariants): the
/// published word, and the control beside it (writer lock, destroy function and context). A C ptr
/// handle's slot holds a whole cell in place; a Swift `Rcu` keeps the published word in itself
/// (its readers load it with no extra indirection) and its control beside it.
///
/// The writer sequence is here and only here: refuse a re-entrant write, take the writer lock
/// (refused when waiting would close a wait-for cycle), compute the next object, publish it unless
/// it is the current one, and hand the previous object out to be retired.
///
/// SPI rather than `package`, like `ReadSide`: the C ABI's writers inline it.
///
/// # Invariants
///
/// `published` and `control` are a live cell's two parts and outlive every use of this view;
/// `published` is only accessed through this atomic view.
@_spi(CABI) public struct PointerCell {
    @usableFromInline let published: UnsafeMutablePointer<Atomic<UInt>>
    @usableFromInline let control: UnsafeMutablePointer<rcucore_cell_control>

    /// The view of a whole cell that lies in one piece (a C ptr handle's slot).
    @inlinable @inline(__always)
    public init(_ cell: UnsafeMutablePointer<rcucore_cell>) {
        // SAFETY: an aligned `uintptr_t` of a live cell, only ever accessed through this atomic
        // view (the cell's invariant).
        published = UnsafeMutableRawPointer(rcucore_cell_published(cell)).assumingMemoryBound(to: Atomic<UInt>.self)
        control = rcucore_cell_control_of(cell)
    }

    /// The view of a cell whose published word lies apart from its control (a Swift `Rcu`).
    @inlinable @inline(__always)
    public init(published: UnsafeMutablePointer<Atomic<UInt>>, control: UnsafeMutablePointer<rcucore_cell_control>) {
        self.published = published
        self.control = control
    }

    /// Makes fresh (or retired) memory a cell that publishes `object`; before it is shared, which
    /// then happens with a release (a slot's stamp).
    package static func initialize(
        _ cell: UnsafeMutablePointer<rcucore_cell>, object: UInt, destroy: DestroyFunction?,
        context: UnsafeMutableRawPointer?
    ) {
        initializeControl(rcucore_cell_control_of(cell), destroy: destroy, context: context)
        // Ordering: relaxed; whoever shares the cell publishes it with a release afterwards.
        PointerCell(cell).published.pointee.store(object, ordering: .relaxed)
    }

    /// Makes fresh memory the control of a cell whose objects `destroy(object, context)` destroys.
    package static func initializeControl(
        _ control: UnsafeMutablePointer<rcucore_cell_control>, destroy: DestroyFunction?,
        context: UnsafeMutableRawPointer?
    ) {
        // SAFETY: the caller's memory, not shared yet: set once here (the cell's invariant).
        control.pointee.destroy = destroy
        control.pointee.context = context
        WriterLock.initialize(rcucore_control_writer(control))
    }

    /// The object published now. Call inside a read-side critical section (or as the writer).
    @inlinable @inline(__always)
    public func load() -> UInt {
        // Ordering: acquire pairs with the release store in `write`, so the
        // object's initialisation is visible before its fields are read.
        published.pointee.load(ordering: .acquiring)
    }

    @inlinable @inline(__always)
    var writer: WriterLock { WriterLock(rcucore_control_writer(control)) }

    /// Whether the calling thread holds the writer lock (is inside this cell's copy-update).
    @inlinable @inline(__always)
    public var isWriterHeldByCurrentThread: Bool { writer.isHeldByCurrentThread }

    /// The writer sequence. With the writer lock held, calls `next(current)` and publishes the
    /// result unless it is `current` itself (a face whose cell owns a reference to its object
    /// takes it in `next`, for a result other than `current`). Returns the previous object, whose ownership
    /// moves to the caller (to be retired), or 0 when nothing was published or the cell held
    /// nothing; returns `nil`, running nothing, when waiting for the lock would close a wait-for
    /// cycle. An error thrown by `next` publishes nothing and propagates.
    ///
    /// If the thread exits inside `next` (`pthread_exit`, cancellation), its exit handler calls
    /// `abandon(argument)` (when not nil) and releases the lock; nothing is published. Not
    /// re-entrant: check `isWriterHeldByCurrentThread` first.
    @inlinable @inline(__always)
    public func write<E: Error>(
        abandon: (@convention(c) (UInt) -> Void)? = nil, argument: UInt = 0,
        _ next: (UInt) throws(E) -> UInt
    ) throws(E) -> UInt? {
        try writer.withLockUnlessDeadlock(abandon: abandon, argument) { () throws(E) -> UInt in
            // Ordering: relaxed; writers are serialised by the writer lock, which orders their
            // stores.
            let current = published.pointee.load(ordering: .relaxed)
            let new = try next(current)
            guard new != current else { return 0 }
            // Ordering: release so readers that acquire-load `new` see it initialised. A store,
            // not an exchange: only the holder of the writer lock changes the word (readers
            // never write it), so `current` is what it replaces, and the lock's acquisition
            // already ordered the previous writer's work (and `current`'s state) before ours.
            published.pointee.store(new, ordering: .releasing)
            return current
        }
    }

    /// Fills `record` with `object` (the caller's, from `write`) and this cell's destroy function
    /// and context, ready for `releaseAfterGracePeriod` or `releaseDeferred`.
    @inlinable @inline(__always)
    public func retire(_ object: UInt, into record: UnsafeMutablePointer<rcucore_retired>) {
        // SAFETY: the record is the caller's and not shared yet; the control's fields never change
        // while the cell is shared (the cell's invariant).
        // Ordering: release, an atomic store: a stale handle's lookup may read the word (the
        // record's invariant), and one that reads this value must then see everything before it,
        // such as the retiring of that handle (see swiftrcu_old_object).
        UnsafeMutableRawPointer(rcucore_retired_object(record)).assumingMemoryBound(to: Atomic<UInt>.self)
            .pointee.store(object, ordering: .releasing)
        record.pointee.destroy = control.pointee.destroy
        record.pointee.context = control.pointee.context
    }

    /// The end of a cell that no reader and no writer can reach any more (a grace period has
    /// passed since it became unreachable): takes its current object out and destroys it.
    public func destroyCurrent() {
        // Ordering: acquire pairs with the last writer's release store.
        let object = published.pointee.exchange(0, ordering: .acquiring)
        var record = rcucore_retired()
        retire(object, into: &record)
        destroyRetired(&record)
    }
}
