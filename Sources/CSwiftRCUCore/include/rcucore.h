/*
 * SwiftRCU core (room 2 of 3), its C part: the layouts of the pointer cell, of a retired object
 * and of a batch block, declared in C so that the C ABI can embed them in its handle slots and
 * their sizes are checked by the compiler, and the storage of the batches of deferred destroys.
 * Used by Sources/SwiftRCUCore (PointerCell.swift, GracePeriod.swift, DeferredBatches.swift) and,
 * for the layouts only, by the C ABI's C part. Calls down into the liburcu shim only for its types
 * (the writer lock, struct rcu_head).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef SWIFTRCU_CORE_H
#define SWIFTRCU_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "liburcu_shim.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma clang assume_nonnull begin

/** Destroys one object: the same type as swiftrcu_destroy_fn. */
typedef void (*rcucore_destroy_fn)(void *_Nullable object, void *_Nullable context);

/**
 * What a pointer cell keeps besides its published word: the writer lock and who destroys the
 * cell's objects.
 *
 * Invariants: `destroy` and `context` are set before the cell is shared and never change while
 * it is; `writer` is only used through the shim's writer-lock functions.
 */
struct rcucore_cell_control {
    struct rcushim_writer_lock writer;
    rcucore_destroy_fn _Nullable destroy;
    void *_Nullable context;
};

/**
 * A pointer cell: the one writer core of an RCU pointer (Sources/SwiftRCUCore/PointerCell.swift).
 * A C ptr handle's slot holds one in place; a Swift Rcu keeps its published word in itself and
 * its control beside it.
 *
 * Invariants: `published` is the object readers find (0: none), only accessed atomically, and
 * changed only by the holder of `control.writer`; every non-zero value it ever held is destroyed
 * exactly once with `control.destroy`, after a grace period.
 */
struct rcucore_cell {
    uintptr_t published;
    struct rcucore_cell_control control;
};

/**
 * A retired object: unpublished, waiting for a grace period before `destroy(object, context)`
 * runs (the one release path, synchronous or deferred). `head` is liburcu's node for call_rcu
 * and comes first, so the node handed back is the record.
 *
 * Invariants: `object`, `destroy` and `context` are set before the record is queued or released
 * and not changed after; `object` is only accessed atomically where a record can be read by a
 * stale handle's lookup (a C ABI old slot); `head` is only used by liburcu between queueing and
 * the callback.
 */
struct rcucore_retired {
    struct rcu_head head;
    void *_Nullable object;
    rcucore_destroy_fn _Nullable destroy;
    void *_Nullable context;
};

_Static_assert(sizeof(struct rcucore_cell) == 40, "a cell is five words");
_Static_assert(offsetof(struct rcucore_cell, published) == 0, "the published word comes first");
_Static_assert(sizeof(struct rcucore_retired) == 40, "a retired record is five words");
_Static_assert(offsetof(struct rcucore_retired, head) == 0, "the node handed back is the record");

/** A deferred destroy waiting in a batch: `destroy(object, context)` (a retired record without
 *  its node: the batch's node stands for all of them). */
struct rcucore_deferred {
    void *_Nullable object;
    rcucore_destroy_fn _Nullable destroy;
    void *_Nullable context;
};

/** Words per batch block. An entry whose destroy and context are its block's takes one word
 *  (its object); any other takes three (object, destroy, context). The adder that fills a block
 *  queues its batch. */
#define RCUCORE_BATCH_WORDS 64
/** Set in a block's `reserved` once its batch is taken: no entry can be reserved in it after. */
#define RCUCORE_BATCH_SEALED (1ULL << 63)
/** Batch shards: a thread adds to the shard of its thread serial. */
#define RCUCORE_BATCH_SHARDS 8
/** Spare blocks a shard keeps for reuse (about 288 KiB); a batch's blocks beyond them are freed. */
#define RCUCORE_BATCH_SPARES 512

/** One word of a batch block: an entry's object, or the destroy or context of an entry that
 *  takes three words. */
union rcucore_batch_word {
    void *_Nullable object;
    rcucore_destroy_fn _Nullable destroy;
    void *_Nullable context;
};

/**
 * One block of a batch of deferred destroys (Sources/SwiftRCUCore/DeferredBatches.swift, which
 * says how it is used), on the heap: a header line, then the words. `head` comes first, so the
 * node liburcu hands back is the block.
 *
 * Invariants: `reserved` is the number of words handed out (at most RCUCORE_BATCH_WORDS), with
 * RCUCORE_BATCH_SEALED once the block's batch was taken; only accessed atomically. The words of
 * an entry (below the count and below `end`) are written by the adder that reserved them, inside
 * a read-side critical section that began before the block was taken, so they are complete once
 * a grace period has passed after the take. `destroy` and `context` (the block's kind) are set
 * before the block is shared and not changed while it is; an entry of that kind is one word, its
 * object. Bit i of `records` (only accessed atomically) is set by the adder of a three-word entry
 * starting at word i. `end` is RCUCORE_BATCH_WORDS, or the first word of a three-word entry that
 * did not fit: the adder that reserved the rest of the block for it sets it, and no entry starts
 * there or after. `older` (set before the block is shared) is the full block that was the
 * shard's newest when this one was put in front of it, or NULL; a batch is its newest block and
 * every block reached through `older`. While the block is a spare, `older` links it to the next
 * spare of its shard. `older` is only accessed atomically (a thread taking a spare may read it
 * while another thread has taken that spare already). `shard` is the shard the block was made
 * for.
 */
struct rcucore_batch {
    struct rcu_head head;
    uintptr_t older;
    uint64_t reserved;
    rcucore_destroy_fn _Nullable destroy;
    void *_Nullable context;
    uint64_t records;
    uint32_t shard;
    uint32_t end;
    union rcucore_batch_word words[RCUCORE_BATCH_WORDS];
};

_Static_assert(RCUCORE_BATCH_WORDS <= 64, "one bit of `records` per word");
_Static_assert(offsetof(struct rcucore_batch, words) == 64, "the header is one cache line");
_Static_assert(sizeof(struct rcucore_batch) < 1024,
               "under glibc's large requests, whose malloc first consolidates the fast bins");
_Static_assert(offsetof(struct rcucore_batch, head) == 0, "the node handed back is the block");

/*
 * The open batch of each shard: rcucore_batch_words[k][0] is the address of shard k's newest
 * block (0: none), each on a cache line of its own; only accessed atomically.
 * rcucore_batches_in_flight counts the batches queued whose callback has not finished; only
 * accessed atomically. A shard's batch is taken and queued with its batch lock held, and the
 * locks are held across fork, so no batch is halfway to its queue in a forked child.
 */
extern uintptr_t rcucore_batch_words[RCUCORE_BATCH_SHARDS][8] __attribute__((visibility("hidden")));

/*
 * The spare blocks of each shard: rcucore_batch_spares[k][0] is the first spare (0: none), the
 * others linked through `older`; [k][1] is about how many there are (at most
 * RCUCORE_BATCH_SPARES). Both only accessed atomically. A spare is taken only inside a read-side
 * critical section and given back only by a batch's callback (after a grace period), so a spare
 * seen first cannot come back while the taker's compare-exchange is pending (no ABA), nor be
 * freed while the taker reads its link.
 */
extern uintptr_t rcucore_batch_spares[RCUCORE_BATCH_SHARDS][8] __attribute__((visibility("hidden")));
static inline uintptr_t *rcucore_batch_spare_top(uint32_t shard) { return &rcucore_batch_spares[shard][0]; }
static inline uintptr_t *rcucore_batch_spare_count(uint32_t shard) { return &rcucore_batch_spares[shard][1]; }
extern uint64_t rcucore_batches_in_flight __attribute__((visibility("hidden")));

static inline uintptr_t *rcucore_batch_word(uint32_t shard) { return &rcucore_batch_words[shard][0]; }
static inline uint64_t *rcucore_batches_in_flight_word(void) { return &rcucore_batches_in_flight; }
static inline uint64_t *rcucore_batch_reserved(struct rcucore_batch *b) { return &b->reserved; }
static inline uintptr_t *rcucore_batch_older(struct rcucore_batch *b) { return &b->older; }
static inline uint64_t *rcucore_batch_records(struct rcucore_batch *b) { return &b->records; }
/* The words an entry of (destroy, context) takes in block b: 1 when that is b's kind, else 3. */
static inline uint64_t rcucore_batch_entry_words(const struct rcucore_batch *b,
                                                 rcucore_destroy_fn _Nullable destroy,
                                                 void *_Nullable context) {
    return b->destroy == destroy && b->context == context ? 1 : 3;
}
/* Writes entry e into words i... of b, reserved by the caller (`words` of them, as counted by
 * rcucore_batch_entry_words). */
static inline void rcucore_batch_put(struct rcucore_batch *b, uint32_t i, uint64_t words,
                                     struct rcucore_deferred e) {
    b->words[i].object = e.object;
    if (words == 1) return;
    b->words[i + 1].destroy = e.destroy;
    b->words[i + 2].context = e.context;
    /* Ordering: relaxed; the grace period before the batch's callback orders it with the words. */
    __atomic_fetch_or(&b->records, 1ULL << i, __ATOMIC_RELAXED);
}
/* The entry starting at word i of b into *e; returns the words it takes. Only after the grace
 * period that follows the block's take. */
static inline uint32_t rcucore_batch_get(const struct rcucore_batch *b, uint32_t i,
                                         struct rcucore_deferred *e) {
    /* Ordering: relaxed; the grace period ordered the adders' bits before us. */
    if (__atomic_load_n(&b->records, __ATOMIC_RELAXED) & (1ULL << i)) {
        e->object = b->words[i].object;
        e->destroy = b->words[i + 1].destroy;
        e->context = b->words[i + 2].context;
        return 3;
    }
    e->object = b->words[i].object;
    e->destroy = b->destroy;
    e->context = b->context;
    return 1;
}
/* Prefetches, for writing, the line of the object in word i of b and that of the word before it
 * (where malloc keeps a chunk's size), which a destroy that frees the object reads and writes:
 * the callback runs this some entries ahead, so that those lines come in while earlier destroys
 * run. Only a hint: a prefetch never faults, whatever the word holds. Only after the grace period
 * that follows the block's take. */
static inline void rcucore_batch_prefetch(const struct rcucore_batch *b, uint32_t i) {
    uintptr_t object = (uintptr_t)b->words[i].object;
    __builtin_prefetch((const void *)(object - sizeof(void *)), 1, 3);
    __builtin_prefetch((const void *)object, 1, 3);
}
/* The words of b that hold entries. Only after the grace period that follows the block's take. */
static inline uint32_t rcucore_batch_used(const struct rcucore_batch *b) {
    /* Ordering: relaxed; the grace period ordered the reserves before us. */
    uint64_t n = __atomic_load_n(&b->reserved, __ATOMIC_RELAXED) & ~RCUCORE_BATCH_SEALED;
    return n < b->end ? (uint32_t)n : b->end;
}
static inline struct rcu_head *rcucore_batch_head(struct rcucore_batch *b) { return &b->head; }
static inline struct rcucore_batch *rcucore_batch_of_head(struct rcu_head *h) {
    return (struct rcucore_batch *)(void *)h;
}

void rcucore_batch_lock(uint32_t shard) __attribute__((visibility("hidden")));
/* 1 when the lock was taken, 0 when it is held (by a thread queueing that batch, or by fork). */
int rcucore_batch_trylock(uint32_t shard) __attribute__((visibility("hidden")));
void rcucore_batch_unlock(uint32_t shard) __attribute__((visibility("hidden")));

/* Field addresses, for the Swift side's atomic views. */
static inline uintptr_t *rcucore_cell_published(struct rcucore_cell *c) { return &c->published; }
static inline struct rcucore_cell_control *rcucore_cell_control_of(struct rcucore_cell *c) { return &c->control; }
static inline struct rcushim_writer_lock *rcucore_control_writer(struct rcucore_cell_control *c) {
    return &c->writer;
}
static inline struct rcu_head *rcucore_retired_head(struct rcucore_retired *r) { return &r->head; }
static inline uintptr_t *rcucore_retired_object(struct rcucore_retired *r) { return (uintptr_t *)(void *)&r->object; }
static inline struct rcucore_retired *rcucore_retired_of_head(struct rcu_head *h) {
    return (struct rcucore_retired *)(void *)h;
}

#pragma clang assume_nonnull end

#ifdef __cplusplus
}
#endif
#endif /* SWIFTRCU_CORE_H */
