/*
 * SwiftRCU - liburcu shim (room 1 of 3: the only code that touches liburcu).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Wraps liburcu's memb flavour (<urcu/urcu-memb.h>) for Swift. Two kinds of function live here:
 *
 *  - INLINE FAST PATH (static inline, `rcushim_` prefix): compiled into the caller, so the read-side
 *    critical section costs no call into liburcu. Built with _LGPL_SOURCE, which is why the project is
 *    LGPL-2.1-or-later like liburcu.
 *  - EXPORTED-FROM-SHIM (liburcu_shim.c, hidden visibility): thread registration, thread-exit cleanup
 *    and fork handling; never on the read path.
 *
 * Usage rules (liburcu's, restated):
 *  - a thread must be registered before it enters a read-side critical section: call
 *    rcushim_thread_ready() first; it registers on first use;
 *  - grace-period waits (synchronize, barrier) must not be called inside a read-side critical section;
 *  - nothing here checks arguments: the Swift layer does.
 */
#ifndef SWIFTRCU_LIBURCU_SHIM_H
#define SWIFTRCU_LIBURCU_SHIM_H

#ifndef _LGPL_SOURCE
#define _LGPL_SOURCE 1
#endif
#include <stdbool.h>
#include <stdint.h>
#include <urcu/urcu-memb.h>
/* The library's statistics counters (swiftrcu_stats_get, RcuStatistics). */
#include "rcushim_stats.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Deepest nesting of read-side critical sections the library tracks per thread. */
#define RCUSHIM_MAX_NESTING 255

/** Threads of a writers' wait-for cycle a refusal records (longer cycles are cut). */
#define RCUSHIM_CYCLE_MAX 16

/**
 * Per-thread state of the library, allocated on a thread's first use and freed at its exit,
 * reached through the thread-local pointer `rcushim_current`.
 *
 * Invariants:
 *  - `serial` is 0 until the thread's first use, then unique among all threads of the process;
 *  - `ready` is 1 once the thread is registered with liburcu (by the library or adopted), and then
 *    `reader` is the address of the thread's liburcu reader record (&URCU_TLS(urcu_memb_reader));
 *    if the program unregisters an adopted thread from liburcu, the record's `registered` bit
 *    says so and the next use registers it again;
 *  - while `ready` is 0, `reader` is rcushim_unready_reader: a record whose `registered` is 0 and
 *    that nothing writes (so `reader` is never NULL, and one test of `registered` tells ready);
 *  - once `ready`, `membarrier` equals liburcu's urcu_memb_has_sys_membarrier, which liburcu sets
 *    at its initialisation (done before any thread is registered) and never changes afterwards;
 *  - `depth` counts the open read-side sections of the C guards and anonymous regions on this
 *    thread (each one also holds one level of liburcu's nesting counter), innermost last;
 *    `ids[d]` (d >= 1) is the sequence number of the latest section entered at level d, and grows
 *    by one for each (so numbers never repeat at one level); while the section at level d is an
 *    anonymous region, `ids[d]` also has RCUSHIM_REGION_BIT set (region_exit clears it). Guards'
 *    tokens carry numbers below 2^56, so no guard ever names a region's level;
 *  - a section is entered by storing `depth` first, then `ids[depth]` (compiler barriers
 *    between), and left by storing `depth` last: a signal handler that interrupts either step
 *    and takes sections of its own uses levels above the interrupted one and ends them before
 *    it returns, so the interrupted section's entry is left as it was;
 *  - `ids[0]` is RCUSHIM_NO_ID, which no sequence number equals (they are below 2^56), so a
 *    guard that names depth 0 never matches, without a test of its own;
 *  - `held[0 ..< held_count]` are the writer locks this thread holds, innermost last, each with
 *    the step its thread-exit handler runs before releasing it (`abandon(abandon_arg)`, when
 *    not NULL); `held` is `held_inline` or, past RCUSHIM_HELD_INLINE nested locks, a heap array
 *    of `held_capacity` entries; a lock taken while no entry could be added (out of memory) is
 *    not listed (then it is not released at the thread's exit); `last_cycle[0 ..< min(last_cycle_length, RCUSHIM_CYCLE_MAX)]` are the serials of the
 *    wait-for cycle its last refused writer-lock wait found (see rcushim_writer_cycle);
 *  - `local_counts` are this thread's share of the statistics counters that every update moves
 *    (see rcushim_stats.h); only this thread writes them (relaxed atomic stores), a reading of
 *    the statistics sums them (relaxed atomic loads);
 *  - `gp_waiting` is 1 while this thread waits for a grace period on the fast path of
 *    rcushim_synchronize (written by this thread only, read by a forking thread);
 *  - `all_prev` / `all_next` link every thread state that exists into one list (see
 *    rcushim_stats_sum_local), only touched with that list's lock held;
 *  - otherwise only the owning thread reads or writes the struct (the fork and exit handlers run
 *    on it too).
 */
struct rcushim_writer_lock;

/** Writer locks a thread can hold without a heap allocation for their list. */
#define RCUSHIM_HELD_INLINE 8

/** One writer lock a thread holds (see `held` in struct rcushim_thread). */
struct rcushim_held {
    struct rcushim_writer_lock *_Nullable lock;
    void (*_Nullable abandon)(uintptr_t);
    uintptr_t abandon_arg;
};

struct rcushim_thread {
    uint64_t serial;
    uint32_t depth;
    uint8_t ready;
    uint8_t owns_registration; /* 1: the library registered the thread; 0: adopted or none */
    uint8_t in_callback;       /* >0: running a deferred destroy on a liburcu call_rcu thread */
    uint8_t membarrier;        /* liburcu's urcu_memb_has_sys_membarrier, copied once ready */
    struct urcu_reader *_Nonnull reader; /* this thread's liburcu reader record, once ready */
    uint64_t ids[RCUSHIM_MAX_NESTING + 1];
    struct rcushim_held *_Nullable held;
    uint32_t held_count;
    uint32_t held_capacity;
    struct rcushim_held held_inline[RCUSHIM_HELD_INLINE];
    uint32_t last_cycle_length;
    uint64_t last_cycle[RCUSHIM_CYCLE_MAX];
    uint64_t local_counts[RCUSHIM_LOCAL_COUNT];
    uint32_t gp_waiting;
    struct rcushim_thread *_Nullable all_prev;
    struct rcushim_thread *_Nullable all_next;
};

/** `ids[0]` of every thread state, placeholders included. */
#define RCUSHIM_NO_ID UINT64_MAX

/** Set in `ids[d]` while the section at level d is an anonymous region (no token has it). */
#define RCUSHIM_REGION_BIT 0x8000000000000000ULL

/* bench/check-readpath.sh finds the read path's membarrier test by the offset of `membarrier`
 * (bench/readpath_layout.c checks its value at compile time). */

#pragma clang assume_nonnull begin

/*
 * EXPORTED-FROM-SHIM: the calling thread's state, through one pointer in initial-exec TLS. Only
 * a few words use the initial-exec model (a load relative to the thread pointer, no call): this
 * pointer, the thread's serial and its fork-preparation flag. The state itself (2.5 KiB) is on the
 * heap and liburcu's variables keep the default model, so the library's TLS segment stays small
 * (under 64 bytes) and it still loads with dlopen. Until
 * the thread has its state, and after it has exited, the pointer names a shared placeholder whose
 * `ready` is 0 and which nothing writes.
 */
extern __thread struct rcushim_thread *rcushim_current
    __attribute__((tls_model("initial-exec"), visibility("hidden")));

/* INLINE: counts `delta` (two's complement for a decrease) in per-thread counter `which` of the
 * calling thread (see rcushim_stats.h); in the global counter when the thread has no state (a
 * placeholder, serial 0, is never written). */
static inline void rcushim_stats_count(int which, uint64_t delta) {
    struct rcushim_thread *t = rcushim_current;
    if (__builtin_expect(t->serial != 0, 1)) {
        /* Ordering: relaxed; only this thread writes the counter, readers only sum it. */
        uint64_t v = __atomic_load_n(&t->local_counts[which], __ATOMIC_RELAXED);
        __atomic_store_n(&t->local_counts[which], v + delta, __ATOMIC_RELAXED);
    } else {
        __atomic_fetch_add(rcushim_stats_global(which), delta, __ATOMIC_RELAXED); /* Ordering: as above. */
    }
}

/* INLINE: a grace-period wait the library made has completed. */
static inline void rcushim_stats_grace_period(void) { rcushim_stats_count(RCUSHIM_LOCAL_GRACE_PERIODS, 1); }

/* INLINE: a destroy function (or a Swift release standing for one) was called. */
static inline void rcushim_stats_destroyed(void) { rcushim_stats_count(RCUSHIM_LOCAL_OBJECTS_DESTROYED, 1); }

/* INLINE: a handle of kind `kind` (1 ptr, 2 old: the low bits of a C ABI handle) became live
 * (`delta` 1) or was retired (`delta` -1). */
static inline void rcushim_stats_handle(uint64_t kind, int delta) {
    rcushim_stats_count((kind & 3) == 1 ? RCUSHIM_LOCAL_PTRS_LIVE : RCUSHIM_LOCAL_OLDS_LIVE,
                        delta > 0 ? 1 : (uint64_t)-1);
}

/* INLINE FAST PATH: the calling thread's state, or the read-only placeholder before it is ready:
 * read fields only (`serial` 0 and `depth` 0 make every guard check fail there). */
static inline struct rcushim_thread *rcushim_self(void) { return rcushim_current; }

/* INLINE FAST PATH: a compiler barrier (no instruction): keeps the compiler from moving memory
 * accesses across it, which is all a signal handler on the same thread needs. */
static inline void rcushim_compiler_barrier(void) { cmm_barrier(); }

/* INLINE FAST PATH: the identity stack of the calling thread's sections (`ids[1...depth]`). */
static inline uint64_t *rcushim_ids(struct rcushim_thread *t) { return t->ids; }

/* INLINE FAST PATH: liburcu's urcu_memb_smp_mb_slave with the flag read from the thread's own
 * state (already in a register on the read path) instead of through the GOT. */
static inline void rcushim_mb_slave(int membarrier) {
    if (caa_likely(membarrier))
        cmm_barrier();
    else
        cmm_smp_mb();
}

/*
 * INLINE FAST PATH: liburcu's read lock and unlock (_urcu_memb_read_lock / _urcu_memb_read_unlock
 * in <urcu/static/urcu-memb.h>), taking the reader record from `t` instead of from liburcu's
 * thread-local variable: in a shared library every thread-local lookup is a call to
 * __tls_get_addr, and this way a read section pays for one (the library's own state) instead of
 * two. The steps, the barriers and the wake-up are liburcu's own, via its inline helpers (the
 * barrier's flag comes from `t`). Requires t->ready.
 */
static inline void rcushim_read_lock(struct rcushim_thread *t) {
    struct urcu_reader *r = t->reader;
    int membarrier = t->membarrier;
    cmm_barrier();
    unsigned long tmp = r->ctr;
    if (caa_likely(!(tmp & URCU_GP_CTR_NEST_MASK))) {
        /* Outermost: snapshot the grace-period phase, then order it before the section. */
        _CMM_STORE_SHARED(r->ctr, _CMM_LOAD_SHARED(urcu_memb_gp.ctr));
        rcushim_mb_slave(membarrier);
    } else {
        _CMM_STORE_SHARED(r->ctr, tmp + URCU_GP_COUNT);
    }
}

/* EXPORTED-FROM-SHIM: liburcu's wake-up of a writer waiting for readers (urcu_common_wake_up_gp),
 * the rare last step of leaving an outermost section; out of line. */
void rcushim_wake_writer(void) __attribute__((visibility("hidden")));

/*
 * INLINE FAST PATH: rcushim_read_unlock without its wake-up step; returns nonzero when a writer
 * waits to be woken, and then the caller must call rcushim_wake_writer() next. Lets an exported
 * unlock keep that call off its common path (which then needs no stack frame).
 */
static inline int rcushim_read_leave(struct rcushim_thread *t) {
    struct urcu_reader *r = t->reader;
    int membarrier = t->membarrier;
    unsigned long tmp = r->ctr;
    int wake = 0;
    if (caa_likely((tmp & URCU_GP_CTR_NEST_MASK) == URCU_GP_COUNT)) {
        /* Outermost: order the section before leaving it, then see whether a writer waits. */
        rcushim_mb_slave(membarrier);
        _CMM_STORE_SHARED(r->ctr, tmp - URCU_GP_COUNT);
        rcushim_mb_slave(membarrier);
        /* The test of urcu_common_wake_up_gp; rcushim_wake_writer repeats it. Ordering: as
         * liburcu's, a plain load after the barrier above. */
        wake = caa_unlikely(uatomic_read(&urcu_memb_gp.futex) == -1);
    } else {
        _CMM_STORE_SHARED(r->ctr, tmp - URCU_GP_COUNT);
    }
    cmm_barrier();
    return wake;
}

static inline void rcushim_read_unlock(struct rcushim_thread *t) {
    if (caa_unlikely(rcushim_read_leave(t)))
        rcushim_wake_writer();
}

/* EXPORTED-FROM-SHIM: stops the program with a message: a Swift guard ends on another thread than
 * the one that took it. Never returns. */
void rcushim_guard_moved(void) __attribute__((noreturn, cold, visibility("hidden")));

/* EXPORTED-FROM-SHIM: the calling thread's serial, 0 until it has one (see rcushim_thread_serial);
 * initial-exec like rcushim_current, so a guard's thread check is one compare. */
extern __thread uint64_t rcushim_serial __attribute__((tls_model("initial-exec"), visibility("hidden")));

/*
 * INLINE FAST PATH: ends the section of a Swift guard taken by the thread whose state is `t` and
 * whose serial is `serial`, after checking that the calling thread is that thread (serials are
 * never reused, unlike state addresses); then `t` is the calling thread's own live state. On any
 * other thread it stops the program before touching any thread's state.
 */
static inline void rcushim_guard_unlock(struct rcushim_thread *t, uint64_t serial) {
    if (caa_unlikely(rcushim_serial != serial))
        rcushim_guard_moved();
    rcushim_read_unlock(t);
}

/* INLINE FAST PATH: nonzero while this thread is inside any liburcu memb read-side section
 * (the library's, or the program's own when it also uses liburcu directly). A registered thread
 * whose state is ready reads its record through that state (no __tls_get_addr call); any other
 * asks liburcu (its state names rcushim_unready_reader, whose registered bit is 0). */
static inline int rcushim_read_ongoing(void) {
    struct urcu_reader *r = rcushim_current->reader;
    if (caa_likely(r->registered))
        return (_CMM_LOAD_SHARED(r->ctr) & URCU_GP_CTR_NEST_MASK) != 0;
    return _urcu_memb_read_ongoing() != 0;
}

/* EXPORTED-FROM-SHIM: registers the calling thread on first use (or adopts a registration the
 * program made itself); returns its state, or NULL when the thread is exiting. */
struct rcushim_thread *_Nullable rcushim_thread_init(void) __attribute__((visibility("hidden")));

/* EXPORTED-FROM-SHIM: the reader record of every thread state that is not ready (placeholders
 * included): its `registered` is 0 and nothing writes it. */
extern struct urcu_reader rcushim_unready_reader __attribute__((visibility("hidden")));

/* INLINE FAST PATH: whether `t` (from rcushim_self()) may enter a read-side section as it is,
 * without rcushim_thread_init: `ready`, and, for an adopted registration, which the program may
 * withdraw behind our back, still registered with liburcu. One test covers both, because a
 * state that is not ready names rcushim_unready_reader, whose registered bit is 0. */
static inline int rcushim_is_ready(struct rcushim_thread *t) {
    return t->reader->registered;
}

/* INLINE FAST PATH: the calling thread's state, ready to enter a read-side section (registered
 * on first use); NULL when the thread is exiting. Writable, unlike rcushim_self() before init. */
static inline struct rcushim_thread *_Nullable rcushim_ready_self(void) {
    struct rcushim_thread *t = rcushim_current;
    if (caa_likely(rcushim_is_ready(t)))
        return t;
    return rcushim_thread_init();
}

/* EXPORTED-FROM-SHIM: undoes the library's registration of the calling thread (an adopted
 * registration is only forgotten). Requires depth == 0 and no liburcu section open. */
void rcushim_thread_fini(void) __attribute__((visibility("hidden")));

/* EXPORTED-FROM-SHIM: waits for a grace period (urcu_memb_synchronize_rcu), excluded from fork;
 * returns 0, or -1, waiting for nothing, where grace periods are refused (rcushim_gp_refused). */
int rcushim_synchronize(void) __attribute__((visibility("hidden")));

/* EXPORTED-FROM-SHIM: 1 in a process forked (directly or through its ancestors) by a thread that
 * was inside a read-side section while another thread held liburcu's grace-period lock: there
 * that lock, and maybe liburcu's registry lock, belong to a thread that does not exist, so every
 * wait for a grace period (synchronize, barrier), every first registration of a thread and the
 * unregistration at thread exit are refused or skipped. Set only by the fork handler of the
 * child, when no other thread exists; 0 otherwise. */
extern int rcushim_gp_refused __attribute__((visibility("hidden")));

/* INLINE FAST PATH: whether waits for a grace period are refused in this process. */
static inline int rcushim_grace_periods_refused(void) { return rcushim_gp_refused; }

/* EXPORTED-FROM-SHIM: waits until no grace-period wait (rcushim_synchronize) is in progress and keeps
 * new ones from starting until the calling thread's next fork() (the fork handler then skips that
 * wait). Requires the calling thread to be outside any read-side section. */
void rcushim_prepare_fork(void) __attribute__((visibility("hidden")));

/*
 * Deferred-destroy counters: queued by writers, completed by liburcu's call_rcu threads. Two
 * counters on their own cache lines, so writers and the callback thread do not share one;
 * pending = queued - completed. Ordering: relaxed; they are statistics and a back-pressure signal.
 */
extern uint64_t rcushim_deferred_queued __attribute__((visibility("hidden")));
extern uint64_t rcushim_deferred_completed __attribute__((visibility("hidden")));

/* Returns the count with this one included. */
static inline uint64_t rcushim_count_deferred_queued(void) {
    return __atomic_add_fetch(&rcushim_deferred_queued, 1, __ATOMIC_RELAXED); /* Ordering: see above. */
}

/** Writers look at the pending count (a line the call_rcu workers write) once per this many
 *  deferred destroys, not on every one. */
#define RCUSHIM_PENDING_CHECK_INTERVAL 64

/* Whether the last look at the pending count found it past RCUSHIM_SPREAD_THRESHOLD: then writers
 * look at every deferral (exact back-pressure) until a look finds it below again. Written only
 * when it changes. Ordering: relaxed; a hint, the count itself decides. */
extern uint32_t rcushim_deferred_loaded_flag __attribute__((visibility("hidden")));

static inline bool rcushim_deferred_loaded(void) {
    return __atomic_load_n(&rcushim_deferred_loaded_flag, __ATOMIC_RELAXED) != 0;
}

static inline void rcushim_set_deferred_loaded(bool loaded) {
    if (rcushim_deferred_loaded() != loaded) {
        __atomic_store_n(&rcushim_deferred_loaded_flag, loaded ? 1u : 0u, __ATOMIC_RELAXED);
    }
}

static inline void rcushim_count_deferred_completed(uint64_t n) {
    __atomic_fetch_add(&rcushim_deferred_completed, n, __ATOMIC_RELAXED); /* Ordering: see above. */
}

static inline uint64_t rcushim_deferred_pending(void) {
    /* Ordering: relaxed; read completed first so a racing pair never looks negative. */
    uint64_t completed = __atomic_load_n(&rcushim_deferred_completed, __ATOMIC_RELAXED);
    uint64_t queued = __atomic_load_n(&rcushim_deferred_queued, __ATOMIC_RELAXED);
    return queued >= completed ? queued - completed : 0;
}

/** Pending deferred destroys beyond which the library asks liburcu for one call_rcu worker per
 *  CPU (once per process), so destroys keep up with writers and memory stays bounded. */
#define RCUSHIM_SPREAD_THRESHOLD 65536

/** Pending deferred destroys beyond which a deferring thread outside any read-side section
 *  pauses (up to RCUSHIM_BACKPRESSURE_MAX_US per call) until the queue is below half of it:
 *  back-pressure for writers that outrun the workers even after spreading. */
#define RCUSHIM_BACKPRESSURE_THRESHOLD (1 << 18)
#define RCUSHIM_BACKPRESSURE_MAX_US 10000

/** Pending deferred destroys from which swiftrcu_old_defer called inside a read-side section
 *  (where it cannot pause, and nothing completes) refuses with SWIFTRCU_ENOMEM. */
#define RCUSHIM_DEFER_HARD_LIMIT (1 << 21)

/* EXPORTED-FROM-SHIM: creates liburcu's per-CPU call_rcu workers, once per process. */
void rcushim_spread_call_rcu(void) __attribute__((visibility("hidden")));

/* INLINE FAST PATH: in a call_rcu callback, starts fetching the next queued head (liburcu links
 * its queue through the heads' first word). Ordering: relaxed; only a hint, whatever it reads. */
static inline void rcushim_prefetch_next_head(struct rcu_head *head) {
    __builtin_prefetch(__atomic_load_n(&head->next.next, __ATOMIC_RELAXED), 1, 3);
}

/* Deferred work: thin wrappers over liburcu's exported functions. */
static inline void rcushim_barrier(void) { urcu_memb_barrier(); }
static inline void rcushim_call_rcu(struct rcu_head *head, void (*func)(struct rcu_head *)) {
    urcu_memb_call_rcu(head, func);
}

/* Makes sure liburcu's default call_rcu worker exists, so that a later call_rcu does not take
 * liburcu's call_rcu lock (held across fork) to create it. */
static inline void rcushim_call_rcu_prepare(void) { (void)urcu_memb_get_default_call_rcu_data(); }

/*
 * The writer lock of one RCU pointer (used by Sources/SwiftRCU/WriterLock.swift). The lock word
 * holds the holder's thread serial, so a holder is identified exactly, also across fork: in a
 * forked child, a lock whose holder does not exist there (it was another thread of the parent) is
 * taken over by the next writer instead of blocking it for ever; the forking thread keeps the
 * locks it held.
 *
 *
 * A thread that exits (pthread_exit, cancellation) while it holds writer locks has them released
 * by its thread-exit handler, after `abandon(abandon_arg)` when the holder set one: the update it
 * had begun is abandoned (nothing is published). The holder keeps that list in its own thread
 * state, so the lock itself is two words and fits in place in a pointer cell. A writer that
 * would wait for a lock whose holder waits, directly or through other writers, for a lock the
 * writer holds is refused instead (rcushim_writer_lock_acquire returns nonzero), so such a
 * deadlock never forms.
 *
 * Invariants:
 *  - `word` is 0 when the lock is free, else `serial << 1`: `serial` is the holder's thread
 *    serial (never 0); only accessed atomically;
 *  - `parked` is 1 when a thread may be parked on `wake_seq` (then the next release clears it and
 *    wakes one, and that one, once it holds the lock, sets it again for any others): a waiter
 *    sets it, then fences, then looks at `word` once more before it parks; only accessed
 *    atomically;
 *  - `wake_seq` only grows (wrapping), once per release that found `parked` set; waiters park on
 *    it.
 */
struct rcushim_writer_lock {
    uint64_t word;
    uint32_t wake_seq;
    uint32_t parked;
};

_Static_assert(sizeof(struct rcushim_writer_lock) == 16, "a writer lock is two words");

/* EXPORTED-FROM-SHIM: the calling thread's serial (allocating its state on first use, without
 * registering it with liburcu); stable for the thread's life, also while it exits. */
uint64_t rcushim_thread_serial(void) __attribute__((visibility("hidden")));

/* INLINE FAST PATH: the calling thread's serial (see rcushim_thread_serial). */
static inline uint64_t rcushim_writer_serial(void) {
    uint64_t s = rcushim_current->serial;
    return caa_likely(s != 0) ? s : rcushim_thread_serial();
}

/* EXPORTED-FROM-SHIM: the contended halves of acquire and release below. The wait returns 0
 * once the lock is taken, or, taking nothing, the length of the wait-for cycle that waiting would
 * close (see rcushim_writer_cycle). */
int rcushim_writer_lock_wait(struct rcushim_writer_lock *l, uint64_t serial) __attribute__((visibility("hidden")));
void rcushim_writer_lock_wake(struct rcushim_writer_lock *l) __attribute__((visibility("hidden")));

/* EXPORTED-FROM-SHIM: lists `l` as held by `t` when its inline list is full (growing the list);
 * lists nothing when out of memory. */
void rcushim_writer_held_push_slow(struct rcushim_thread *t, struct rcushim_writer_lock *l)
    __attribute__((visibility("hidden")));

/* EXPORTED-FROM-SHIM: rcushim_writer_self's slow path. */
struct rcushim_thread *_Nullable rcushim_writer_self_slow(void) __attribute__((visibility("hidden")));

/* INLINE FAST PATH: the calling thread's state, for a writer (allocated on first use, without
 * registering the thread with liburcu); NULL when the thread is exiting (its exit handler has
 * run, so nothing it takes later is released at its exit) or out of memory. */
static inline struct rcushim_thread *_Nullable rcushim_writer_self(void) {
    struct rcushim_thread *t = rcushim_current;
    return caa_likely(t->serial != 0) ? t : rcushim_writer_self_slow();
}

/*
 * INLINE FAST PATH: takes the lock for the calling thread, whose serial is `serial` and whose
 * state is `t` (from rcushim_writer_self; NULL on an exiting thread). Not re-entrant: the caller
 * checks rcushim_writer_lock_held first. Returns 0 with the lock held; nonzero, taking nothing,
 * when waiting would deadlock (the holder waits, directly or through other writers, for a lock
 * this thread holds).
 */
static inline int rcushim_writer_lock_acquire(struct rcushim_writer_lock *l, struct rcushim_thread *_Nullable t,
                                              uint64_t serial) {
    uint64_t expected = 0;
    /* Ordering: acquire pairs with the release in rcushim_writer_lock_release, so the previous
     * holder's writes are visible to this one. */
    if (caa_unlikely(!__atomic_compare_exchange_n(&l->word, &expected, serial << 1, 0, __ATOMIC_ACQUIRE,
                                                  __ATOMIC_RELAXED))) {
        int cycle = rcushim_writer_lock_wait(l, serial);
        if (cycle != 0)
            return cycle;
    }
    if (t != NULL) {
        if (caa_likely(t->held_count < t->held_capacity))
            t->held[t->held_count++] = (struct rcushim_held){l, NULL, 0};
        else
            rcushim_writer_held_push_slow(t, l);
    }
    return 0;
}

/* INLINE FAST PATH: releases the lock; only its holder (state `t`, as given to acquire) calls
 * it, for its innermost held lock. */
static inline void rcushim_writer_lock_release(struct rcushim_writer_lock *l, struct rcushim_thread *_Nullable t) {
    /* The innermost listed lock is `l` unless listing it failed (out of memory). */
    if (t != NULL && t->held_count != 0 && t->held[t->held_count - 1].lock == l)
        t->held_count--;
    /* Ordering: release pairs with the acquiring compare-exchange of the next holder. */
    __atomic_store_n(&l->word, 0, __ATOMIC_RELEASE);
    /* Ordering: the store before the look at `parked`, with asymmetric fences as liburcu orders
     * its readers and writers: a compiler barrier here when the process has sys_membarrier (a
     * waiter issues one after setting `parked`), else a full fence on both sides. Either the
     * waiter sees `word` free when it looks again, or this sees `parked` set and wakes one. A
     * store and a load instead of an exchange: one locked instruction less per write. */
    if (caa_likely(t != NULL && t->membarrier))
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
    else
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (caa_unlikely(__atomic_load_n(&l->parked, __ATOMIC_RELAXED)))
        rcushim_writer_lock_wake(l);
}

/* INLINE FAST PATH: what the thread-exit handler does first if the holder (state `t`, as given to
 * acquire) exits before releasing `l`, its innermost lock: abandon(arg), then the release. */
static inline void rcushim_writer_lock_on_exit(struct rcushim_writer_lock *l, struct rcushim_thread *_Nullable t,
                                               void (*_Nullable abandon)(uintptr_t), uintptr_t arg) {
    if (t != NULL && t->held_count != 0 && t->held[t->held_count - 1].lock == l) {
        t->held[t->held_count - 1].abandon = abandon;
        t->held[t->held_count - 1].abandon_arg = arg;
    }
}

/* EXPORTED-FROM-SHIM: the thread serials of the wait-for cycle the calling thread's last refused
 * acquire found (the thread itself first, then the holder of the lock it asked for, and so on);
 * writes at most `capacity` of them and returns how many there were (0 on an exiting thread). */
int rcushim_writer_cycle(uint64_t *out, int capacity) __attribute__((visibility("hidden")));

/* INLINE FAST PATH: whether the thread with serial `serial` holds the lock. */
static inline int rcushim_writer_lock_held(struct rcushim_writer_lock *l, uint64_t serial) {
    /* Ordering: relaxed; only the thread with that serial stores it into `word`, so a match is
     * this thread's own earlier store. */
    return (__atomic_load_n(&l->word, __ATOMIC_RELAXED) >> 1) == serial;
}

#pragma clang assume_nonnull end

#ifdef __cplusplus
}
#endif
#endif /* SWIFTRCU_LIBURCU_SHIM_H */
