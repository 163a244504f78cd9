/*
 * SwiftRCU core (room 2 of 3), its C part: the layouts of the pointer cell and of a retired
 * object, declared in C so that the C ABI can embed them in its handle slots and their sizes are
 * checked by the compiler. Used by Sources/SwiftRCUCore (PointerCell.swift, GracePeriod.swift)
 * and, for the layouts only, by the C ABI's C part. Calls down into the liburcu shim only for its
 * types (the writer lock, struct rcu_head).
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
 * and not changed after; `head` is only used by liburcu between queueing and the callback.
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

/* Field addresses, for the Swift side's atomic views. */
static inline uintptr_t *rcucore_cell_published(struct rcucore_cell *c) { return &c->published; }
static inline struct rcucore_cell_control *rcucore_cell_control_of(struct rcucore_cell *c) { return &c->control; }
static inline struct rcushim_writer_lock *rcucore_control_writer(struct rcucore_cell_control *c) {
    return &c->writer;
}
static inline struct rcu_head *rcucore_retired_head(struct rcucore_retired *r) { return &r->head; }
static inline struct rcucore_retired *rcucore_retired_of_head(struct rcu_head *h) {
    return (struct rcucore_retired *)(void *)h;
}

#pragma clang assume_nonnull end

#ifdef __cplusplus
}
#endif
#endif /* SWIFTRCU_CORE_H */
