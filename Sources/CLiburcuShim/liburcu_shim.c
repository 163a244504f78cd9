/*
 * SwiftRCU - liburcu shim (room 1 of 3), EXPORTED-FROM-SHIM part.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Thread registration with liburcu on first use, release of a thread's read locks and
 * registration when it exits, and fork handling. Nothing here is on the read path.
 */
#include "liburcu_shim.h"

#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* What rcushim_current names before a thread has its state and after it exited; never written.
 * A thread's own state is allocated on its first use (kept out of TLS so that the library's TLS
 * segment stays small enough for dlopen with one initial-exec variable) and freed at its exit. */
struct urcu_reader rcushim_unready_reader;
static struct rcushim_thread unready_placeholder = {.reader = &rcushim_unready_reader, .ids = {RCUSHIM_NO_ID}};
static struct rcushim_thread exited_placeholder = {.reader = &rcushim_unready_reader, .ids = {RCUSHIM_NO_ID}};

__thread struct rcushim_thread *rcushim_current
    __attribute__((tls_model("initial-exec"))) = &unready_placeholder;

/*
 * Registry of the threads that have used the library, so that a forked child can mark the
 * read sections of threads that do not exist in it as ended.
 *
 * Invariants: `registry_head` links, through `registry_link`, every thread that ran
 * rcushim_thread_init and has not exited; it is only touched with `registry_lock` held.
 */
struct registry_entry {
    struct registry_entry *next;
    struct urcu_reader *reader; /* the thread's liburcu reader record */
};
static __thread struct registry_entry registry_link;
static struct registry_entry *registry_head;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

/* Held for reading around every liburcu call that takes liburcu's registry or grace-period locks
 * (register, unregister, and synchronize on its locked path; its fast path is covered by the
 * gate, see gp_gate), and for writing across fork, so that no such lock is held by a thread that
 * does not exist in the child. Never held across a barrier: liburcu's call_rcu
 * threads are paused during fork and a barrier waits for them. */
static pthread_rwlock_t gp_fork_lock = PTHREAD_RWLOCK_INITIALIZER;

/* Held for reading around every grace-period wait on the locked path of rcushim_synchronize (a
 * thread without a state, or while the gate is closed), and for writing from
 * rcushim_prepare_fork, or else from before_fork, until the fork is done (which also close the
 * gate and wait for the fast-path waits). It lets a binding wait
 * for the grace periods in progress before fork() begins, without holding a lock of its own that
 * their readers may need (Python's interpreter lock), and without blocking first-use
 * registration, which takes only gp_fork_lock.
 *
 * Invariants: `fork_prepared` is 1 exactly while the calling thread holds sync_fork_lock for
 * writing; lock order: sync_fork_lock before gp_fork_lock. */
static pthread_rwlock_t sync_fork_lock = PTHREAD_RWLOCK_INITIALIZER;
static __thread int fork_prepared __attribute__((tls_model("initial-exec")));

uint64_t rcushim_deferred_queued __attribute__((aligned(64)));
uint64_t rcushim_deferred_completed __attribute__((aligned(64)));
uint32_t rcushim_deferred_loaded_flag __attribute__((aligned(64)));

static pthread_key_t exit_key;

int rcushim_gp_refused;

/*
 * Writers waiting for a writer lock, for the detection of wait-for cycles.
 *
 * Invariants: `waiters` links, through `next`, one entry per thread parked (or about to park) in
 * rcushim_writer_lock_wait, naming the lock it waits for; each entry lives in that call's frame
 * and is unlinked before it returns; the list is only touched with `waiters_lock` held.
 */
struct waiter {
    struct waiter *next;
    uint64_t serial;
    struct rcushim_writer_lock *lock;
};
static struct waiter *waiters;
static pthread_mutex_t waiters_lock = PTHREAD_MUTEX_INITIALIZER;

#define CYCLE_MAX RCUSHIM_CYCLE_MAX

/*
 * Every thread state that exists, for the sums of the per-thread statistics counters.
 *
 * Invariants: `all_states` links, through `all_next` / `all_prev`, every state new_state made and
 * on_thread_exit has not freed yet (in a forked child: only the forking thread's); touched only
 * with `all_lock` held, which is a leaf lock (nothing else is taken while it is held) and is held
 * across fork.
 */
static struct rcushim_thread *all_states;
static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;

/* Adds a state's per-thread counters to the global ones. */
static void fold_local_counts(struct rcushim_thread *t) {
    for (int i = 0; i < RCUSHIM_LOCAL_COUNT; i++)
        __atomic_fetch_add(rcushim_stats_global(i), __atomic_load_n(&t->local_counts[i], __ATOMIC_RELAXED),
                           __ATOMIC_RELAXED); /* Ordering: statistics only. */
}

void rcushim_stats_sum_local(uint64_t *out) {
    for (int i = 0; i < RCUSHIM_LOCAL_COUNT; i++)
        out[i] = 0;
    pthread_mutex_lock(&all_lock);
    for (struct rcushim_thread *t = all_states; t != NULL; t = t->all_next)
        for (int i = 0; i < RCUSHIM_LOCAL_COUNT; i++)
            out[i] += __atomic_load_n(&t->local_counts[i], __ATOMIC_RELAXED); /* Ordering: statistics only. */
    pthread_mutex_unlock(&all_lock);
}

/*
 * Thread serials. `serial_counter` is inherited by a forked child, so the serials a process hands
 * out after its last fork are above `fork_mark` (the counter's value at that fork) and, within a
 * line of forked processes, a serial names one thread: the values at or below `fork_mark` were
 * handed out by ancestors before the forks that lead here, and of those threads only `survivor`
 * (the thread that forked this process; 0 if it had no serial) exists here.
 *
 * Invariants: `rcushim_serial` is 0 or the calling thread's serial, which never changes for the
 * thread's life (its state's `serial` is a copy); `fork_mark` and `survivor` are 0 in a process
 * that was not forked and only change in after_fork_child, when no other thread exists.
 */
static uint64_t serial_counter;
static uint64_t fork_mark;
static uint64_t survivor;
__thread uint64_t rcushim_serial __attribute__((tls_model("initial-exec")));

static void registry_remove(struct registry_entry *entry) {
    pthread_mutex_lock(&registry_lock);
    for (struct registry_entry **p = &registry_head; *p != NULL; p = &(*p)->next) {
        if (*p == entry) {
            *p = entry->next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
}

/* The calling thread's own state, or NULL while it has none (a placeholder is current). */
static struct rcushim_thread *own_state(void) {
    struct rcushim_thread *t = rcushim_current;
    return (t == &unready_placeholder || t == &exited_placeholder) ? NULL : t;
}

/* Leaves the registry and undoes the library's own liburcu registration (an adopted one stays). */
static void release_registration(struct rcushim_thread *t) {
    registry_remove(&registry_link);
    /* In a child forked while a grace period was waiting, liburcu's registry lock may be held
     * by a thread that does not exist there: leave the record linked (no scan ever runs there). */
    if (t->owns_registration && URCU_TLS(urcu_memb_reader).registered && !rcushim_gp_refused) {
        pthread_rwlock_rdlock(&gp_fork_lock);
        urcu_memb_unregister_thread();
        pthread_rwlock_unlock(&gp_fork_lock);
    }
    rcushim_stats_sub(&rcushim_stats.threads_registered);
    t->ready = 0;
    t->reader = &rcushim_unready_reader; /* INVARIANT: not ready */
    t->owns_registration = 0;
}

/* Runs when a thread that used the library exits: ends the read sections it still holds and
 * undoes the library's registration, so that grace periods never wait for a dead thread. */
static void on_thread_exit(void *unused) {
    (void)unused;
    struct rcushim_thread *t = own_state();
    if (t == NULL) {
        rcushim_current = &exited_placeholder;
        return;
    }
    /* Writer locks first (a copy_update callback left by pthread_exit or cancellation): each
     * holder's abandon step (the C ABI returns the old handle slot it had reserved), then the
     * release, which wakes a waiting writer. Nothing of the unfinished update was published. */
    while (t->held_count != 0) {
        struct rcushim_held h = t->held[t->held_count - 1];
        if (h.abandon != NULL)
            h.abandon(h.abandon_arg);
        rcushim_writer_lock_release(h.lock, t); /* unlists it */
    }
    if (t->held != t->held_inline)
        free(t->held);
    t->held = t->held_inline;
    t->held_capacity = RCUSHIM_HELD_INLINE;
    rcushim_current = &exited_placeholder;
    if (t->ready) {
        rcushim_stats_add(&rcushim_stats.threads_exited_in_section, t->depth > 0);
        while (t->depth > 0) {
            t->depth--;
            rcushim_read_unlock(t);
        }
        release_registration(t);
    }
    /* Its counts join the global counters as it leaves the list (no count lands in it any more:
     * the placeholder is current). */
    pthread_mutex_lock(&all_lock);
    fold_local_counts(t);
    if (t->all_prev != NULL)
        t->all_prev->all_next = t->all_next;
    else
        all_states = t->all_next;
    if (t->all_next != NULL)
        t->all_next->all_prev = t->all_prev;
    pthread_mutex_unlock(&all_lock);
    free(t);
}

/* Whether before_fork took gp_fork_lock (it does not when that could deadlock, see there), and
 * whether it found no fast-path grace-period wait in progress (see gp_gate). */
static int fork_took_gp_lock;
static int fork_drained;

/*
 * The fast path of a grace-period wait (rcushim_synchronize, for a thread with a state): instead
 * of the two rwlocks, the waiter sets its state's `gp_waiting`, then looks at `gp_gate`; a thread
 * that forks (or prepares a fork) closes the gate, then looks at every state's flag. Asymmetric
 * fences order the two sides as liburcu orders its readers and writers: the waiter's is a
 * compiler barrier when the process has sys_membarrier (the forker then issues one), else both
 * use full fences. So either the waiter sees the gate closed and takes the locked path (which
 * the forker holds off), or the forker sees the flag and waits until it is cleared.
 *
 * Invariants: `gp_gate` counts the threads that closed the gate (forking or having prepared a
 * fork) and have not reopened it; only accessed atomically.
 */
static int gp_gate;

/* The heavy side of an asymmetric fence (the gate's forker, a parking writer-lock waiter): a full
 * fence on every thread of the process that runs now, where the process has sys_membarrier (the
 * light side is then a compiler barrier), else a full fence of this thread's (and the light side
 * uses one too). */
static void heavy_fence(void) {
    if (urcu_memb_has_sys_membarrier)
        /* liburcu registered the process for it (and relies on it the same way). */
        (void)syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0);
    else
        __atomic_thread_fence(__ATOMIC_SEQ_CST); /* Ordering: see gp_gate and the writer lock. */
}

/* Closes the gate to the fast path, then waits until no other thread is in a fast-path
 * grace-period wait: for ever when `ms` is negative, else about `ms` milliseconds at most.
 * Returns 1 when none is (the gate stays closed either way; gp_gate_open reopens it). */
static int gp_gate_close_and_drain(int ms) {
    __atomic_fetch_add(&gp_gate, 1, __ATOMIC_RELAXED); /* Ordering: the fence below orders it. */
    heavy_fence();
    struct rcushim_thread *self = own_state();
    for (int waited = 0;; waited++) {
        int busy = 0;
        pthread_mutex_lock(&all_lock);
        for (struct rcushim_thread *t = all_states; t != NULL && !busy; t = t->all_next)
            /* Ordering: acquire pairs with the waiter's release store that clears the flag. */
            busy = t != self && __atomic_load_n(&t->gp_waiting, __ATOMIC_ACQUIRE);
        pthread_mutex_unlock(&all_lock);
        if (!busy)
            return 1;
        if (ms >= 0 && waited >= ms * 20)
            return 0;
        usleep(50);
    }
}

static void gp_gate_open(void) { __atomic_fetch_sub(&gp_gate, 1, __ATOMIC_RELEASE); /* Ordering: after the fork. */ }

/* Takes gp_fork_lock for writing within about `ms` milliseconds; 0 when it could not. */
static int gp_fork_lock_within(int ms) {
    for (int waited = 0;; waited++) {
        if (pthread_rwlock_trywrlock(&gp_fork_lock) == 0)
            return 1;
        if (waited >= ms)
            return 0;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static void before_fork(void) {
    /* A fork from a destroy that runs deferred: liburcu's handler below waits for the call_rcu
     * thread it runs on to pause, for ever. A fork handler cannot make fork() fail: say so and
     * stop rather than hang without a word. */
    struct rcushim_thread *self = own_state();
    if (self != NULL && self->in_callback) {
        static const char msg[] =
            "swiftrcu: fork() called from a destroy function running deferred (on a liburcu "
            "call_rcu thread): liburcu's fork handler would wait for that thread for ever; "
            "aborting\n";
        (void)!write(2, msg, sizeof msg - 1);
        abort();
    }
    /* liburcu's handler below waits for its call_rcu threads to pause, and one with destroys to
     * run first waits for a grace period, which waits for this thread's open section: a deadlock
     * the library cannot avoid (see README). Say so rather than hang without a word. */
    int in_section = rcushim_read_ongoing();
    if (in_section && rcushim_deferred_pending() > 0) {
        static const char msg[] =
            "swiftrcu: fork() called inside a read-side critical section while deferred destroys "
            "are pending: liburcu's fork handler waits for a grace period that waits for this "
            "thread, so fork() will not return\n";
        (void)!write(2, msg, sizeof msg - 1);
    }
    urcu_memb_call_rcu_before_fork();
    /* A fork the binding prepared holds sync_fork_lock already; outside a read section take it
     * here, so no grace-period wait is in progress at the fork. */
    if (!fork_prepared && !in_section) {
        pthread_rwlock_wrlock(&sync_fork_lock);
        fork_prepared = 1; /* INVARIANT: held for writing */
        (void)gp_gate_close_and_drain(-1);
        fork_drained = 1;
    } else if (!fork_prepared) {
        /* Inside a read section a fast-path waiter may be waiting for this very thread. */
        fork_drained = gp_gate_close_and_drain(20);
    } else {
        fork_drained = 1; /* rcushim_prepare_fork drained and keeps the gate closed */
    }
    /* Inside a read section, a thread waiting for a grace period (which holds gp_fork_lock for
     * reading) may be waiting for this very thread: do not wait for it beyond a moment. Then the
     * child may inherit liburcu's grace-period and registry locks held by a thread that does not
     * exist there, and refuses everything that would take them (rcushim_gp_refused). */
    if (in_section) {
        fork_took_gp_lock = gp_fork_lock_within(20);
    } else {
        pthread_rwlock_wrlock(&gp_fork_lock);
        fork_took_gp_lock = 1;
    }
    pthread_mutex_lock(&registry_lock);
    pthread_mutex_lock(&all_lock); /* a leaf lock: last */
}

static void after_fork_parent(void) {
    pthread_mutex_unlock(&all_lock);
    pthread_mutex_unlock(&registry_lock);
    if (fork_took_gp_lock)
        pthread_rwlock_unlock(&gp_fork_lock);
    if (fork_prepared) {
        fork_prepared = 0; /* INVARIANT: released next */
        pthread_rwlock_unlock(&sync_fork_lock);
    }
    gp_gate_open();
    urcu_memb_call_rcu_after_fork_parent();
}

static void after_fork_child(void) {
    /* The other threads' states stay behind (they do not exist here): their counts join the
     * global counters and only this thread's state stays listed. */
    struct rcushim_thread *self_state = own_state();
    for (struct rcushim_thread *t = all_states; t != NULL; t = t->all_next)
        if (t != self_state)
            fold_local_counts(t);
    all_states = self_state;
    if (self_state != NULL)
        self_state->all_prev = self_state->all_next = NULL;
    pthread_mutex_init(&all_lock, NULL);
    /* Ordering: relaxed; this is the only thread. */
    fork_mark = __atomic_load_n(&serial_counter, __ATOMIC_RELAXED);
    survivor = rcushim_serial;
    /* Only the forking thread exists in the child: the others' read sections can never end,
     * so mark them ended (their liburcu counters are plain memory of this process now). */
    struct registry_entry **p = &registry_head;
    while (*p != NULL) {
        struct registry_entry *entry = *p;
        if (entry != &registry_link) {
            /* SAFETY: the entry's thread is gone in the child, its TLS memory remains mapped until
             * a new thread reuses it: end its section and take its record out of liburcu's
             * registry, so that no grace period waits for it and a reused record is not linked
             * twice. Only a record that is still linked is unlinked: a liburcu call_rcu thread
             * that ran our destroys unregistered itself when call_rcu_before_fork paused it, and
             * unlinking its stale node again would splice dead records back into the registry.
             * No other thread exists to walk the registry meanwhile. */
            struct urcu_reader *reader = entry->reader;
            reader->ctr = 0;
            if (reader->registered) {
                cds_list_del(&reader->node);
                reader->registered = 0;
            }
            *p = entry->next;
            rcushim_stats_sub(&rcushim_stats.threads_registered);
        } else {
            p = &entry->next;
        }
    }
    if (!fork_took_gp_lock || !fork_drained)
        rcushim_gp_refused = 1; /* inherited by this child's own children */
    gp_gate = 0; /* the threads that closed it are this one, or gone */
    if (self_state != NULL)
        self_state->gp_waiting = 0;
    /* Waiters for writer locks were other threads (the forking thread was not waiting). */
    waiters = NULL;
    pthread_mutex_init(&waiters_lock, NULL);
    /* The child's only thread has a new thread id, and glibc's rwlock unlock decides between a
     * read and a write unlock by comparing it: start the locks afresh instead of unlocking. */
    pthread_mutex_init(&registry_lock, NULL);
    pthread_rwlock_init(&gp_fork_lock, NULL);
    pthread_rwlock_init(&sync_fork_lock, NULL);
    fork_prepared = 0; /* INVARIANT: the lock is new */
    urcu_memb_call_rcu_after_fork_child();
}

/* Runs when the library is loaded, so fork is handled even before any thread used it. */
__attribute__((constructor)) static void setup(void) {
    (void)pthread_key_create(&exit_key, on_thread_exit);
    (void)pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

/* The calling thread's serial, handed out on first use. */
static uint64_t own_serial(void) {
    if (rcushim_serial == 0)
        rcushim_serial = __atomic_add_fetch(&serial_counter, 1, __ATOMIC_RELAXED); /* Ordering: unique value only. */
    return rcushim_serial;
}

/* Allocates the calling thread's state with its serial and its exit key set (not registered
 * with liburcu; freed at its exit); NULL when out of memory. Requires a placeholder to be current
 * and the thread not to be exiting. Every thread state is made here. */
static struct rcushim_thread *new_state(void) {
    struct rcushim_thread *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->serial = own_serial();
    t->reader = &rcushim_unready_reader; /* INVARIANT: not ready yet */
    t->ids[0] = RCUSHIM_NO_ID;            /* INVARIANT: no guard names depth 0 */
    t->held = t->held_inline;             /* INVARIANT: the inline list, empty */
    t->held_capacity = RCUSHIM_HELD_INLINE;
    pthread_mutex_lock(&all_lock);
    t->all_next = all_states; /* INVARIANT: listed */
    if (all_states != NULL)
        all_states->all_prev = t;
    all_states = t;
    pthread_mutex_unlock(&all_lock);
    rcushim_current = t;
    (void)pthread_setspecific(exit_key, t);
    return t;
}

uint64_t rcushim_thread_serial(void) {
    /* Only reached while the thread has no state: give it one, so later calls take the inline
     * path; an exiting thread (or one out of memory) still gets its serial from TLS. */
    if (own_state() == NULL && rcushim_current != &exited_placeholder)
        (void)new_state();
    return own_serial();
}

void rcushim_writer_held_push_slow(struct rcushim_thread *t, struct rcushim_writer_lock *l) {
    uint32_t capacity = t->held_capacity * 2;
    struct rcushim_held *grown = malloc(sizeof *grown * capacity);
    if (grown == NULL)
        return; /* not listed: see the thread state's invariants */
    memcpy(grown, t->held, sizeof *grown * t->held_count);
    if (t->held != t->held_inline)
        free(t->held);
    t->held = grown;
    t->held_capacity = capacity;
    t->held[t->held_count++] = (struct rcushim_held){l, NULL, 0};
}

struct rcushim_thread *rcushim_writer_self_slow(void) {
    if (rcushim_current == &exited_placeholder)
        return NULL;
    struct rcushim_thread *t = own_state();
    return t != NULL ? t : new_state();
}

/* Whether the thread with serial `serial` exists in this process (see `fork_mark`). */
static int serial_alive(uint64_t serial) { return serial > fork_mark || serial == survivor; }

static long futex_call(uint32_t *addr, int op, uint32_t value) {
    return syscall(SYS_futex, addr, op, value, NULL, NULL, 0);
}

/* The lock the thread with serial `serial` waits for, or NULL. Requires waiters_lock. */
static struct rcushim_writer_lock *waited_for(uint64_t serial, int *count) {
    struct rcushim_writer_lock *found = NULL;
    *count = 0;
    for (struct waiter *w = waiters; w != NULL; w = w->next) {
        ++*count;
        if (w->serial == serial)
            found = w->lock;
    }
    return found;
}

/*
 * Whether the thread with serial `serial` waiting for `l` would close a wait-for cycle: the
 * holder of `l` waits for a lock whose holder waits ... for a lock `serial` holds. Returns the
 * cycle's length (and records it in the thread's state), or 0. Requires waiters_lock, which every
 * waiter holds while it checks and links itself, so of the threads that close a cycle the last
 * one to start waiting sees all the others' entries. A holder that took the lock it is still
 * listed as waiting for (between its exchange and its unlinking) ends the walk: it waits for
 * nothing.
 */
static int find_cycle(struct rcushim_writer_lock *l, uint64_t serial) {
    uint64_t path[CYCLE_MAX];
    int length = 0;
    path[length++] = serial;
    struct rcushim_writer_lock *cur = l;
    for (int steps = 0, bound = 1; steps <= bound; steps++) {
        /* Ordering: relaxed; the holders and waiters that form a cycle are all blocked, so
         * their words do not change while it exists. */
        uint64_t holder = __atomic_load_n(&cur->word, __ATOMIC_RELAXED) >> 1;
        if (holder == 0)
            return 0;
        if (holder == serial) {
            /* Recorded in the thread's state (kept out of TLS, see rcushim_current); a thread that
             * is exiting has none, and its refusal names no threads. */
            struct rcushim_thread *t = own_state();
            if (t != NULL) {
                t->last_cycle_length = (uint32_t)length;
                memcpy(t->last_cycle, path, sizeof path[0] * (size_t)(length < CYCLE_MAX ? length : CYCLE_MAX));
            }
            return length;
        }
        struct rcushim_writer_lock *next = waited_for(holder, &bound);
        if (next == NULL || next == cur)
            return 0;
        if (length < CYCLE_MAX)
            path[length] = holder;
        length++;
        cur = next;
    }
    return 0;
}

int rcushim_writer_cycle(uint64_t *out, int capacity) {
    struct rcushim_thread *t = own_state();
    if (t == NULL)
        return 0;
    int length = (int)t->last_cycle_length;
    for (int i = 0; i < length && i < CYCLE_MAX && i < capacity; i++)
        out[i] = t->last_cycle[i];
    return length;
}

int rcushim_writer_lock_wait(struct rcushim_writer_lock *l, uint64_t serial) {
    /* Spin a little first: writers usually hold the lock only for a pointer exchange. Before it
     * parks a thread sets `parked` (a release that finds it set clears it and wakes one waiter);
     * once a thread that had parked holds the lock it sets `parked` again for those still
     * parked. Before it first parks it checks for a wait-for cycle and lists itself as waiting
     * for `l`. */
    int parked = 0;
    struct waiter self = {NULL, serial, l};
    int listed = 0;
    for (int spins = 0;; spins++) {
        /* Ordering: acquire pairs with the release increment in rcushim_writer_lock_wake, so a
         * `word` loaded after it is at least as new as the release that moved the count on (a
         * release that comes later changes the count and FUTEX_WAIT returns at once). */
        uint32_t seq = __atomic_load_n(&l->wake_seq, __ATOMIC_ACQUIRE);
        /* Ordering: relaxed; the exchanges below acquire. */
        uint64_t cur = __atomic_load_n(&l->word, __ATOMIC_RELAXED);
        /* A free lock, or one whose holder does not exist in this process (it was another thread
         * of a parent when it forked): take it. A dead holder's unfinished update is lost; no
         * thread of this process waits for it (each checks the holder before parking). */
        if (cur == 0 || !serial_alive(cur >> 1)) {
            /* Ordering: acquire, as in rcushim_writer_lock_acquire. */
            if (__atomic_compare_exchange_n(&l->word, &cur, serial << 1, 0, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED)) {
                if (parked)
                    __atomic_store_n(&l->parked, 1, __ATOMIC_RELAXED); /* Ordering: see `parked`. */
                break;
            }
            continue;
        }
        if (spins < 100) {
            caa_cpu_relax();
            continue;
        }
        if (!listed) {
            pthread_mutex_lock(&waiters_lock);
            int cycle = find_cycle(l, serial);
            if (cycle == 0) {
                self.next = waiters;
                waiters = &self;
                listed = 1;
            }
            pthread_mutex_unlock(&waiters_lock);
            if (cycle != 0)
                return cycle;
        }
        /* Ordering: relaxed, then the fence that pairs with the release's asymmetric fence: after
         * it, either this thread sees the holder's release (the look at `word` that follows the
         * `continue`), or the holder sees `parked` set and wakes a waiter. */
        if (!__atomic_load_n(&l->parked, __ATOMIC_RELAXED)) {
            __atomic_store_n(&l->parked, 1, __ATOMIC_RELAXED);
            heavy_fence();
            continue;
        }
        /* Returns at once if a release moved `wake_seq` on since it was loaded. */
        (void)futex_call(&l->wake_seq, FUTEX_WAIT_PRIVATE, seq);
        parked = 1;
    }
    if (listed) {
        pthread_mutex_lock(&waiters_lock);
        for (struct waiter **p = &waiters; *p != NULL; p = &(*p)->next) {
            if (*p == &self) {
                *p = self.next;
                break;
            }
        }
        pthread_mutex_unlock(&waiters_lock);
    }
    return 0;
}

void rcushim_writer_lock_wake(struct rcushim_writer_lock *l) {
    /* Ordering: relaxed; a waiter that sets `parked` again after this either sees the release of
     * `word` or is woken by a later release (see rcushim_writer_lock_wait). */
    __atomic_store_n(&l->parked, 0, __ATOMIC_RELAXED);
    /* Ordering: release orders the caller's release of `word` before the new count. */
    __atomic_fetch_add(&l->wake_seq, 1, __ATOMIC_RELEASE);
    (void)futex_call(&l->wake_seq, FUTEX_WAKE_PRIVATE, 1);
}

struct rcushim_thread *rcushim_thread_init(void) {
    if (rcushim_current == &exited_placeholder)
        return NULL;
    struct rcushim_thread *t = own_state();
    if (t == NULL && (t = new_state()) == NULL)
        return NULL;
    struct urcu_reader *reader = &URCU_TLS(urcu_memb_reader);
    if (t->ready && reader->registered)
        return t;
    if (reader->registered) {
        t->owns_registration = 0; /* the program registered this thread itself: adopt it */
    } else {
        /* First use, or the program unregistered the thread from liburcu behind our back. */
        if (t->depth != 0)
            return NULL; /* our sections were lost with that registration: refuse, do not guess */
        if (rcushim_gp_refused)
            return NULL; /* liburcu's registry lock may be held by a thread that is gone */
        pthread_rwlock_rdlock(&gp_fork_lock);
        urcu_memb_register_thread();
        pthread_rwlock_unlock(&gp_fork_lock);
        t->owns_registration = 1;
    }
    /* Final by now: liburcu initialises it before registering any thread. */
    t->membarrier = urcu_memb_has_sys_membarrier != 0;
    if (!t->ready) {
        registry_link.reader = reader;
        pthread_mutex_lock(&registry_lock);
        registry_link.next = registry_head;
        registry_head = &registry_link;
        pthread_mutex_unlock(&registry_lock);
        rcushim_stats_add(&rcushim_stats.threads_registered, 1);
        rcushim_stats_add(&rcushim_stats.threads_registered_total, 1);
    }
    t->reader = reader; /* INVARIANT: with `ready`, the thread's own record */
    t->ready = 1;
    return t;
}

void rcushim_thread_fini(void) {
    struct rcushim_thread *t = own_state();
    if (t == NULL || !t->ready)
        return;
    release_registration(t);
    /* The exit key stays set: the thread's state is still freed when it exits. */
}

static pthread_once_t spread_once = PTHREAD_ONCE_INIT;
static void spread(void) { (void)urcu_memb_create_all_cpu_call_rcu_data(0); }
void rcushim_spread_call_rcu(void) { pthread_once(&spread_once, spread); }

void rcushim_guard_moved(void) {
    static const char msg[] =
        "SwiftRCU: fatal error: RcuGuard ended on another thread than the one that took it: a read "
        "section was carried across an await (use withReadLock { } in async code)\n";
    (void)!write(2, msg, sizeof msg - 1);
    abort();
}

int rcushim_synchronize(void) {
    if (rcushim_gp_refused)
        return -1;
    /* The fast path (see gp_gate): no lock, unless a fork is under way. */
    struct rcushim_thread *t = own_state();
    if (t != NULL && !fork_prepared) {
        __atomic_store_n(&t->gp_waiting, 1, __ATOMIC_RELAXED); /* Ordering: the fence below. */
        if (t->membarrier)
            __atomic_signal_fence(__ATOMIC_SEQ_CST); /* Ordering: the forker's membarrier. */
        else
            __atomic_thread_fence(__ATOMIC_SEQ_CST); /* Ordering: see gp_gate. */
        if (__atomic_load_n(&gp_gate, __ATOMIC_RELAXED) == 0) {
            urcu_memb_synchronize_rcu();
            /* Ordering: release, so a forker that sees the flag cleared sees the wait done. */
            __atomic_store_n(&t->gp_waiting, 0, __ATOMIC_RELEASE);
            rcushim_stats_grace_period();
            return 0;
        }
        __atomic_store_n(&t->gp_waiting, 0, __ATOMIC_RELEASE); /* Ordering: as above. */
    }
    /* A thread that prepared a fork holds sync_fork_lock already (for writing). */
    int prepared = fork_prepared;
    if (!prepared)
        pthread_rwlock_rdlock(&sync_fork_lock);
    pthread_rwlock_rdlock(&gp_fork_lock);
    urcu_memb_synchronize_rcu();
    pthread_rwlock_unlock(&gp_fork_lock);
    if (!prepared)
        pthread_rwlock_unlock(&sync_fork_lock);
    rcushim_stats_grace_period();
    return 0;
}

void rcushim_prepare_fork(void) {
    if (fork_prepared)
        return;
    pthread_rwlock_wrlock(&sync_fork_lock);
    fork_prepared = 1; /* INVARIANT: held for writing */
    (void)gp_gate_close_and_drain(-1);
}

/* Aligned to a cache line: the release build places the read path's functions first in .text
 * (scripts/read-path-order.txt), and this alignment makes .text, so their layout, start on a
 * cache line whatever the rest of the library holds. */
__attribute__((aligned(64))) void rcushim_wake_writer(void) { urcu_common_wake_up_gp(&urcu_memb_gp); }
