// SwiftRCU C ABI (room 3 of 3): old handles deferred in batches, one grace-period callback per
// batch instead of one per object. Storage in C (Sources/CSwiftRCUABI: rcuabi_batch_words).
// SPDX-License-Identifier: LGPL-2.1-or-later

import CLiburcuShim
import CSwiftRCUABI
import Synchronization
@_spi(CABI) import SwiftRCUCore

/// Retired old slots on their way to the core's deferred release, gathered per shard so that a
/// writer deferring a stream of objects pays for liburcu's call_rcu once per batch.
///
/// # Invariants
///
/// - a shard's batch word is `adds << 48 | count << 32 | index`: the slots deferred into it and
///   not yet taken, newest first, linked through `nextFree`, `count` of them (index `noSlot`:
///   none), and the number of adds to the shard ever, modulo 2^16 (a take keeps it); every
///   `limit`-th add queues the batch, so `count` never exceeds `limit` times the shard's adders;
/// - every slot in a batch was counted as a pending deferred destroy (`countDeferred`) before it
///   was added, and its batch's callback counts it completed;
/// - a batch is taken whole (exchange) and queued (one call_rcu, the head of its first slot,
///   `batchCallback`) with the shard's batch lock held, so `flushAll` (for a
///   barrier) and fork never find a batch between the two;
/// - `inFlight` counts the batches queued whose callback has not finished; a slot added to a
///   batch is queued without waiting for anything else: at once when it starts a batch and
///   nothing is in flight (or on every `limit`-th add), else by the callback of a batch in
///   flight, which looks at every shard after it is done (the adder's add-then-look and the
///   callback's done-then-look are sequentially consistent, so at least one of them sees the
///   other).
enum DeferredBatches {
    /// Every `limit`-th add to a shard queues its batch.
    static let limit: UInt64 = 64

    private static let indexMask: UInt64 = 0xFFFF_FFFF
    private static let countMask: UInt64 = 0xFFFF << 32
    private static let addsMask: UInt64 = 0xFFFF << 48

    @inline(__always)
    private static func word(_ shard: UInt32) -> UnsafeMutablePointer<Atomic<UInt64>> {
        // SAFETY: a static, aligned `uint64_t` initialised to a valid value and only ever accessed
        // through this atomic view.
        UnsafeMutableRawPointer(rcuabi_batch_word(shard)).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    @inline(__always)
    private static var inFlight: UnsafeMutablePointer<Atomic<UInt64>> {
        // SAFETY: as for `word`.
        UnsafeMutableRawPointer(rcuabi_batches_in_flight_word()).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// Hands a retired old slot (the caller's) to be destroyed and returned to the table after a
    /// grace period. Never waits for a grace period; may pause a writer that outruns the
    /// call_rcu workers (`countDeferred`, called here before the add, holding no lock).
    static func add(_ slot: UnsafeMutablePointer<HandleSlot>) {
        countDeferred()
        let shard = slot.pointee.shard
        let word = word(shard)
        let index = UInt64(slot.pointee.index)
        // Ordering: relaxed; the exchange below publishes the link.
        var head = word.pointee.load(ordering: .relaxed)
        while true {
            slot.nextFree.pointee.store(UInt32(truncatingIfNeeded: head), ordering: .relaxed)
            // One more in the batch (saturating: only a batch whose every queueing failed to get
            // the lock could get there) and in the adds (wrapping), this slot first.
            let count = head & countMask == countMask ? countMask : (head & countMask) + (1 << 32)
            let desired = ((head & addsMask) &+ (1 << 48)) | count | index
            // Ordering: sequentially consistent: releases the link to the taker, and orders this
            // add before the look at `inFlight` below (see the type's invariants).
            let (exchanged, original) = word.pointee.compareExchange(
                expected: head, desired: desired, ordering: .sequentiallyConsistent)
            if exchanged { break }
            head = original
        }
        // Ordering: sequentially consistent; see the type's invariants.
        if ((head >> 48) &+ 1) % limit == 0 {
            // This adder queues the batch.
            flush(shard)
        } else if head & countMask == 0, inFlight.pointee.load(ordering: .sequentiallyConsistent) == 0 {
            // The batch was empty and nothing is in flight: queue it now. (When the batch was
            // not empty, the add that started it looked already: either it queued the batch, or
            // a callback in flight will take the batch, with this slot in it or, when the take
            // came first, this add found the batch empty and looked itself.)
            flush(shard)
        }
    }

    /// Queues shard `shard`'s batch, if it has one.
    ///
    /// Nothing done with the batch lock held waits for anything fork's handlers hold (the
    /// thread's registration and liburcu's default worker are made before it). Inside a read
    /// section or a deferred destroy it only tries the lock, since fork holds the batch locks
    /// while it waits for a grace period (and for the call_rcu threads): whoever holds the lock
    /// is either queueing that batch (whose callback looks again) or forking (then the batch
    /// waits for the next add or barrier).
    /// `onCallRcuThread`: the caller is a batch callback (after its destroys, outside
    /// `runDeferredBatch`), which must not wait either.
    /// Returns whether it queued a batch.
    @discardableResult
    static func flush(_ shard: UInt32, onCallRcuThread: Bool = false) -> Bool {
        _ = rcushim_ready_self()
        rcushim_call_rcu_prepare()
        if onCallRcuThread || ReadSide.isInSection || ReadSide.isInDeferredCallback {
            guard rcuabi_batch_trylock(shard) != 0 else { return false }
        } else {
            rcuabi_batch_lock(shard)
        }
        let word = word(shard)
        // Ordering: relaxed; the exchange below acquires.
        var head = word.pointee.load(ordering: .relaxed)
        while UInt32(truncatingIfNeeded: head) != HandleTable.noSlot {
            // Ordering: acquire pairs with the adders' exchanges, so the links are visible.
            let (exchanged, original) = word.pointee.compareExchange(
                expected: head, desired: (head & addsMask) | UInt64(HandleTable.noSlot),
                successOrdering: .acquiring, failureOrdering: .relaxed)
            if exchanged { break }
            head = original
        }
        let first = UInt32(truncatingIfNeeded: head)
        if first != HandleTable.noSlot {
            // Ordering: sequentially consistent; counted before the callback can run.
            inFlight.pointee.add(1, ordering: .sequentiallyConsistent)
            let slot = HandleTable.slot(at: first)
            // Counted already, by each add (see `add`), and queued without looking at the load,
            // which may pause: not with this lock held.
            enqueueCountedDeferred(rcuabi_slot_head(slot), batchCallback)
        }
        rcuabi_batch_unlock(shard)
        return first != HandleTable.noSlot
    }

    /// Queues every shard's batch: what a barrier does first, so that it waits for every old
    /// handle deferred before it.
    static func flushAll() {
        for shard in 0..<HandleTable.shards { flush(shard) }
    }

    /// Runs a batch: destroys each slot's object and returns the slot to the table, then queues
    /// any batch that gathered meanwhile.
    private static let batchCallback: DeferredCallback = { head in
        // SAFETY: liburcu hands back the head `flush` queued: that of the batch's first slot; the
        // batch's slots are retired and nothing else uses them until they are released here.
        let first: UnsafeMutablePointer<HandleSlot> = rcuabi_slot_of_head(head)
        var slot: UnsafeMutablePointer<HandleSlot>? = first
        var last = first
        runDeferredBatch {
            var count: UInt64 = 0
            while let s = slot {
                // Ordering: relaxed; the batch's take (acquire) ordered the links.
                let link = s.nextFree.pointee.load(ordering: .relaxed)
                let nextSlot = link == HandleTable.noSlot ? nil : HandleTable.slot(at: link)
                // The next slot is most likely not in this CPU's cache: start fetching it.
                rcuabi_prefetch_for_write(nextSlot)
                destroyOld(s)
                count += 1
                last = s
                slot = nextSlot
            }
            return count
        }
        // The batch's slots (one shard's, still linked in order) go back to the table at once.
        HandleTable.releaseChain(first, last)
        // Ordering: sequentially consistent; see the type's invariants.
        inFlight.pointee.subtract(1, ordering: .sequentiallyConsistent)
        for shard in 0..<HandleTable.shards
        where UInt32(truncatingIfNeeded: word(shard).pointee.load(ordering: .sequentiallyConsistent)) != HandleTable.noSlot {
            flush(shard, onCallRcuThread: true)
        }
    }
}
