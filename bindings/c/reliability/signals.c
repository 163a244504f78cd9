/*
 * Read sections taken by signal handlers, on threads that are inside read sections themselves.
 *
 *   signals [SECONDS] [READERS]        (defaults: 3 2)
 *
 * READERS threads run every C read-side entry point in a loop (read_lock + dereference +
 * read_unlock, read_lock_dereference, read_section, read_copy, load, load_retained). A sender
 * thread interrupts them with SIGUSR1 as fast as it can; the handler takes read sections of its
 * own (the same entry points, nested inside whatever the thread was doing). A writer replaces
 * the object and frees the previous one (old_free, which waits for a grace period) and another
 * thread calls synchronize in a loop. Every unlock must succeed, every read must see a live
 * object, and grace periods must keep completing: a section left open by a handler that
 * overwrote the interrupted one's bookkeeping makes synchronize hang, which is reported after
 * HANG_SECONDS without progress.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "rel.h"

#include <signal.h>

#define MAX_READERS 8
#define HANG_SECONDS 5.0

struct sobj {
    uint32_t magic;
    uint32_t value;
};

static swiftrcu_ptr *shared;
static atomic_int stop;
static atomic_int ready_readers;
static atomic_long reader_errors, handler_errors, handler_runs, reads, grace_periods, updates;
static pthread_t reader_threads[MAX_READERS];

static void destroy(void *p, void *context) {
    (void)context;
    struct sobj *o = p;
    o->magic = REL_POISON;
    free(o);
}

static struct sobj *make(uint32_t value) {
    struct sobj *o = malloc(sizeof *o);
    if (o != NULL) {
        o->magic = REL_LIVE;
        o->value = value;
    }
    return o;
}

static void peek(const void *object, void *context) {
    const struct sobj *o = object;
    atomic_long *errors = context;
    if (o == NULL || o->magic != REL_LIVE)
        atomic_fetch_add(errors, 1);
}

static void retain_nothing(void *object) { (void)object; }

/* One round of every read-side entry point; failures go to *errors. Async-signal-safe: only the
 * library's read side and lock-free atomics. */
static void read_round(atomic_long *errors, int variant) {
    const struct sobj *o;
    swiftrcu_guard g, inner;
    uint64_t copy = 0;
    switch (variant % 6) {
    case 0:
        g = swiftrcu_read_lock();
        o = swiftrcu_dereference(shared, &g);
        inner = swiftrcu_read_lock();
        if (swiftrcu_dereference(shared, &inner) == NULL || swiftrcu_read_unlock(&inner) != SWIFTRCU_OK)
            atomic_fetch_add(errors, 1);
        peek(o, errors);
        if (swiftrcu_read_unlock(&g) != SWIFTRCU_OK)
            atomic_fetch_add(errors, 1);
        break;
    case 1:
        o = swiftrcu_read_lock_dereference(shared, &g);
        peek(o, errors);
        if (swiftrcu_read_unlock(&g) != SWIFTRCU_OK)
            atomic_fetch_add(errors, 1);
        break;
    case 2:
        if (swiftrcu_read_section(shared, peek, errors) != SWIFTRCU_OK)
            atomic_fetch_add(errors, 1);
        break;
    case 3:
        if (swiftrcu_read_copy(shared, 0, &copy, sizeof copy) == NULL || (uint32_t)copy != REL_LIVE)
            atomic_fetch_add(errors, 1);
        break;
    case 4:
        if (swiftrcu_load(shared) == NULL)
            atomic_fetch_add(errors, 1);
        break;
    default:
        if (swiftrcu_load_retained(shared, retain_nothing) == NULL)
            atomic_fetch_add(errors, 1);
        break;
    }
}

static void on_signal(int sig) {
    (void)sig;
    int saved = errno;
    long n = atomic_fetch_add(&handler_runs, 1);
    read_round(&handler_errors, (int)(n % 6));
    read_round(&handler_errors, 0);
    errno = saved;
}

static void *reader_main(void *arg) {
    long id = (long)(intptr_t)arg;
    read_round(&reader_errors, 0); /* first use (registration) before any signal */
    atomic_fetch_add(&ready_readers, 1);
    long n = 0;
    for (; !atomic_load(&stop); n++)
        read_round(&reader_errors, (int)((n + id) % 6));
    atomic_fetch_add(&reads, n);
    return NULL;
}

static int nreaders;

static void *sender_main(void *arg) {
    (void)arg;
    for (long n = 0; !atomic_load(&stop); n++)
        pthread_kill(reader_threads[n % nreaders], SIGUSR1);
    return NULL;
}

static void *writer_main(void *arg) {
    (void)arg;
    for (uint32_t v = 1; !atomic_load(&stop); v++) {
        swiftrcu_old *old = NULL;
        if (swiftrcu_replace(shared, make(v), &old) == SWIFTRCU_OK && old != NULL)
            swiftrcu_old_free(old);
        atomic_fetch_add(&updates, 1);
    }
    return NULL;
}

static void *synchronizer_main(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        swiftrcu_synchronize();
        atomic_fetch_add(&grace_periods, 1);
        rel_sleep_ms(1);
    }
    return NULL;
}

int main(int argc, char **argv) {
    long seconds = rel_arg(argc, argv, 1, 3);
    nreaders = (int)rel_arg(argc, argv, 2, 2);
    if (nreaders < 1 || nreaders > MAX_READERS) {
        fprintf(stderr, "usage: signals [SECONDS] [READERS 1..%d]\n", MAX_READERS);
        return 2;
    }
    harness_watchdog((unsigned)(seconds + 60));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ_INT(sigaction(SIGUSR1, &sa, NULL), 0);

    shared = swiftrcu_new(make(0), destroy, NULL);
    CHECK(shared != NULL);
    for (int i = 0; i < nreaders; i++)
        CHECK_EQ_INT(pthread_create(&reader_threads[i], NULL, reader_main, (void *)(intptr_t)i), 0);
    while (atomic_load(&ready_readers) < nreaders)
        rel_sleep_ms(1);
    pthread_t sender, writer, synchronizer;
    CHECK_EQ_INT(pthread_create(&writer, NULL, writer_main, NULL), 0);
    CHECK_EQ_INT(pthread_create(&synchronizer, NULL, synchronizer_main, NULL), 0);
    CHECK_EQ_INT(pthread_create(&sender, NULL, sender_main, NULL), 0);

    double start = rel_now(), last_progress = start;
    long last_gp = 0;
    int hung = 0;
    while (rel_now() - start < (double)seconds) {
        rel_sleep_ms(20);
        long gp = atomic_load(&grace_periods);
        if (gp != last_gp) {
            last_gp = gp;
            last_progress = rel_now();
        } else if (rel_now() - last_progress > HANG_SECONDS) {
            hung = 1;
            break;
        }
    }
    /* A section that never ends keeps synchronize waiting: give it the same time to finish. */
    while (!hung && rel_now() - last_progress < HANG_SECONDS && atomic_load(&grace_periods) == last_gp)
        rel_sleep_ms(20);
    double elapsed = rel_now() - start;
    int stuck = hung || atomic_load(&grace_periods) == last_gp;
    if (!stuck) {
        atomic_store(&stop, 1);
        pthread_join(sender, NULL);
        for (int i = 0; i < nreaders; i++)
            pthread_join(reader_threads[i], NULL);
        pthread_join(writer, NULL);
        pthread_join(synchronizer, NULL);
    }
    printf("signals: %.1f s, %d readers, %ld handler runs, %ld reads, %ld updates, %ld grace periods\n", elapsed,
           nreaders, atomic_load(&handler_runs), atomic_load(&reads), atomic_load(&updates),
           atomic_load(&grace_periods));
    printf("errors: %ld in readers, %ld in handlers\n", atomic_load(&reader_errors), atomic_load(&handler_errors));
    if (stuck) {
        fprintf(stderr, "FAIL: no grace period completed for %.0f s: a read section never ended\n", HANG_SECONDS);
        fflush(stdout);
        fflush(stderr);
        _exit(1); /* the writer and synchronizer are stuck: do not join them */
    }
    CHECK(atomic_load(&handler_runs) > 500);
    CHECK_EQ_INT(atomic_load(&reader_errors), 0);
    CHECK_EQ_INT(atomic_load(&handler_errors), 0);
    CHECK_EQ_INT(swiftrcu_free(shared), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    return rel_finish();
}
