/*
 * Torture test in the manner of rcutorture, over the public C ABI.
 *
 *   torture [READERS] [WRITERS] [SECONDS]        (defaults: 4 2 10)
 *
 * Every object carries a magic and a sequence number; destroy checks the magic, poisons it and
 * frees the memory. There is one pointer per writer (only its owner writes it, alternating
 * replace and copy_update, so the owner knows the exact sequence to expect back) and one shared
 * pointer that every writer updates with copy_update (sequence = current + 1 under the library's
 * writer exclusion). Old objects are retired alternately with old_free and old_defer; now and then
 * a writer updates from inside a read section, where old_free must refuse with EDEADLK.
 * Readers nest two sections, read two pointers, re-read the outer one under the outer guard,
 * and check that every magic is intact and that no pointer's sequence ever goes back; every
 * fourth round they also copy an object's head out with read_copy and check it the same way.
 * At the end every object created must have been destroyed exactly once.
 *
 * TORTURE_INJECT=early-destroy in the environment makes the writers poison each old object as
 * soon as they get it back (as a library that destroyed objects too early would): the run must
 * then fail, which shows that the checks can fail.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "rel.h"

#define MAX_THREADS 64

struct tobj {
    uint32_t magic;
    uint32_t writer;
    uint64_t seq;
    atomic_int unpublished; /* set once, by the writer that receives the object as an old handle */
    char payload[40];
};

static swiftrcu_ptr *ptrs[MAX_THREADS + 1];
static int inject_early_destroy;
static int nptrs;
static atomic_int stop;

static atomic_long created, destroyed, errors;
static atomic_long reads, updates, old_frees, old_defers, syncs, barriers, ptr_frees, in_section_updates;

static void error_at(const char *what, long a, long b) {
    long n = atomic_fetch_add(&errors, 1);
    if (n < 20)
        fprintf(stderr, "ERROR: %s (%ld, %ld)\n", what, a, b);
}

static struct tobj *make(uint32_t writer, uint64_t seq) {
    struct tobj *o = malloc(sizeof *o);
    if (o == NULL) {
        error_at("out of memory", 0, 0);
        return NULL;
    }
    memset(o, 0, sizeof *o);
    o->magic = REL_LIVE;
    o->writer = writer;
    o->seq = seq;
    atomic_fetch_add(&created, 1);
    return o;
}

static int the_context;

static void destroy(void *p, void *context) {
    struct tobj *o = p;
    if (context != &the_context)
        error_at("destroy got the wrong context", 0, 0);
    if (o->magic != REL_LIVE)
        error_at("destroy of an object whose magic is not intact (second destroy?)", (long)o->magic, (long)o->seq);
    o->magic = REL_POISON;
    atomic_fetch_add(&destroyed, 1);
    free(o);
}

/* Cheap per-thread random numbers. */
static uint64_t next_random(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* ---- readers ---- */

struct reader {
    pthread_t thread;
    int id;
};

static void check_read(const struct tobj *o, int index, uint64_t *last_seen, const char *where) {
    if (o == NULL) {
        error_at(where, index, -1);
        return;
    }
    if (o->magic != REL_LIVE) {
        error_at("reader saw a destroyed object (magic not intact)", index, (long)o->magic);
        return;
    }
    if (o->seq < last_seen[index])
        error_at("reader saw a pointer's sequence go back", (long)o->seq, (long)last_seen[index]);
    else
        last_seen[index] = o->seq;
}

static void *reader_main(void *arg) {
    struct reader *r = arg;
    uint64_t rnd = 0x9E3779B97F4A7C15ull * (uint64_t)(r->id + 1);
    uint64_t last_seen[MAX_THREADS + 1] = {0};
    long n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        int a = (int)(next_random(&rnd) % (uint64_t)nptrs);
        int b = (int)(next_random(&rnd) % (uint64_t)nptrs);
        swiftrcu_guard outer = swiftrcu_read_lock();
        const struct tobj *oa = swiftrcu_dereference(ptrs[a], &outer);
        check_read(oa, a, last_seen, "outer dereference returned NULL");
        swiftrcu_guard inner;
        const struct tobj *ob;
        if (n & 1) {
            ob = swiftrcu_read_lock_dereference(ptrs[b], &inner);
        } else {
            inner = swiftrcu_read_lock();
            ob = swiftrcu_dereference(ptrs[b], &inner);
        }
        check_read(ob, b, last_seen, "inner dereference returned NULL");
        /* The outer guard is still good for dereference; the sequence cannot have gone back. */
        const struct tobj *oa2 = swiftrcu_dereference(ptrs[a], &outer);
        check_read(oa2, a, last_seen, "dereference under the outer guard returned NULL");
        for (int spin = 0; spin < 16; spin++)
            __asm__ __volatile__("" ::: "memory");
        if (ob != NULL && ob->magic != REL_LIVE)
            error_at("object destroyed while the inner section was open", b, (long)ob->magic);
        if (swiftrcu_read_unlock(&inner) != SWIFTRCU_OK)
            error_at("inner unlock failed", a, b);
        /* The outer section still protects what it found. */
        if (oa != NULL && oa->magic != REL_LIVE)
            error_at("object destroyed while the outer section was open", a, (long)oa->magic);
        if (oa2 != NULL && oa2->magic != REL_LIVE)
            error_at("object destroyed while the outer section was open", a, (long)oa2->magic);
        if (swiftrcu_read_unlock(&outer) != SWIFTRCU_OK)
            error_at("outer unlock failed", a, b);
        /* Every fourth round also copies the head of a third pointer's object out in one call. */
        if ((n & 3) == 2) {
            int c = (int)(next_random(&rnd) % (uint64_t)nptrs);
            struct tobj head;
            if (swiftrcu_read_copy(ptrs[c], 0, &head, offsetof(struct tobj, unpublished)) == NULL)
                error_at("read_copy found no object", c, -1);
            else
                check_read(&head, c, last_seen, "read_copy");
        }
        n++;
    }
    atomic_fetch_add(&reads, n);
    return NULL;
}

/* ---- writers ---- */

struct writer {
    pthread_t thread;
    int id;
    uint64_t own_seq; /* sequence of the object this writer last published on its own pointer */
};

struct cu_ctx {
    struct tobj *next;
    const struct tobj *seen;
    int check_own;
    uint64_t expect_seq;
};

static void *next_version(const void *current, void *context) {
    struct cu_ctx *c = context;
    const struct tobj *cur = current;
    c->seen = cur;
    if (cur == NULL || cur->magic != REL_LIVE) {
        error_at("copy_update callback got a bad current object", 0, 0);
        return c->next;
    }
    if (c->check_own && cur->seq != c->expect_seq)
        error_at("copy_update on an owned pointer saw an unexpected sequence", (long)cur->seq, (long)c->expect_seq);
    c->next->seq = cur->seq + 1;
    return c->next;
}

/* Takes the old handle of `expected`, checks it and retires it (free or defer). */
static void retire(swiftrcu_old *old, const struct tobj *expected, int defer, int in_section) {
    if (old == NULL) {
        error_at("update returned no old handle", 0, 0);
        return;
    }
    struct tobj *o = swiftrcu_old_object(old);
    if (o != expected)
        error_at("old handle holds another object than the one replaced", 0, 0);
    if (o == NULL)
        return;
    if (o->magic != REL_LIVE)
        error_at("old object already destroyed", (long)o->seq, (long)o->magic);
    int was = 0;
    if (!atomic_compare_exchange_strong(&o->unpublished, &was, 1))
        error_at("an object was handed out as an old handle twice", (long)o->seq, 0);
    if (inject_early_destroy) {
        o->magic = REL_POISON; /* readers may still hold it: they must notice */
        rel_sleep_ms(1);
        o->magic = REL_LIVE;   /* so that destroy's own check stays quiet */
    }
    if (in_section) {
        int rc = swiftrcu_old_free(old);
        if (rc != SWIFTRCU_EDEADLK)
            error_at("old_free inside a read section did not refuse with EDEADLK", rc, 0);
        if (swiftrcu_old_object(old) != o)
            error_at("refused old_free changed the old handle", 0, 0);
    }
    if (defer) {
        int rc = swiftrcu_old_defer(old);
        if (rc != SWIFTRCU_OK)
            error_at("old_defer failed", rc, 0);
        atomic_fetch_add(&old_defers, 1);
    } else if (!in_section) {
        int rc = swiftrcu_old_free(old);
        if (rc != SWIFTRCU_OK)
            error_at("old_free failed", rc, 0);
        atomic_fetch_add(&old_frees, 1);
    } else {
        /* Inside the section a free is impossible: defer instead. */
        int rc = swiftrcu_old_defer(old);
        if (rc != SWIFTRCU_OK)
            error_at("old_defer failed", rc, 0);
        atomic_fetch_add(&old_defers, 1);
    }
}

static void *writer_main(void *arg) {
    struct writer *w = arg;
    int shared = nptrs - 1;
    for (long k = 0; !atomic_load_explicit(&stop, memory_order_relaxed); k++) {
        int on_shared = (k % 3) == 2;
        int use_copy = on_shared || (k % 2) == 1;
        int defer = (k / 2) % 2;
        int in_section = (k % 16) == 5;
        swiftrcu_ptr *p = ptrs[on_shared ? shared : w->id];
        swiftrcu_guard g;
        if (in_section)
            g = swiftrcu_read_lock();

        struct tobj *n = make((uint32_t)w->id, 0);
        if (n == NULL)
            break;
        swiftrcu_old *old = NULL;
        const struct tobj *expected;
        int rc;
        if (use_copy) {
            struct cu_ctx c = {.next = n, .check_own = !on_shared, .expect_seq = w->own_seq};
            rc = swiftrcu_copy_update(p, next_version, &c, &old);
            expected = c.seen;
        } else {
            n->seq = w->own_seq + 1;
            rc = swiftrcu_replace(p, n, &old);
            /* This writer is the only one of its pointer: the old one must be its last. */
            expected = NULL;
            if (rc == SWIFTRCU_OK && old != NULL) {
                const struct tobj *o = swiftrcu_old_object(old);
                if (o == NULL || o->seq != w->own_seq)
                    error_at("replace returned an unexpected previous object", o ? (long)o->seq : -1, (long)w->own_seq);
                expected = o;
            }
        }
        if (rc != SWIFTRCU_OK) {
            error_at(use_copy ? "copy_update failed" : "replace failed", rc, 0);
            destroy(n, &the_context);
        } else {
            if (!on_shared)
                w->own_seq = n->seq;
            retire(old, expected, defer, in_section);
            atomic_fetch_add(&updates, 1);
            if (in_section)
                atomic_fetch_add(&in_section_updates, 1);
        }
        if (in_section) {
            rc = swiftrcu_synchronize();
            if (rc != SWIFTRCU_EDEADLK)
                error_at("synchronize inside a read section did not refuse", rc, 0);
            if (swiftrcu_read_unlock(&g) != SWIFTRCU_OK)
                error_at("writer unlock failed", 0, 0);
        }
        if (k % 50 == 49) {
            rc = swiftrcu_synchronize();
            if (rc != SWIFTRCU_OK)
                error_at("synchronize failed", rc, 0);
            atomic_fetch_add(&syncs, 1);
        }
        if (k % 500 == 499) {
            rc = swiftrcu_barrier();
            if (rc != SWIFTRCU_OK)
                error_at("barrier failed", rc, 0);
            atomic_fetch_add(&barriers, 1);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    int nreaders = (int)rel_arg(argc, argv, 1, 4);
    int nwriters = (int)rel_arg(argc, argv, 2, 2);
    long seconds = rel_arg(argc, argv, 3, 10);
    if (nreaders > MAX_THREADS || nwriters < 1 || nwriters > MAX_THREADS) {
        fprintf(stderr, "usage: torture [READERS<=%d] [WRITERS 1..%d] [SECONDS]\n", MAX_THREADS, MAX_THREADS);
        return 2;
    }
    const char *inject = getenv("TORTURE_INJECT");
    inject_early_destroy = inject != NULL && strcmp(inject, "early-destroy") == 0;
    harness_watchdog((unsigned)(seconds + 120));
    if (inject_early_destroy)
        printf("torture: injecting early destroys: this run must fail\n");
    printf("torture: %d readers, %d writers, %ld s\n", nreaders, nwriters, seconds);

    nptrs = nwriters + 1;
    for (int i = 0; i < nptrs; i++) {
        ptrs[i] = swiftrcu_new(make((uint32_t)i, 0), destroy, &the_context);
        CHECK(ptrs[i] != NULL);
    }
    struct reader readers[MAX_THREADS];
    struct writer writers[MAX_THREADS];
    double start = rel_now();
    for (int i = 0; i < nreaders; i++) {
        readers[i].id = i;
        CHECK_EQ_INT(pthread_create(&readers[i].thread, NULL, reader_main, &readers[i]), 0);
    }
    for (int i = 0; i < nwriters; i++) {
        writers[i] = (struct writer){.id = i, .own_seq = 0};
        CHECK_EQ_INT(pthread_create(&writers[i].thread, NULL, writer_main, &writers[i]), 0);
    }
    rel_sleep_ms((unsigned)(seconds * 1000));
    atomic_store(&stop, 1);
    for (int i = 0; i < nwriters; i++)
        pthread_join(writers[i].thread, NULL);
    for (int i = 0; i < nreaders; i++)
        pthread_join(readers[i].thread, NULL);
    double elapsed = rel_now() - start;

    for (int i = 0; i < nptrs; i++) {
        CHECK_EQ_INT(swiftrcu_free(ptrs[i]), SWIFTRCU_OK);
        atomic_fetch_add(&ptr_frees, 1);
    }
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    atomic_fetch_add(&barriers, 1);

    long gps = atomic_load(&old_frees) + atomic_load(&syncs) + atomic_load(&barriers) + atomic_load(&ptr_frees);
    printf("elapsed %.2f s\n", elapsed);
    printf("reads %ld (%.0f reads/s, each 2 nested sections and 3 dereferences, every fourth also a read_copy)\n",
           atomic_load(&reads), (double)atomic_load(&reads) / elapsed);
    printf("updates %ld (%.0f updates/s; %ld from inside a read section)\n", atomic_load(&updates),
           (double)atomic_load(&updates) / elapsed, atomic_load(&in_section_updates));
    printf("grace periods waited for %ld (old_free %ld, synchronize %ld, barrier %ld, free %ld); old_defer %ld\n",
           gps, atomic_load(&old_frees), atomic_load(&syncs), atomic_load(&barriers), atomic_load(&ptr_frees),
           atomic_load(&old_defers));
    printf("objects created %ld, destroyed %ld; errors %ld; peak RSS %ld KiB\n", atomic_load(&created),
           atomic_load(&destroyed), atomic_load(&errors), rel_peak_rss_kib());

    CHECK_EQ_INT(atomic_load(&errors), 0);
    CHECK_EQ_INT(atomic_load(&destroyed), atomic_load(&created));
    CHECK(atomic_load(&reads) > 0);
    CHECK(atomic_load(&updates) > 0);
    CHECK(atomic_load(&old_defers) > 0);
    CHECK(atomic_load(&old_frees) > 0);
    return rel_finish();
}
