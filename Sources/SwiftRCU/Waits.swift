// SwiftRCU Swift API: waiting for grace periods and for pending releases, blocking and async.
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Calls the core (SwiftRCUCore): its grace-period wait and its barrier.

import CLiburcuShim
import Glibc
@_spi(CABI) import SwiftRCUCore
import Synchronization

/// Waits for a grace period: every read-side critical section that was open when the call began
/// has ended when it returns (liburcu's `synchronize_rcu`).
///
/// Blocks the calling thread. In async code, `try await synchronizeRCU()` (the async overload)
/// suspends the task instead and leaves the thread to other tasks.
///
/// - Throws: `RcuError.deadlock`, waiting for nothing, when the calling thread is itself inside a
///   read-side critical section (the wait could never end); `RcuError.notPermitted`, waiting for
///   nothing, in a process forked while a grace period was waiting for the forking thread's
///   section (see `swiftrcu_synchronize` in the C header), where grace periods are refused.
public func synchronizeRCU() throws(RcuError) {
    guard !ReadSide.isInSection else { throw RcuError.counted(.deadlock) }
    guard waitForGracePeriod() else { throw RcuError.counted(.notPermitted) }
}

/// Waits until every deferred release requested before the call has run (liburcu's `rcu_barrier`).
///
/// Blocks the calling thread. In async code, `try await rcuBarrier()` (the async overload)
/// suspends the task instead.
///
/// - Throws: `RcuError.deadlock` inside a read-side critical section, or from inside a deferred
///   release itself (it would wait for its own completion); `RcuError.notPermitted` where grace
///   periods are refused (as for `synchronizeRCU()`).
public func rcuBarrier() throws(RcuError) {
    guard !ReadSide.isInSection, !ReadSide.isInDeferredCallback else { throw RcuError.counted(.deadlock) }
    guard rcushim_grace_periods_refused() == 0 else { throw RcuError.counted(.notPermitted) }
    waitForDeferred()
}

/// Suspends the task for a grace period: every read-side critical section that was open when the
/// call began has ended when it returns. No thread is blocked meanwhile: the task resumes from a
/// liburcu call_rcu callback.
///
/// - Throws: `RcuError.deadlock` when the calling thread is inside a read-side critical section
///   (the task would wait for a section that only it can end).
public func synchronizeRCU() async throws(RcuError) {
    guard !ReadSide.isInSection else { throw RcuError.counted(.deadlock) }
    guard rcushim_grace_periods_refused() == 0 else { throw RcuError.counted(.notPermitted) }
    await afterGracePeriod()
}

/// Suspends the task until every deferred release requested before the call has run. The
/// barrier runs on a thread of the library's, never on the task's: liburcu's barrier blocks,
/// and past 65,536 pending releases the call_rcu queues are one per CPU and not ordered, so a
/// callback could not stand in for it.
///
/// - Throws: `RcuError.deadlock` inside a read-side critical section or a deferred release.
public func rcuBarrier() async throws(RcuError) {
    guard !ReadSide.isInSection, !ReadSide.isInDeferredCallback else { throw RcuError.counted(.deadlock) }
    guard rcushim_grace_periods_refused() == 0 else { throw RcuError.counted(.notPermitted) }
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        BarrierThread.shared.enqueue(continuation)
    }
}

/// Resumes the calling task after a grace period, from a call_rcu callback (queued on its own,
/// not in a batch, so it waits for one grace period only); blocks for one (synchronize) only when
/// no memory is left for the callback's record.
func afterGracePeriod() async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let box = Unmanaged.passRetained(ContinuationBox(continuation))
        if !deferDestroyAlone(object: box.toOpaque(), destroy: resumeContinuation, context: nil) {
            _ = waitForGracePeriod()
            box.takeRetainedValue().continuation.resume()
        }
    }
}

/// A continuation waiting in a call_rcu record.
private final class ContinuationBox {
    let continuation: CheckedContinuation<Void, Never>
    init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = continuation }
}

/// The destroy function of a grace-period wait: resumes the waiting task.
private func resumeContinuation(_ object: UnsafeMutableRawPointer?, _ context: UnsafeMutableRawPointer?) {
    // SAFETY: `object` is the `ContinuationBox` retained in `afterGracePeriod`; its retain moves here.
    Unmanaged<ContinuationBox>.fromOpaque(object!).takeRetainedValue().continuation.resume()
}

/// The library's barrier thread: runs liburcu's barrier for tasks that await `rcuBarrier()`, so
/// none blocks a thread of Swift's cooperative pool. Waiters that arrive while a barrier runs are
/// served together by the next one, which starts after they arrived.
///
/// # Invariants
///
/// - `running` is true exactly while a thread is in `serve`; that thread takes the waiters in
///   batches and returns once it finds none;
/// - every waiter in `waiting` is resumed after a barrier that began after it was added.
private final class BarrierThread: Sendable {
    static let shared = BarrierThread()

    private struct State: ~Copyable {
        var waiting: [CheckedContinuation<Void, Never>] = []
        var running = false
    }
    private let state = Mutex(State())

    func enqueue(_ continuation: CheckedContinuation<Void, Never>) {
        let start = state.withLock { s in
            s.waiting.append(continuation)
            if s.running { return false }
            s.running = true
            return true
        }
        guard start else { return }
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { _ in
            BarrierThread.shared.serve()
            return nil
        }, nil)
        if rc == 0 {
            pthread_detach(thread)
        } else {
            serve() // no thread to be had: run the barrier here rather than never
        }
    }

    private func serve() {
        while true {
            let batch = state.withLock { s in
                let batch = s.waiting
                s.waiting = []
                if batch.isEmpty { s.running = false }
                return batch
            }
            if batch.isEmpty { return }
            waitForDeferred()
            for waiter in batch { waiter.resume() }
        }
    }
}
