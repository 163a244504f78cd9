/*
 * bench_read.c - SwiftRCU's C benchmark: read sections through the C ABI next to liburcu (memb,
 * inline and exported), pthread_rwlock, pthread_mutex, an atomic refcount and a plain load, all in
 * one process and run, with the same loop shape and a fixed op count; readers under a writer (two
 * readers and a writer sharing the CPUs; one reader and the writer on CPUs of their own; two
 * readers under a deferring writer); plus writer latency and deferred-update throughput against
 * liburcu.
 *
 *   bench_read [--ops N] [--reps R] [--lat-ops L] [--defer-ops D] [--only a,b] [--json FILE]
 *       runs every measurement R times (interleaved: each repetition measures every variant once)
 *       and writes the raw per-repetition figures as JSON (stdout by default); bench/run_bench.py
 *       turns them into medians, spreads and ratios.
 *   bench_read --count VARIANT K
 *       runs K read sections of one variant on the main thread and nothing else (for callgrind).
 *   bench_read --list
 *
 * Each read section is: enter + load the pointer + read one field + leave. The objects read are
 * never freed (the read pointers have no destroy function; writers rotate two static objects and
 * rewrite one only after a grace period), so the field read that follows swiftrcu_load's already
 * ended section never touches freed memory. The one exception is the deferring-writer scenario:
 * there the readers read heap objects that are freed after a grace period, so it runs only the
 * variants that read the field inside the section (not swiftrcu_load).
 */
#define _GNU_SOURCE
#define _LGPL_SOURCE 1
#include <urcu/urcu-memb.h>

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <swiftrcu.h>

#include "bench_common.h"
#define BENCH_NAME "bench_read"
#include "bench_check.h"

#define NOINLINE __attribute__((noinline))
#define ALIGNED __attribute__((aligned(BENCH_CACHELINE)))
#define MAX_REPS 64
#define MAX_THREADS 2

#define CHECK_ERRNO(call)                   \
    do {                                    \
        int e_ = (call);                    \
        if (e_ != 0) die(#call, e_);        \
    } while (0)

static inline uint64_t clock_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* ---- Shared state: every pointer, lock and object on its own cache line. ---- */

static struct bench_obj ring_swiftrcu[2], ring_urcu[2], ring_rwlock[2], ring_mutex[2];
static struct bench_obj obj_refcount, obj_plain, obj_cpp;

static swiftrcu_ptr *sptr ALIGNED;                 /* C ABI variants (no destroy function; heap_sptr
                                                    * during a deferring-writer run) */
struct bench_obj *bench_urcu_ptr ALIGNED;          /* liburcu inline and exported */
static struct bench_obj *rwlock_ptr ALIGNED;
static struct bench_obj *mutex_ptr ALIGNED;
static struct bench_obj *refcount_ptr ALIGNED;
static struct bench_obj *plain_ptr ALIGNED;
static pthread_rwlock_t rwlock ALIGNED = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t mutex ALIGNED = PTHREAD_MUTEX_INITIALIZER;

/* ---- Read loops: one per variant, same shape. ---- */

static NOINLINE uint64_t loop_swiftrcu_trio(uint64_t n) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        swiftrcu_guard g = swiftrcu_read_lock();
        const struct bench_obj *o = swiftrcu_dereference(sptr, &g);
        sum += o->value;
        swiftrcu_read_unlock(&g);
    }
    return sum;
}

static NOINLINE uint64_t loop_swiftrcu_lock_deref(uint64_t n) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        swiftrcu_guard g;
        const struct bench_obj *o = swiftrcu_read_lock_dereference(sptr, &g);
        sum += o->value;
        swiftrcu_read_unlock(&g);
    }
    return sum;
}

static NOINLINE uint64_t loop_swiftrcu_load(uint64_t n) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        const struct bench_obj *o = swiftrcu_load(sptr); /* lock + dereference + unlock */
        sum += o->value;
    }
    return sum;
}

/* The read section in one call: the field is read inside it, by the callback. */
static void section_read(const void *object, void *context) {
    *(uint64_t *)context += ((const struct bench_obj *)object)->value;
}

static NOINLINE uint64_t loop_swiftrcu_section(uint64_t n) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        if (swiftrcu_read_section(sptr, section_read, &sum) != SWIFTRCU_OK)
            abort();
    return sum;
}

/* The read section in one call without a callback: the field is copied out inside it. */
static NOINLINE uint64_t loop_swiftrcu_read_copy(uint64_t n) {
    uint64_t sum = 0, value;
    for (uint64_t i = 0; i < n; i++) {
        if (!swiftrcu_read_copy(sptr, offsetof(struct bench_obj, value), &value, sizeof value))
            abort();
        sum += value;
    }
    return sum;
}

/* The floor of any read path made of three calls into a shared library: the same loop with three
 * calls of the library's cheapest function (swiftrcu_version returns a constant) around a plain
 * load. No read path behind three exported functions can be faster than this. */
static NOINLINE uint64_t loop_call_floor(uint64_t n) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        const char *a = swiftrcu_version();
        const struct bench_obj *o = CMM_LOAD_SHARED(plain_ptr);
        const char *b = swiftrcu_version();
        sum += o->value;
        const char *c = swiftrcu_version();
        __asm__ volatile("" : : "r"(a), "r"(b), "r"(c)); /* keep the calls */
    }
    return sum;
}

static NOINLINE uint64_t loop_urcu_inline(uint64_t n) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        urcu_memb_read_lock();
        const struct bench_obj *o = rcu_dereference(bench_urcu_ptr);
        sum += o->value;
        urcu_memb_read_unlock();
    }
    return sum;
}

static NOINLINE uint64_t loop_rwlock(uint64_t n) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        pthread_rwlock_rdlock(&rwlock);
        const struct bench_obj *o = CMM_LOAD_SHARED(rwlock_ptr);
        sum += o->value;
        pthread_rwlock_unlock(&rwlock);
    }
    return sum;
}

static NOINLINE uint64_t loop_mutex(uint64_t n) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        pthread_mutex_lock(&mutex);
        const struct bench_obj *o = CMM_LOAD_SHARED(mutex_ptr);
        sum += o->value;
        pthread_mutex_unlock(&mutex);
    }
    return sum;
}

static NOINLINE uint64_t loop_refcount(uint64_t n) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        struct bench_obj *o = __atomic_load_n(&refcount_ptr, __ATOMIC_ACQUIRE);
        __atomic_fetch_add(&o->refs, 1, __ATOMIC_ACQUIRE);
        sum += o->value;
        __atomic_fetch_sub(&o->refs, 1, __ATOMIC_RELEASE);
    }
    return sum;
}

static NOINLINE uint64_t loop_plain(uint64_t n) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        const struct bench_obj *o = CMM_LOAD_SHARED(plain_ptr); /* volatile: reloaded every time */
        sum += o->value;
    }
    return sum;
}

/* ---- Writers for the "readers under a continuous writer" runs: publish the other object of a
 *      ring of two; an object is rewritten only after no reader can hold it. ---- */

static void writer_swiftrcu(uint64_t k) {
    struct bench_obj *o = &ring_swiftrcu[k & 1];
    o->value = k;
    swiftrcu_old *old;
    CHECK_RCU(swiftrcu_replace(sptr, o, &old));
    if (old != NULL) /* NULL when `o` was published already (a run may start on either parity) */
        CHECK_RCU(swiftrcu_old_free(old)); /* grace period; no destroy function */
}

static void writer_urcu(uint64_t k) {
    struct bench_obj *o = &ring_urcu[k & 1];
    o->value = k;
    (void)rcu_xchg_pointer(&bench_urcu_ptr, o);
    urcu_memb_synchronize_rcu();
}

static void writer_rwlock(uint64_t k) {
    struct bench_obj *o = &ring_rwlock[k & 1];
    o->value = k;
    pthread_rwlock_wrlock(&rwlock);
    CMM_STORE_SHARED(rwlock_ptr, o);
    pthread_rwlock_unlock(&rwlock);
}

static void writer_mutex(uint64_t k) {
    struct bench_obj *o = &ring_mutex[k & 1];
    o->value = k;
    pthread_mutex_lock(&mutex);
    CMM_STORE_SHARED(mutex_ptr, o);
    pthread_mutex_unlock(&mutex);
}

/* ---- Objects freed after a grace period (writer latency, deferred updates, deferring writer). ---- */

struct defer_obj {
    struct bench_obj o;
    struct rcu_head head;
};

static void destroy_free(void *object, void *context) {
    (void)context;
    free(object);
}

static void urcu_free_cb(struct rcu_head *head) {
    free(caa_container_of(head, struct defer_obj, head));
}

/* On a cache line of its own, like the static objects the other runs read. */
static struct defer_obj *new_line_obj(uint64_t value) {
    struct defer_obj *o = aligned_alloc(BENCH_CACHELINE, sizeof *o);
    if (!o) die("aligned_alloc", ENOMEM);
    o->o.value = value;
    return o;
}

/* ---- Deferring writers: publish a fresh object per update and hand the old one to a call_rcu
 *      thread, which frees it after a grace period; the writer never waits for one. The readers'
 *      pointer is switched to heap objects for these runs (run_deferring). ---- */

static swiftrcu_ptr *heap_sptr; /* destroy = free; read through sptr during a deferring run */

static void writer_swiftrcu_defer(uint64_t k) {
    swiftrcu_old *old;
    CHECK_RCU(swiftrcu_replace(heap_sptr, new_line_obj(k), &old));
    CHECK_RCU(swiftrcu_old_defer(old)); /* destroy_free after a grace period */
}

static void writer_urcu_defer(uint64_t k) {
    struct defer_obj *o = new_line_obj(k);
    struct bench_obj *old = rcu_xchg_pointer(&bench_urcu_ptr, &o->o);
    urcu_memb_call_rcu(&caa_container_of(old, struct defer_obj, o)->head, urcu_free_cb);
}

struct variant {
    const char *name;
    uint64_t (*loop)(uint64_t n);
    void (*writer)(uint64_t k);       /* NULL: no writer scenarios */
    int own_cpus;                     /* also runs 1 reader + 1 writer on CPUs of their own */
    void (*defer_writer)(uint64_t k); /* NULL: no deferring-writer scenario */
};

/* The 1 reader + 1 writer runs are limited to the variants of the deferring-writer runs, to bound
 * the run time; the lock variants would not finish anyway: a writer on a CPU of its own holds the
 * lock nearly all the time, and a lone pthread_rwlock reader got through at about 30K reads/s.
 * swiftrcu_load has no deferring-writer run: its field read follows the end of its section, so it
 * could read a freed object there. */
static const struct variant variants[] = {
    {"swiftrcu_trio", loop_swiftrcu_trio, writer_swiftrcu, 1, writer_swiftrcu_defer},
    {"swiftrcu_lock_deref", loop_swiftrcu_lock_deref, writer_swiftrcu, 1, writer_swiftrcu_defer},
    {"swiftrcu_load", loop_swiftrcu_load, writer_swiftrcu, 0, NULL},
    {"swiftrcu_section", loop_swiftrcu_section, writer_swiftrcu, 0, NULL},
    {"swiftrcu_read_copy", loop_swiftrcu_read_copy, writer_swiftrcu, 0, NULL},
    {"cpp_ptr_read", bench_loop_cpp_read, NULL, 0, NULL},
    {"urcu_inline", loop_urcu_inline, writer_urcu, 1, writer_urcu_defer},
    {"urcu_exported", bench_loop_urcu_exported, writer_urcu, 1, writer_urcu_defer},
    {"rwlock", loop_rwlock, writer_rwlock, 0, NULL},
    {"mutex", loop_mutex, writer_mutex, 0, NULL},
    {"refcount", loop_refcount, NULL, 0, NULL},
    {"plain", loop_plain, NULL, 0, NULL},
    {"call_floor", loop_call_floor, NULL, 0, NULL},
};
#define NVARIANTS (sizeof variants / sizeof variants[0])

/* ---- Threads. Register with liburcu first, then let the library adopt the registration. ---- */

static void thread_enter(void) {
    urcu_memb_register_thread();
    CHECK_RCU(swiftrcu_thread_register());
}

static void thread_leave(void) {
    CHECK_RCU(swiftrcu_thread_unregister());
    urcu_memb_unregister_thread();
}

static void setup(void) {
    for (int i = 0; i < 2; i++) {
        ring_swiftrcu[i].value = ring_urcu[i].value = ring_rwlock[i].value = ring_mutex[i].value = 1;
    }
    obj_refcount.value = obj_plain.value = obj_cpp.value = 1;
    bench_cpp_init(&obj_cpp);
    sptr = swiftrcu_new(&ring_swiftrcu[0], NULL, NULL);
    if (!sptr) die("swiftrcu_new", SWIFTRCU_ENOMEM);
    bench_urcu_ptr = &ring_urcu[0];
    rwlock_ptr = &ring_rwlock[0];
    mutex_ptr = &ring_mutex[0];
    refcount_ptr = &obj_refcount;
    plain_ptr = &obj_plain;
}

struct run_shared {
    const struct variant *v;
    void (*writer)(uint64_t k);
    uint64_t ops, warm;
    pthread_barrier_t start;
    int stop; /* set (atomically) when the readers are done */
};

struct reader_ctx {
    struct run_shared *s;
    pthread_t th;
    uint64_t t0, t1, cpu0, cpu1, sum;
};

struct writer_ctx {
    struct run_shared *s;
    pthread_t th;
    uint64_t t0, t1, updates;
};

static uint64_t sink; /* keeps the sums alive */

static void keep(uint64_t x) { __atomic_fetch_add(&sink, x, __ATOMIC_RELAXED); }

static void *reader_main(void *p) {
    struct reader_ctx *c = p;
    thread_enter();
    keep(c->s->v->loop(c->s->warm));
    pthread_barrier_wait(&c->s->start);
    c->cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    c->t0 = now_ns();
    c->sum = c->s->v->loop(c->s->ops);
    c->t1 = now_ns();
    c->cpu1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    thread_leave();
    return NULL;
}

static void *writer_main(void *p) {
    struct writer_ctx *c = p;
    thread_enter();
    pthread_barrier_wait(&c->s->start);
    uint64_t k = 0;
    c->t0 = now_ns();
    while (!__atomic_load_n(&c->s->stop, __ATOMIC_RELAXED)) c->s->writer(++k);
    c->t1 = now_ns();
    c->updates = k;
    thread_leave();
    return NULL;
}

/* Runs `nreaders` readers of `ops` sections each (and `writer`, if not NULL, back to back until
 * they are done); returns the readers' aggregate sections per second and, with a writer, its
 * updates per second. *cpu_share gets the readers' CPU time over their wall time (below 1: they
 * waited for a CPU). pin_writer puts the writer on the CPU after the readers' (the caller checks
 * that there is one); otherwise it is left free. */
static double run_readers(const struct variant *v, int nreaders, uint64_t ops, void (*writer)(uint64_t k),
                          int pin_writer, double *writer_rate, double *cpu_share) {
    struct run_shared s = {.v = v, .writer = writer, .ops = ops, .warm = ops / 20 < 200000 ? ops / 20 : 200000};
    struct reader_ctx r[MAX_THREADS] = {0};
    struct writer_ctx w = {.s = &s};
    int with_writer = writer != NULL;
    CHECK_ERRNO(pthread_barrier_init(&s.start, NULL, (unsigned)(nreaders + (with_writer ? 1 : 0))));
    /* Readers get a CPU each when there are enough, so the scheduler cannot stack two of them
     * on one CPU for part of a run (the writer, if any, is left free unless pin_writer). */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 0; i < nreaders; i++) {
        r[i].s = &s;
        pthread_attr_t attr;
        CHECK_ERRNO(pthread_attr_init(&attr));
        if (ncpu >= nreaders) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(i, &set);
            CHECK_ERRNO(pthread_attr_setaffinity_np(&attr, sizeof set, &set));
        }
        CHECK_ERRNO(pthread_create(&r[i].th, &attr, reader_main, &r[i]));
        pthread_attr_destroy(&attr);
    }
    if (with_writer) {
        pthread_attr_t attr;
        CHECK_ERRNO(pthread_attr_init(&attr));
        if (pin_writer) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(nreaders, &set);
            CHECK_ERRNO(pthread_attr_setaffinity_np(&attr, sizeof set, &set));
        }
        CHECK_ERRNO(pthread_create(&w.th, &attr, writer_main, &w));
        pthread_attr_destroy(&attr);
    }
    uint64_t t0 = UINT64_MAX, t1 = 0, cpu = 0, wall = 0;
    for (int i = 0; i < nreaders; i++) {
        CHECK_ERRNO(pthread_join(r[i].th, NULL));
        if (r[i].t0 < t0) t0 = r[i].t0;
        if (r[i].t1 > t1) t1 = r[i].t1;
        cpu += r[i].cpu1 - r[i].cpu0;
        wall += r[i].t1 - r[i].t0;
        keep(r[i].sum);
    }
    *cpu_share = wall ? (double)cpu / (double)wall : 0;
    if (with_writer) {
        __atomic_store_n(&s.stop, 1, __ATOMIC_RELAXED);
        CHECK_ERRNO(pthread_join(w.th, NULL));
        *writer_rate = (double)w.updates * 1e9 / (double)(w.t1 - w.t0);
    }
    pthread_barrier_destroy(&s.start);
    return (double)ops * nreaders * 1e9 / (double)(t1 - t0);
}

/* Two readers under the variant's deferring writer. The readers' pointer is switched to heap
 * objects before the threads start and back after they are joined; the barrier that waits for
 * the pending frees comes after the readers' timing, so nothing piles up into the next run. */
static double run_deferring(const struct variant *v, uint64_t ops, double *writer_rate, double *cpu_share) {
    int swift = v->defer_writer == writer_swiftrcu_defer;
    swiftrcu_ptr *ring_sptr = sptr;
    struct bench_obj *ring_obj = bench_urcu_ptr;
    if (swift)
        sptr = heap_sptr;
    else
        rcu_assign_pointer(bench_urcu_ptr, &new_line_obj(1)->o);
    double rate = run_readers(v, 2, ops, v->defer_writer, 0, writer_rate, cpu_share);
    if (swift) {
        CHECK_RCU(swiftrcu_barrier());
        sptr = ring_sptr;
    } else {
        urcu_memb_barrier();
        struct bench_obj *last = bench_urcu_ptr;
        rcu_assign_pointer(bench_urcu_ptr, ring_obj);
        free(caa_container_of(last, struct defer_obj, o)); /* no reader thread is left */
    }
    return rate;
}

/* ---- Writer latency (synchronous free) and deferred-update throughput. ---- */

static swiftrcu_ptr *lat_sptr, *defer_sptr;
static struct defer_obj *lat_urcu_ptr, *defer_urcu_ptr;

static struct defer_obj *new_obj(uint64_t value) {
    struct defer_obj *o = malloc(sizeof *o);
    if (!o) die("malloc", ENOMEM);
    o->o.value = value;
    return o;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* One latency series; returns median and p99 in ns. Allocation is outside the timed region;
 * freeing the old object is inside it for both. */
static void latency_series(int use_swiftrcu, uint64_t n, uint64_t *samples, double *median, double *p99) {
    for (uint64_t i = 0; i < n; i++) {
        struct defer_obj *o = new_obj(i);
        uint64_t t0 = now_ns();
        if (use_swiftrcu) {
            swiftrcu_old *old;
            CHECK_RCU(swiftrcu_replace(lat_sptr, o, &old));
            CHECK_RCU(swiftrcu_old_free(old));
        } else {
            struct defer_obj *old = rcu_xchg_pointer(&lat_urcu_ptr, o);
            urcu_memb_synchronize_rcu();
            free(old);
        }
        samples[i] = now_ns() - t0;
    }
    qsort(samples, n, sizeof *samples, cmp_u64);
    *median = (double)samples[n / 2];
    *p99 = (double)samples[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
}

/* One deferred series: n updates, each deferring the old object, then one barrier; returns
 * updates per second (barrier included). Objects are allocated before timing. */
static double deferred_series(int use_swiftrcu, uint64_t n, struct defer_obj **objs) {
    for (uint64_t i = 0; i < n; i++) objs[i] = new_obj(i);
    uint64_t t0 = now_ns();
    if (use_swiftrcu) {
        for (uint64_t i = 0; i < n; i++) {
            swiftrcu_old *old;
            CHECK_RCU(swiftrcu_replace(defer_sptr, objs[i], &old));
            CHECK_RCU(swiftrcu_old_defer(old));
        }
        CHECK_RCU(swiftrcu_barrier());
    } else {
        for (uint64_t i = 0; i < n; i++) {
            struct defer_obj *old = rcu_xchg_pointer(&defer_urcu_ptr, objs[i]);
            urcu_memb_call_rcu(&old->head, urcu_free_cb);
        }
        urcu_memb_barrier();
    }
    return (double)n * 1e9 / (double)(now_ns() - t0);
}

/* A registered reader thread that stays outside read sections: grace periods must check it. */
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;
static int idle_state; /* 0 starting, 1 registered, 2 asked to stop */

static void *idle_reader_main(void *p) {
    (void)p;
    thread_enter();
    swiftrcu_guard g = swiftrcu_read_lock(); /* one section so the library has seen the thread */
    swiftrcu_read_unlock(&g);
    pthread_mutex_lock(&idle_lock);
    idle_state = 1;
    pthread_cond_broadcast(&idle_cond);
    while (idle_state != 2) pthread_cond_wait(&idle_cond, &idle_lock);
    pthread_mutex_unlock(&idle_lock);
    thread_leave();
    return NULL;
}

/* ---- Output. ---- */

static void json_series(FILE *f, const double *xs, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) fprintf(f, "%s%.6g", i ? ", " : "", xs[i]);
    fputc(']', f);
}

/* The three series of one scenario with a writer: "<name>_reads_per_s", "<name>_cpu_share" and
 * "<name>_updates_per_s". */
static void json_writer_scenario(FILE *f, const char *name, const double *reads, const double *share,
                                 const double *updates, int n) {
    fprintf(f, ", \"%s_reads_per_s\": ", name);
    json_series(f, reads, n);
    fprintf(f, ", \"%s_cpu_share\": ", name);
    json_series(f, share, n);
    fprintf(f, ", \"%s_updates_per_s\": ", name);
    json_series(f, updates, n);
}

static int find_variant(const char *name) {
    for (size_t i = 0; i < NVARIANTS; i++)
        if (strcmp(variants[i].name, name) == 0) return (int)i;
    return -1;
}

static uint64_t parse_u64(const char *s, const char *what) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v == 0) {
        fprintf(stderr, "bench_read: bad %s: %s\n", what, s);
        exit(2);
    }
    return v;
}

static int count_mode(const char *name, uint64_t k) {
    int vi = find_variant(name);
    if (vi < 0) {
        fprintf(stderr, "bench_read: unknown variant %s (see --list)\n", name);
        return 2;
    }
    thread_enter();
    setup();
    uint64_t sum = variants[vi].loop(k);
    printf("%s %llu sections, sum %llu, has_sys_membarrier %d\n", name, (unsigned long long)k,
           (unsigned long long)sum, urcu_memb_has_sys_membarrier);
    thread_leave();
    return 0;
}

static double results_t1[NVARIANTS][MAX_REPS], results_t2[NVARIANTS][MAX_REPS];
static double results_wr[NVARIANTS][MAX_REPS], results_wu[NVARIANTS][MAX_REPS];
static double results_or[NVARIANTS][MAX_REPS], results_ou[NVARIANTS][MAX_REPS]; /* own CPUs */
static double results_dr[NVARIANTS][MAX_REPS], results_du[NVARIANTS][MAX_REPS]; /* deferring writer */
static double share_t1[NVARIANTS][MAX_REPS], share_t2[NVARIANTS][MAX_REPS], share_wr[NVARIANTS][MAX_REPS];
static double share_or[NVARIANTS][MAX_REPS], share_dr[NVARIANTS][MAX_REPS];
static double lat_med[2][MAX_REPS], lat_p99[2][MAX_REPS], defer_rate[2][MAX_REPS];

int main(int argc, char **argv) {
    uint64_t ops = 5000000, lat_ops = 2000, defer_ops = 200000;
    int reps = 7;
    const char *json_path = NULL, *only = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--list") == 0) {
            for (size_t v = 0; v < NVARIANTS; v++) printf("%s\n", variants[v].name);
            return 0;
        } else if (strcmp(a, "--count") == 0 && i + 2 < argc) {
            return count_mode(argv[i + 1], parse_u64(argv[i + 2], "count"));
        } else if (!val) {
            fprintf(stderr, "usage: see the comment at the top of bench_read.c\n");
            return 2;
        } else if (strcmp(a, "--ops") == 0) {
            ops = parse_u64(val, "ops");
        } else if (strcmp(a, "--reps") == 0) {
            reps = (int)parse_u64(val, "reps");
        } else if (strcmp(a, "--lat-ops") == 0) {
            lat_ops = parse_u64(val, "lat-ops");
        } else if (strcmp(a, "--defer-ops") == 0) {
            defer_ops = parse_u64(val, "defer-ops");
        } else if (strcmp(a, "--json") == 0) {
            json_path = val;
        } else if (strcmp(a, "--only") == 0) {
            only = val;
        } else {
            fprintf(stderr, "bench_read: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (reps > MAX_REPS) reps = MAX_REPS;
    int selected[NVARIANTS];
    for (size_t v = 0; v < NVARIANTS; v++) {
        selected[v] = !only;
        if (only) {
            size_t len = strlen(variants[v].name);
            for (const char *p = only; (p = strstr(p, variants[v].name)); p += len)
                if ((p == only || p[-1] == ',') && (p[len] == ',' || p[len] == 0)) selected[v] = 1;
        }
    }

    /* 1 reader + 1 writer on CPUs of their own: needs two CPUs. */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int own_cpus = ncpu >= 2;
    if (!own_cpus) fprintf(stderr, "bench_read: %ld CPU: the 1 reader + 1 writer (own CPUs) runs are skipped\n", ncpu);

    thread_enter();
    setup();
    lat_sptr = swiftrcu_new(new_obj(0), destroy_free, NULL);
    defer_sptr = swiftrcu_new(new_obj(0), destroy_free, NULL);
    heap_sptr = swiftrcu_new(new_line_obj(1), destroy_free, NULL);
    if (!lat_sptr || !defer_sptr || !heap_sptr) die("swiftrcu_new", SWIFTRCU_ENOMEM);
    lat_urcu_ptr = new_obj(0);
    defer_urcu_ptr = new_obj(0);
    uint64_t *samples = malloc(lat_ops * sizeof *samples);
    struct defer_obj **objs = malloc(defer_ops * sizeof *objs);
    if (!samples || !objs) die("malloc", ENOMEM);

    for (int rep = 0; rep < reps; rep++) {
        fprintf(stderr, "bench_read: repetition %d/%d\n", rep + 1, reps);
        for (size_t v = 0; v < NVARIANTS; v++)
            if (selected[v])
                results_t1[v][rep] = 1e9 / run_readers(&variants[v], 1, ops, NULL, 0, NULL, &share_t1[v][rep]);
        for (size_t v = 0; v < NVARIANTS; v++)
            if (selected[v]) results_t2[v][rep] = run_readers(&variants[v], 2, ops, NULL, 0, NULL, &share_t2[v][rep]);
        for (size_t v = 0; v < NVARIANTS; v++)
            if (selected[v] && variants[v].writer)
                results_wr[v][rep] = run_readers(&variants[v], 2, ops, variants[v].writer, 0, &results_wu[v][rep],
                                                 &share_wr[v][rep]);
        for (size_t v = 0; v < NVARIANTS; v++)
            if (own_cpus && selected[v] && variants[v].own_cpus)
                results_or[v][rep] = run_readers(&variants[v], 1, ops, variants[v].writer, 1, &results_ou[v][rep],
                                                 &share_or[v][rep]);
        for (size_t v = 0; v < NVARIANTS; v++)
            if (selected[v] && variants[v].defer_writer)
                results_dr[v][rep] = run_deferring(&variants[v], ops, &results_du[v][rep], &share_dr[v][rep]);

        pthread_t idle;
        idle_state = 0;
        CHECK_ERRNO(pthread_create(&idle, NULL, idle_reader_main, NULL));
        pthread_mutex_lock(&idle_lock);
        while (idle_state != 1) pthread_cond_wait(&idle_cond, &idle_lock);
        pthread_mutex_unlock(&idle_lock);
        for (int k = 0; k < 2; k++) {
            int which = (k + rep) & 1; /* alternate which side goes first */
            latency_series(which, lat_ops, samples, &lat_med[which][rep], &lat_p99[which][rep]);
        }
        for (int k = 0; k < 2; k++) {
            int which = (k + rep) & 1;
            defer_rate[which][rep] = deferred_series(which, defer_ops, objs);
        }
        pthread_mutex_lock(&idle_lock);
        idle_state = 2;
        pthread_cond_broadcast(&idle_cond);
        pthread_mutex_unlock(&idle_lock);
        CHECK_ERRNO(pthread_join(idle, NULL));
    }

    FILE *f = json_path ? fopen(json_path, "w") : stdout;
    if (!f) die("fopen", errno);
    fprintf(f, "{\n  \"program\": \"bench_read\",\n");
    fprintf(f, "  \"swiftrcu_version\": \"%s\",\n", swiftrcu_version());
    fprintf(f, "  \"has_sys_membarrier\": %d,\n", urcu_memb_has_sys_membarrier);
    fprintf(f, "  \"compiler\": \"%s\",\n", __VERSION__);
    fprintf(f, "  \"nproc\": %ld,\n  \"own_cpus_run\": %d,\n", ncpu, own_cpus);
    fprintf(f, "  \"config\": {\"ops\": %llu, \"reps\": %d, \"lat_ops\": %llu, \"defer_ops\": %llu},\n",
            (unsigned long long)ops, reps, (unsigned long long)lat_ops, (unsigned long long)defer_ops);
    fprintf(f, "  \"read\": {\n");
    int first = 1;
    for (size_t v = 0; v < NVARIANTS; v++) {
        if (!selected[v]) continue;
        fprintf(f, "%s    \"%s\": {\"t1_ns_per_read\": ", first ? "" : ",\n", variants[v].name);
        first = 0;
        json_series(f, results_t1[v], reps);
        fprintf(f, ", \"t1_cpu_share\": ");
        json_series(f, share_t1[v], reps);
        fprintf(f, ", \"t2_reads_per_s\": ");
        json_series(f, results_t2[v], reps);
        fprintf(f, ", \"t2_cpu_share\": ");
        json_series(f, share_t2[v], reps);
        if (variants[v].writer) {
            json_writer_scenario(f, "writer", results_wr[v], share_wr[v], results_wu[v], reps);
            if (own_cpus && variants[v].own_cpus)
                json_writer_scenario(f, "own_cpus", results_or[v], share_or[v], results_ou[v], reps);
        }
        if (variants[v].defer_writer)
            json_writer_scenario(f, "defer", results_dr[v], share_dr[v], results_du[v], reps);
        fputc('}', f);
    }
    fprintf(f, "\n  },\n  \"latency\": {\n");
    const char *side[2] = {"urcu", "swiftrcu"};
    for (int k = 1; k >= 0; k--) {
        fprintf(f, "    \"%s\": {\"median_ns\": ", side[k]);
        json_series(f, lat_med[k], reps);
        fprintf(f, ", \"p99_ns\": ");
        json_series(f, lat_p99[k], reps);
        fprintf(f, "}%s\n", k ? "," : "");
    }
    fprintf(f, "  },\n  \"deferred\": {\n");
    for (int k = 1; k >= 0; k--) {
        fprintf(f, "    \"%s\": {\"updates_per_s\": ", side[k]);
        json_series(f, defer_rate[k], reps);
        fprintf(f, "}%s\n", k ? "," : "");
    }
    fprintf(f, "  },\n  \"sink\": %llu\n}\n", (unsigned long long)(sink & 1));
    if (json_path) fclose(f);

    CHECK_RCU(swiftrcu_free(lat_sptr));
    CHECK_RCU(swiftrcu_free(defer_sptr));
    CHECK_RCU(swiftrcu_free(heap_sptr));
    CHECK_RCU(swiftrcu_free(sptr));
    free(lat_urcu_ptr);
    free(defer_urcu_ptr);
    free(samples);
    free(objs);
    thread_leave();
    return 0;
}
