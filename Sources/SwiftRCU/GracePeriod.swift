// SwiftRCU core (room 2 of 3): grace periods and deferred destruction.
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Calls only the liburcu shim (CLiburcuShim): synchronize_rcu, call_rcu and rcu_barrier.

import CLiburcuShim
import Glibc
import Synchronization

/// Waits for a grace period: every read-side critical section that was open when the call began
/// has ended when it returns (liburcu's `synchronize_rcu`).
///
/// - Throws: `RcuError.deadlock`, waiting for nothing, when the calling thread is itself inside a
///   read-side critical section (the wait could never end).
public func synchronizeRCU() throws(RcuError) {
    guard !ReadSide.isInSection else { throw RcuError.counted(.deadlock) }
    rcushim_synchronize()
}

/// Waits until every deferred release requested before the call has run (liburcu's `rcu_barrier`).
///
/// - Throws: `RcuError.deadlock` inside a read-side critical section, or from inside a deferred
///   release itself (it would wait for its own completion).
public func rcuBarrier() throws(RcuError) {
    guard !ReadSide.isInSection, !ReadSide.isInDeferredCallback else { throw RcuError.counted(.deadlock) }
    rcushim_barrier()
}

/// Destroys one object: the library's callback type, the same as `swiftrcu_destroy_fn`.
public typealias DestroyFunction = @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void

/// Runs after a deferred destroy, with `finishArgument` (the C ABI returns a handle slot with it).
public typealias FinishFunction = @convention(c) (UInt) -> Void

/// A destroy waiting in liburcu's call_rcu queue.
///
/// # Invariants
///
/// - `head` is the first field, so a `rcu_head` pointer handed back by liburcu is also a pointer to
///   the whole record;
/// - a record whose `finish` is nil was allocated by `deferDestroy(object:destroy:context:)` and is
///   freed by the callback; one with a `finish` belongs to the caller, who gets it back when
///   `finish` runs.
public struct DeferredDestroy {
    var head = rcu_head()
    var object: UnsafeMutableRawPointer? = nil
    var destroy: DestroyFunction? = nil
    var context: UnsafeMutableRawPointer? = nil
    var finish: FinishFunction? = nil
    var finishArgument: UInt = 0

    public init() {}
}

/// Queues `destroy(object, context)` to run after a grace period on a liburcu call_rcu thread.
/// Never waits for a grace period; allowed inside a read section.
///
/// Returns `false`, queueing nothing, when memory for the record cannot be allocated.
public func deferDestroy(
    object: UnsafeMutableRawPointer?, destroy: DestroyFunction?, context: UnsafeMutableRawPointer?
) -> Bool {
    guard let raw = malloc(MemoryLayout<DeferredDestroy>.size) else { return false }
    // SAFETY: `raw` is fresh memory of the record's size, and malloc's alignment covers it.
    let record = raw.bindMemory(to: DeferredDestroy.self, capacity: 1)
    record.initialize(to: DeferredDestroy())
    record.pointee.object = object
    record.pointee.destroy = destroy
    record.pointee.context = context
    enqueue(record)
    return true
}

/// Queues `destroy(object, context)` like `deferDestroy(object:destroy:context:)`, in a record the
/// caller owns (no allocation); after the destroy, `finish(finishArgument)` hands it back.
public func deferDestroy(
    in record: UnsafeMutablePointer<DeferredDestroy>, object: UnsafeMutableRawPointer?,
    destroy: DestroyFunction?, context: UnsafeMutableRawPointer?,
    finish: FinishFunction, finishArgument: UInt
) {
    record.pointee = DeferredDestroy()
    record.pointee.object = object
    record.pointee.destroy = destroy
    record.pointee.context = context
    record.pointee.finish = finish
    record.pointee.finishArgument = finishArgument
    enqueue(record)
}

private func enqueue(_ record: UnsafeMutablePointer<DeferredDestroy>) {
    rcushim_count_deferred_queued()
    // One default call_rcu worker can fall behind several writers; past the threshold, spread
    // the destroys over one worker per CPU (liburcu's own mechanism), once per process.
    let pending = rcushim_deferred_pending()
    rcushim_stats_note_pending(pending)
    if pending > UInt64(RCUSHIM_SPREAD_THRESHOLD) {
        rcushim_spread_call_rcu()
        if pending > UInt64(RCUSHIM_BACKPRESSURE_THRESHOLD) { applyBackPressure() }
    }
    // SAFETY: `head` is the record's first field (type invariant), so this points into the record;
    // liburcu keeps it until the callback, which owns the record from then on.
    let head = UnsafeMutableRawPointer(record).assumingMemoryBound(to: rcu_head.self)
    rcushim_call_rcu(head, deferredDestroyCallback)
}

/// Pauses a writer that outruns the call_rcu workers until the queue has drained below half the
/// threshold, for at most `RCUSHIM_BACKPRESSURE_MAX_US`. Never inside a read-side section or a
/// deferred destroy (the workers could be waiting for it), and bounded, so a destroy function that
/// needs a lock the writer holds slows the writer down but cannot deadlock it.
private func applyBackPressure() {
    guard !ReadSide.isInSection, !ReadSide.isInDeferredCallback else { return }
    let step: Int = 50
    var waited = 0
    let start = rcushim_stats_now_ns()
    defer { if waited > 0 { rcushim_stats_pause_done(start) } }
    while waited < Int(RCUSHIM_BACKPRESSURE_MAX_US),
        rcushim_deferred_pending() > UInt64(RCUSHIM_BACKPRESSURE_THRESHOLD / 2)
    {
        usleep(UInt32(step))
        waited += step
    }
}

/// The call_rcu callback: runs one deferred destroy and frees or hands back its record.
private let deferredDestroyCallback: @convention(c) (UnsafeMutablePointer<rcu_head>) -> Void = { head in
    runDeferredDestroy(head)
}

private func runDeferredDestroy(_ head: UnsafeMutablePointer<rcu_head>) {
    // SAFETY: liburcu hands back the `head` that `enqueue` queued; it is the first field of a
    // live `DeferredDestroy` that nothing else references until this callback returns it.
    let record = UnsafeMutableRawPointer(head).assumingMemoryBound(to: DeferredDestroy.self)
    let item = record.pointee
    if item.finish == nil { free(record) }
    // call_rcu threads are registered with liburcu by liburcu itself: this adopts them.
    let t = rcushim_ready_self()
    t?.pointee.in_callback &+= 1
    if let destroy = item.destroy, item.object != nil {
        destroy(item.object, item.context)
        rcushim_stats_destroyed()
    }
    item.finish?(item.finishArgument)
    t?.pointee.in_callback &-= 1
    rcushim_count_deferred_completed()
}

/// The number of deferred destroys queued and not yet run.
public var pendingDeferredDestroyCount: Int { Int(rcushim_deferred_pending()) }
