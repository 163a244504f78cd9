/*
 * swiftrcu_types.h - the types, status codes and version of the SwiftRCU C API.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Hand-written. Include <swiftrcu.h>, which includes this file and the function declarations
 * (swiftrcu_generated.h, generated from the Swift sources). The Swift implementation imports this
 * header too, so the functions are declared with exactly these types.
 */
#ifndef SWIFTRCU_TYPES_H
#define SWIFTRCU_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Major version of the headers; compare with swiftrcu_version() at run time. */
#define SWIFTRCU_VERSION_MAJOR 0
/** Minor version of the headers. */
#define SWIFTRCU_VERSION_MINOR 1
/** Patch version of the headers. */
#define SWIFTRCU_VERSION_PATCH 0

/** Success. */
#define SWIFTRCU_OK 0
/** A handle or out-pointer is NULL, or a handle is stale (already freed or deferred) or of the
 *  wrong kind. Nothing was changed. */
#define SWIFTRCU_EINVAL (-22)
/** A guard is not the calling thread's innermost held guard (already unlocked, another
 *  thread's, out of order, zeroed), or the call is not allowed in the thread's current state
 *  (exiting, or in a forked child where grace periods are refused). Nothing was changed. */
#define SWIFTRCU_EPERM (-1)
/** The call would wait forever: a grace-period wait inside a read-side critical section (or inside
 *  a copy_update callback, or a barrier inside a deferred destroy), a write to a pointer from
 *  inside that pointer's own copy_update callback, or a write that would close a cycle of writers
 *  waiting for each other's pointers. Nothing was changed. */
#define SWIFTRCU_EDEADLK (-35)
/** Out of memory, or out of handles (also old_defer inside a read section past its hard limit of
 *  pending destroys). Nothing was changed. */
#define SWIFTRCU_ENOMEM (-12)

/**
 * An RCU-protected pointer to one object (the kernel's `Rcu<P>`).
 * Opaque; created by swiftrcu_new(), released by swiftrcu_free().
 */
typedef struct swiftrcu_ptr swiftrcu_ptr;

/**
 * An object that has been unpublished by swiftrcu_replace() or swiftrcu_copy_update() and may
 * still be read by readers that found it earlier (the kernel's `RcuOld<P>`). Opaque; released by
 * swiftrcu_old_free() or swiftrcu_old_defer(), which destroy the object after a grace period.
 */
typedef struct swiftrcu_old swiftrcu_old;

/**
 * Evidence that the calling thread holds a read lock, returned by value by swiftrcu_read_lock().
 * Each read_lock gives a guard of its own identity; swiftrcu_read_unlock() spends it (zeroes it).
 * A guard is only valid on the thread that took it. The contents are private.
 */
typedef struct swiftrcu_guard {
    uint64_t _private[2];
} swiftrcu_guard;

/** Destroys an object that is no longer reachable by any reader: `destroy(object, context)`.
 *  May run on any thread, including a liburcu call_rcu thread. */
typedef void (*swiftrcu_destroy_fn)(void *object, void *context);

/** Computes the object to publish from the current one, for swiftrcu_copy_update(). Returning
 *  `current` itself publishes nothing. */
typedef void *(*swiftrcu_update_fn)(const void *current, void *context);

/** Reads an object inside the read-side critical section of swiftrcu_read_section():
 *  `fn(object, context)`. The object (may be NULL) is usable until fn returns. */
typedef void (*swiftrcu_read_fn)(const void *object, void *context);

/** Takes a reference of the caller's to an object, for swiftrcu_load_retained() and bound loaders:
 *  `retain(object)`. Runs inside a read-side critical section: it must not wait for a grace period. */
typedef void (*swiftrcu_retain_fn)(void *object);

/** A loader bound to one pointer by swiftrcu_loader_bind(): called without arguments, it does what
 *  swiftrcu_load_retained() does with the bound pointer and retain function. */
typedef void *(*swiftrcu_loader_fn)(void);

/**
 * A node embedded in an object, for swiftrcu_call(): room for the library to queue the object for
 * a call after a grace period without allocating (as liburcu's `struct rcu_head`). The contents
 * are private; the node belongs to the library from swiftrcu_call() until its function starts.
 */
typedef struct swiftrcu_head {
    void *_private[4];
} swiftrcu_head;

/** Called with its node after a grace period, by swiftrcu_call(): `fn(head)`, usually to free the
 *  object that embeds the node. May run on any thread, including a liburcu call_rcu thread. */
typedef void (*swiftrcu_call_fn)(swiftrcu_head *head);

/** How many loaders can be bound at once (swiftrcu_loader_bind()). */
#define SWIFTRCU_LOADERS_MAX 1024

/**
 * The library's statistics, filled by swiftrcu_stats_get(). Counted since the library was loaded
 * unless a field says "now". Every field after `size` is a uint64_t, in this order for good:
 * later versions only append fields, so a caller built with an older or newer header gets the
 * fields both know (see swiftrcu_stats_get() for `size`). The counters are read one at a time,
 * not as a consistent snapshot: a field read while other threads work may not match another.
 *
 * They describe one instance of the library: libswiftrcu.so has its own, and a program that
 * also links the SwiftRCU Swift package has a second one (Swift's RcuStatistics) that counts
 * nothing done through this one.
 *
 * Invariants: `size` comes first; every later member is a uint64_t counter, without gaps (a
 * static assertion below checks it), so a byte count names a whole number of counters.
 */
typedef struct swiftrcu_stats {
    /** In: the bytes the caller provides (normally sizeof(swiftrcu_stats)). Out: the bytes
     *  the library filled, this member included. */
    size_t size;
    /** Grace-period waits the library made and completed: swiftrcu_synchronize(),
     *  swiftrcu_old_free(), swiftrcu_free() (not the waits of liburcu's call_rcu threads). */
    uint64_t grace_periods;
    /** Destroys handed to liburcu's call_rcu (swiftrcu_old_defer()). */
    uint64_t deferred_queued;
    /** Deferred destroys that have run. */
    uint64_t deferred_completed;
    /** Deferred destroys queued and not yet run, now. */
    uint64_t deferred_pending;
    /** The highest deferred_pending seen (by a deferring call or a read of the statistics). */
    uint64_t deferred_pending_peak;
    /** Calls of destroy functions, synchronous (free, old_free) and deferred. */
    uint64_t objects_destroyed;
    /** swiftrcu_ptr handles alive now (created, not yet freed). */
    uint64_t ptrs_live;
    /** swiftrcu_old handles alive now (handed out, not yet freed or deferred). */
    uint64_t olds_live;
    /** Threads registered with the library now, liburcu's call_rcu worker threads included
     *  (the library adopts each one when it first runs a deferred destroy). */
    uint64_t threads_registered;
    /** Threads ever registered with the library (the same threads as threads_registered). */
    uint64_t threads_registered_total;
    /** Threads that exited holding read locks, which the library released at their exit. */
    uint64_t threads_exited_in_section;
    /** Back-pressure pauses of deferring writers (see swiftrcu_old_defer()). */
    uint64_t writer_pauses;
    /** Total time of those pauses, in nanoseconds. */
    uint64_t writer_pause_ns;
    /** Calls that returned SWIFTRCU_EDEADLK. */
    uint64_t edeadlk_refusals;
    /** Calls that returned SWIFTRCU_EPERM. Refusals that return NULL or a zeroed guard instead
     *  of a status (swiftrcu_dereference() with a foreign guard, for example) are not counted. */
    uint64_t eperm_refusals;
    /** Calls that returned SWIFTRCU_EINVAL (refusals without a status are not counted). */
    uint64_t einval_refusals;
} swiftrcu_stats;

/** How many counters the swiftrcu_stats of this header has. */
#define SWIFTRCU_STATS_FIELDS 16

/* The counters follow `size` without gaps, so a size says exactly which ones it covers. */
#if defined(__cplusplus)
static_assert(sizeof(swiftrcu_stats) == offsetof(swiftrcu_stats, grace_periods) + SWIFTRCU_STATS_FIELDS * 8,
              "swiftrcu_stats: counters must be contiguous uint64_t");
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(swiftrcu_stats) == offsetof(swiftrcu_stats, grace_periods) + SWIFTRCU_STATS_FIELDS * 8,
               "swiftrcu_stats: counters must be contiguous uint64_t");
#endif

/* Pointer typedefs that keep the handle types' names in the generated declarations:
 * `swiftrcu_ptr_ref` is `swiftrcu_ptr *`, `swiftrcu_const_ptr_ref` is `const swiftrcu_ptr *`,
 * `swiftrcu_old_ref` is `swiftrcu_old *`, `swiftrcu_const_old_ref` is `const swiftrcu_old *`. */
typedef struct swiftrcu_ptr *swiftrcu_ptr_ref;
typedef const struct swiftrcu_ptr *swiftrcu_const_ptr_ref;
typedef struct swiftrcu_old *swiftrcu_old_ref;
typedef const struct swiftrcu_old *swiftrcu_const_old_ref;

#ifdef __cplusplus
}
#endif
#endif /* SWIFTRCU_TYPES_H */
