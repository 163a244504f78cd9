/*
 * SwiftRCU - liburcu shim (room 1 of 3): the library's statistics counters.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Included by liburcu_shim.h. The counters of one instance of the library (one copy of this shim:
 * libswiftrcu.so has one, a Swift program that links the SwiftRCU package has another), counted
 * since it was loaded. Every counter is only touched on writer-side and slow paths, never on the
 * read path; refusals are counted by out-of-line functions that the refusal branches call.
 *
 * Read with rcushim_stats_read(): the counters are read one at a time (relaxed loads), not as
 * a consistent snapshot.
 */
#ifndef SWIFTRCU_RCUSHIM_STATS_H
#define SWIFTRCU_RCUSHIM_STATS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Indices of the values rcushim_stats_read() writes, in the order of the C struct
 * swiftrcu_stats (include/swiftrcu_types.h) and of Swift's RcuStatistics.
 */
enum {
    RCUSHIM_STAT_GRACE_PERIODS = 0,
    RCUSHIM_STAT_DEFERRED_QUEUED,
    RCUSHIM_STAT_DEFERRED_COMPLETED,
    RCUSHIM_STAT_DEFERRED_PENDING,
    RCUSHIM_STAT_DEFERRED_PENDING_PEAK,
    RCUSHIM_STAT_OBJECTS_DESTROYED,
    RCUSHIM_STAT_PTRS_LIVE,
    RCUSHIM_STAT_OLDS_LIVE,
    RCUSHIM_STAT_THREADS_REGISTERED,
    RCUSHIM_STAT_THREADS_REGISTERED_TOTAL,
    RCUSHIM_STAT_THREADS_EXITED_IN_SECTION,
    RCUSHIM_STAT_WRITER_PAUSES,
    RCUSHIM_STAT_WRITER_PAUSE_NS,
    RCUSHIM_STAT_EDEADLK_REFUSALS,
    RCUSHIM_STAT_EPERM_REFUSALS,
    RCUSHIM_STAT_EINVAL_REFUSALS,
    RCUSHIM_STAT_COUNT
};

/*
 * The counters that are not kept elsewhere (deferred_queued and deferred_completed are the
 * shim's rcushim_deferred_queued / rcushim_deferred_completed, pending is their difference).
 *
 * Invariants:
 *  - every field is only accessed with relaxed atomics (Ordering: they are statistics; no other
 *    memory is published through them);
 *  - the `*_live` and `threads_registered` fields go up and down by one per event, so their
 *    value is the number alive now (they never go below 0: each decrement pairs with an earlier
 *    increment of the same instance);
 *  - `deferred_pending_peak` only grows;
 *  - the fields that writers of different threads update often (`olds_live`, `objects_destroyed`)
 *    have cache lines of their own.
 */
struct rcushim_stats_counters {
    uint64_t olds_live __attribute__((aligned(64)));
    uint64_t objects_destroyed __attribute__((aligned(64)));
    uint64_t grace_periods __attribute__((aligned(64)));
    uint64_t deferred_pending_peak;
    uint64_t ptrs_live;
    uint64_t threads_registered;
    uint64_t threads_registered_total;
    uint64_t threads_exited_in_section;
    uint64_t writer_pauses;
    uint64_t writer_pause_ns;
    uint64_t edeadlk_refusals;
    uint64_t eperm_refusals;
    uint64_t einval_refusals;
};

/* EXPORTED-FROM-SHIM (stats.c): the instance's counters, zero when the library is loaded. */
extern struct rcushim_stats_counters rcushim_stats __attribute__((visibility("hidden")));

/* INLINE: adds `n` to a counter of rcushim_stats. */
static inline void rcushim_stats_add(uint64_t *_Nonnull counter, uint64_t n) {
    __atomic_fetch_add(counter, n, __ATOMIC_RELAXED); /* Ordering: statistics only. */
}

/* INLINE: subtracts one from a counter of rcushim_stats that counts things alive now. */
static inline void rcushim_stats_sub(uint64_t *_Nonnull counter) {
    __atomic_fetch_sub(counter, 1, __ATOMIC_RELAXED); /* Ordering: statistics only. */
}

/*
 * The counters every update moves (grace periods, destroys, live handles) are counted per thread,
 * in the thread's state, without an atomic read-modify-write: one thread's plain increment
 * instead of a locked instruction on a line all writers and call_rcu workers share. A reading sums
 * the global counter and every thread's own (rcushim_stats_read); a thread's counts join the
 * global counters when it exits. The inline counting functions (rcushim_stats_grace_period,
 * rcushim_stats_destroyed, rcushim_stats_handle) are in liburcu_shim.h, next to the thread state.
 */
enum {
    RCUSHIM_LOCAL_GRACE_PERIODS = 0,
    RCUSHIM_LOCAL_OBJECTS_DESTROYED,
    RCUSHIM_LOCAL_PTRS_LIVE,
    RCUSHIM_LOCAL_OLDS_LIVE,
    RCUSHIM_LOCAL_COUNT
};

/* The global counter that per-thread counter `which` joins (and that counts for threads without
 * a state of their own). */
static inline uint64_t *_Nonnull rcushim_stats_global(int which) {
    switch (which) {
    case RCUSHIM_LOCAL_GRACE_PERIODS: return &rcushim_stats.grace_periods;
    case RCUSHIM_LOCAL_OBJECTS_DESTROYED: return &rcushim_stats.objects_destroyed;
    case RCUSHIM_LOCAL_PTRS_LIVE: return &rcushim_stats.ptrs_live;
    default: return &rcushim_stats.olds_live;
    }
}

/* EXPORTED-FROM-SHIM: the sums of the per-thread counters of every thread that has a state now
 * (the global counters not included). */
void rcushim_stats_sum_local(uint64_t *_Nonnull out) __attribute__((visibility("hidden")));

/* INLINE: a deferring writer saw `pending` destroys pending; raises the peak if it is higher.
 * Costs one relaxed load when it is not. */
static inline void rcushim_stats_note_pending(uint64_t pending) {
    /* Ordering: relaxed; the peak is a statistic, only its modification order matters. */
    uint64_t peak = __atomic_load_n(&rcushim_stats.deferred_pending_peak, __ATOMIC_RELAXED);
    while (pending > peak &&
           !__atomic_compare_exchange_n(&rcushim_stats.deferred_pending_peak, &peak, pending, 1,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

/* EXPORTED-FROM-SHIM: counts a refusal with status `status` (SWIFTRCU_EDEADLK, _EPERM or
 * _EINVAL; other codes are not counted) and returns `status`, so a refusal branch can end in a
 * tail call. Out of line and cold: refusal branches of read functions call it, and it must not
 * change their common path. */
int32_t rcushim_stats_refuse(int32_t status) __attribute__((visibility("hidden"), noinline, cold));

/* EXPORTED-FROM-SHIM: CLOCK_MONOTONIC in nanoseconds, for timing writer pauses. */
uint64_t rcushim_stats_now_ns(void) __attribute__((visibility("hidden")));

/* EXPORTED-FROM-SHIM: counts one back-pressure pause of a deferring writer that began at
 * `start_ns` (rcushim_stats_now_ns()) and ends now. */
void rcushim_stats_pause_done(uint64_t start_ns) __attribute__((visibility("hidden")));

/* EXPORTED-FROM-SHIM: writes the RCUSHIM_STAT_COUNT values, in the order of the indices above,
 * to `out` (one relaxed load each; not a consistent snapshot). */
void rcushim_stats_read(uint64_t *_Nonnull out) __attribute__((visibility("hidden")));

/* EXPORTED-FROM-SHIM: writes the values as one line "swiftrcu stats: key=value ..." to file
 * descriptor `fd` (what SWIFTRCU_STATS=1 prints at exit). */
void rcushim_stats_print(int fd) __attribute__((visibility("hidden")));

#ifdef __cplusplus
}
#endif
#endif /* SWIFTRCU_RCUSHIM_STATS_H */
