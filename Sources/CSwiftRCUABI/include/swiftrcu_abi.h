/*
 * SwiftRCU C ABI (room 3 of 3), its C part: the storage and layout of the handle table behind the
 * opaque handles, and the bound loaders. Used only by Sources/SwiftRCUCABI; calls down into the
 * liburcu shim only for its types (struct rcu_head) and nothing else.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Everything here has hidden visibility: none of it is part of the exported C API.
 */
#ifndef SWIFTRCU_ABI_H
#define SWIFTRCU_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "liburcu_shim.h"
#include "rcucore.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma clang assume_nonnull begin

/* ---- The handle table (used by Sources/SwiftRCUCABI/Handles.swift, which says how). ---- */

/** Slots per segment (the handle's index bits 0...11 within a segment). */
#define RCUABI_SEGMENT_SHIFT 12
#define RCUABI_SEGMENT_SLOTS (1 << RCUABI_SEGMENT_SHIFT)
/** Segments at most (the directory's length): 2^24 slots in all. */
#define RCUABI_DIRECTORY_SIZE 4096
/** Free-list shards: writers take slots from the shard of their thread serial. */
#define RCUABI_SHARDS 8

/** The size and alignment of a slot's storage: one cache line. */
#define RCUABI_SLOT_BYTES 64

/**
 * One entry of the handle table: one cache line.
 *
 * Invariants:
 *  - `stamp` is the full value of the live handle that owns the slot, or 0 while the slot is free
 *    or retired; it is set last (release) when a slot is handed out and cleared first (by
 *    compare-exchange) when its handle is retired; only accessed atomically;
 *  - a `ptr` handle's slot holds its pointer cell in place (`u.cell`, the core's writer state:
 *    published word, writer lock, destroy function and context); an `old` handle's slot holds
 *    its retired object (`u.retired`: the object, its destroy function and context; its node is
 *    used only when swiftrcu_old_defer could not add the object to a batch and queues the slot
 *    itself); the published word is only accessed atomically, and so is `u.retired.object`,
 *    which a stale old handle's lookup may read in a reused slot;
 *  - `generation` is touched only by the thread that owns the free slot (the one that took it off
 *    a free list, or is adding its segment);
 *  - `next_free` links the slot into a free list while it is on one; threads taking slots may read it after the slot left the list, so it is only
 *    accessed atomically;
 *  - `index` is the slot's own index, `shard` the free-list shard it goes back to; both are set
 *    while the slot is free and owned (before its segment is published, or by its taker).
 */
struct rcuabi_slot {
    uint64_t stamp;
    union {
        struct rcucore_cell cell;
        struct rcucore_retired retired;
    } u;
    uint32_t generation;
    uint32_t next_free;
    uint32_t index;
    uint32_t shard;
};

/* The type is not declared 64-aligned (Swift does not import over-aligned structs): the storage
 * is (rcuabi_first_segment, and later segments from posix_memalign). */
_Static_assert(sizeof(struct rcuabi_slot) == RCUABI_SLOT_BYTES, "a slot is one cache line");
_Static_assert(offsetof(struct rcuabi_slot, stamp) == 0 && offsetof(struct rcuabi_slot, u.cell.published) == 8,
               "the read path's two loads (stamp, then the published object) keep their offsets");

/* Storage, zero-initialised (the free-list heads start empty: see rcuabi_table_init), never freed.
 * The first segment is static, so a lookup of its slots (every handle while a program has at
 * most 4096) needs no load from the directory: its address is a constant. */
extern uintptr_t rcuabi_directory[RCUABI_DIRECTORY_SIZE] __attribute__((visibility("hidden")));
extern struct rcuabi_slot rcuabi_first_segment[RCUABI_SEGMENT_SLOTS]
    __attribute__((aligned(RCUABI_SLOT_BYTES), visibility("hidden")));

/*
 * The free lists, RCUABI_SHARDS of them, each word on a cache line of its own, so that writers on
 * different shards, and the threads that give slots back (liburcu's call_rcu workers), share no
 * line in the common case. Of shard k:
 *  - rcuabi_free_words[k][0], `ready`, is `tag << 32 | index`: index is the first slot of the list
 *    that slots are taken from (UINT32_MAX: empty), tag counts the changes of the word (so that a
 *    stale compare-exchange fails); only accessed atomically;
 *  - rcuabi_free_words[k][8], `returned`, is the first slot of the list of slots given back since
 *    the last refill, newest first (UINT32_MAX: empty); only accessed atomically.
 * rcuabi_segment_count is only touched with rcuabi_table_lock() held.
 */
extern uint64_t rcuabi_free_words[RCUABI_SHARDS][16] __attribute__((visibility("hidden")));
extern uint32_t rcuabi_segment_count __attribute__((visibility("hidden")));

/* The slot whose retired record's `head` liburcu hands back to a deferred destroy. */
static inline struct rcuabi_slot *rcuabi_slot_of_head(struct rcu_head *head) {
    return (struct rcuabi_slot *)((char *)head - offsetof(struct rcuabi_slot, u.retired.head));
}

/* Field addresses, for the Swift side's atomics (and the head for call_rcu). */
static inline uint64_t *rcuabi_slot_stamp(struct rcuabi_slot *s) { return &s->stamp; }
static inline struct rcucore_cell *rcuabi_slot_cell(struct rcuabi_slot *s) { return &s->u.cell; }
static inline struct rcucore_retired *rcuabi_slot_retired(struct rcuabi_slot *s) { return &s->u.retired; }
static inline uint32_t *rcuabi_slot_next_free(struct rcuabi_slot *s) { return &s->next_free; }
static inline struct rcu_head *rcuabi_slot_head(struct rcuabi_slot *s) { return &s->u.retired.head; }
static inline void *rcuabi_directory_words(void) { return rcuabi_directory; }
static inline struct rcuabi_slot *rcuabi_first_segment_slots(void) { return rcuabi_first_segment; }
static inline uint64_t *rcuabi_free_ready(uint32_t shard) { return &rcuabi_free_words[shard][0]; }
static inline uint64_t *rcuabi_free_returned(uint32_t shard) { return &rcuabi_free_words[shard][8]; }
static inline uint32_t *rcuabi_segment_count_word(void) { return &rcuabi_segment_count; }

/* Asks the CPU to fetch the cache line at `p` for writing (a hint: any address, nothing faults). */
static inline void rcuabi_prefetch_for_write(const void *_Nullable p) { __builtin_prefetch(p, 1, 3); }

/*
 * The calling thread's slot cache (used by Handles.swift, which says how): free slots a writer
 * took off its shard's `ready` list in one move, and slots it released itself, linked through
 * `next_free`, so that reserving and releasing a slot take no atomic read-modify-write in the
 * common case. `rcuabi_cache` is `RCUABI_CACHE_ADOPTED | count << 32 | head`: `head` is the first
 * slot of the chain (its first `count` slots are the cache; the last one's link means nothing),
 * RCUABI_CACHE_ADOPTED is set once the thread cached (then rcuabi_cache_adopt registered its exit
 * step); only the owning thread touches it. Initial-exec TLS: one word, no call to reach it.
 */
#define RCUABI_CACHE_SLOTS 32
#define RCUABI_CACHE_ADOPTED (1ULL << 63)
extern __thread uint64_t rcuabi_cache __attribute__((tls_model("initial-exec"), visibility("hidden")));
static inline uint64_t *rcuabi_cache_word(void) { return &rcuabi_cache; }

/* Registers the calling thread's cache for its exit: the exit step set by rcuabi_cache_on_exit
 * gets the cache word then (and the word is cleared), so cached slots go back to the table.
 * Returns 1 with RCUABI_CACHE_ADOPTED set; 0 (out of memory), adopting nothing: then the thread
 * must not cache. */
int rcuabi_cache_adopt(void) __attribute__((visibility("hidden")));
/* Sets the exit step of every adopted cache (once, before any thread caches). */
void rcuabi_cache_on_exit(void (*_Nonnull step)(uint64_t word)) __attribute__((visibility("hidden")));

/* The lock of the table's growth and of refilling a shard's `ready` list; held across fork (its
 * own fork handlers) so that a forked child finds the table consistent. */
void rcuabi_table_lock(void) __attribute__((visibility("hidden")));
void rcuabi_table_unlock(void) __attribute__((visibility("hidden")));

/* ---- Bound loaders (loaders.c; used by swiftrcu_loader_bind in Sources/SwiftRCUCABI/CABI.swift). ----
 * RCUABI_LOADERS functions that take no argument. Each can be bound to one (handle, retain,
 * if_null) triple and then calls the bound implementation with it: a read that crosses a foreign
 * function interface without an argument to convert, which is most of a ctypes call's cost. */
#define RCUABI_LOADERS 1024

typedef void (*rcuabi_retain_fn)(void *_Nullable object);
typedef void *_Nullable (*rcuabi_load_impl)(uintptr_t handle, rcuabi_retain_fn retain, void *_Nullable if_null);
typedef void *_Nullable (*rcuabi_loader_fn)(void);

/* Binds a free loader to (handle, retain, if_null), which `impl` will be called with; returns it,
 * or NULL when all are bound. handle must not be 0. */
rcuabi_loader_fn _Nullable rcuabi_loader_bind(uintptr_t handle, rcuabi_retain_fn retain,
                                              void *_Nullable if_null, rcuabi_load_impl impl)
    __attribute__((visibility("hidden")));

/* Unbinds a loader returned by rcuabi_loader_bind; 0 on success, -1 when `loader` is not one of
 * the loaders or is not bound. */
int rcuabi_loader_unbind(rcuabi_loader_fn _Nullable loader) __attribute__((visibility("hidden")));

#pragma clang assume_nonnull end

#ifdef __cplusplus
}
#endif
#endif /* SWIFTRCU_ABI_H */
