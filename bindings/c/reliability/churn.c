/*
 * Thread churn and thread exit.
 *
 *   churn [THREADS]        (default 4000 short-lived reader threads; the other phases scale with it)
 *
 * 1. Thousands of short-lived threads read (read_lock / read_lock_dereference / load, nested or
 *    not) without registering first, while a writer replaces and retires objects.
 * 2. Threads exit while holding one to three read locks (joined and detached ones); a writer that
 *    waits for grace periods meanwhile must keep making progress; afterwards synchronize and
 *    barrier must complete within a bound.
 * 3. A synchronize that is already waiting for a reader returns once that reader exits still
 *    holding its lock (and not before the reader's section began to end).
 * 4. Threads register and unregister explicitly, unregister inside a section (EPERM), read again
 *    after unregistering, and some only write (replace + old_defer) before they exit.
 * At the end every object is destroyed exactly once.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "rel.h"

#define GP_BOUND_SECONDS 10.0 /* a grace period, synchronize or barrier taking longer is a hang */

struct cobj {
    uint32_t magic;
    uint32_t id;
};

static atomic_long created, destroyed, errors, reads;
static swiftrcu_ptr *shared_ptr;
static atomic_int writer_stop;
static atomic_long writer_updates;
static double writer_worst_wait; /* longest single old_free, seen by the writer thread */

static void error_at(const char *what, long a) {
    if (atomic_fetch_add(&errors, 1) < 20)
        fprintf(stderr, "ERROR: %s (%ld)\n", what, a);
}

static struct cobj *make(void) {
    struct cobj *o = malloc(sizeof *o);
    o->magic = REL_LIVE;
    o->id = (uint32_t)atomic_fetch_add(&created, 1);
    return o;
}

static void destroy(void *p, void *context) {
    (void)context;
    struct cobj *o = p;
    if (o->magic != REL_LIVE)
        error_at("destroy of an object that is not live", (long)o->magic);
    o->magic = REL_POISON;
    atomic_fetch_add(&destroyed, 1);
    free(o);
}

static void check_obj(const struct cobj *o) {
    if (o == NULL)
        error_at("dereference returned NULL", 0);
    else if (o->magic != REL_LIVE)
        error_at("reader saw a destroyed object", (long)o->magic);
    else
        atomic_fetch_add_explicit(&reads, 1, memory_order_relaxed);
}

/* Replaces the shared object continuously, alternating old_free and old_defer. */
static void *writer_main(void *arg) {
    (void)arg;
    for (long k = 0; !atomic_load(&writer_stop); k++) {
        swiftrcu_old *old = NULL;
        int rc = swiftrcu_replace(shared_ptr, make(), &old);
        if (rc != SWIFTRCU_OK || old == NULL) {
            error_at("writer replace failed", rc);
            continue;
        }
        if (k % 2) {
            rc = swiftrcu_old_defer(old);
        } else {
            double t0 = rel_now();
            rc = swiftrcu_old_free(old);
            double waited = rel_now() - t0;
            if (waited > writer_worst_wait)
                writer_worst_wait = waited;
        }
        if (rc != SWIFTRCU_OK)
            error_at("writer retire failed", rc);
        atomic_fetch_add(&writer_updates, 1);
        if (k % 8 == 0)
            rel_sleep_ms(1);
    }
    return NULL;
}

/* ---- phase 1: short-lived readers that never register ---- */

static void *short_reader(void *arg) {
    long kind = (long)(intptr_t)arg;
    swiftrcu_guard g, h;
    switch (kind % 4) {
    case 0:
        g = swiftrcu_read_lock();
        check_obj(swiftrcu_dereference(shared_ptr, &g));
        if (swiftrcu_read_unlock(&g) != SWIFTRCU_OK)
            error_at("unlock failed", kind);
        break;
    case 1:
        check_obj(swiftrcu_read_lock_dereference(shared_ptr, &g));
        h = swiftrcu_read_lock();
        check_obj(swiftrcu_dereference(shared_ptr, &h));
        if (swiftrcu_read_unlock(&h) != SWIFTRCU_OK || swiftrcu_read_unlock(&g) != SWIFTRCU_OK)
            error_at("nested unlock failed", kind);
        break;
    case 2:
        /* load: the object is not protected after the call, so only NULL-ness is checked. */
        if (swiftrcu_load(shared_ptr) == NULL)
            error_at("load returned NULL", kind);
        else
            atomic_fetch_add_explicit(&reads, 1, memory_order_relaxed);
        break;
    default:
        for (int i = 0; i < 3; i++) {
            g = swiftrcu_read_lock();
            check_obj(swiftrcu_dereference(shared_ptr, &g));
            if (swiftrcu_read_unlock(&g) != SWIFTRCU_OK)
                error_at("unlock failed", kind);
        }
        break;
    }
    return NULL;
}

/* ---- phase 2: threads that exit holding read locks ---- */

static void *exit_holding(void *arg) {
    long n = (long)(intptr_t)arg;
    int depth = 1 + (int)(n % 3);
    swiftrcu_guard g[3];
    for (int i = 0; i < depth; i++) {
        g[i] = swiftrcu_read_lock();
        check_obj(swiftrcu_dereference(shared_ptr, &g[i]));
    }
    if (n % 5 == 0) {
        /* Unlock out of order first: refused, changes nothing. */
        if (depth > 1 && swiftrcu_read_unlock(&g[0]) != SWIFTRCU_EPERM)
            error_at("out-of-order unlock was not refused", n);
    }
    return NULL; /* exits with `depth` sections open */
}

/* ---- phase 3: a synchronize already waiting when the reader exits ---- */

struct handoff {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stage;
    double reader_exit_at;
    double sync_done_at;
    int sync_rc;
};

static void handoff_set(struct handoff *h, int stage) {
    pthread_mutex_lock(&h->lock);
    h->stage = stage;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
}

static void handoff_wait(struct handoff *h, int stage) {
    pthread_mutex_lock(&h->lock);
    while (h->stage < stage)
        pthread_cond_wait(&h->cond, &h->lock);
    pthread_mutex_unlock(&h->lock);
}

static void *blocking_reader(void *arg) {
    struct handoff *h = arg;
    swiftrcu_guard g = swiftrcu_read_lock();
    check_obj(swiftrcu_dereference(shared_ptr, &g));
    handoff_set(h, 1);
    rel_sleep_ms(200); /* the synchronize below is waiting for us meanwhile */
    h->reader_exit_at = rel_now();
    return NULL; /* exits holding g */
}

static void *synchronizer(void *arg) {
    struct handoff *h = arg;
    handoff_wait(h, 1);
    h->sync_rc = swiftrcu_synchronize();
    h->sync_done_at = rel_now();
    return NULL;
}

/* ---- phase 4: explicit registration, and writers that never read ---- */

static void *register_churn(void *arg) {
    long n = (long)(intptr_t)arg;
    if (swiftrcu_thread_register() != SWIFTRCU_OK)
        error_at("register failed", n);
    if (swiftrcu_thread_register() != SWIFTRCU_OK)
        error_at("second register failed", n);
    swiftrcu_guard g = swiftrcu_read_lock();
    check_obj(swiftrcu_dereference(shared_ptr, &g));
    if (swiftrcu_thread_unregister() != SWIFTRCU_EPERM)
        error_at("unregister inside a section was not refused", n);
    if (swiftrcu_read_unlock(&g) != SWIFTRCU_OK)
        error_at("unlock failed", n);
    if (swiftrcu_thread_unregister() != SWIFTRCU_OK)
        error_at("unregister failed", n);
    if (swiftrcu_thread_unregister() != SWIFTRCU_OK)
        error_at("second unregister failed", n);
    if (n % 2) {
        g = swiftrcu_read_lock(); /* registers again */
        check_obj(swiftrcu_dereference(shared_ptr, &g));
        if (swiftrcu_read_unlock(&g) != SWIFTRCU_OK)
            error_at("unlock after re-registering failed", n);
    }
    return NULL;
}

static void *write_only(void *arg) {
    long n = (long)(intptr_t)arg;
    swiftrcu_old *old = NULL;
    int rc = swiftrcu_replace(shared_ptr, make(), &old);
    if (rc != SWIFTRCU_OK || old == NULL)
        error_at("write-only thread: replace failed", rc);
    else if ((rc = swiftrcu_old_defer(old)) != SWIFTRCU_OK)
        error_at("write-only thread: old_defer failed", rc);
    if (n % 4 == 0 && (rc = swiftrcu_synchronize()) != SWIFTRCU_OK)
        error_at("write-only thread: synchronize failed", rc);
    return NULL;
}

/* Runs `count` threads of `fn`, at most `wave` at a time; detaches every `detach_every`-th. */
static long run_threads(void *(*fn)(void *), long count, int wave, long detach_every) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_t ids[64];
    long started = 0;
    for (long base = 0; base < count; base += wave) {
        int in_wave = 0;
        for (long i = base; i < count && i < base + wave; i++) {
            pthread_t t;
            if (pthread_create(&t, &attr, fn, (void *)(intptr_t)i) != 0) {
                error_at("pthread_create failed", i);
                continue;
            }
            started++;
            if (detach_every > 0 && i % detach_every == 0)
                pthread_detach(t);
            else
                ids[in_wave++] = t;
        }
        for (int j = 0; j < in_wave; j++)
            pthread_join(ids[j], NULL);
    }
    pthread_attr_destroy(&attr);
    return started;
}

static double timed_synchronize(int *rc) {
    double t0 = rel_now();
    *rc = swiftrcu_synchronize();
    return rel_now() - t0;
}

static double timed_barrier(int *rc) {
    double t0 = rel_now();
    *rc = swiftrcu_barrier();
    return rel_now() - t0;
}

int main(int argc, char **argv) {
    long threads = rel_arg(argc, argv, 1, 4000);
    harness_watchdog(240);
    double start = rel_now();
    shared_ptr = swiftrcu_new(make(), destroy, NULL);
    CHECK(shared_ptr != NULL);

    pthread_t writer;
    CHECK_EQ_INT(pthread_create(&writer, NULL, writer_main, NULL), 0);

    /* 1 */
    double t = rel_now();
    long n1 = run_threads(short_reader, threads, 32, 0);
    CHECK_EQ_INT(n1, threads);
    printf("phase 1: %ld short-lived reader threads in %.2f s\n", n1, rel_now() - t);

    /* 2 */
    t = rel_now();
    long holders = threads / 4;
    long n2 = run_threads(exit_holding, holders, 32, 7);
    rel_sleep_ms(50); /* let the detached ones finish exiting */
    int rc;
    double s = timed_synchronize(&rc);
    CHECK_EQ_INT(rc, SWIFTRCU_OK);
    CHECK(s < GP_BOUND_SECONDS);
    double b = timed_barrier(&rc);
    CHECK_EQ_INT(rc, SWIFTRCU_OK);
    CHECK(b < GP_BOUND_SECONDS);
    printf("phase 2: %ld threads exited holding 1-3 read locks in %.2f s; then synchronize %.4f s, barrier %.4f s\n",
           n2, rel_now() - t, s, b);

    /* 3 */
    for (int round = 0; round < 3; round++) {
        struct handoff h = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .sync_rc = 99};
        pthread_t r, w;
        CHECK_EQ_INT(pthread_create(&r, NULL, blocking_reader, &h), 0);
        CHECK_EQ_INT(pthread_create(&w, NULL, synchronizer, &h), 0);
        double t0 = rel_now();
        pthread_join(r, NULL);
        pthread_join(w, NULL);
        CHECK_EQ_INT(h.sync_rc, SWIFTRCU_OK);
        CHECK(h.sync_done_at >= h.reader_exit_at); /* it did wait for the reader */
        CHECK(h.sync_done_at - t0 < GP_BOUND_SECONDS);
        if (round == 0)
            printf("phase 3: synchronize waiting for a reader returned %.4f s after the reader exited holding its lock\n",
                   h.sync_done_at - h.reader_exit_at);
    }

    /* 4 */
    t = rel_now();
    long n4 = run_threads(register_churn, threads / 4, 32, 0);
    long n5 = run_threads(write_only, threads / 8, 16, 3);
    rel_sleep_ms(50);
    printf("phase 4: %ld register/unregister threads, %ld write-only threads in %.2f s\n", n4, n5, rel_now() - t);

    atomic_store(&writer_stop, 1);
    pthread_join(writer, NULL);
    printf("writer: %ld updates meanwhile, longest old_free %.4f s\n", atomic_load(&writer_updates), writer_worst_wait);
    CHECK(atomic_load(&writer_updates) > 0);
    CHECK(writer_worst_wait < GP_BOUND_SECONDS);

    double s2 = timed_synchronize(&rc);
    CHECK_EQ_INT(rc, SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(shared_ptr), SWIFTRCU_OK);
    double b2 = timed_barrier(&rc);
    CHECK_EQ_INT(rc, SWIFTRCU_OK);
    CHECK(s2 < GP_BOUND_SECONDS && b2 < GP_BOUND_SECONDS);

    printf("reads %ld, objects created %ld, destroyed %ld, errors %ld, total %.2f s, peak RSS %ld KiB\n",
           atomic_load(&reads), atomic_load(&created), atomic_load(&destroyed), atomic_load(&errors),
           rel_now() - start, rel_peak_rss_kib());
    CHECK_EQ_INT(atomic_load(&errors), 0);
    CHECK_EQ_INT(atomic_load(&destroyed), atomic_load(&created));
    CHECK(atomic_load(&reads) >= threads);
    return rel_finish();
}
