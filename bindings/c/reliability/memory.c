/*
 * Bounded memory under a sustained stream of deferred destroys.
 *
 *   memory [WRITERS] [SECONDS] [BOUND_MIB] [OBJECT_BYTES]        (defaults: 3 10 1024 256)
 *
 * WRITERS threads replace their pointer and old_defer the previous object as fast as they can
 * for SECONDS; one of them does it from inside a read section (re-entered every 64 updates),
 * where the library may not pause it. A reader thread keeps reading every pointer. The main
 * thread samples the resident set (VmRSS) and the number of destroys pending (objects created
 * and not destroyed yet) every 50 ms, and fails the run as soon as the resident set exceeds
 * BOUND_MIB. At the end a barrier must bring the pending count to zero, every object destroyed
 * exactly once.
 *
 *   memory --case in-section
 *
 * One thread, inside one read section (where no destroy can complete and the library cannot
 * pause it), replaces and old_defers until old_defer refuses with SWIFTRCU_ENOMEM at the
 * documented hard limit (2097152 pending destroys), changing nothing; reports the growth of the
 * resident set up to there; then leaves the section, and every object is destroyed exactly once.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "rel.h"

#define MAX_WRITERS 16

struct mobj {
    uint32_t magic;
    uint32_t writer;
    char payload[]; /* OBJECT_BYTES in all */
};

static size_t object_bytes;
static swiftrcu_ptr *ptrs[MAX_WRITERS];
static int nwriters;
static atomic_int stop;
static atomic_long created, destroyed, errors, reads;
static atomic_long updates[MAX_WRITERS];

static void error_at(const char *what, long a) {
    if (atomic_fetch_add(&errors, 1) < 20)
        fprintf(stderr, "ERROR: %s (%ld)\n", what, a);
}

static struct mobj *make(int writer) {
    struct mobj *o = malloc(object_bytes);
    if (o == NULL)
        return NULL;
    memset(o, 0x5A, object_bytes); /* touch every page: the resident set must see it */
    o->magic = REL_LIVE;
    o->writer = (uint32_t)writer;
    atomic_fetch_add_explicit(&created, 1, memory_order_relaxed);
    return o;
}

static void destroy(void *p, void *context) {
    (void)context;
    struct mobj *o = p;
    if (o->magic != REL_LIVE)
        error_at("destroy of an object that is not live", (long)o->magic);
    o->magic = REL_POISON;
    free(o);
    atomic_fetch_add_explicit(&destroyed, 1, memory_order_relaxed);
}

static void *writer_main(void *arg) {
    int id = (int)(intptr_t)arg;
    int in_section = id == 0 && nwriters > 1;
    swiftrcu_guard g;
    long n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        if (in_section && n % 64 == 0)
            g = swiftrcu_read_lock();
        struct mobj *o = make(id);
        if (o == NULL) {
            error_at("out of memory", n);
            break;
        }
        swiftrcu_old *old = NULL;
        int rc = swiftrcu_replace(ptrs[id], o, &old);
        if (rc != SWIFTRCU_OK || old == NULL)
            error_at("replace failed", rc);
        else if ((rc = swiftrcu_old_defer(old)) != SWIFTRCU_OK)
            error_at("old_defer failed", rc);
        n++;
        if (in_section && n % 64 == 0 && swiftrcu_read_unlock(&g) != SWIFTRCU_OK)
            error_at("unlock failed", n);
    }
    if (in_section && n % 64 != 0 && swiftrcu_read_unlock(&g) != SWIFTRCU_OK)
        error_at("unlock failed", n);
    atomic_store(&updates[id], n);
    return NULL;
}

static void *reader_main(void *arg) {
    (void)arg;
    long n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (int i = 0; i < nwriters; i++) {
            swiftrcu_guard g;
            const struct mobj *o = swiftrcu_read_lock_dereference(ptrs[i], &g);
            if (o == NULL || o->magic != REL_LIVE)
                error_at("reader saw a missing or destroyed object", i);
            swiftrcu_read_unlock(&g);
            n++;
        }
    }
    atomic_store(&reads, n);
    return NULL;
}

#define DEFER_HARD_LIMIT 2097152L

static int in_section_case(void) {
    harness_watchdog(300);
    object_bytes = 16;
    swiftrcu_ptr *p = swiftrcu_new(make(0), destroy, NULL);
    long rss_start = rel_status_kib("VmRSS");
    double start = rel_now();
    swiftrcu_guard g = swiftrcu_read_lock();
    long deferred = 0;
    int rc = SWIFTRCU_OK;
    swiftrcu_old *refused = NULL;
    struct mobj *refused_object = NULL;
    /* Without the limit the loop would go on until memory runs out: stop well past it. */
    while (deferred < DEFER_HARD_LIMIT + 100000) {
        struct mobj *o = make(0);
        swiftrcu_old *old = NULL;
        if (o == NULL || swiftrcu_replace(p, o, &old) != SWIFTRCU_OK || old == NULL) {
            error_at("replace failed", deferred);
            break;
        }
        rc = swiftrcu_old_defer(old);
        if (rc != SWIFTRCU_OK) {
            refused = old;
            refused_object = swiftrcu_old_object(old);
            break;
        }
        deferred++;
    }
    long rss_at_limit = rel_status_kib("VmRSS");
    double took = rel_now() - start;
    printf("in-section: %ld destroys deferred inside one read section in %.2f s, then old_defer returned %d (%s)\n",
           deferred, took, rc, swiftrcu_strerror(rc));
    printf("in-section: resident set %ld KiB at start, %ld KiB at the refusal: %.0f bytes per pending destroy "
           "(%zu-byte objects)\n",
           rss_start, rss_at_limit, (double)(rss_at_limit - rss_start) * 1024.0 / (double)(deferred ? deferred : 1),
           object_bytes);
    CHECK_EQ_INT(rc, SWIFTRCU_ENOMEM);
    CHECK(deferred > DEFER_HARD_LIMIT - 1000 && deferred <= DEFER_HARD_LIMIT);
    /* Changing nothing: the refused old handle is still the caller's, with its object. */
    CHECK(refused != NULL && refused_object != NULL && refused_object->magic == REL_LIVE);
    CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_OK);
    if (refused != NULL)
        CHECK_EQ_INT(swiftrcu_old_free(refused), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    printf("in-section: objects created %ld, destroyed %ld, errors %ld\n", atomic_load(&created),
           atomic_load(&destroyed), atomic_load(&errors));
    CHECK_EQ_INT(atomic_load(&destroyed), atomic_load(&created));
    CHECK_EQ_INT(atomic_load(&errors), 0);
    return rel_finish();
}

int main(int argc, char **argv) {
    if (rel_is_case(argc, argv, "in-section"))
        return in_section_case();
    nwriters = (int)rel_arg(argc, argv, 1, 3);
    long seconds = rel_arg(argc, argv, 2, 10);
    long bound_mib = rel_arg(argc, argv, 3, 1024);
    object_bytes = (size_t)rel_arg(argc, argv, 4, 256);
    if (nwriters < 1 || nwriters > MAX_WRITERS || object_bytes < sizeof(struct mobj)) {
        fprintf(stderr, "usage: memory [WRITERS 1..%d] [SECONDS] [BOUND_MIB] [OBJECT_BYTES>=%zu]\n", MAX_WRITERS,
                sizeof(struct mobj));
        return 2;
    }
    harness_watchdog((unsigned)(seconds + 120));
    printf("memory: %d writers (one deferring inside read sections), %ld s, %zu-byte objects, bound %ld MiB\n",
           nwriters, seconds, object_bytes, bound_mib);
    long rss_start = rel_status_kib("VmRSS");

    for (int i = 0; i < nwriters; i++)
        ptrs[i] = swiftrcu_new(make(i), destroy, NULL);
    pthread_t w[MAX_WRITERS], r;
    double start = rel_now();
    for (int i = 0; i < nwriters; i++)
        CHECK_EQ_INT(pthread_create(&w[i], NULL, writer_main, (void *)(intptr_t)i), 0);
    CHECK_EQ_INT(pthread_create(&r, NULL, reader_main, NULL), 0);

    long max_rss = 0, max_pending = 0, samples = 0;
    int over = 0;
    while (rel_now() - start < (double)seconds) {
        rel_sleep_ms(50);
        long rss = rel_status_kib("VmRSS");
        long pending = atomic_load(&created) - atomic_load(&destroyed);
        if (rss > max_rss)
            max_rss = rss;
        if (pending > max_pending)
            max_pending = pending;
        samples++;
        if (rss > bound_mib * 1024) {
            fprintf(stderr, "resident set %ld KiB exceeds the bound of %ld MiB (%ld destroys pending)\n", rss,
                    bound_mib, pending);
            over = 1;
            break;
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < nwriters; i++)
        pthread_join(w[i], NULL);
    pthread_join(r, NULL);
    double elapsed = rel_now() - start;
    long pending_at_stop = atomic_load(&created) - atomic_load(&destroyed);

    double t0 = rel_now();
    int rc = swiftrcu_barrier();
    double drain = rel_now() - t0;
    CHECK_EQ_INT(rc, SWIFTRCU_OK);
    for (int i = 0; i < nwriters; i++)
        CHECK_EQ_INT(swiftrcu_free(ptrs[i]), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);

    long total = 0;
    for (int i = 0; i < nwriters; i++)
        total += atomic_load(&updates[i]);
    printf("elapsed %.2f s, %ld replace+old_defer (%.0f/s), %ld reads\n", elapsed, total, (double)total / elapsed,
           atomic_load(&reads));
    printf("pending destroys: max sampled %ld, at stop %ld; the final barrier took %.3f s\n", max_pending,
           pending_at_stop, drain);
    printf("resident set: at start %ld KiB, max sampled %ld KiB, peak (VmHWM) %ld KiB, getrusage %ld KiB; "
           "%ld samples\n",
           rss_start, max_rss, rel_status_kib("VmHWM"), rel_peak_rss_kib(), samples);
    printf("objects created %ld, destroyed %ld, errors %ld\n", atomic_load(&created), atomic_load(&destroyed),
           atomic_load(&errors));
    CHECK(!over);
    CHECK(rel_status_kib("VmHWM") <= bound_mib * 1024);
    CHECK(total > 0);
    CHECK_EQ_INT(atomic_load(&errors), 0);
    CHECK_EQ_INT(atomic_load(&destroyed), atomic_load(&created));
    return rel_finish();
}
