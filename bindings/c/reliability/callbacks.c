/*
 * Callbacks that re-enter the library.
 *
 *   callbacks [ROUNDS]        (default 5000 replacements of the outer structure)
 *
 * 1. RCU structures of structures: an outer pointer publishes records that own an inner pointer
 *    (and, one level deeper, a third pointer). Destroying a record frees or defers the nested
 *    pointer from inside the destroy callback, both when the destroy runs deferred (on a call_rcu
 *    thread) and when it runs synchronously (old_free on the writer). Readers walk outer -> inner
 *    -> leaf under one guard meanwhile. Every object is destroyed exactly once.
 * 2. From a deferred destroy: barrier gives EDEADLK (no hang), synchronize and old_free work, a read
 *    section works and refuses grace-period waits inside it, copy_update of another pointer works.
 *    From a synchronous destroy (old_free, free) barrier works.
 * 3. copy_update callbacks that re-enter: writes to their own pointer (and to any pointer whose
 *    callback is running further up the stack) give EDEADLK, writes to other pointers work, a
 *    nested copy_update works, grace-period waits give EDEADLK; callbacks of one pointer never run
 *    at the same time on two threads.
 * 4. Four threads write one pointer back to back, some callbacks long enough that the others park:
 *    no write is lost and no parked writer is left asleep.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "rel.h"

static atomic_long errors;

static void error_at(const char *what, long a) {
    if (atomic_fetch_add(&errors, 1) < 20)
        fprintf(stderr, "ERROR: %s (%ld)\n", what, a);
}

/* ---- part 1: structures of structures ---- */

#define LEAF_LIVE 0x4C454146u /* "LEAF" */

struct leaf {
    uint32_t magic;
    uint32_t id;
};

struct record {
    uint32_t magic;
    int mode;            /* how destroy releases `inner` */
    swiftrcu_ptr *inner; /* publishes a struct leaf, or (mode 2) a struct record one level down */
};

enum { MODE_FREE = 0, MODE_DEFER_THEN_FREE = 1, MODE_NESTED_RECORD = 2, MODES = 3 };

static atomic_long leaves_made, leaves_destroyed, records_made, records_destroyed;
static atomic_long nested_rc_bad;

static void destroy_leaf(void *p, void *context) {
    (void)context;
    struct leaf *l = p;
    if (l->magic != LEAF_LIVE)
        error_at("leaf destroyed twice", (long)l->magic);
    l->magic = REL_POISON;
    atomic_fetch_add(&leaves_destroyed, 1);
    free(l);
}

static struct leaf *make_leaf(void) {
    struct leaf *l = malloc(sizeof *l);
    l->magic = LEAF_LIVE;
    l->id = (uint32_t)atomic_fetch_add(&leaves_made, 1);
    return l;
}

static void destroy_record(void *p, void *context);

/* A record; in MODE_NESTED_RECORD its pointer publishes a MODE_FREE record (one level deeper). */
static struct record *make_record(int mode) {
    struct record *r = malloc(sizeof *r);
    r->magic = REL_LIVE;
    r->mode = mode;
    if (mode == MODE_NESTED_RECORD)
        r->inner = swiftrcu_new(make_record(MODE_FREE), destroy_record, NULL);
    else
        r->inner = swiftrcu_new(make_leaf(), destroy_leaf, NULL);
    if (r->inner == NULL)
        error_at("swiftrcu_new failed", 0);
    atomic_fetch_add(&records_made, 1);
    return r;
}

/* Releases the nested pointer from inside a destroy callback (deferred or synchronous). */
static void destroy_record(void *p, void *context) {
    (void)context;
    struct record *r = p;
    if (r->magic != REL_LIVE)
        error_at("record destroyed twice", (long)r->magic);
    int rc;
    if (r->mode == MODE_DEFER_THEN_FREE || r->mode == MODE_NESTED_RECORD) {
        /* Unpublish the nested object and defer it (call_rcu from a callback), then free the empty ptr. */
        swiftrcu_old *old = NULL;
        rc = swiftrcu_replace(r->inner, NULL, &old);
        if (rc != SWIFTRCU_OK || old == NULL)
            atomic_fetch_add(&nested_rc_bad, 1);
        else if (swiftrcu_old_defer(old) != SWIFTRCU_OK)
            atomic_fetch_add(&nested_rc_bad, 1);
    }
    rc = swiftrcu_free(r->inner); /* waits for a grace period from inside the callback */
    if (rc != SWIFTRCU_OK)
        atomic_fetch_add(&nested_rc_bad, 1);
    r->magic = REL_POISON;
    atomic_fetch_add(&records_destroyed, 1);
    free(r);
}

static swiftrcu_ptr *outer;
static atomic_int readers_stop;
static atomic_long walks;

/* Walks outer -> inner (-> inner) -> leaf under one guard; every node on the way must be live. */
static void *walker(void *arg) {
    (void)arg;
    long n = 0;
    while (!atomic_load(&readers_stop)) {
        swiftrcu_guard g = swiftrcu_read_lock();
        const void *node = swiftrcu_dereference(outer, &g);
        for (int level = 0;; level++) {
            if (node == NULL) {
                error_at("walker found an empty pointer", level);
                break;
            }
            uint32_t magic = *(const uint32_t *)node;
            if (magic == LEAF_LIVE)
                break;
            if (magic != REL_LIVE || level > 3) {
                error_at("walker saw a destroyed node", level);
                break;
            }
            node = swiftrcu_dereference(((const struct record *)node)->inner, &g);
        }
        if (swiftrcu_read_unlock(&g) != SWIFTRCU_OK)
            error_at("walker unlock failed", 0);
        n++;
    }
    atomic_fetch_add(&walks, n);
    return NULL;
}

static void part_nested(long rounds) {
    outer = swiftrcu_new(make_record(MODE_FREE), destroy_record, NULL);
    CHECK(outer != NULL);
    pthread_t w[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ_INT(pthread_create(&w[i], NULL, walker, NULL), 0);
    for (long k = 0; k < rounds; k++) {
        int mode = (int)(k % MODES);
        swiftrcu_old *old = NULL;
        if (swiftrcu_replace(outer, make_record(mode), &old) != SWIFTRCU_OK || old == NULL) {
            error_at("replacing the outer record failed", k);
            continue;
        }
        /* The previous record goes deferred (destroy on a call_rcu thread) or synchronously
         * (destroy here); every 6 rounds each mode has gone both ways. */
        int rc = (k / MODES) % 2 ? swiftrcu_old_defer(old) : swiftrcu_old_free(old);
        if (rc != SWIFTRCU_OK)
            error_at("retiring a record failed", rc);
        if (k % 64 == 7) {
            /* Replace a leaf of the current record from inside a read section. */
            swiftrcu_guard g = swiftrcu_read_lock();
            const struct record *r = swiftrcu_dereference(outer, &g);
            if (r != NULL && r->mode != MODE_NESTED_RECORD) {
                swiftrcu_old *lo = NULL;
                if (swiftrcu_replace(r->inner, make_leaf(), &lo) != SWIFTRCU_OK || lo == NULL ||
                    swiftrcu_old_defer(lo) != SWIFTRCU_OK)
                    error_at("replacing a nested leaf failed", k);
            }
            swiftrcu_read_unlock(&g);
        }
    }
    /* On a loaded machine the readers may not have run yet when the writer is done: give them
     * (at most 10 s) the time for one walk, which the check below requires. */
    for (int i = 0; i < 10000 && atomic_load(&walks) == 0; i++)
        usleep(1000);
    atomic_store(&readers_stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(w[i], NULL);
    CHECK_EQ_INT(swiftrcu_free(outer), SWIFTRCU_OK);
    /* Callbacks queue more callbacks: a barrier covers those queued before it, so one per level. */
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    printf("part 1: %ld records (%ld leaves) replaced under %ld walks; nested releases refused %ld times\n",
           atomic_load(&records_made), atomic_load(&leaves_made), atomic_load(&walks), atomic_load(&nested_rc_bad));
    CHECK_EQ_INT(atomic_load(&nested_rc_bad), 0);
    CHECK_EQ_INT(atomic_load(&records_destroyed), atomic_load(&records_made));
    CHECK_EQ_INT(atomic_load(&leaves_destroyed), atomic_load(&leaves_made));
    CHECK(atomic_load(&walks) > 0);
}

/* ---- part 2: what a destroy callback may call ---- */

struct probe {
    int deferred;       /* the destroy is expected to run on a call_rcu thread */
    swiftrcu_ptr *other;
    atomic_int ran;
    int barrier_rc, sync_rc, old_free_rc, replace_rc, copy_rc, section_sync_rc, section_deref_ok;
};

static void *bump(const void *current, void *context) {
    (void)current;
    return context;
}

static int dummy_a, dummy_b, dummy_c;

static void destroy_probe(void *object, void *context) {
    (void)object;
    struct probe *p = context;
    p->barrier_rc = swiftrcu_barrier();
    p->sync_rc = swiftrcu_synchronize();
    swiftrcu_old *old = NULL;
    p->replace_rc = swiftrcu_replace(p->other, &dummy_b, &old);
    p->old_free_rc = old ? swiftrcu_old_free(old) : 12345;
    swiftrcu_old *old2 = NULL;
    p->copy_rc = swiftrcu_copy_update(p->other, bump, &dummy_c, &old2);
    if (old2 != NULL)
        swiftrcu_old_defer(old2);
    swiftrcu_guard g = swiftrcu_read_lock();
    p->section_deref_ok = swiftrcu_dereference(p->other, &g) == &dummy_c;
    p->section_sync_rc = swiftrcu_synchronize();
    if (swiftrcu_read_unlock(&g) != SWIFTRCU_OK)
        p->section_deref_ok = 0;
    atomic_store(&p->ran, 1);
}

static void part_destroy_reentry(void) {
    for (int deferred = 1; deferred >= 0; deferred--) {
        for (int round = 0; round < 5; round++) {
            struct probe p = {.deferred = deferred, .other = swiftrcu_new(&dummy_a, NULL, NULL)};
            static int obj;
            swiftrcu_ptr *q = swiftrcu_new(&obj, destroy_probe, &p);
            swiftrcu_old *old = NULL;
            CHECK_EQ_INT(swiftrcu_replace(q, NULL, &old), SWIFTRCU_OK);
            CHECK_EQ_INT(deferred ? swiftrcu_old_defer(old) : swiftrcu_old_free(old), SWIFTRCU_OK);
            CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
            CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK); /* the callback's own deferral */
            CHECK_EQ_INT(atomic_load(&p.ran), 1);
            CHECK_EQ_INT(p.barrier_rc, deferred ? SWIFTRCU_EDEADLK : SWIFTRCU_OK);
            CHECK_EQ_INT(p.sync_rc, SWIFTRCU_OK);
            CHECK_EQ_INT(p.replace_rc, SWIFTRCU_OK);
            CHECK_EQ_INT(p.old_free_rc, SWIFTRCU_OK);
            CHECK_EQ_INT(p.copy_rc, SWIFTRCU_OK);
            CHECK_EQ_INT(p.section_sync_rc, SWIFTRCU_EDEADLK);
            CHECK(p.section_deref_ok);
            CHECK_EQ_INT(swiftrcu_free(q), SWIFTRCU_OK);
            CHECK_EQ_INT(swiftrcu_free(p.other), SWIFTRCU_OK);
        }
    }
    /* The same from swiftrcu_free's synchronous destroy. */
    struct probe p = {.other = swiftrcu_new(&dummy_a, NULL, NULL)};
    static int obj2;
    swiftrcu_ptr *q = swiftrcu_new(&obj2, destroy_probe, &p);
    CHECK_EQ_INT(swiftrcu_free(q), SWIFTRCU_OK);
    CHECK_EQ_INT(atomic_load(&p.ran), 1);
    CHECK_EQ_INT(p.barrier_rc, SWIFTRCU_OK);
    CHECK_EQ_INT(p.sync_rc, SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(p.other), SWIFTRCU_OK);

    /* Many deferred destroys calling barrier at once: all refuse, none hangs. */
    static struct probe many[64];
    for (int i = 0; i < 64; i++) {
        many[i].other = swiftrcu_new(&dummy_a, NULL, NULL);
        swiftrcu_ptr *each = swiftrcu_new(&obj2, destroy_probe, &many[i]);
        swiftrcu_old *old = NULL;
        CHECK_EQ_INT(swiftrcu_replace(each, NULL, &old), SWIFTRCU_OK);
        CHECK_EQ_INT(swiftrcu_old_defer(old), SWIFTRCU_OK);
        CHECK_EQ_INT(swiftrcu_free(each), SWIFTRCU_OK);
    }
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    int all = 0;
    for (int i = 0; i < 64; i++) {
        all += atomic_load(&many[i].ran) == 1 && many[i].barrier_rc == SWIFTRCU_EDEADLK;
        CHECK_EQ_INT(swiftrcu_free(many[i].other), SWIFTRCU_OK);
    }
    CHECK_EQ_INT(all, 64);
    printf("part 2: destroy callbacks re-entered the library (barrier refused in deferred ones)\n");
}

/* ---- part 3: copy_update callbacks that re-enter ---- */

static swiftrcu_ptr *pa, *pb, *pc;
static int va0, va1, vb0, vb1, vc0, vc1;

struct inner_result {
    int replace_a, copy_a, replace_b, free_b, replace_c, old_free_c, sync, barrier, defer_c, deref_a_ok;
};

static void *noop(const void *current, void *context) {
    (void)context;
    return (void *)current;
}

static void *update_b(const void *current, void *context) {
    struct inner_result *r = context;
    swiftrcu_old *old = NULL;
    if (current != &vb0)
        error_at("copy_update(B) saw an unexpected current object", 0);
    r->replace_a = swiftrcu_replace(pa, &va1, &old); /* A's callback is running further up */
    r->copy_a = swiftrcu_copy_update(pa, noop, NULL, &old);
    r->replace_b = swiftrcu_replace(pb, &vb1, &old);
    r->free_b = swiftrcu_free(pb);
    r->replace_c = swiftrcu_replace(pc, &vc1, &old); /* another pointer: works */
    r->old_free_c = swiftrcu_old_free(old);
    r->defer_c = swiftrcu_old_defer(old);
    r->sync = swiftrcu_synchronize();
    r->barrier = swiftrcu_barrier();
    swiftrcu_guard g = swiftrcu_read_lock();
    r->deref_a_ok = swiftrcu_dereference(pa, &g) == &va0; /* A still publishes its current object */
    if (swiftrcu_read_unlock(&g) != SWIFTRCU_OK)
        r->deref_a_ok = 0;
    return &vb1;
}

struct outer_result {
    int replace_a, copy_a, free_a, copy_b, sync, barrier;
    swiftrcu_old *old_b;
    struct inner_result inner;
};

static void *update_a(const void *current, void *context) {
    struct outer_result *r = context;
    swiftrcu_old *old = NULL;
    if (current != &va0)
        error_at("copy_update(A) saw an unexpected current object", 0);
    r->replace_a = swiftrcu_replace(pa, &va1, &old);
    r->copy_a = swiftrcu_copy_update(pa, noop, NULL, &old);
    r->free_a = swiftrcu_free(pa);
    r->copy_b = swiftrcu_copy_update(pb, update_b, &r->inner, &r->old_b);
    r->sync = swiftrcu_synchronize();
    r->barrier = swiftrcu_barrier();
    return &va1;
}

/* Mutual exclusion of callbacks on one pointer across threads. */
static atomic_int inside, overlap, cu_calls;
static swiftrcu_ptr *contended;
static int slots[2];

static void *slow_flip(const void *current, void *context) {
    (void)context;
    if (atomic_fetch_add(&inside, 1) != 0)
        atomic_fetch_add(&overlap, 1);
    rel_sleep_ms(1);
    atomic_fetch_sub(&inside, 1);
    atomic_fetch_add(&cu_calls, 1);
    return current == &slots[0] ? &slots[1] : &slots[0];
}

static void *flipper(void *arg) {
    (void)arg;
    for (int i = 0; i < 100; i++) {
        swiftrcu_old *old = NULL;
        int rc = swiftrcu_copy_update(contended, slow_flip, NULL, &old);
        if (rc != SWIFTRCU_OK || old == NULL)
            error_at("contended copy_update failed", rc);
        else if ((i % 2 ? swiftrcu_old_defer(old) : swiftrcu_old_free(old)) != SWIFTRCU_OK)
            error_at("retiring after a contended copy_update failed", i);
    }
    return NULL;
}

static void part_copy_update_reentry(void) {
    pa = swiftrcu_new(&va0, NULL, NULL);
    pb = swiftrcu_new(&vb0, NULL, NULL);
    pc = swiftrcu_new(&vc0, NULL, NULL);
    struct outer_result r;
    memset(&r, 0, sizeof r);
    swiftrcu_old *old_a = NULL;
    CHECK_EQ_INT(swiftrcu_copy_update(pa, update_a, &r, &old_a), SWIFTRCU_OK);
    CHECK_EQ_INT(r.replace_a, SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(r.copy_a, SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(r.free_a, SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(r.copy_b, SWIFTRCU_OK);
    CHECK_EQ_INT(r.sync, SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(r.barrier, SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(r.inner.replace_a, SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(r.inner.copy_a, SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(r.inner.replace_b, SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(r.inner.free_b, SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(r.inner.replace_c, SWIFTRCU_OK);
    CHECK_EQ_INT(r.inner.old_free_c, SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(r.inner.defer_c, SWIFTRCU_OK);
    CHECK_EQ_INT(r.inner.sync, SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(r.inner.barrier, SWIFTRCU_EDEADLK);
    CHECK(r.inner.deref_a_ok);
    CHECK(swiftrcu_old_object(old_a) == &va0);
    CHECK(swiftrcu_old_object(r.old_b) == &vb0);
    CHECK(swiftrcu_load(pa) == &va1);
    CHECK(swiftrcu_load(pb) == &vb1);
    CHECK(swiftrcu_load(pc) == &vc1);
    CHECK_EQ_INT(swiftrcu_old_free(old_a), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_old_free(r.old_b), SWIFTRCU_OK);

    /* Returning the current object publishes nothing; returning NULL publishes NULL. */
    swiftrcu_old *o = (swiftrcu_old *)&o;
    CHECK_EQ_INT(swiftrcu_copy_update(pa, noop, NULL, &o), SWIFTRCU_OK);
    CHECK(o == NULL);
    CHECK_EQ_INT(swiftrcu_copy_update(pa, bump, NULL, &o), SWIFTRCU_OK);
    CHECK(swiftrcu_old_object(o) == &va1);
    CHECK(swiftrcu_load(pa) == NULL);
    CHECK_EQ_INT(swiftrcu_old_defer(o), SWIFTRCU_OK);

    /* Callbacks of one pointer on two threads never overlap. */
    contended = swiftrcu_new(&slots[0], NULL, NULL);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ_INT(pthread_create(&t[i], NULL, flipper, NULL), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ_INT(atomic_load(&overlap), 0);
    CHECK_EQ_INT(atomic_load(&cu_calls), 200);

    CHECK_EQ_INT(swiftrcu_free(contended), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(pa), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(pb), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(pc), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    printf("part 3: re-entering copy_update callbacks answered as specified; %d contended callbacks, %d overlaps\n",
           atomic_load(&cu_calls), atomic_load(&overlap));
}

/* ---- part 4: the writer lock's hand-offs under contention ---- */

/* Four threads write one pointer back to back; a callback now and then takes long enough that the
 * others park. A release that missed a parked waiter would leave it asleep for ever (the watchdog
 * ends the run); two callbacks at once would lose increments of the plain counter. */
#define HANDOFF_THREADS 4
static swiftrcu_ptr *handoff;
static long handoff_count; /* plain: only written inside callbacks of `handoff` */
static int handoff_values[2];

static void *handoff_update(const void *current, void *context) {
    long i = *(long *)context;
    handoff_count++;
    if (i % 64 == 0)
        rel_sleep_us(50); /* the other writers spin out and park */
    return current == &handoff_values[0] ? &handoff_values[1] : &handoff_values[0];
}

static void *handoff_writer(void *arg) {
    long updates = *(long *)arg;
    for (long i = 0; i < updates; i++) {
        swiftrcu_old *old = NULL;
        int rc = swiftrcu_copy_update(handoff, handoff_update, &i, &old);
        if (rc != SWIFTRCU_OK || old == NULL || swiftrcu_old_defer(old) != SWIFTRCU_OK)
            error_at("contended copy_update or its old_defer failed", rc);
    }
    return NULL;
}

static void part_handoffs(long updates) {
    handoff = swiftrcu_new(&handoff_values[0], NULL, NULL);
    CHECK(handoff != NULL);
    pthread_t t[HANDOFF_THREADS];
    for (int i = 0; i < HANDOFF_THREADS; i++)
        CHECK_EQ_INT(pthread_create(&t[i], NULL, handoff_writer, &updates), 0);
    for (int i = 0; i < HANDOFF_THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ_INT(handoff_count, HANDOFF_THREADS * updates);
    CHECK_EQ_INT(swiftrcu_free(handoff), SWIFTRCU_OK);
    printf("part 4: %ld contended writes on one pointer by %d threads, none lost, no waiter stranded\n",
           handoff_count, HANDOFF_THREADS);
}

int main(int argc, char **argv) {
    long rounds = rel_arg(argc, argv, 1, 5000);
    harness_watchdog(180);
    double t0 = rel_now();
    part_nested(rounds);
    part_destroy_reentry();
    part_copy_update_reentry();
    part_handoffs(rounds * 4);
    printf("errors %ld, %.2f s\n", atomic_load(&errors), rel_now() - t0);
    CHECK_EQ_INT(atomic_load(&errors), 0);
    return rel_finish();
}
