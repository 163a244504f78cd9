/*
 * The C ABI contract, rule by rule, against the installed library (built with pkg-config).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <swiftrcu.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>

#include "harness.h"

#define LIVE 0x4C495645u
#define DEAD 0xDEADDEADu
#define MAX_OBJECTS 4096
/* The nesting limit of read-side sections per thread (guards and regions together). */
#define NESTING_LIMIT 255

struct object {
    uint32_t magic;
    int id;
};

/* Per-object destroy counts, and the context every destroy must receive. */
static atomic_int destroyed[MAX_OBJECTS];
static atomic_int destroy_calls;
static atomic_int wrong_context;
static int the_context;
static struct object objects[MAX_OBJECTS];
static int next_object;

static struct object *make_object(void) {
    struct object *o = &objects[next_object];
    o->magic = LIVE;
    o->id = next_object++;
    return o;
}

static void destroy_object(void *p, void *context) {
    struct object *o = p;
    if (context != &the_context)
        atomic_fetch_add(&wrong_context, 1);
    o->magic = DEAD;
    atomic_fetch_add(&destroyed[o->id], 1);
    atomic_fetch_add(&destroy_calls, 1);
}

static int times_destroyed(struct object *o) { return atomic_load(&destroyed[o->id]); }

static swiftrcu_ptr *new_ptr(struct object *o) { return swiftrcu_new(o, destroy_object, &the_context); }

static void test_version_and_errors(void) {
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", SWIFTRCU_VERSION_MAJOR, SWIFTRCU_VERSION_MINOR,
             SWIFTRCU_VERSION_PATCH);
    CHECK(swiftrcu_version() != NULL);
    CHECK(strcmp(swiftrcu_version(), expected) == 0);

    int codes[] = {SWIFTRCU_OK, SWIFTRCU_EINVAL, SWIFTRCU_EPERM, SWIFTRCU_EDEADLK, SWIFTRCU_ENOMEM};
    const char *names[] = {"SWIFTRCU_OK", "SWIFTRCU_EINVAL", "SWIFTRCU_EPERM", "SWIFTRCU_EDEADLK",
                           "SWIFTRCU_ENOMEM"};
    CHECK_EQ_INT(SWIFTRCU_OK, 0);
    for (int i = 0; i < 5; i++) {
        if (i > 0)
            CHECK(codes[i] < 0);
        for (int j = 0; j < i; j++)
            CHECK(codes[i] != codes[j]);
        const char *s = swiftrcu_strerror(codes[i]);
        CHECK(s != NULL && strncmp(s, names[i], strlen(names[i])) == 0);
    }
    CHECK(swiftrcu_strerror(12345) != NULL);
    CHECK(swiftrcu_strerror(INT_MIN) != NULL);
    CHECK(swiftrcu_strerror(INT_MAX) != NULL);
}

static void test_new_and_free(void) {
    swiftrcu_ptr *empty = swiftrcu_new(NULL, NULL, NULL);
    CHECK(empty != NULL);
    CHECK_EQ_INT(swiftrcu_free(empty), SWIFTRCU_OK);

    struct object *o = make_object();
    swiftrcu_ptr *p = new_ptr(o);
    CHECK(p != NULL);
    CHECK_EQ_INT(times_destroyed(o), 0);
    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);
    CHECK_EQ_INT(times_destroyed(o), 1);
    CHECK(o->magic == DEAD);

    /* Stale and NULL handles. */
    CHECK_EQ_INT(swiftrcu_free(NULL), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(times_destroyed(o), 1);

    /* Still refused after many other handles were created and freed (slots get reused). */
    int churn_ok = 0;
    for (int i = 0; i < 20000; i++)
        churn_ok += swiftrcu_free(swiftrcu_new(NULL, NULL, NULL)) == SWIFTRCU_OK;
    CHECK_EQ_INT(churn_ok, 20000);
    swiftrcu_ptr *live = swiftrcu_new(NULL, NULL, NULL);
    CHECK(live != p);
    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_EINVAL);
    swiftrcu_old *old = NULL;
    CHECK_EQ_INT(swiftrcu_replace(p, make_object(), &old), SWIFTRCU_EINVAL);
    CHECK(old == NULL);
    CHECK_EQ_INT(swiftrcu_free(live), SWIFTRCU_OK);
    CHECK_EQ_INT(times_destroyed(o), 1);

    /* A pointer without destroy never destroys. */
    struct object *kept = make_object();
    swiftrcu_ptr *q = swiftrcu_new(kept, NULL, NULL);
    CHECK_EQ_INT(swiftrcu_replace(q, make_object(), &old), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_old_free(old), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(q), SWIFTRCU_OK);
    CHECK_EQ_INT(times_destroyed(kept), 0);
    CHECK(kept->magic == LIVE);

    /* free inside a read section: EDEADLK and nothing changes. */
    struct object *o2 = make_object();
    swiftrcu_ptr *r = new_ptr(o2);
    swiftrcu_guard g = swiftrcu_read_lock();
    CHECK_EQ_INT(swiftrcu_free(r), SWIFTRCU_EDEADLK);
    CHECK(swiftrcu_dereference(r, &g) == o2);
    CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_OK);
    CHECK_EQ_INT(times_destroyed(o2), 0);
    CHECK_EQ_INT(swiftrcu_free(r), SWIFTRCU_OK);
    CHECK_EQ_INT(times_destroyed(o2), 1);
}

static void test_guards(void) {
    struct object *o = make_object();
    swiftrcu_ptr *p = new_ptr(o);

    swiftrcu_guard g = swiftrcu_read_lock();
    CHECK(swiftrcu_dereference(p, &g) == o);
    swiftrcu_guard copy = g;
    CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_OK);
    swiftrcu_guard zero;
    memset(&zero, 0, sizeof zero);
    CHECK(memcmp(&g, &zero, sizeof g) == 0); /* spent */
    CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_EPERM);
    CHECK_EQ_INT(swiftrcu_read_unlock(&copy), SWIFTRCU_EPERM);
    CHECK(swiftrcu_dereference(p, &copy) == NULL);
    CHECK_EQ_INT(swiftrcu_read_unlock(NULL), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_read_unlock(&zero), SWIFTRCU_EPERM);
    CHECK(swiftrcu_dereference(p, &zero) == NULL);

    /* A copy of a spent guard is refused even while a new section at the same depth is open. */
    swiftrcu_guard a = swiftrcu_read_lock();
    swiftrcu_guard a_copy = a;
    CHECK_EQ_INT(swiftrcu_read_unlock(&a), SWIFTRCU_OK);
    swiftrcu_guard b = swiftrcu_read_lock();
    CHECK(swiftrcu_dereference(p, &a_copy) == NULL);
    CHECK_EQ_INT(swiftrcu_read_unlock(&a_copy), SWIFTRCU_EPERM);
    CHECK(swiftrcu_dereference(p, &b) == o);
    CHECK_EQ_INT(swiftrcu_read_unlock(&b), SWIFTRCU_OK);

    /* Guards altered by hand (this test knows the private layout: the thread's serial, then
     * seq << 8 | depth) are refused, whatever the thread's depth: depth 0 with any sequence
     * number (0, the largest), and a depth above the thread's. */
    swiftrcu_guard live = swiftrcu_read_lock();
    const uint64_t forged_words[] = {0, live._private[1] & ~(uint64_t)0xff, UINT64_MAX << 8, UINT64_MAX,
                                     (live._private[1] & ~(uint64_t)0xff) | 2};
    int forged_refused = 0;
    for (int outside = 0; outside < 2; outside++) {
        if (outside)
            CHECK_EQ_INT(swiftrcu_read_unlock(&live), SWIFTRCU_OK);
        for (size_t i = 0; i < sizeof forged_words / sizeof forged_words[0]; i++) {
            swiftrcu_guard f = copy;
            f._private[1] = forged_words[i];
            forged_refused += swiftrcu_dereference(p, &f) == NULL;
            forged_refused += swiftrcu_read_unlock(&f) == SWIFTRCU_EPERM;
        }
        if (!outside)
            CHECK(swiftrcu_dereference(p, &live) == o); /* the real one is untouched */
    }
    CHECK_EQ_INT(forged_refused, 2 * 2 * (int)(sizeof forged_words / sizeof forged_words[0]));

    /* Nesting: innermost first; an outer guard stays valid for dereference. */
    swiftrcu_guard outer = swiftrcu_read_lock();
    swiftrcu_guard inner = swiftrcu_read_lock();
    CHECK(swiftrcu_dereference(p, &outer) == o);
    CHECK(swiftrcu_dereference(p, &inner) == o);
    CHECK_EQ_INT(swiftrcu_read_unlock(&outer), SWIFTRCU_EPERM); /* out of order: nothing changes */
    CHECK(swiftrcu_dereference(p, &outer) == o);
    CHECK_EQ_INT(swiftrcu_read_unlock(&inner), SWIFTRCU_OK);
    CHECK(swiftrcu_dereference(p, &inner) == NULL);
    CHECK(swiftrcu_dereference(p, &outer) == o);
    CHECK_EQ_INT(swiftrcu_read_unlock(&outer), SWIFTRCU_OK);

    /* Deep nesting, then everything released. */
    static swiftrcu_guard many[100];
    for (int i = 0; i < 100; i++)
        many[i] = swiftrcu_read_lock();
    CHECK(swiftrcu_dereference(p, &many[0]) == o);
    CHECK_EQ_INT(swiftrcu_synchronize(), SWIFTRCU_EDEADLK);
    int ok = 1;
    for (int i = 99; i >= 0; i--)
        ok &= swiftrcu_read_unlock(&many[i]) == SWIFTRCU_OK;
    CHECK(ok);
    CHECK_EQ_INT(swiftrcu_synchronize(), SWIFTRCU_OK);

    /* NULL arguments to dereference. */
    swiftrcu_guard h = swiftrcu_read_lock();
    CHECK(swiftrcu_dereference(NULL, &h) == NULL);
    CHECK(swiftrcu_dereference(p, NULL) == NULL);
    CHECK_EQ_INT(swiftrcu_read_unlock(&h), SWIFTRCU_OK);

    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);

    /* A pointer holding NULL, and a stale pointer, dereference to NULL. */
    swiftrcu_ptr *empty = swiftrcu_new(NULL, NULL, NULL);
    swiftrcu_guard e = swiftrcu_read_lock();
    CHECK(swiftrcu_dereference(empty, &e) == NULL);
    CHECK(swiftrcu_dereference(p, &e) == NULL);
    CHECK_EQ_INT(swiftrcu_read_unlock(&e), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(empty), SWIFTRCU_OK);
}

struct cross_thread {
    swiftrcu_guard guard;
    swiftrcu_ptr *ptr;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stage;
    void *seen;
};

static void wait_stage(struct cross_thread *c, int stage) {
    pthread_mutex_lock(&c->lock);
    while (c->stage < stage)
        pthread_cond_wait(&c->cond, &c->lock);
    pthread_mutex_unlock(&c->lock);
}

static void set_stage(struct cross_thread *c, int stage) {
    pthread_mutex_lock(&c->lock);
    c->stage = stage;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void *guard_owner(void *arg) {
    struct cross_thread *c = arg;
    c->guard = swiftrcu_read_lock();
    c->seen = swiftrcu_dereference(c->ptr, &c->guard);
    set_stage(c, 1);
    wait_stage(c, 2);
    CHECK_EQ_INT(swiftrcu_read_unlock(&c->guard), SWIFTRCU_OK);
    return NULL;
}

static void *exit_holding_locks(void *arg) {
    struct cross_thread *c = arg;
    swiftrcu_guard g1 = swiftrcu_read_lock();
    swiftrcu_guard g2 = swiftrcu_read_lock();
    c->seen = swiftrcu_dereference(c->ptr, &g2);
    (void)g1;
    return NULL; /* exits inside two read sections */
}

static void test_threads(void) {
    struct object *o = make_object();
    struct cross_thread c = {.ptr = new_ptr(o), .lock = PTHREAD_MUTEX_INITIALIZER,
                             .cond = PTHREAD_COND_INITIALIZER};
    pthread_t t;
    pthread_create(&t, NULL, guard_owner, &c);
    wait_stage(&c, 1);
    CHECK(c.seen == o);
    /* Another thread's guard: refused here, changes nothing there. */
    swiftrcu_guard theirs = c.guard;
    CHECK(swiftrcu_dereference(c.ptr, &theirs) == NULL);
    CHECK_EQ_INT(swiftrcu_read_unlock(&theirs), SWIFTRCU_EPERM);
    /* Their section holds the old object back: replace + defer must not destroy it yet. */
    swiftrcu_old *old = NULL;
    CHECK_EQ_INT(swiftrcu_replace(c.ptr, make_object(), &old), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_old_defer(old), SWIFTRCU_OK);
    usleep(100 * 1000);
    CHECK_EQ_INT(times_destroyed(o), 0);
    set_stage(&c, 2);
    pthread_join(t, NULL);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    CHECK_EQ_INT(times_destroyed(o), 1);

    /* A thread that exits holding read locks does not block writers forever. */
    c.seen = NULL;
    pthread_create(&t, NULL, exit_holding_locks, &c);
    pthread_join(t, NULL);
    CHECK(c.seen != NULL);
    CHECK_EQ_INT(swiftrcu_synchronize(), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(c.ptr), SWIFTRCU_OK);

    /* Register / unregister. */
    CHECK_EQ_INT(swiftrcu_thread_register(), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_thread_register(), SWIFTRCU_OK);
    swiftrcu_guard g = swiftrcu_read_lock();
    CHECK_EQ_INT(swiftrcu_thread_unregister(), SWIFTRCU_EPERM);
    CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_thread_unregister(), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_thread_unregister(), SWIFTRCU_OK);
    g = swiftrcu_read_lock(); /* registers again */
    CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_synchronize(), SWIFTRCU_OK);
}

static void test_replace(void) {
    struct object *a = make_object(), *b = make_object(), *c = make_object();
    swiftrcu_ptr *p = new_ptr(a);
    swiftrcu_old *old = (swiftrcu_old *)&old; /* not NULL: must be overwritten */

    CHECK_EQ_INT(swiftrcu_replace(NULL, b, &old), SWIFTRCU_EINVAL);
    CHECK(old == NULL);
    CHECK_EQ_INT(swiftrcu_replace(p, b, NULL), SWIFTRCU_EINVAL);

    swiftrcu_guard g = swiftrcu_read_lock();
    void *before = swiftrcu_dereference(p, &g);
    CHECK(before == a);
    /* replace inside a read section is allowed; the reader keeps the previous object. */
    CHECK_EQ_INT(swiftrcu_replace(p, b, &old), SWIFTRCU_OK);
    CHECK(old != NULL);
    CHECK(swiftrcu_old_object(old) == a);
    CHECK(swiftrcu_dereference(p, &g) == b);
    CHECK(((struct object *)before)->magic == LIVE);
    CHECK_EQ_INT(swiftrcu_old_free(old), SWIFTRCU_EDEADLK); /* would wait for ourselves */
    CHECK(swiftrcu_old_object(old) == a);
    CHECK_EQ_INT(swiftrcu_old_defer(old), SWIFTRCU_OK); /* allowed, never blocks */
    usleep(50 * 1000);
    CHECK_EQ_INT(times_destroyed(a), 0); /* none early: our section is still open */
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    CHECK_EQ_INT(times_destroyed(a), 1);

    /* Stale old handles: every function refuses them. */
    CHECK_EQ_INT(swiftrcu_old_defer(old), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_old_free(old), SWIFTRCU_EINVAL);
    CHECK(swiftrcu_old_object(old) == NULL);
    CHECK_EQ_INT(times_destroyed(a), 1);

    /* Publishing NULL, then replacing NULL gives no old handle. */
    CHECK_EQ_INT(swiftrcu_replace(p, NULL, &old), SWIFTRCU_OK);
    CHECK(swiftrcu_old_object(old) == b);
    CHECK_EQ_INT(swiftrcu_old_free(old), SWIFTRCU_OK);
    CHECK_EQ_INT(times_destroyed(b), 1);
    old = (swiftrcu_old *)&old;
    CHECK_EQ_INT(swiftrcu_replace(p, c, &old), SWIFTRCU_OK);
    CHECK(old == NULL);

    /* Wrong kinds: an old handle is not a ptr, a ptr is not an old handle. */
    swiftrcu_old *o2 = NULL;
    CHECK_EQ_INT(swiftrcu_replace(p, NULL, &o2), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free((swiftrcu_ptr *)o2), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_replace((swiftrcu_ptr *)o2, NULL, &old), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_old_free((swiftrcu_old *)p), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_old_defer((swiftrcu_old *)p), SWIFTRCU_EINVAL);
    CHECK(swiftrcu_old_object((swiftrcu_old *)p) == NULL);
    CHECK_EQ_INT(swiftrcu_old_free(NULL), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_old_defer(NULL), SWIFTRCU_EINVAL);
    CHECK(swiftrcu_old_object(NULL) == NULL);
    CHECK_EQ_INT(swiftrcu_old_free(o2), SWIFTRCU_OK);
    CHECK_EQ_INT(times_destroyed(c), 1);
    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);
}

/* Publishing the object a pointer publishes now changes nothing: no old handle, so the object is
 * never destroyed while it stays published, and free destroys it once. */
static void test_replace_current(void) {
    struct object *a = make_object();
    swiftrcu_ptr *p = new_ptr(a);
    swiftrcu_old *old = (swiftrcu_old *)&old; /* not NULL: must be overwritten */
    CHECK_EQ_INT(swiftrcu_replace(p, a, &old), SWIFTRCU_OK);
    CHECK(old == NULL);
    if (old != NULL)
        swiftrcu_old_free(old); /* what a caller does: destroys the published object */
    swiftrcu_guard g = swiftrcu_read_lock();
    CHECK(swiftrcu_dereference(p, &g) == a);
    CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_OK);
    CHECK_EQ_INT(times_destroyed(a), 0);
    CHECK(a->magic == LIVE);
    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);
    CHECK_EQ_INT(times_destroyed(a), 1);
}

/* copy_update callbacks. */
struct update_ctx {
    swiftrcu_ptr *self;
    swiftrcu_ptr *other;
    struct object *next;
    const void *seen;
    int calls;
    int replace_self, copy_self, free_self, replace_other, sync_inside, old_free_inside;
};

static void *keep_current(const void *current, void *context) {
    struct update_ctx *u = context;
    u->calls++;
    u->seen = current;
    return (void *)current;
}

static void *noop_update(const void *current, void *context) {
    (void)context;
    return (void *)current;
}

static void *reentering_update(const void *current, void *context) {
    struct update_ctx *u = context;
    swiftrcu_old *old = NULL;
    u->calls++;
    u->seen = current;
    u->replace_self = swiftrcu_replace(u->self, NULL, &old);
    u->copy_self = swiftrcu_copy_update(u->self, noop_update, NULL, &old);
    u->free_self = swiftrcu_free(u->self);
    u->sync_inside = swiftrcu_synchronize();
    u->replace_other = swiftrcu_replace(u->other, make_object(), &old);
    u->old_free_inside = swiftrcu_old_free(old);
    if (old != NULL)
        swiftrcu_old_defer(old);
    return u->next;
}

static void test_copy_update(void) {
    struct object *a = make_object(), *b = make_object(), *x = make_object();
    swiftrcu_ptr *p = new_ptr(a);
    swiftrcu_ptr *other = new_ptr(x);
    swiftrcu_old *old = NULL;
    struct update_ctx u = {.self = p, .other = other};

    CHECK_EQ_INT(swiftrcu_copy_update(NULL, keep_current, &u, &old), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_copy_update(p, NULL, &u, &old), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_copy_update(p, keep_current, &u, NULL), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(u.calls, 0);

    old = (swiftrcu_old *)&old;
    CHECK_EQ_INT(swiftrcu_copy_update(p, keep_current, &u, &old), SWIFTRCU_OK);
    CHECK_EQ_INT(u.calls, 1);
    CHECK(u.seen == a);
    CHECK(old == NULL);
    CHECK_EQ_INT(times_destroyed(a), 0);

    u.next = b;
    u.calls = 0;
    CHECK_EQ_INT(swiftrcu_copy_update(p, reentering_update, &u, &old), SWIFTRCU_OK);
    CHECK_EQ_INT(u.calls, 1);
    CHECK(u.seen == a);
    CHECK_EQ_INT(u.replace_self, SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(u.copy_self, SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(u.free_self, SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(u.sync_inside, SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(u.replace_other, SWIFTRCU_OK);
    CHECK_EQ_INT(u.old_free_inside, SWIFTRCU_EDEADLK);
    CHECK(old != NULL && swiftrcu_old_object(old) == a);
    swiftrcu_guard g = swiftrcu_read_lock();
    CHECK(swiftrcu_dereference(p, &g) == b);
    /* copy_update inside a read section is allowed. */
    u.next = make_object();
    swiftrcu_old *old2 = NULL;
    CHECK_EQ_INT(swiftrcu_copy_update(p, reentering_update, &u, &old2), SWIFTRCU_OK);
    CHECK(swiftrcu_old_object(old2) == b);
    CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_old_free(old), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_old_free(old2), SWIFTRCU_OK);
    CHECK_EQ_INT(times_destroyed(a), 1);
    CHECK_EQ_INT(times_destroyed(b), 1);
    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(other), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    CHECK_EQ_INT(times_destroyed(x), 1);
}

/* Runs fn(arg) on a new thread and waits for it at most `seconds`: 1 when it finished, 0 when it
 * is still running (then it is left behind: a hang reported as a failed check, not a stuck test). */
struct timed_call {
    void *(*fn)(void *);
    void *arg;
    atomic_int done;
};

static void *timed_call_main(void *arg) {
    struct timed_call *c = arg;
    c->fn(c->arg);
    atomic_store(&c->done, 1);
    return NULL;
}

static int finishes_within(struct timed_call *c, double seconds) {
    pthread_t t;
    if (pthread_create(&t, NULL, timed_call_main, c) != 0)
        return 0;
    for (int ms = 0; ms < (int)(seconds * 1000) && !atomic_load(&c->done); ms += 5)
        usleep(5000);
    if (!atomic_load(&c->done)) {
        pthread_detach(t);
        return 0;
    }
    pthread_join(t, NULL);
    return 1;
}

/* A copy_update callback whose thread leaves by pthread_exit or by cancellation: the writer lock is
 * released at the thread's exit and the update abandoned, so other writers and grace periods go on. */
static atomic_int leaving_inside;
static void *exiting_update(const void *current, void *context) {
    (void)current;
    int how = *(int *)context;
    atomic_store(&leaving_inside, 1);
    if (how == 0)
        pthread_exit(NULL);
    for (;;) { /* cancelled here */
        pthread_testcancel();
        usleep(1000);
    }
    return NULL;
}

struct leaving_writer {
    swiftrcu_ptr *p;
    int how; /* 0: pthread_exit, 1: cancelled */
};

static void *leaving_writer_main(void *arg) {
    struct leaving_writer *w = arg;
    swiftrcu_old *old = NULL;
    swiftrcu_copy_update(w->p, exiting_update, &w->how, &old);
    return NULL; /* not reached */
}

static void *replace_and_free(void *arg) {
    swiftrcu_ptr *p = arg;
    swiftrcu_old *old = NULL;
    if (swiftrcu_replace(p, make_object(), &old) == SWIFTRCU_OK)
        swiftrcu_old_free(old);
    return NULL;
}

static void *synchronize_main(void *arg) {
    (void)arg;
    swiftrcu_synchronize();
    return NULL;
}

static void test_writer_thread_exits(void) {
    for (int how = 0; how < 2; how++) {
        struct object *a = make_object();
        swiftrcu_ptr *p = new_ptr(a);
        struct leaving_writer w = {p, how};
        atomic_store(&leaving_inside, 0);
        pthread_t t;
        CHECK_EQ_INT(pthread_create(&t, NULL, leaving_writer_main, &w), 0);
        while (!atomic_load(&leaving_inside))
            usleep(1000);
        if (how == 1)
            CHECK_EQ_INT(pthread_cancel(t), 0);
        CHECK_EQ_INT(pthread_join(t, NULL), 0);
        /* Nothing of the update was published, and every wait goes on. */
        struct timed_call sync = {synchronize_main, NULL, 0};
        CHECK(finishes_within(&sync, 5));
        struct timed_call write = {replace_and_free, p, 0};
        CHECK(finishes_within(&write, 5));
        if (!atomic_load(&write.done) || !atomic_load(&sync.done))
            continue; /* the pointer's writer lock is lost: leave it */
        CHECK_EQ_INT(times_destroyed(a), 1); /* replaced by the write above, then freed */
        CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);
    }
}

/* Two writers, each in copy_update of one pointer, each writing the other pointer from its callback
 * (ABBA): the write that would close the cycle is refused with SWIFTRCU_EDEADLK, changing nothing,
 * and the other goes on. */
struct abba_side {
    swiftrcu_ptr *mine, *theirs;
    atomic_int *inside_mine, *inside_theirs;
    struct object *next;
    int write_rc;
    swiftrcu_old *write_old;
    int outer_rc;
};

static void *abba_update(const void *current, void *context) {
    struct abba_side *s = context;
    atomic_store(s->inside_mine, 1);
    for (int ms = 0; ms < 2000 && !atomic_load(s->inside_theirs); ms++)
        usleep(1000);
    s->write_old = (swiftrcu_old *)&s->write_old; /* must be overwritten */
    s->write_rc = swiftrcu_replace(s->theirs, s->next, &s->write_old);
    return (void *)current;
}

static void *abba_main(void *arg) {
    struct abba_side *s = arg;
    swiftrcu_old *old = NULL;
    s->outer_rc = swiftrcu_copy_update(s->mine, abba_update, s, &old);
    return NULL;
}

static void test_writer_deadlock(void) {
    struct object *a = make_object(), *b = make_object(), *a2 = make_object(), *b2 = make_object();
    swiftrcu_ptr *pa = new_ptr(a), *pb = new_ptr(b);
    atomic_int in_a = 0, in_b = 0;
    struct abba_side s1 = {pa, pb, &in_a, &in_b, b2, -100, NULL, -100};
    struct abba_side s2 = {pb, pa, &in_b, &in_a, a2, -100, NULL, -100};
    struct timed_call c1 = {abba_main, &s1, 0}, c2 = {abba_main, &s2, 0};
    pthread_t t1;
    CHECK_EQ_INT(pthread_create(&t1, NULL, timed_call_main, &c1), 0);
    int second = finishes_within(&c2, 10);
    for (int ms = 0; ms < 10000 && !atomic_load(&c1.done); ms += 5)
        usleep(5000);
    CHECK(second && atomic_load(&c1.done));
    if (!second || !atomic_load(&c1.done)) {
        pthread_detach(t1);
        return; /* deadlocked: both pointers' writer locks are lost */
    }
    pthread_join(t1, NULL);
    CHECK_EQ_INT(s1.outer_rc, SWIFTRCU_OK);
    CHECK_EQ_INT(s2.outer_rc, SWIFTRCU_OK);
    /* Exactly one of the two inner writes was refused, changing nothing. */
    struct abba_side *refused = s1.write_rc == SWIFTRCU_EDEADLK ? &s1 : &s2;
    struct abba_side *went_on = refused == &s1 ? &s2 : &s1;
    CHECK_EQ_INT(refused->write_rc, SWIFTRCU_EDEADLK);
    CHECK(refused->write_old == NULL);
    CHECK_EQ_INT(went_on->write_rc, SWIFTRCU_OK);
    swiftrcu_guard g = swiftrcu_read_lock();
    CHECK(swiftrcu_dereference(refused->theirs, &g) == (refused == &s1 ? b : a));
    CHECK(swiftrcu_dereference(went_on->theirs, &g) == went_on->next);
    CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_old_free(went_on->write_old), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_synchronize(), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(pa), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(pb), SWIFTRCU_OK);
    CHECK_EQ_INT(times_destroyed(refused->next), 0); /* never published: still the caller's */
}

/* A thread-specific-data destructor that runs after the library's own (its key was created later):
 * on that exiting thread every call that needs a read section refuses with one documented status,
 * and live handles are never called stale; another thread then uses them normally. */
static pthread_key_t late_key;
static swiftrcu_ptr *exiting_ptr;
static swiftrcu_old *exiting_old;
static struct {
    int old_free, old_defer, replace, copy_update, free_, old_object_null, load_null;
} exiting;

static void late_destructor(void *value) {
    (void)value;
    swiftrcu_old *old = (swiftrcu_old *)&old;
    exiting.old_free = swiftrcu_old_free(exiting_old);
    exiting.old_defer = swiftrcu_old_defer(exiting_old);
    exiting.old_object_null = swiftrcu_old_object(exiting_old) == NULL;
    exiting.replace = swiftrcu_replace(exiting_ptr, make_object(), &old);
    exiting.copy_update = swiftrcu_copy_update(exiting_ptr, noop_update, NULL, &old);
    exiting.free_ = swiftrcu_free(exiting_ptr);
    exiting.load_null = swiftrcu_load(exiting_ptr) == NULL;
}

static void *exiting_thread_main(void *arg) {
    (void)arg;
    swiftrcu_guard g = swiftrcu_read_lock(); /* the thread uses the library: its exit handler is set */
    swiftrcu_read_unlock(&g);
    pthread_setspecific(late_key, &late_key);
    return NULL;
}

static void test_exiting_thread(void) {
    struct object *a = make_object(), *b = make_object();
    exiting_ptr = new_ptr(a);
    CHECK_EQ_INT(swiftrcu_replace(exiting_ptr, b, &exiting_old), SWIFTRCU_OK);
    CHECK_EQ_INT(pthread_key_create(&late_key, late_destructor), 0);
    pthread_t t;
    CHECK_EQ_INT(pthread_create(&t, NULL, exiting_thread_main, NULL), 0);
    CHECK_EQ_INT(pthread_join(t, NULL), 0);
    CHECK_EQ_INT(exiting.old_free, SWIFTRCU_EPERM);
    CHECK_EQ_INT(exiting.old_defer, SWIFTRCU_EPERM);
    CHECK(exiting.old_object_null);
    CHECK_EQ_INT(exiting.replace, SWIFTRCU_EPERM);
    CHECK_EQ_INT(exiting.copy_update, SWIFTRCU_EPERM);
    CHECK_EQ_INT(exiting.free_, SWIFTRCU_EPERM);
    CHECK(exiting.load_null);
    /* Nothing changed: the handles are live and work from this thread. */
    CHECK(swiftrcu_old_object(exiting_old) == a);
    CHECK_EQ_INT(swiftrcu_old_free(exiting_old), SWIFTRCU_OK);
    CHECK_EQ_INT(times_destroyed(a), 1);
    CHECK_EQ_INT(swiftrcu_free(exiting_ptr), SWIFTRCU_OK);
    CHECK_EQ_INT(times_destroyed(b), 1);
    pthread_key_delete(late_key);
}

/* Barrier from a deferred destroy refuses instead of waiting for itself. */
static atomic_int barrier_in_callback = 1;
static void destroy_calling_barrier(void *p, void *context) {
    (void)context;
    atomic_store(&barrier_in_callback, swiftrcu_barrier());
    destroy_object(p, &the_context);
}

static void test_callbacks(void) {
    struct object *a = make_object();
    swiftrcu_ptr *p = swiftrcu_new(a, destroy_calling_barrier, NULL);
    swiftrcu_old *old = NULL;
    CHECK_EQ_INT(swiftrcu_replace(p, NULL, &old), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_old_defer(old), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    CHECK_EQ_INT(atomic_load(&barrier_in_callback), SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(times_destroyed(a), 1);
    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);
}

/* Readers and writers at once: no reader sees a destroyed object, each is destroyed once. */
#define STRESS_OBJECTS 2000
static struct object stress_objects[STRESS_OBJECTS];
static atomic_int stress_destroyed[STRESS_OBJECTS];
static atomic_int stress_next;
static atomic_int stress_stop;
static atomic_long stress_bad;

static void stress_destroy(void *p, void *context) {
    (void)context;
    struct object *o = p;
    o->magic = DEAD;
    atomic_fetch_add(&stress_destroyed[o->id], 1);
}

static void *stress_reader(void *arg) {
    swiftrcu_ptr *p = arg;
    while (!atomic_load(&stress_stop)) {
        swiftrcu_guard g = swiftrcu_read_lock();
        struct object *o = swiftrcu_dereference(p, &g);
        if (o == NULL || o->magic != LIVE)
            atomic_fetch_add(&stress_bad, 1);
        swiftrcu_read_unlock(&g);
    }
    return NULL;
}

/* What a stress-test writer publishes: prepare(i) for i = *next, *next + 1, ... below count,
 * shared by all writers of the test; failed calls are counted in *bad. */
struct stress_feed {
    atomic_int *next;
    int count;
    void *(*prepare)(int i); /* initialises object i and returns it */
    atomic_long *bad;
};

/* Publishes the feed's objects in p one by one, releasing each previous object with old_free
 * and old_defer in turn. */
static void write_feed(swiftrcu_ptr *p, const struct stress_feed *feed) {
    int count = harness_scaled(feed->count);
    for (;;) {
        int i = atomic_fetch_add(feed->next, 1);
        if (i >= count)
            break;
        swiftrcu_old *old = NULL;
        if (swiftrcu_replace(p, feed->prepare(i), &old) != SWIFTRCU_OK || old == NULL) {
            atomic_fetch_add(feed->bad, 1);
            continue;
        }
        if (((i % 2) ? swiftrcu_old_defer(old) : swiftrcu_old_free(old)) != SWIFTRCU_OK)
            atomic_fetch_add(feed->bad, 1);
    }
}

static void *stress_prepare(int i) {
    stress_objects[i].magic = LIVE;
    stress_objects[i].id = i;
    return &stress_objects[i];
}

static void *stress_writer(void *arg) {
    static const struct stress_feed feed = {&stress_next, STRESS_OBJECTS, stress_prepare, &stress_bad};
    write_feed(arg, &feed);
    return NULL;
}

/* Runs 3 readers and 2 writers until the writers are done, then sets *stop and waits for the
 * readers. */
static void run_readers_and_writers(void *(*reader)(void *), void *reader_arg, void *(*writer)(void *),
                                    void *writer_arg, atomic_int *stop) {
    pthread_t readers[3], writers[2];
    for (int i = 0; i < 3; i++)
        pthread_create(&readers[i], NULL, reader, reader_arg);
    for (int i = 0; i < 2; i++)
        pthread_create(&writers[i], NULL, writer, writer_arg);
    for (int i = 0; i < 2; i++)
        pthread_join(writers[i], NULL);
    atomic_store(stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(readers[i], NULL);
}

static void test_concurrency(void) {
    stress_objects[0].magic = LIVE;
    stress_objects[0].id = 0;
    atomic_store(&stress_next, 1);
    swiftrcu_ptr *p = swiftrcu_new(&stress_objects[0], stress_destroy, NULL);
    run_readers_and_writers(stress_reader, p, stress_writer, p, &stress_stop);
    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    CHECK_EQ_INT(atomic_load(&stress_bad), 0);
    int once = 0;
    for (int i = 0; i < harness_scaled(STRESS_OBJECTS); i++)
        once += atomic_load(&stress_destroyed[i]) == 1;
    CHECK_EQ_INT(once, harness_scaled(STRESS_OBJECTS));
}

/* ---- swiftrcu_read_section ---- */

struct section_probe {
    const void *seen;
    void *context_seen;
    int calls;
    int sync_rc;       /* swiftrcu_synchronize() inside fn */
    int nested_ok;     /* a nested read lock / dereference / unlock inside fn worked */
    swiftrcu_ptr *ptr; /* for the nested dereference */
};

static void section_fn(const void *object, void *context) {
    struct section_probe *p = context;
    p->seen = object;
    p->context_seen = context;
    p->calls++;
    p->sync_rc = swiftrcu_synchronize();
    swiftrcu_guard g = swiftrcu_read_lock();
    p->nested_ok = swiftrcu_dereference(p->ptr, &g) == object && swiftrcu_read_unlock(&g) == SWIFTRCU_OK;
}

/* A writer that replaces and frees while the reader is inside its section. */
struct section_writer {
    swiftrcu_ptr *ptr;
    struct object *next;
    atomic_int go;
    atomic_int done;
};

static void *section_writer_main(void *arg) {
    struct section_writer *w = arg;
    while (!atomic_load(&w->go))
        usleep(100);
    swiftrcu_old *old = NULL;
    if (swiftrcu_replace(w->ptr, w->next, &old) == SWIFTRCU_OK)
        swiftrcu_old_free(old);
    atomic_store(&w->done, 1);
    return NULL;
}

struct section_hold {
    struct section_writer *w;
    int still_live;     /* the object was not destroyed while fn held it */
    int writer_waited;  /* the writer's old_free had not returned when fn ended */
};

static void section_hold_fn(const void *object, void *context) {
    struct section_hold *h = context;
    atomic_store(&h->w->go, 1);
    usleep(100 * 1000);
    h->still_live = object != NULL && ((const struct object *)object)->magic == LIVE;
    h->writer_waited = !atomic_load(&h->w->done);
}

static void test_read_section(void) {
    struct object *a = make_object();
    swiftrcu_ptr *p = new_ptr(a);
    struct section_probe probe = {.ptr = p};
    CHECK_EQ_INT(swiftrcu_read_section(p, NULL, &probe), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_read_section(NULL, section_fn, &probe), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(probe.calls, 0);
    CHECK_EQ_INT(swiftrcu_read_section(p, section_fn, &probe), SWIFTRCU_OK);
    CHECK_EQ_INT(probe.calls, 1);
    CHECK(probe.seen == a);
    CHECK(probe.context_seen == &probe);
    CHECK_EQ_INT(probe.sync_rc, SWIFTRCU_EDEADLK);
    CHECK(probe.nested_ok);
    /* The section has ended: a grace period can complete again. */
    CHECK_EQ_INT(swiftrcu_synchronize(), SWIFTRCU_OK);
    /* A published NULL is passed on. */
    swiftrcu_old *old = NULL;
    CHECK_EQ_INT(swiftrcu_replace(p, NULL, &old), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_read_section(p, section_fn, &probe), SWIFTRCU_OK);
    CHECK(probe.seen == NULL);
    CHECK_EQ_INT(swiftrcu_old_free(old), SWIFTRCU_OK);
    CHECK_EQ_INT(times_destroyed(a), 1);
    /* The wrong kind of handle, and a stale one: refused, fn not called. */
    struct object *b = make_object();
    CHECK_EQ_INT(swiftrcu_replace(p, b, &old), SWIFTRCU_OK);
    CHECK(old == NULL);
    swiftrcu_ptr *q = new_ptr(make_object());
    swiftrcu_old *qold = NULL;
    CHECK_EQ_INT(swiftrcu_replace(q, NULL, &qold), SWIFTRCU_OK);
    int calls = probe.calls;
    CHECK_EQ_INT(swiftrcu_read_section((swiftrcu_const_ptr_ref)(const void *)qold, section_fn, &probe),
                 SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_old_free(qold), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(q), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_read_section(q, section_fn, &probe), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(probe.calls, calls);
    /* The section holds back the grace period of a writer on another thread until fn returns. */
    struct section_writer w = {.ptr = p, .next = make_object()};
    struct section_hold hold = {.w = &w};
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, section_writer_main, &w), 0);
    CHECK_EQ_INT(swiftrcu_read_section(p, section_hold_fn, &hold), SWIFTRCU_OK);
    pthread_join(th, NULL);
    CHECK(hold.still_live);
    CHECK(hold.writer_waited);
    CHECK_EQ_INT(times_destroyed(b), 1);
    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);
}

/* ---- swiftrcu_read_copy ---- */

/* Copies of every size from 0 to 40 at offsets 0 to 3 of a byte pattern: the bytes asked for
 * arrive, and the byte after them in dst is left alone. */
static void test_read_copy_sizes(void) {
    static unsigned char pattern[64];
    for (int i = 0; i < 64; i++)
        pattern[i] = (unsigned char)(0xA0 ^ (i * 7));
    swiftrcu_ptr *p = swiftrcu_new(pattern, NULL, NULL);
    int good = 0, cases = 0;
    for (size_t offset = 0; offset < 4; offset++) {
        for (size_t size = 0; size <= 40; size++) {
            unsigned char dst[48];
            memset(dst, 0x5A, sizeof dst);
            const void *from = swiftrcu_read_copy(p, offset, dst + 1, size);
            int ok = from == pattern && memcmp(dst + 1, pattern + offset, size) == 0 && dst[0] == 0x5A &&
                     dst[size + 1] == 0x5A;
            if (!ok)
                fprintf(stderr, "read_copy offset %zu size %zu: wrong bytes or result\n", offset, size);
            good += ok;
            cases++;
        }
    }
    CHECK_EQ_INT(good, cases);
    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);
}

static void test_read_copy(void) {
    struct object *a = make_object();
    swiftrcu_ptr *p = new_ptr(a);
    uint32_t magic = 0;
    int id = -1;
    struct object whole = {0, -1};
    CHECK(swiftrcu_read_copy(p, 0, &magic, sizeof magic) == a);
    CHECK_EQ_INT(magic, LIVE);
    CHECK(swiftrcu_read_copy(p, offsetof(struct object, id), &id, sizeof id) == a);
    CHECK_EQ_INT(id, a->id);
    CHECK(swiftrcu_read_copy(p, 0, &whole, sizeof whole) == a);
    CHECK(whole.magic == LIVE && whole.id == a->id);
    /* The section has ended: a grace period can complete. */
    CHECK_EQ_INT(swiftrcu_synchronize(), SWIFTRCU_OK);
    /* Size 0 copies nothing, with or without a destination, and still names the object. */
    magic = 7;
    CHECK(swiftrcu_read_copy(p, 0, &magic, 0) == a);
    CHECK(swiftrcu_read_copy(p, 0, NULL, 0) == a);
    CHECK_EQ_INT(magic, 7);
    /* Refused, copying nothing: NULL dst with a size, offset + size past SIZE_MAX, NULL ptr. */
    CHECK(swiftrcu_read_copy(p, 0, NULL, sizeof magic) == NULL);
    CHECK(swiftrcu_read_copy(p, SIZE_MAX, &magic, sizeof magic) == NULL);
    CHECK(swiftrcu_read_copy(p, 0, &magic, SIZE_MAX) == NULL);
    CHECK(swiftrcu_read_copy(p, SIZE_MAX / 2 + 1, &magic, 1) == NULL);
    CHECK(swiftrcu_read_copy(NULL, 0, &magic, sizeof magic) == NULL);
    CHECK_EQ_INT(magic, 7);
    /* Nested in a guard's section: works, and the outer section is still held afterwards. */
    swiftrcu_guard g = swiftrcu_read_lock();
    CHECK(swiftrcu_read_copy(p, 0, &magic, sizeof magic) == a);
    CHECK_EQ_INT(magic, LIVE);
    CHECK_EQ_INT(swiftrcu_synchronize(), SWIFTRCU_EDEADLK);
    CHECK(swiftrcu_dereference(p, &g) == a);
    CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_OK);
    /* A published NULL: nothing copied. */
    swiftrcu_old *old = NULL;
    CHECK_EQ_INT(swiftrcu_replace(p, NULL, &old), SWIFTRCU_OK);
    magic = 7;
    CHECK(swiftrcu_read_copy(p, 0, &magic, sizeof magic) == NULL);
    CHECK_EQ_INT(magic, 7);
    CHECK_EQ_INT(swiftrcu_old_free(old), SWIFTRCU_OK);
    CHECK_EQ_INT(times_destroyed(a), 1);
    /* The result changes when the object is replaced. */
    struct object *b = make_object(), *c = make_object();
    CHECK_EQ_INT(swiftrcu_replace(p, b, &old), SWIFTRCU_OK);
    const void *first = swiftrcu_read_copy(p, 0, &magic, sizeof magic);
    CHECK_EQ_INT(swiftrcu_replace(p, c, &old), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_old_free(old), SWIFTRCU_OK);
    CHECK(first == b);
    CHECK(swiftrcu_read_copy(p, 0, &magic, sizeof magic) == c);
    /* The wrong kind of handle, and a stale one: refused, nothing copied. */
    swiftrcu_ptr *q = new_ptr(make_object());
    swiftrcu_old *qold = NULL;
    CHECK_EQ_INT(swiftrcu_replace(q, NULL, &qold), SWIFTRCU_OK);
    magic = 7;
    CHECK(swiftrcu_read_copy((swiftrcu_const_ptr_ref)(const void *)qold, 0, &magic, sizeof magic) == NULL);
    CHECK_EQ_INT(swiftrcu_old_free(qold), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(q), SWIFTRCU_OK);
    CHECK(swiftrcu_read_copy(q, 0, &magic, sizeof magic) == NULL);
    CHECK_EQ_INT(magic, 7);
    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);
    test_read_copy_sizes();
}

/* Readers copy objects out while writers replace them and destroy the old ones, which poisons
 * them: every copy must be of one live object (its two halves equal, its magic LIVE). */
#define COPY_OBJECTS 3000
#define COPY_POISON 0xDEADDEADDEADDEADull /* no object's halves */
struct copy_object {
    uint64_t low, high;
    uint32_t magic;
    uint32_t id;
};
static struct copy_object copy_objects[COPY_OBJECTS];
static atomic_int copy_destroyed[COPY_OBJECTS];
static atomic_int copy_next;
static atomic_int copy_stop;
static atomic_long copy_bad;
static atomic_long copy_reads;

static void copy_destroy(void *p, void *context) {
    (void)context;
    struct copy_object *o = p;
    o->magic = DEAD;
    o->low = COPY_POISON;
    o->high = ~COPY_POISON;
    atomic_fetch_add(&copy_destroyed[o->id], 1);
}

static void *copy_reader(void *arg) {
    swiftrcu_ptr *p = arg;
    long reads = 0;
    while (!atomic_load(&copy_stop)) {
        struct copy_object whole;
        uint64_t low = 0;
        uint32_t magic = 0;
        const struct copy_object *from = swiftrcu_read_copy(p, 0, &whole, sizeof whole);
        if (from == NULL || whole.magic != LIVE || whole.low != whole.high || whole.low != whole.id)
            atomic_fetch_add(&copy_bad, 1);
        if (swiftrcu_read_copy(p, offsetof(struct copy_object, magic), &magic, sizeof magic) == NULL ||
            magic != LIVE)
            atomic_fetch_add(&copy_bad, 1);
        if (swiftrcu_read_copy(p, 0, &low, sizeof low) == NULL || low == COPY_POISON)
            atomic_fetch_add(&copy_bad, 1);
        reads += 3;
    }
    atomic_fetch_add(&copy_reads, reads);
    return NULL;
}

static void *copy_prepare(int i) {
    copy_objects[i] = (struct copy_object){.low = (uint64_t)i, .high = (uint64_t)i, .magic = LIVE,
                                           .id = (uint32_t)i};
    return &copy_objects[i];
}

static void *copy_writer(void *arg) {
    static const struct stress_feed feed = {&copy_next, COPY_OBJECTS, copy_prepare, &copy_bad};
    write_feed(arg, &feed);
    return NULL;
}

/* Copies long enough (1 MiB) for a writer's grace period and destroy to fit inside one: the
 * writer poisons each object it frees and then refills it for reuse, so a copy that ran outside
 * its section would mix words of two fills. */
#define BIG_WORDS (1u << 17)
#define BIG_SLOTS 3
static uint64_t big_objects[BIG_SLOTS][BIG_WORDS];
static atomic_int big_stop;
static atomic_long big_bad;
static atomic_long big_reads;

static void big_destroy(void *p, void *context) {
    (void)context;
    memset(p, 0xDD, BIG_WORDS * sizeof(uint64_t));
}

static void *big_reader(void *arg) {
    swiftrcu_ptr *p = arg;
    uint64_t *copy = malloc(BIG_WORDS * sizeof *copy);
    long reads = 0;
    while (copy && !atomic_load(&big_stop)) {
        if (swiftrcu_read_copy(p, 0, copy, BIG_WORDS * sizeof *copy) == NULL) {
            atomic_fetch_add(&big_bad, 1);
            continue;
        }
        for (uint32_t i = 1; i < BIG_WORDS; i++)
            if (copy[i] != copy[0]) {
                atomic_fetch_add(&big_bad, 1);
                break;
            }
        reads++;
    }
    free(copy);
    atomic_fetch_add(&big_reads, reads);
    return NULL;
}

static void test_read_copy_long(void) {
    for (uint32_t i = 0; i < BIG_WORDS; i++)
        big_objects[0][i] = 0;
    swiftrcu_ptr *p = swiftrcu_new(big_objects[0], big_destroy, NULL);
    pthread_t readers[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&readers[i], NULL, big_reader, p);
    /* Slot k % 3 was replaced two updates ago and destroyed by that update's old_free. */
    for (uint64_t k = 1; k <= 300; k++) {
        uint64_t *next = big_objects[k % BIG_SLOTS];
        for (uint32_t i = 0; i < BIG_WORDS; i++)
            next[i] = k;
        swiftrcu_old *old = NULL;
        if (swiftrcu_replace(p, next, &old) != SWIFTRCU_OK || swiftrcu_old_free(old) != SWIFTRCU_OK)
            atomic_fetch_add(&big_bad, 1);
    }
    atomic_store(&big_stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(readers[i], NULL);
    CHECK_EQ_INT(atomic_load(&big_bad), 0);
    CHECK(atomic_load(&big_reads) > 0);
    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);
}

static void test_read_copy_concurrency(void) {
    copy_objects[0] = (struct copy_object){.low = 0, .high = 0, .magic = LIVE, .id = 0};
    atomic_store(&copy_next, 1);
    swiftrcu_ptr *p = swiftrcu_new(&copy_objects[0], copy_destroy, NULL);
    run_readers_and_writers(copy_reader, p, copy_writer, p, &copy_stop);
    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    CHECK_EQ_INT(atomic_load(&copy_bad), 0);
    CHECK(atomic_load(&copy_reads) > 0);
    int once = 0;
    for (int i = 0; i < harness_scaled(COPY_OBJECTS); i++)
        once += atomic_load(&copy_destroyed[i]) == 1;
    CHECK_EQ_INT(once, harness_scaled(COPY_OBJECTS));
}

/* ---- swiftrcu_load_retained and bound loaders, over reference-counted objects ---- */

struct counted {
    uint32_t magic;
    atomic_int refs; /* the publisher's reference plus one per retain not yet put */
    atomic_int freed;
};

static atomic_int retain_bad;     /* retain saw an object that was already freed */
static atomic_int retain_calls;
static atomic_int retain_sync_rc; /* what swiftrcu_synchronize returned inside retain */
static int retain_try_sync;

static void counted_put(struct counted *c) {
    if (atomic_fetch_sub(&c->refs, 1) == 1) {
        c->magic = DEAD;
        atomic_fetch_add(&c->freed, 1);
    }
}

static void counted_retain(void *p) {
    struct counted *c = p;
    if (c->magic != LIVE || atomic_fetch_add(&c->refs, 1) <= 0)
        atomic_fetch_add(&retain_bad, 1);
    atomic_fetch_add(&retain_calls, 1);
    if (retain_try_sync)
        atomic_store(&retain_sync_rc, swiftrcu_synchronize());
}

static void counted_destroy(void *p, void *context) {
    (void)context;
    counted_put(p); /* drops the publisher's reference */
}

static void counted_init(struct counted *c) {
    c->magic = LIVE;
    atomic_store(&c->refs, 1);
    atomic_store(&c->freed, 0);
}

static void test_load_retained(void) {
    struct counted a, b;
    counted_init(&a);
    counted_init(&b);
    swiftrcu_ptr *p = swiftrcu_new(&a, counted_destroy, NULL);
    CHECK(p != NULL);
    CHECK(swiftrcu_load_retained(p, counted_retain) == &a);
    CHECK_EQ_INT(atomic_load(&a.refs), 2);
    counted_put(&a);
    /* retain runs inside a read-side section: a grace-period wait there is refused. */
    retain_try_sync = 1;
    CHECK(swiftrcu_load_retained(p, counted_retain) == &a);
    retain_try_sync = 0;
    CHECK_EQ_INT(atomic_load(&retain_sync_rc), SWIFTRCU_EDEADLK);
    counted_put(&a);
    /* Refused without calling retain: NULL retain, NULL or stale ptr, NULL object. */
    int calls = atomic_load(&retain_calls);
    CHECK(swiftrcu_load_retained(p, NULL) == NULL);
    CHECK(swiftrcu_load_retained(NULL, counted_retain) == NULL);
    swiftrcu_ptr *empty = swiftrcu_new(NULL, NULL, NULL);
    CHECK(swiftrcu_load_retained(empty, counted_retain) == NULL);
    CHECK_EQ_INT(swiftrcu_free(empty), SWIFTRCU_OK);
    CHECK(swiftrcu_load_retained(empty, counted_retain) == NULL);
    CHECK_EQ_INT(atomic_load(&retain_calls), calls);
    /* A reference taken before the replace keeps the object after its grace period. */
    CHECK(swiftrcu_load_retained(p, counted_retain) == &a);
    swiftrcu_old *old = NULL;
    CHECK_EQ_INT(swiftrcu_replace(p, &b, &old), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_old_free(old), SWIFTRCU_OK);
    CHECK_EQ_INT(atomic_load(&a.freed), 0);
    CHECK(a.magic == LIVE);
    counted_put(&a);
    CHECK_EQ_INT(atomic_load(&a.freed), 1);
    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);
    CHECK_EQ_INT(atomic_load(&b.freed), 1);
    CHECK_EQ_INT(atomic_load(&retain_bad), 0);
}

static void test_loader_contract(void) {
    struct counted a, b;
    counted_init(&a);
    counted_init(&b);
    swiftrcu_ptr *p = swiftrcu_new(&a, counted_destroy, NULL);
    swiftrcu_loader_fn f = (swiftrcu_loader_fn)1;
    CHECK_EQ_INT(swiftrcu_loader_bind(p, counted_retain, NULL, NULL), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_loader_bind(p, NULL, NULL, &f), SWIFTRCU_EINVAL);
    CHECK(f == NULL);
    f = (swiftrcu_loader_fn)1;
    CHECK_EQ_INT(swiftrcu_loader_bind(NULL, counted_retain, NULL, &f), SWIFTRCU_EINVAL);
    CHECK(f == NULL);
    swiftrcu_ptr *gone = swiftrcu_new(NULL, NULL, NULL);
    CHECK_EQ_INT(swiftrcu_free(gone), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_loader_bind(gone, counted_retain, NULL, &f), SWIFTRCU_EINVAL);
    /* An old handle is the wrong kind. */
    static int plain;
    swiftrcu_old *old = NULL;
    swiftrcu_ptr *other = swiftrcu_new(&plain, NULL, NULL);
    CHECK_EQ_INT(swiftrcu_replace(other, NULL, &old), SWIFTRCU_OK);
    CHECK(old != NULL);
    CHECK_EQ_INT(swiftrcu_loader_bind((swiftrcu_const_ptr_ref)(const void *)old, counted_retain, NULL, &f),
                 SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_old_free(old), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(other), SWIFTRCU_OK);

    CHECK_EQ_INT(swiftrcu_loader_bind(p, counted_retain, NULL, &f), SWIFTRCU_OK);
    CHECK(f != NULL);
    CHECK(f() == &a);
    CHECK_EQ_INT(atomic_load(&a.refs), 2);
    counted_put(&a);
    CHECK_EQ_INT(swiftrcu_replace(p, &b, &old), SWIFTRCU_OK);
    CHECK(f() == &b);
    counted_put(&b);
    CHECK_EQ_INT(swiftrcu_old_free(old), SWIFTRCU_OK);
    CHECK_EQ_INT(atomic_load(&a.freed), 1);
    /* Freed ptr: the loader stays bound and returns NULL. */
    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);
    CHECK(f() == NULL);
    CHECK_EQ_INT(swiftrcu_loader_unbind(f), SWIFTRCU_OK);
    CHECK(f() == NULL);
    CHECK_EQ_INT(swiftrcu_loader_unbind(f), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_loader_unbind(NULL), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_loader_unbind((swiftrcu_loader_fn)(void (*)(void))swiftrcu_version),
                 SWIFTRCU_EINVAL);
    CHECK_EQ_INT(atomic_load(&b.freed), 1);

    /* if_null stands in for a published NULL and for a freed ptr (retained too). */
    struct counted n, d;
    counted_init(&n);
    counted_init(&d);
    swiftrcu_ptr *e = swiftrcu_new(NULL, counted_destroy, NULL);
    CHECK_EQ_INT(swiftrcu_loader_bind(e, counted_retain, &n, &f), SWIFTRCU_OK);
    CHECK(f() == &n);
    CHECK_EQ_INT(atomic_load(&n.refs), 2);
    counted_put(&n);
    CHECK_EQ_INT(swiftrcu_replace(e, &d, &old), SWIFTRCU_OK);
    CHECK(old == NULL);
    CHECK(f() == &d);
    counted_put(&d);
    CHECK_EQ_INT(swiftrcu_free(e), SWIFTRCU_OK);
    CHECK(f() == &n);
    CHECK_EQ_INT(atomic_load(&n.refs), 2);
    counted_put(&n);
    CHECK_EQ_INT(atomic_load(&d.freed), 1);
    CHECK_EQ_INT(swiftrcu_loader_unbind(f), SWIFTRCU_OK);

    /* Capacity: SWIFTRCU_LOADERS_MAX distinct loaders, then ENOMEM until one is unbound. */
    struct counted c;
    counted_init(&c);
    swiftrcu_ptr *q = swiftrcu_new(&c, counted_destroy, NULL);
    static swiftrcu_loader_fn all[SWIFTRCU_LOADERS_MAX];
    int bound = 0, distinct = 1, working = 0;
    for (int i = 0; i < SWIFTRCU_LOADERS_MAX; i++) {
        bound += swiftrcu_loader_bind(q, counted_retain, NULL, &all[i]) == SWIFTRCU_OK;
        for (int j = 0; j < i; j++)
            distinct &= all[j] != all[i];
    }
    CHECK_EQ_INT(bound, SWIFTRCU_LOADERS_MAX);
    CHECK(distinct);
    for (int i = 0; i < SWIFTRCU_LOADERS_MAX; i++) {
        if (all[i] && all[i]() == &c) {
            working++;
            counted_put(&c);
        }
    }
    CHECK_EQ_INT(working, SWIFTRCU_LOADERS_MAX);
    f = (swiftrcu_loader_fn)1;
    CHECK_EQ_INT(swiftrcu_loader_bind(q, counted_retain, NULL, &f), SWIFTRCU_ENOMEM);
    CHECK(f == NULL);
    CHECK_EQ_INT(swiftrcu_loader_unbind(all[7]), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_loader_bind(q, counted_retain, NULL, &f), SWIFTRCU_OK);
    CHECK(f == all[7]);
    int unbound = 0;
    for (int i = 0; i < SWIFTRCU_LOADERS_MAX; i++)
        unbound += swiftrcu_loader_unbind(all[i]) == SWIFTRCU_OK;
    CHECK_EQ_INT(unbound, SWIFTRCU_LOADERS_MAX);
    CHECK_EQ_INT(swiftrcu_free(q), SWIFTRCU_OK);
    CHECK_EQ_INT(atomic_load(&c.refs), 0);
    CHECK_EQ_INT(atomic_load(&retain_bad), 0);
}

/* Readers through a loader while writers replace: every object a reader gets is still live while
 * it holds its reference, and every object is freed exactly once, by its last holder. */
#define LOADER_OBJECTS 3000
static struct counted loader_objects[LOADER_OBJECTS];
static atomic_int loader_next;
static atomic_int loader_stop;
static atomic_long loader_bad;
static atomic_long loader_reads;

static void *loader_reader(void *arg) {
    swiftrcu_loader_fn f = *(swiftrcu_loader_fn *)arg;
    while (!atomic_load(&loader_stop)) {
        struct counted *c = f();
        if (c == NULL || c->magic != LIVE || atomic_load(&c->refs) < 1) {
            atomic_fetch_add(&loader_bad, 1);
            continue;
        }
        atomic_fetch_add(&loader_reads, 1);
        counted_put(c);
    }
    return NULL;
}

static void *loader_prepare(int i) {
    counted_init(&loader_objects[i]);
    return &loader_objects[i];
}

static void *loader_writer(void *arg) {
    static const struct stress_feed feed = {&loader_next, LOADER_OBJECTS, loader_prepare, &loader_bad};
    write_feed(arg, &feed);
    return NULL;
}

static void test_loader_concurrency(void) {
    counted_init(&loader_objects[0]);
    atomic_store(&loader_next, 1);
    swiftrcu_ptr *p = swiftrcu_new(&loader_objects[0], counted_destroy, NULL);
    swiftrcu_loader_fn f = NULL;
    CHECK_EQ_INT(swiftrcu_loader_bind(p, counted_retain, NULL, &f), SWIFTRCU_OK);
    run_readers_and_writers(loader_reader, &f, loader_writer, p, &loader_stop);
    CHECK_EQ_INT(swiftrcu_loader_unbind(f), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    CHECK_EQ_INT(atomic_load(&loader_bad), 0);
    CHECK(atomic_load(&loader_reads) > 0);
    int once = 0;
    for (int i = 0; i < harness_scaled(LOADER_OBJECTS); i++)
        once += atomic_load(&loader_objects[i].freed) == 1 && atomic_load(&loader_objects[i].refs) == 0;
    CHECK_EQ_INT(once, harness_scaled(LOADER_OBJECTS));
    CHECK_EQ_INT(atomic_load(&retain_bad), 0);
}

/* More live handles than one segment of the table holds (4096): handles in the first (static)
 * segment and in later ones are found, refused once stale, and refused as the other kind. */
#define MANY_HANDLES 9000
static void test_many_handles(void) {
    static swiftrcu_ptr *ptrs[MANY_HANDLES];
    static swiftrcu_old *olds[MANY_HANDLES];
    static int values[MANY_HANDLES], firsts[MANY_HANDLES];
    int made = 0;
    for (int i = 0; i < MANY_HANDLES; i++) {
        ptrs[i] = swiftrcu_new(&firsts[i], NULL, NULL);
        olds[i] = NULL;
        made += ptrs[i] != NULL && swiftrcu_replace(ptrs[i], &values[i], &olds[i]) == SWIFTRCU_OK && olds[i] != NULL;
    }
    CHECK_EQ_INT(made, MANY_HANDLES);
    int found = 0, old_found = 0, kind_refused = 0;
    swiftrcu_guard g = swiftrcu_read_lock();
    for (int i = 0; i < MANY_HANDLES; i++) {
        found += swiftrcu_dereference(ptrs[i], &g) == &values[i];
        found += swiftrcu_load(ptrs[i]) == &values[i];
        old_found += swiftrcu_old_object(olds[i]) == &firsts[i];
        /* An old handle where a ptr is expected, and the reverse. */
        kind_refused += swiftrcu_dereference((swiftrcu_ptr *)olds[i], &g) == NULL;
        kind_refused += swiftrcu_old_object((swiftrcu_old *)ptrs[i]) == NULL;
        /* Both kind bits set: no handle has them. */
        kind_refused += swiftrcu_dereference((swiftrcu_ptr *)((uintptr_t)ptrs[i] | 3), &g) == NULL;
        kind_refused += swiftrcu_old_object((swiftrcu_old *)((uintptr_t)olds[i] | 3)) == NULL;
    }
    CHECK_EQ_INT(found, 2 * MANY_HANDLES);
    CHECK_EQ_INT(old_found, MANY_HANDLES);
    CHECK_EQ_INT(kind_refused, 4 * MANY_HANDLES);
    /* Small and out-of-range values that are no handle at all. */
    int bogus_refused = 0;
    for (uintptr_t v = 1; v < 64; v++)
        bogus_refused += swiftrcu_dereference((swiftrcu_ptr *)v, &g) == NULL;
    for (uintptr_t shift = 2; shift < 64; shift++)
        bogus_refused += swiftrcu_dereference((swiftrcu_ptr *)(((uintptr_t)1 << shift) | 1), &g) == NULL;
    CHECK_EQ_INT(bogus_refused, 63 + 62);
    CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_OK);

    /* Free every other one, then the stale ones are refused and the rest still found. */
    int freed = 0;
    for (int i = 0; i < MANY_HANDLES; i += 2)
        freed += swiftrcu_old_free(olds[i]) == SWIFTRCU_OK && swiftrcu_free(ptrs[i]) == SWIFTRCU_OK;
    CHECK_EQ_INT(freed, MANY_HANDLES / 2);
    int stale_refused = 0, still_found = 0;
    g = swiftrcu_read_lock();
    for (int i = 0; i < MANY_HANDLES; i++) {
        if (i % 2 == 0) {
            stale_refused += swiftrcu_dereference(ptrs[i], &g) == NULL;
            stale_refused += swiftrcu_old_object(olds[i]) == NULL;
        } else {
            still_found += swiftrcu_dereference(ptrs[i], &g) == &values[i];
            still_found += swiftrcu_old_object(olds[i]) == &firsts[i];
        }
    }
    CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_OK);
    CHECK_EQ_INT(stale_refused, MANY_HANDLES);
    CHECK_EQ_INT(still_found, MANY_HANDLES);
    int rest = 0;
    for (int i = 1; i < MANY_HANDLES; i += 2)
        rest += swiftrcu_old_free(olds[i]) == SWIFTRCU_OK && swiftrcu_free(ptrs[i]) == SWIFTRCU_OK;
    CHECK_EQ_INT(rest, MANY_HANDLES / 2);
    CHECK_EQ_INT(swiftrcu_free(ptrs[1]), SWIFTRCU_EINVAL);
}

/* ---- Anonymous regions (swiftrcu_region_enter / _exit), swiftrcu_in_read_section ---- */

/* A read_section callback: inside a section of the library that is neither a guard nor a region,
 * region_exit is refused. */
static void region_exit_in_callback(const void *object, void *context) {
    (void)object;
    int *out = context;
    out[0] = swiftrcu_in_read_section();
    out[1] = swiftrcu_region_exit();
}

static void test_regions(void) {
    struct object *o = make_object();
    swiftrcu_ptr *p = new_ptr(o);

    /* Outside any section. */
    CHECK_EQ_INT(swiftrcu_in_read_section(), 0);
    CHECK_EQ_INT(swiftrcu_region_exit(), SWIFTRCU_EPERM);
    CHECK_EQ_INT(swiftrcu_in_read_section(), 0);

    /* One region: a read-side critical section like a guard's. */
    CHECK_EQ_INT(swiftrcu_region_enter(), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_in_read_section(), 1);
    CHECK_EQ_INT(swiftrcu_synchronize(), SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(swiftrcu_thread_unregister(), SWIFTRCU_EPERM);
    CHECK_EQ_INT(swiftrcu_region_exit(), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_in_read_section(), 0);
    CHECK_EQ_INT(swiftrcu_region_exit(), SWIFTRCU_EPERM);
    CHECK_EQ_INT(swiftrcu_synchronize(), SWIFTRCU_OK);

    /* A guard inside a region: the region cannot be closed under the guard, and refusing changes
     * nothing (the guard stays valid, the region stays open). */
    CHECK_EQ_INT(swiftrcu_region_enter(), SWIFTRCU_OK);
    swiftrcu_guard g = swiftrcu_read_lock();
    CHECK(g._private[0] != 0);
    CHECK_EQ_INT(swiftrcu_region_exit(), SWIFTRCU_EPERM);
    CHECK(swiftrcu_dereference(p, &g) == o);
    CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_in_read_section(), 1); /* the region is still open */
    CHECK_EQ_INT(swiftrcu_synchronize(), SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(swiftrcu_region_exit(), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_in_read_section(), 0);

    /* A region inside a guard: the guard cannot be unlocked under the region (EPERM, the guard
     * is not spent), but stays valid for dereference. */
    g = swiftrcu_read_lock();
    swiftrcu_guard before = g;
    CHECK_EQ_INT(swiftrcu_region_enter(), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_EPERM);
    CHECK(memcmp(&g, &before, sizeof g) == 0);
    CHECK(swiftrcu_dereference(p, &g) == o);
    CHECK_EQ_INT(swiftrcu_region_exit(), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_region_exit(), SWIFTRCU_EPERM); /* the guard's section is innermost */
    CHECK(swiftrcu_dereference(p, &g) == o);
    CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_in_read_section(), 0);

    /* Interleaved: guard, region, guard, region; closed innermost first, each by its own call. */
    swiftrcu_guard g1 = swiftrcu_read_lock();
    CHECK_EQ_INT(swiftrcu_region_enter(), SWIFTRCU_OK);
    swiftrcu_guard g2 = swiftrcu_read_lock();
    CHECK_EQ_INT(swiftrcu_region_enter(), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_read_unlock(&g2), SWIFTRCU_EPERM);
    CHECK_EQ_INT(swiftrcu_read_unlock(&g1), SWIFTRCU_EPERM);
    CHECK_EQ_INT(swiftrcu_region_exit(), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_region_exit(), SWIFTRCU_EPERM);
    CHECK_EQ_INT(swiftrcu_read_unlock(&g2), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_read_unlock(&g1), SWIFTRCU_EPERM);
    CHECK_EQ_INT(swiftrcu_region_exit(), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_read_unlock(&g1), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_region_exit(), SWIFTRCU_EPERM);
    CHECK_EQ_INT(swiftrcu_in_read_section(), 0);

    /* A guard's section reopened after a region at the same depth: the old guard (a copy of a
     * spent one) names nothing, and the region is not taken for it. */
    g = swiftrcu_read_lock();
    swiftrcu_guard spent_copy = g;
    CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_region_enter(), SWIFTRCU_OK);
    CHECK(swiftrcu_dereference(p, &spent_copy) == NULL);
    CHECK_EQ_INT(swiftrcu_read_unlock(&spent_copy), SWIFTRCU_EPERM);
    CHECK_EQ_INT(swiftrcu_region_exit(), SWIFTRCU_OK);

    /* Inside a section that is neither a guard's nor a region (a read_section callback's), with
     * no region open: in a section, but nothing for region_exit to close. */
    int seen[2] = {-1, -1};
    CHECK_EQ_INT(swiftrcu_read_section(p, region_exit_in_callback, seen), SWIFTRCU_OK);
    CHECK_EQ_INT(seen[0], 1);
    CHECK_EQ_INT(seen[1], SWIFTRCU_EPERM);
    CHECK_EQ_INT(swiftrcu_in_read_section(), 0);

    /* The nesting limit: 255 sections, regions and guards together; past it region_enter is
     * refused (changing nothing) and read_lock gives a zeroed guard. */
    static swiftrcu_guard guards[NESTING_LIMIT];
    int opened = 0;
    for (int i = 0; i < NESTING_LIMIT; i++) {
        if (i % 3 == 1) {
            guards[i] = swiftrcu_read_lock();
            opened += guards[i]._private[0] != 0;
        } else {
            opened += swiftrcu_region_enter() == SWIFTRCU_OK;
        }
    }
    CHECK_EQ_INT(opened, NESTING_LIMIT);
    CHECK_EQ_INT(swiftrcu_region_enter(), SWIFTRCU_EPERM);
    swiftrcu_guard over = swiftrcu_read_lock();
    CHECK(over._private[0] == 0 && over._private[1] == 0);
    CHECK_EQ_INT(swiftrcu_region_enter(), SWIFTRCU_EPERM);
    int closed = 0;
    for (int i = NESTING_LIMIT - 1; i >= 0; i--) {
        if (i % 3 == 1) {
            closed += swiftrcu_region_exit() == SWIFTRCU_EPERM; /* a guard is innermost */
            closed += swiftrcu_read_unlock(&guards[i]) == SWIFTRCU_OK;
        } else {
            closed += swiftrcu_region_exit() == SWIFTRCU_OK;
        }
    }
    CHECK_EQ_INT(closed, NESTING_LIMIT + NESTING_LIMIT / 3);
    CHECK_EQ_INT(swiftrcu_region_exit(), SWIFTRCU_EPERM);
    CHECK_EQ_INT(swiftrcu_in_read_section(), 0);
    CHECK_EQ_INT(swiftrcu_synchronize(), SWIFTRCU_OK);

    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);
}

/* A thread holding a region, driven in stages (struct cross_thread, wait_stage / set_stage). */
static void *region_owner(void *arg) {
    struct cross_thread *c = arg;
    CHECK_EQ_INT(swiftrcu_region_enter(), SWIFTRCU_OK);
    set_stage(c, 1);
    wait_stage(c, 2);
    CHECK_EQ_INT(swiftrcu_region_exit(), SWIFTRCU_OK);
    return NULL;
}

static void *region_exit_holding(void *arg) {
    (void)arg;
    CHECK_EQ_INT(swiftrcu_region_enter(), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_region_enter(), SWIFTRCU_OK);
    return NULL; /* exits inside two regions */
}

static atomic_int synchronize_done;
static void *synchronize_then_flag(void *arg) {
    (void)arg;
    CHECK_EQ_INT(swiftrcu_synchronize(), SWIFTRCU_OK);
    atomic_store(&synchronize_done, 1);
    return NULL;
}

/* What a thread-exit destructor of the program's own (it runs after the library's, whose key was
 * created at load) sees of an exiting thread. */
static pthread_key_t region_late_key;
static atomic_int late_ran, late_region_enter, late_guard_zero;
static void region_late_destructor(void *value) {
    (void)value;
    late_region_enter = swiftrcu_region_enter();
    swiftrcu_guard g = swiftrcu_read_lock();
    late_guard_zero = g._private[0] == 0 && g._private[1] == 0;
    atomic_store(&late_ran, 1);
}

static void *set_late_key(void *arg) {
    (void)arg;
    pthread_setspecific(region_late_key, &region_late_key);
    CHECK_EQ_INT(swiftrcu_region_enter(), SWIFTRCU_OK); /* registered, inside a region at exit */
    return NULL;
}

static void test_region_threads(void) {
    /* Another thread's region holds back this thread's grace period and deferred destroys. */
    struct object *o = make_object();
    struct cross_thread c = {.ptr = new_ptr(o), .lock = PTHREAD_MUTEX_INITIALIZER,
                             .cond = PTHREAD_COND_INITIALIZER};
    pthread_t t, s;
    pthread_create(&t, NULL, region_owner, &c);
    wait_stage(&c, 1);
    CHECK_EQ_INT(swiftrcu_region_exit(), SWIFTRCU_EPERM); /* theirs, not ours */
    swiftrcu_old *old = NULL;
    CHECK_EQ_INT(swiftrcu_replace(c.ptr, make_object(), &old), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_old_defer(old), SWIFTRCU_OK);
    atomic_store(&synchronize_done, 0);
    pthread_create(&s, NULL, synchronize_then_flag, NULL);
    usleep(100 * 1000);
    CHECK_EQ_INT(atomic_load(&synchronize_done), 0);
    CHECK_EQ_INT(times_destroyed(o), 0);
    set_stage(&c, 2);
    pthread_join(t, NULL);
    pthread_join(s, NULL);
    CHECK_EQ_INT(atomic_load(&synchronize_done), 1);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    CHECK_EQ_INT(times_destroyed(o), 1);

    /* A thread that exits inside regions does not block writers forever. */
    pthread_create(&t, NULL, region_exit_holding, NULL);
    pthread_join(t, NULL);
    CHECK_EQ_INT(swiftrcu_synchronize(), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(c.ptr), SWIFTRCU_OK);

    /* An exiting thread cannot enter a region, as it cannot take a guard. */
    CHECK_EQ_INT(pthread_key_create(&region_late_key, region_late_destructor), 0);
    pthread_create(&t, NULL, set_late_key, NULL);
    pthread_join(t, NULL);
    CHECK_EQ_INT(atomic_load(&late_ran), 1);
    CHECK_EQ_INT(late_region_enter, SWIFTRCU_EPERM);
    CHECK_EQ_INT(late_guard_zero, 1);
    CHECK_EQ_INT(swiftrcu_synchronize(), SWIFTRCU_OK);
    pthread_key_delete(region_late_key);
}

/* ---- Retiring any object: swiftrcu_retire, swiftrcu_call ---- */

#define RETIRE_OBJECTS 3000
struct retired {
    uint32_t magic;
    int id;
    swiftrcu_head head; /* for swiftrcu_call */
};
static struct retired retired_objects[RETIRE_OBJECTS];
static atomic_int retired_runs[RETIRE_OBJECTS];
static atomic_int retired_wrong_context;
static int retire_context;

static struct retired *retired_object(int i) {
    retired_objects[i].magic = LIVE;
    retired_objects[i].id = i;
    return &retired_objects[i];
}

static void retired_destroy(void *object, void *context) {
    struct retired *r = object;
    if (context != &retire_context)
        atomic_fetch_add(&retired_wrong_context, 1);
    r->magic = DEAD;
    atomic_fetch_add(&retired_runs[r->id], 1);
}

static void retired_call(swiftrcu_head *head) {
    struct retired *r = (struct retired *)((char *)head - offsetof(struct retired, head));
    r->magic = DEAD;
    atomic_fetch_add(&retired_runs[r->id], 1);
}

/* Destroys that retire and call again from the call_rcu thread. */
static void retired_destroy_chaining(void *object, void *context) {
    struct retired *r = object;
    (void)context;
    atomic_fetch_add(&retired_runs[r->id], 1);
    CHECK_EQ_INT(swiftrcu_in_read_section(), 0);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(swiftrcu_call(&retired_object(r->id + 1)->head, retired_call), SWIFTRCU_OK);
}

/* How many of objects [from, to) ran exactly `times` times. */
static int retired_count(int from, int to, int times) {
    int n = 0;
    for (int i = from; i < to; i++)
        n += atomic_load(&retired_runs[i]) == times;
    return n;
}

/* Deferred destroys run without a barrier: a batch that never fills is queued on its own. */
static atomic_int tally_destroyed;
static void destroy_tally(void *object, void *context) {
    (void)object;
    (void)context;
    atomic_fetch_add(&tally_destroyed, 1);
}

static void *defer_three(void *arg) {
    swiftrcu_ptr *p = arg;
    for (uintptr_t i = 1; i <= 3; i++) {
        swiftrcu_old *old = NULL;
        CHECK_EQ_INT(swiftrcu_replace(p, (void *)(i * 16), &old), SWIFTRCU_OK);
        CHECK_EQ_INT(swiftrcu_old_defer(old), SWIFTRCU_OK);
    }
    return NULL;
}

static void test_defer_progress(void) {
    atomic_store(&tally_destroyed, 0);
    swiftrcu_ptr *a = swiftrcu_new((void *)8, destroy_tally, NULL);
    swiftrcu_ptr *b = swiftrcu_new((void *)8, destroy_tally, NULL);
    CHECK(a != NULL && b != NULL);
    pthread_t t1, t2;
    pthread_create(&t1, NULL, defer_three, a);
    pthread_create(&t2, NULL, defer_three, b);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    /* Six deferred, no barrier: all run within a few grace periods. */
    for (int waited = 0; waited < 5000 && atomic_load(&tally_destroyed) < 6; waited++)
        usleep(1000);
    CHECK_EQ_INT(atomic_load(&tally_destroyed), 6);
    CHECK_EQ_INT(swiftrcu_free(a), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(b), SWIFTRCU_OK);
    CHECK_EQ_INT(atomic_load(&tally_destroyed), 8);
}

/* A deferred old handle's slot is reused at once by the next update: swiftrcu_old_object on the
 * deferred handle, racing with that, gives its own object or NULL, never the next one's. */
#define RACE_UPDATES 300000
static struct {
    _Atomic(swiftrcu_old *) old;
    _Atomic uintptr_t object;
    atomic_int done, errors;
    atomic_long foreign, own;
} race;

static void *race_writer(void *arg) {
    swiftrcu_ptr *p = arg;
    for (uintptr_t i = 1; i <= RACE_UPDATES; i++) {
        swiftrcu_old *old = NULL;
        if (swiftrcu_replace(p, (void *)((i + 1) * 16), &old) != SWIFTRCU_OK || old == NULL) {
            atomic_fetch_add(&race.errors, 1);
            break;
        }
        /* The old handle holds object i * 16; announced (object first) before it is deferred. */
        atomic_store(&race.old, NULL);
        atomic_store(&race.object, i * 16);
        atomic_store(&race.old, old);
        if (swiftrcu_old_defer(old) != SWIFTRCU_OK)
            atomic_fetch_add(&race.errors, 1);
    }
    atomic_store(&race.done, 1);
    return NULL;
}

static void *race_reader(void *arg) {
    (void)arg;
    while (!atomic_load(&race.done)) {
        uintptr_t object = atomic_load(&race.object);
        swiftrcu_old *old = atomic_load(&race.old);
        if (old == NULL || atomic_load(&race.object) != object)
            continue;
        void *seen = swiftrcu_old_object(old);
        if (seen == (void *)object)
            atomic_fetch_add(&race.own, 1);
        else if (seen != NULL)
            atomic_fetch_add(&race.foreign, 1);
    }
    return NULL;
}

static void test_old_object_races_defer(void) {
    atomic_store(&tally_destroyed, 0);
    swiftrcu_ptr *p = swiftrcu_new((void *)16, destroy_tally, NULL);
    CHECK(p != NULL);
    pthread_t w, r;
    pthread_create(&r, NULL, race_reader, NULL);
    pthread_create(&w, NULL, race_writer, p);
    pthread_join(w, NULL);
    pthread_join(r, NULL);
    CHECK_EQ_INT(atomic_load(&race.errors), 0);
    CHECK_EQ_INT((int)atomic_load(&race.foreign), 0);
    CHECK(atomic_load(&race.own) > 0); /* the race was run, not skipped */
    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    CHECK_EQ_INT(atomic_load(&tally_destroyed), RACE_UPDATES + 1);
    printf("old_object racing old_defer: %ld own objects seen, %ld foreign\n", atomic_load(&race.own),
           atomic_load(&race.foreign));
}

static void test_retire_and_call(void) {
    /* NULL arguments. */
    CHECK_EQ_INT(swiftrcu_retire(NULL, retired_destroy, &retire_context), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_retire(retired_object(0), NULL, &retire_context), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_call(NULL, retired_call), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_call(&retired_object(0)->head, NULL), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    CHECK_EQ_INT(retired_count(0, 1, 0), 1); /* refused calls queued nothing */

    /* Each runs exactly once, and barrier waits for it. A NULL context is passed on as it is. */
    CHECK_EQ_INT(swiftrcu_retire(retired_object(0), retired_destroy, &retire_context), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_call(&retired_object(1)->head, retired_call), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    CHECK_EQ_INT(retired_count(0, 2, 1), 2);
    CHECK(retired_objects[0].magic == DEAD && retired_objects[1].magic == DEAD);

    /* Allowed inside a section (a region and a guard), and held back by it. */
    CHECK_EQ_INT(swiftrcu_region_enter(), SWIFTRCU_OK);
    swiftrcu_guard g = swiftrcu_read_lock();
    CHECK_EQ_INT(swiftrcu_retire(retired_object(2), retired_destroy, &retire_context), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_call(&retired_object(3)->head, retired_call), SWIFTRCU_OK);
    usleep(100 * 1000);
    CHECK_EQ_INT(retired_count(2, 4, 0), 2);
    CHECK(retired_objects[2].magic == LIVE && retired_objects[3].magic == LIVE);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_region_exit(), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    CHECK_EQ_INT(retired_count(2, 4, 1), 2);

    /* From a function running deferred: allowed (barrier there is refused). */
    CHECK_EQ_INT(swiftrcu_retire(retired_object(4), retired_destroy_chaining, NULL), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK); /* waits for object 4, which queued object 5 */
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK); /* waits for object 5 */
    CHECK_EQ_INT(retired_count(4, 6, 1), 2);

    /* Many, alternating the two forms, from two threads at once is covered by the torture
     * suites; here, one stream: every object exactly once after one barrier. */
    int many = harness_scaled(RETIRE_OBJECTS - 10);
    int refused = 0;
    for (int i = 10; i < 10 + many; i++) {
        if (i % 2)
            refused += swiftrcu_retire(retired_object(i), retired_destroy, &retire_context) != SWIFTRCU_OK;
        else
            refused += swiftrcu_call(&retired_object(i)->head, retired_call) != SWIFTRCU_OK;
    }
    CHECK_EQ_INT(refused, 0);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    CHECK_EQ_INT(retired_count(10, 10 + many, 1), many);
    CHECK_EQ_INT(retired_count(0, RETIRE_OBJECTS, 2), 0); /* none twice */
    CHECK_EQ_INT(atomic_load(&retired_wrong_context), 0);
}

/* Destroys of different functions and contexts interleaved in one thread's batches: each entry
 * of its block's kind is kept as one word, any other as three, and one that does not fit at the
 * end of a block leaves the rest unused; each must still run exactly once, with its own function
 * and context. */
#define MIXED_OBJECTS 20000
static unsigned char mixed_runs[MIXED_OBJECTS];
static atomic_int mixed_wrong;
static int mixed_contexts[2];

/* Object i is (i + 1) * 4 + its kind (never NULL): kinds 0 and 1 are mixed_destroy_a with context
 * 0 or 1, kind 2 is mixed_destroy_b with context 0. */
#define MIXED_OBJECT(i, kind) ((void *)(((uintptr_t)(i) + 1) * 4 + (uintptr_t)(kind)))
static void mixed_check(void *object, int kind) {
    uintptr_t bits = (uintptr_t)object;
    uintptr_t i = bits / 4 - 1;
    if (bits < 4 || i >= MIXED_OBJECTS || (int)(bits % 4) != kind) {
        atomic_fetch_add(&mixed_wrong, 1);
        return;
    }
    __atomic_fetch_add(&mixed_runs[i], 1, __ATOMIC_RELAXED);
}
static void mixed_destroy_a(void *object, void *context) {
    mixed_check(object, context == &mixed_contexts[0] ? 0 : context == &mixed_contexts[1] ? 1 : -1);
}
static void mixed_destroy_b(void *object, void *context) {
    mixed_check(object, context == &mixed_contexts[0] ? 2 : -1);
}

/* The destroy function and context of each kind (see mixed_check). */
static const swiftrcu_destroy_fn fns_of_kind[3] = {mixed_destroy_a, mixed_destroy_a, mixed_destroy_b};
static void *const contexts_of_kind[3] = {&mixed_contexts[0], &mixed_contexts[1], &mixed_contexts[0]};

static void test_retire_mixed_kinds(void) {
    /* Updates of ptrs of each kind, as old_defer adds them, besides swiftrcu_retire. */
    swiftrcu_ptr *ptrs[3];
    for (int k = 0; k < 3; k++) {
        ptrs[k] = swiftrcu_new(NULL, fns_of_kind[k], contexts_of_kind[k]);
        CHECK(ptrs[k] != NULL);
    }
    /* Runs of one kind of random length (1 to 8), so that three-word entries start at every
     * word of a block, the last ones included. */
    uint32_t seed = 12345;
    int kind = 0, run = 0, refused = 0;
    for (uintptr_t i = 0; i < MIXED_OBJECTS; i++) {
        if (run == 0) {
            seed = seed * 1103515245u + 12345u;
            kind = (int)((seed >> 16) % 3);
            run = 1 + (int)((seed >> 8) % 8);
        }
        run--;
        void *object = MIXED_OBJECT(i, kind);
        if (i % 3 == 0) {
            swiftrcu_old *old = NULL;
            refused += swiftrcu_replace(ptrs[kind], object, &old) != SWIFTRCU_OK;
            if (old != NULL)
                refused += swiftrcu_old_defer(old) != SWIFTRCU_OK;
        } else {
            refused += swiftrcu_retire(object, fns_of_kind[kind], contexts_of_kind[kind]) != SWIFTRCU_OK;
        }
    }
    for (int k = 0; k < 3; k++)
        CHECK_EQ_INT(swiftrcu_free(ptrs[k]), SWIFTRCU_OK); /* destroys each one's last object */
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    CHECK_EQ_INT(refused, 0);
    CHECK_EQ_INT(atomic_load(&mixed_wrong), 0);
    int once = 0, twice = 0;
    for (int i = 0; i < MIXED_OBJECTS; i++) {
        once += mixed_runs[i] == 1;
        twice += mixed_runs[i] > 1;
    }
    CHECK_EQ_INT(once, MIXED_OBJECTS);
    CHECK_EQ_INT(twice, 0);
}

/* The same from 16 threads at once: batches are per shard (8, by thread serial), so pairs of
 * threads share blocks, and entries of different kinds are reserved and marked in one block
 * concurrently. Each thread retires its objects MIXED_REPEATS times per round. */
#define MIXED_THREADS 16
#define MIXED_REPEATS 20
static int mixed_per_thread;
static pthread_barrier_t mixed_start;

static void *mixed_retirer(void *arg) {
    uintptr_t first = (uintptr_t)arg * (uintptr_t)mixed_per_thread;
    pthread_barrier_wait(&mixed_start);
    for (int r = 0; r < MIXED_REPEATS; r++) {
        for (uintptr_t i = first; i < first + (uintptr_t)mixed_per_thread; i++) {
            int kind = (int)((i * 7 + i / 5 + (uintptr_t)r) % 3); /* runs and changes of kind */
            int status = swiftrcu_retire(MIXED_OBJECT(i, kind), fns_of_kind[kind], contexts_of_kind[kind]);
            if (status != SWIFTRCU_OK)
                atomic_fetch_add(&mixed_wrong, 1);
        }
    }
    return NULL;
}

static void test_retire_mixed_kinds_threads(void) {
    memset(mixed_runs, 0, sizeof mixed_runs);
    atomic_store(&mixed_wrong, 0);
    mixed_per_thread = MIXED_OBJECTS / MIXED_THREADS;
    int rounds = harness_scaled(5);
    for (int round = 0; round < rounds; round++) {
        pthread_t threads[MIXED_THREADS];
        pthread_barrier_init(&mixed_start, NULL, MIXED_THREADS);
        for (int t = 0; t < MIXED_THREADS; t++)
            pthread_create(&threads[t], NULL, mixed_retirer, (void *)(uintptr_t)t);
        for (int t = 0; t < MIXED_THREADS; t++)
            pthread_join(threads[t], NULL);
        pthread_barrier_destroy(&mixed_start);
        CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    }
    CHECK_EQ_INT(atomic_load(&mixed_wrong), 0);
    int right = 0;
    for (int i = 0; i < MIXED_THREADS * mixed_per_thread; i++)
        right += mixed_runs[i] == rounds * MIXED_REPEATS;
    CHECK_EQ_INT(right, MIXED_THREADS * mixed_per_thread); /* each run once per retire */
}

int main(void) {
    harness_watchdog(120);
    test_version_and_errors();
    test_new_and_free();
    test_many_handles();
    test_guards();
    test_threads();
    test_replace();
    test_replace_current();
    test_copy_update();
    test_writer_thread_exits();
    test_writer_deadlock();
    test_exiting_thread();
    test_callbacks();
    test_concurrency();
    test_read_section();
    test_read_copy();
    test_read_copy_concurrency();
    test_read_copy_long();
    test_load_retained();
    test_loader_contract();
    test_loader_concurrency();
    test_regions();
    test_region_threads();
    test_retire_and_call();
    test_retire_mixed_kinds();
    test_retire_mixed_kinds_threads();
    test_defer_progress();
    test_old_object_races_defer();
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    CHECK_EQ_INT(atomic_load(&wrong_context), 0);
    /* Exactly once: every destroy call was for a distinct object. */
    int twice = 0;
    for (int i = 0; i < next_object; i++)
        twice += atomic_load(&destroyed[i]) > 1;
    CHECK_EQ_INT(twice, 0);
    return harness_finish();
}
