// SwiftRCU core (room 2 of 3): grace periods, and the one release path of retired objects
// (synchronous, or deferred through liburcu's call_rcu).
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Calls only the liburcu shim (CLiburcuShim) and the core's C part (the retired record's layout).
// Package access: the Swift API and the C ABI build on it; it uses no Swift concurrency, so the C
// library carries none.

import CLiburcuShim
import CSwiftRCUCore
import Glibc
import Synchronization

// MARK: - Grace periods: the one wait

/// Waits for a grace period (liburcu's synchronize_rcu); `false`, waiting for nothing, where grace
/// periods are refused (a child forked while one was waiting). The caller has checked that it is
/// outside every read-side critical section. Every wait of both faces comes here.
package func waitForGracePeriod() -> Bool {
    rcushim_synchronize() == 0
}

/// Waits until every deferred destroy queued before the call has run (liburcu's rcu_barrier),
/// after queueing the open batches (`DeferredBatches`). The caller has checked that it is outside
/// every read-side critical section and deferred destroy, and that grace periods are not refused.
package func waitForDeferred() {
    DeferredBatches.flushAll()
    _ = rcushim_ready_self() // liburcu's barrier queues callbacks: it wants a registered caller
    rcushim_barrier()
}

// MARK: - The one release path of retired objects

/// Destroys the object of `record` with its destroy function (nothing for a NULL object or a NULL
/// destroy) and counts it: the last step of every release, synchronous or deferred.
@_spi(CABI) @inlinable @inline(__always)
public func destroyRetired(_ record: UnsafeMutablePointer<rcucore_retired>) {
    destroyObject(record.pointee.object, record.pointee.destroy, record.pointee.context)
}

/// `destroy(object, context)`, counted; nothing for a NULL object or a NULL destroy.
@inlinable @inline(__always)
package func destroyObject(
    _ object: UnsafeMutableRawPointer?, _ destroy: rcucore_destroy_fn?, _ context: UnsafeMutableRawPointer?
) {
    if let destroy, let object {
        destroy(object, context)
        rcushim_stats_destroyed()
    }
}

/// Waits for a grace period, then destroys the object of `record`: the synchronous release.
/// Returns `false`, destroying nothing, where grace periods are refused. The caller has checked
/// that it is outside every read-side critical section.
package func releaseAfterGracePeriod(_ record: UnsafeMutablePointer<rcucore_retired>) -> Bool {
    guard waitForGracePeriod() else { return false }
    destroyRetired(record)
    return true
}

/// Destroys one object: the library's callback type, the same as `swiftrcu_destroy_fn`.
package typealias DestroyFunction = @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void

/// A call_rcu callback: gets back the `rcu_head` it was queued with.
package typealias DeferredCallback = @convention(c) (UnsafeMutablePointer<rcu_head>) -> Void

/// Queues `destroy(object, context)` to run after a grace period on a liburcu call_rcu thread:
/// the deferred release of an object. In the calling thread's batch (`DeferredBatches`), or,
/// when that cannot take it (no memory for a block, or an exiting thread), in a record of its
/// own (`deferDestroyAlone`). Never waits for a grace period; allowed inside a read section.
///
/// Returns `false`, queueing nothing, when memory for neither can be allocated.
package func deferDestroy(
    object: UnsafeMutableRawPointer?, destroy: DestroyFunction?, context: UnsafeMutableRawPointer?
) -> Bool {
    DeferredBatches.add(object: object, destroy: destroy, context: context)
        || deferDestroyAlone(object: object, destroy: destroy, context: context)
}

/// `deferDestroy` in a record of its own (a `rcucore_retired` on the heap, freed by the
/// callback), queued at once: its destroy runs after the first grace period the call_rcu worker
/// waits for, where a batch may first wait for the batch in flight.
///
/// Returns `false`, queueing nothing, when memory for the record cannot be allocated.
package func deferDestroyAlone(
    object: UnsafeMutableRawPointer?, destroy: DestroyFunction?, context: UnsafeMutableRawPointer?
) -> Bool {
    guard let raw = malloc(MemoryLayout<rcucore_retired>.size) else { return false }
    // SAFETY: `raw` is fresh memory of the record's size, and malloc's alignment covers it.
    let record = raw.bindMemory(to: rcucore_retired.self, capacity: 1)
    record.initialize(to: rcucore_retired(head: rcu_head(), object: object, destroy: destroy, context: context))
    // SAFETY: the head is the record's first field (checked in C), so the node handed back is the
    // record; liburcu keeps it until the callback, which owns the record from then on.
    enqueueDeferred(rcucore_retired_head(record), deferredDestroyCallback)
    return true
}

/// The function of a deferred call (`deferCall(in:_:)`), called with its node.
package typealias NodeFunction = @convention(c) (UnsafeMutableRawPointer?) -> Void

/// The bytes a node of `deferCall(in:_:)` needs: liburcu's `rcu_head`, then the function.
package var deferredCallNodeSize: Int { MemoryLayout<rcu_head>.size + MemoryLayout<NodeFunction>.size }

/// Queues `fn(node)` to run after a grace period on a liburcu call_rcu thread, like a deferred
/// destroy (counted, spread and back-pressured the same way, waited for by `rcuBarrier`) but with
/// no allocation: the node carries liburcu's `rcu_head` and `fn`. `node` is the caller's memory,
/// pointer-aligned, of at least `deferredCallNodeSize` bytes, which the library uses until `fn`
/// starts and the caller must not touch (nor queue again) until then. Never waits for a grace
/// period; allowed inside a read section.
package func deferCall(in node: UnsafeMutableRawPointer, _ fn: NodeFunction) {
    // SAFETY: the node is pointer-aligned and large enough (caller's contract); liburcu
    // initialises the head itself, and the function goes right after it.
    node.storeBytes(of: fn, toByteOffset: MemoryLayout<rcu_head>.size, as: NodeFunction.self)
    enqueueDeferred(node.assumingMemoryBound(to: rcu_head.self), deferredCallCallback)
}

/// Queues `callback(head)` to run after a grace period on a liburcu call_rcu thread, where it
/// must do its work inside `runDeferred`: the one queueing path of all deferred work (Swift's and
/// the C ABI's destroys, deferred calls), with its accounting, spreading and back-pressure. `head`
/// must stay untouched until the callback.
package func enqueueDeferred(_ head: UnsafeMutablePointer<rcu_head>, _ callback: DeferredCallback) {
    countDeferred()
    enqueueCountedDeferred(head, callback)
}

/// Counts one deferred destroy as queued (pending until a callback counts it completed), and
/// looks at the load: one default call_rcu worker can fall behind several writers; past
/// RCUSHIM_SPREAD_THRESHOLD pending, the destroys are spread over one worker per CPU (liburcu's
/// own mechanism, once per process); past RCUSHIM_BACKPRESSURE_THRESHOLD the caller pauses
/// (`applyBackPressure`), so call it holding no lock. The pending count lies on a line the workers
/// write: a writer looks at it once per RCUSHIM_PENDING_CHECK_INTERVAL destroys (the first of each
/// run of them), and on every one while the last look found it past the spread threshold (so
/// back-pressure and the pending peak stay exact under load).
package func countDeferred() {
    let queued = rcushim_count_deferred_queued()
    if _slowPath(queued % UInt64(RCUSHIM_PENDING_CHECK_INTERVAL) == 1 || rcushim_deferred_loaded()) {
        let pending = rcushim_deferred_pending()
        rcushim_stats_note_pending(pending)
        let loaded = pending > UInt64(RCUSHIM_SPREAD_THRESHOLD)
        rcushim_set_deferred_loaded(loaded)
        if loaded {
            rcushim_spread_call_rcu()
            if pending > UInt64(RCUSHIM_BACKPRESSURE_THRESHOLD) { applyBackPressure() }
        }
    }
}

/// Queues `callback(head)` like `enqueueDeferred` for destroys `countDeferred` counted already
/// (a batch of them, whose callback reports how many ran through `runDeferredBatch`). Neither
/// looks at the load nor pauses: may be called with a lock held.
package func enqueueCountedDeferred(_ head: UnsafeMutablePointer<rcu_head>, _ callback: DeferredCallback) {
    _ = rcushim_ready_self() // liburcu's call_rcu wants a registered caller
    rcushim_call_rcu(head, callback)
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

/// The call_rcu callback of `deferCall`: runs the node's function.
private let deferredCallCallback: @convention(c) (UnsafeMutablePointer<rcu_head>) -> Void = { head in
    // SAFETY: liburcu hands back the node `deferCall` queued; its function lies after the head.
    // Read before the call: the function may free or reuse the node.
    let node = UnsafeMutableRawPointer(head)
    let fn = node.load(fromByteOffset: MemoryLayout<rcu_head>.size, as: NodeFunction.self)
    let t = rcushim_ready_self()
    t?.pointee.in_callback &+= 1
    fn(node)
    rcushim_stats_destroyed()
    t?.pointee.in_callback &-= 1
    rcushim_count_deferred_completed(1)
}

private func runDeferredDestroy(_ head: UnsafeMutablePointer<rcu_head>) {
    // SAFETY: liburcu hands back the head that `deferDestroy` queued: the first field of a live
    // heap record that nothing else references any more.
    let record = rcucore_retired_of_head(head)
    var item = record.pointee
    free(record)
    runDeferred { destroyRetired(&item) }
}

/// Runs `body`, the work of a callback queued by `enqueueDeferred`, as deferred work: grace
/// period waits inside it are refused, and it counts as completed when `body` returns.
package func runDeferred(_ body: () -> Void) {
    runDeferredBatch {
        body()
        return 1
    }
}

/// `runDeferred` for a callback that runs several destroys: `body` returns how many (as many as
/// `countDeferred` counted for them).
package func runDeferredBatch(_ body: () -> UInt64) {
    // call_rcu threads are registered with liburcu by liburcu itself: this adopts them.
    let t = rcushim_ready_self()
    t?.pointee.in_callback &+= 1
    let count = body()
    t?.pointee.in_callback &-= 1
    rcushim_count_deferred_completed(count)
}

/// The number of deferred destroys queued and not yet run.
package var pendingDeferredDestroyCount: Int { Int(rcushim_deferred_pending()) }
