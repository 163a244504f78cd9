// SwiftRCU core (room 2 of 3): deferred destroys in batches, one grace-period callback per batch
// instead of one per object. Storage and layout in the core's C part (CSwiftRCUCore: struct
// rcucore_batch, the shard words and locks).
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Calls only the core's C part, the liburcu shim, and the core's release path (GracePeriod.swift).

import CLiburcuShim
import CSwiftRCUCore
import Glibc
import Synchronization

/// Deferred destroys gathered per shard in blocks of `RCUCORE_BATCH_WORDS` words, so that a
/// writer deferring a stream of objects pays for liburcu's call_rcu once per block, and an entry
/// costs one word written in sequence when its destroy and context are its block's (a block takes
/// those of the entry it was made for), three when not (the handle or record it came from can be
/// reused at once).
///
/// # Invariants
///
/// - a shard's word is its open batch: the newest block (0: none), whose `older` chain holds the
///   rest; a block is put in front only of a full one, so only the newest can have room;
/// - an entry's words are reserved by a compare-exchange on its block's `reserved` (refused once
///   the block is full or sealed; an entry that does not fit reserves the rest of the block,
///   unused, and the block's `end` says so) and written by its adder inside a read-side critical
///   section that began before the adder loaded the word. A batch is taken (the word exchanged
///   for 0, its newest block sealed) and queued (one call_rcu, `batchCallback`) with the shard's
///   batch lock held, so `flushAll` (for a barrier) and fork never find a batch between the two;
///   its callback runs after a grace period that began after the take, so every entry reserved
///   in it is written, and no adder still looks at its blocks, which the callback frees;
/// - every entry was counted as a pending deferred destroy (`countDeferred`) before it was
///   reserved, and its batch's callback counts it completed;
/// - `inFlight` counts the batches queued whose callback has not finished. An entry is queued
///   without waiting for anything else: at once when it is its block's first and nothing is in
///   flight, or when it fills its block, else by the callback of a batch in flight, which looks at
///   every shard after it is done (the adder's reserve-then-look and the callback's
///   done-then-look are sequentially consistent, so at least one of them sees the other).
package enum DeferredBatches {
    private static var shards: UInt32 { UInt32(RCUCORE_BATCH_SHARDS) }
    private static var capacity: UInt64 { UInt64(RCUCORE_BATCH_WORDS) }
    /// How many words ahead of its destroy the callback prefetches an object: a destroy that
    /// frees its object (the common case) would otherwise wait for its lines one object after
    /// another (liburcu's worker has them already: its node lies in the object).
    private static var prefetchDistance: UInt32 { 8 }

    @inline(__always)
    private static func word(_ shard: UInt32) -> UnsafeMutablePointer<Atomic<UInt>> {
        // SAFETY: a static, aligned `uintptr_t` initialised to 0 and only ever accessed through
        // this atomic view.
        UnsafeMutableRawPointer(rcucore_batch_word(shard)).assumingMemoryBound(to: Atomic<UInt>.self)
    }

    @inline(__always)
    private static var inFlight: UnsafeMutablePointer<Atomic<UInt64>> {
        // SAFETY: as for `word`.
        UnsafeMutableRawPointer(rcucore_batches_in_flight_word()).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    @inline(__always)
    private static func older(_ block: UnsafeMutablePointer<rcucore_batch>) -> UnsafeMutablePointer<Atomic<UInt>> {
        // SAFETY: an aligned `uintptr_t` of a live block, only ever accessed through this atomic
        // view (the block's invariant).
        UnsafeMutableRawPointer(rcucore_batch_older(block)).assumingMemoryBound(to: Atomic<UInt>.self)
    }

    @inline(__always)
    private static func spareTop(_ shard: UInt32) -> UnsafeMutablePointer<Atomic<UInt>> {
        // SAFETY: as for `word`.
        UnsafeMutableRawPointer(rcucore_batch_spare_top(shard)).assumingMemoryBound(to: Atomic<UInt>.self)
    }

    @inline(__always)
    private static func spareCount(_ shard: UInt32) -> UnsafeMutablePointer<Atomic<UInt>> {
        // SAFETY: as for `word`.
        UnsafeMutableRawPointer(rcucore_batch_spare_count(shard)).assumingMemoryBound(to: Atomic<UInt>.self)
    }

    @inline(__always)
    private static func reserved(_ block: UnsafeMutablePointer<rcucore_batch>) -> UnsafeMutablePointer<Atomic<UInt64>> {
        // SAFETY: an aligned `uint64_t` of a live block, only ever accessed through this atomic
        // view (the block's invariant).
        UnsafeMutableRawPointer(rcucore_batch_reserved(block)).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    @inline(__always)
    private static func records(_ block: UnsafeMutablePointer<rcucore_batch>) -> UnsafeMutablePointer<Atomic<UInt64>> {
        // SAFETY: as for `reserved`.
        UnsafeMutableRawPointer(rcucore_batch_records(block)).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// Queues `destroy(object, context)` to run after a grace period on a liburcu call_rcu thread,
    /// in the calling thread's shard's batch. Never waits for a grace period; allowed inside a
    /// read section; may pause a writer that outruns the call_rcu workers (`countDeferred`).
    /// Returns `false`, queueing nothing, when a block is needed and memory is out, or when the
    /// thread is exiting (it can no longer enter a read section).
    package static func add(
        object: UnsafeMutableRawPointer?, destroy: DestroyFunction?, context: UnsafeMutableRawPointer?
    ) -> Bool {
        countDeferred()
        let shard = UInt32(truncatingIfNeeded: rcushim_writer_serial()) & (shards - 1)
        var queueNow = false
        let placed = ReadSide.withInternalSection {
            reserve(shard, rcucore_deferred(object: object, destroy: destroy, context: context), &queueNow)
        } ?? false
        // Outside the section: queueing may take the batch lock.
        if queueNow { flush(shard) }
        if !placed { rcushim_count_deferred_completed(1) } // counted above, never to run
        return placed
    }

    /// Writes `entry` into a reserved place of shard `shard`'s open batch. Returns `false` when
    /// memory for a new block is out. Sets `queue` when the caller must queue the batch (see the
    /// type's invariants), which can also happen when it returns `false`. Call inside a read-side
    /// critical section.
    @inline(__always)
    private static func reserve(_ shard: UInt32, _ entry: rcucore_deferred, _ queue: inout Bool) -> Bool {
        let word = word(shard)
        while true {
            // Ordering: sequentially consistent pairs with the install below, and orders this
            // look before the reserve and the look at `inFlight` (see the type's invariants).
            var newest = word.pointee.load(ordering: .sequentiallyConsistent)
            if newest == 0 {
                guard let fresh = newBlock(older: nil, shard, for: entry) else { return false }
                if !install(fresh, at: word, over: 0) { continue }
                newest = UInt(bitPattern: fresh)
            }
            // SAFETY: a block found in the word is neither freed nor reused as a spare until a
            // grace period after its batch is taken, and we are inside a section that began
            // before that; its kind was set before it was shared.
            let block = UnsafeMutablePointer<rcucore_batch>(bitPattern: newest)!
            let size = rcucore_batch_entry_words(block, entry.destroy, entry.context)
            let count = reserved(block)
            // Ordering: relaxed; the compare-exchange below decides.
            var n = count.pointee.load(ordering: .relaxed)
            while n < capacity {
                let fits = n + size <= capacity
                // Ordering: sequentially consistent; see the type's invariants.
                let (exchanged, original) = count.pointee.compareExchange(
                    expected: n, desired: fits ? n + size : capacity, ordering: .sequentiallyConsistent)
                if exchanged {
                    if !fits {
                        // The rest of the block is ours and stays unused: no entry starts there.
                        // SAFETY: only the adder that closed the block writes `end`, inside its
                        // section; the callback reads it after the grace period.
                        block.pointee.end = UInt32(n)
                        queue = true // we filled it
                        break
                    }
                    // SAFETY: words n..<n + size are ours alone (reserved above); the batch's
                    // callback reads them only after a grace period that waits for our section.
                    rcucore_batch_put(block, UInt32(n), size, entry)
                    // Ordering: sequentially consistent; see the type's invariants.
                    if n + size == capacity || (n == 0 && inFlight.pointee.load(ordering: .sequentiallyConsistent) == 0) {
                        queue = true
                    }
                    return true
                }
                n = original
            }
            if n & RCUCORE_BATCH_SEALED != 0 { continue } // taken: the word has moved on
            // Full, and its batch not taken yet: a new block goes in front of it.
            guard let fresh = newBlock(older: block, shard, for: entry) else { return false }
            _ = install(fresh, at: word, over: newest)
        }
    }

    /// Puts `fresh` (not shared yet) in the word if it still holds `expected`; frees it if not.
    @inline(__always)
    private static func install(
        _ fresh: UnsafeMutablePointer<rcucore_batch>, at word: UnsafeMutablePointer<Atomic<UInt>>, over expected: UInt
    ) -> Bool {
        // Ordering: sequentially consistent (covers release: the block's header is visible to
        // whoever loads it); see the type's invariants.
        let installed = word.pointee.compareExchange(
            expected: expected, desired: UInt(bitPattern: fresh), ordering: .sequentiallyConsistent
        ).exchanged
        // SAFETY: never shared when the exchange failed. (Not made a spare: a spare comes back
        // only after a grace period, see `rcucore_batch_spares`.)
        if !installed { free(fresh) }
        return installed
    }

    /// A block for shard `shard` in front of `older`, with nothing reserved and the kind of
    /// `entry`: one of the shard's spares, or fresh memory; `nil` when memory is out. Call inside
    /// a read-side critical section (see `rcucore_batch_spares`).
    private static func newBlock(
        older next: UnsafeMutablePointer<rcucore_batch>?, _ shard: UInt32, for entry: rcucore_deferred
    ) -> UnsafeMutablePointer<rcucore_batch>? {
        let top = spareTop(shard)
        // Ordering: acquire pairs with the release in `giveBack`, so a spare's link is visible.
        var first = top.pointee.load(ordering: .acquiring)
        var block: UnsafeMutablePointer<rcucore_batch>?
        while let spare = UnsafeMutablePointer<rcucore_batch>(bitPattern: first) {
            // SAFETY: a spare seen in `top` stays allocated while our section lasts, and cannot
            // come back to `top` meanwhile (see `rcucore_batch_spares`).
            // Ordering: relaxed; the acquire that found `spare` ordered its link.
            let link = older(spare).pointee.load(ordering: .relaxed)
            // Ordering: acquire-release: acquires the next spare's link, and keeps our later
            // writes to the block after the take.
            let (exchanged, original) = top.pointee.compareExchange(
                expected: first, desired: link, ordering: .acquiringAndReleasing)
            if exchanged {
                // Ordering: relaxed; an estimate that bounds the spares.
                spareCount(shard).pointee.wrappingSubtract(1, ordering: .relaxed)
                block = spare
                break
            }
            first = original
        }
        if block == nil, let raw = malloc(MemoryLayout<rcucore_batch>.size) {
            // SAFETY: fresh memory of the block's size, malloc's alignment covers it.
            block = raw.bindMemory(to: rcucore_batch.self, capacity: 1)
        }
        guard let block else { return nil }
        // SAFETY: the block is ours (taken or fresh) and not shared until `install`; the header is
        // set here, the entries by their adders.
        block.pointee.shard = shard
        block.pointee.destroy = entry.destroy
        block.pointee.context = entry.context
        block.pointee.end = UInt32(capacity)
        // Ordering: relaxed, all three; `install` publishes the block with a release.
        older(block).pointee.store(UInt(bitPattern: next), ordering: .relaxed)
        reserved(block).pointee.store(0, ordering: .relaxed)
        records(block).pointee.store(0, ordering: .relaxed)
        return block
    }

    /// Makes the chain `first`...`last` of one shard's blocks (linked through `older`, `count` of
    /// them, no longer used by anyone) that shard's spares, or frees them when the shard has
    /// enough.
    private static func giveBack(
        _ first: UnsafeMutablePointer<rcucore_batch>, _ last: UnsafeMutablePointer<rcucore_batch>, count: UInt
    ) {
        let shard = first.pointee.shard
        let spares = spareCount(shard)
        // Ordering: relaxed; an estimate that bounds the spares.
        guard spares.pointee.load(ordering: .relaxed) &+ count <= UInt(RCUCORE_BATCH_SPARES) else {
            var block: UnsafeMutablePointer<rcucore_batch>? = first
            while let b = block {
                // Ordering: relaxed; the chain is ours alone.
                block = UnsafeMutablePointer(bitPattern: older(b).pointee.load(ordering: .relaxed))
                free(b)
                if b == last { break }
            }
            return
        }
        spares.pointee.wrappingAdd(count, ordering: .relaxed)
        let top = spareTop(shard)
        // Ordering: relaxed; the exchange below publishes the link.
        var head = top.pointee.load(ordering: .relaxed)
        while true {
            older(last).pointee.store(head, ordering: .relaxed)
            // Ordering: release pairs with the acquire in `newBlock`, so the links are visible.
            let (exchanged, original) = top.pointee.compareExchange(
                expected: head, desired: UInt(bitPattern: first), successOrdering: .releasing,
                failureOrdering: .relaxed)
            if exchanged { return }
            head = original
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
    static func flush(_ shard: UInt32, onCallRcuThread: Bool = false) {
        _ = rcushim_ready_self()
        rcushim_call_rcu_prepare()
        if onCallRcuThread || ReadSide.isInSection || ReadSide.isInDeferredCallback {
            guard rcucore_batch_trylock(shard) != 0 else { return }
        } else {
            rcucore_batch_lock(shard)
        }
        // Ordering: sequentially consistent (covers acquire: the blocks' headers are visible).
        let newest = word(shard).pointee.exchange(0, ordering: .sequentiallyConsistent)
        if let block = UnsafeMutablePointer<rcucore_batch>(bitPattern: newest) {
            // Ordering: relaxed; after the seal no adder reserves in the block, and the grace
            // period before the callback orders the entries (see the type's invariants).
            reserved(block).pointee.bitwiseOr(RCUCORE_BATCH_SEALED, ordering: .relaxed)
            // Ordering: sequentially consistent; counted before the callback can run.
            inFlight.pointee.add(1, ordering: .sequentiallyConsistent)
            // Counted already, by each add, and queued without looking at the load, which may
            // pause: not with this lock held.
            enqueueCountedDeferred(rcucore_batch_head(block), batchCallback)
        }
        rcucore_batch_unlock(shard)
    }

    /// Queues every shard's batch: what a barrier does first, so that it waits for every destroy
    /// deferred through a batch before it.
    package static func flushAll() {
        for shard in 0..<shards { flush(shard) }
    }

    /// Runs a batch: every entry's destroy, block by block, freeing the blocks; then queues any
    /// batch that gathered meanwhile.
    private static let batchCallback: DeferredCallback = { head in
        // SAFETY: liburcu hands back the node `flush` queued: the first field of the batch's
        // newest block; a grace period has passed since the take, so its entries are written
        // and no adder looks at its blocks any more (the type's invariants).
        let first = rcucore_batch_of_head(head)
        var last = first
        var blocks: UInt = 0
        runDeferredBatch {
            var ran: UInt64 = 0
            var block: UnsafeMutablePointer<rcucore_batch>? = first
            while let b = block {
                let used = rcucore_batch_used(b)
                // SAFETY: words below `used`, written before the grace period; only read.
                for j in 0..<min(prefetchDistance, used) { rcucore_batch_prefetch(b, j) }
                var i: UInt32 = 0
                while i < used {
                    // SAFETY: a word below `used`, written before the grace period; only read.
                    if i + prefetchDistance < used { rcucore_batch_prefetch(b, i + prefetchDistance) }
                    var entry = rcucore_deferred()
                    // SAFETY: words below `used` hold whole entries, written before the grace
                    // period (the type's invariants).
                    i += rcucore_batch_get(b, i, &entry)
                    destroyObject(entry.object, entry.destroy, entry.context)
                    ran += 1
                }
                blocks += 1
                last = b
                // Ordering: relaxed; the grace period ordered the links before us.
                block = UnsafeMutablePointer(bitPattern: older(b).pointee.load(ordering: .relaxed))
            }
            return ran
        }
        // The batch's blocks (one shard's, still linked) become spares at once.
        giveBack(first, last, count: blocks)
        // Ordering: sequentially consistent; see the type's invariants.
        inFlight.pointee.subtract(1, ordering: .sequentiallyConsistent)
        for shard in 0..<shards where word(shard).pointee.load(ordering: .sequentiallyConsistent) != 0 {
            flush(shard, onCallRcuThread: true)
        }
    }
}
