/*
 * bench_defer.c - SwiftRCU's deferred-update benchmark, as a program writes updates: each update
 * allocates its new object inside the timed loop, and the old one is freed by the destroy function
 * after a grace period. Beside each of ours, liburcu doing the same in the same run:
 *
 *   defer1   one writer:  malloc + swiftrcu_replace + swiftrcu_old_defer (destroy = free)
 *                         vs malloc + rcu_xchg_pointer + call_rcu(free)
 *   defer2   two writers, each on a pointer of its own, the same loop each
 *   latency  one writer:  malloc + swiftrcu_replace + swiftrcu_old_free
 *                         vs malloc + rcu_xchg_pointer + synchronize_rcu + free (median per update)
 *
 * Every run (one variant, one repetition) is a child process of its own, so its peak resident
 * memory (ru_maxrss) is its own; the repetitions alternate ours and liburcu's. Throughput is
 * updates per second over the writers' loops (the destroys still pending at the end are drained
 * after timing); "peak pending" is the largest number of destroys queued and not yet run that a
 * writer saw (sampled every 256 updates, counted the same way for both).
 *
 *   bench_defer [--ops N] [--reps R] [--lat-ops L] [--smoke]
 *       --smoke: tiny counts, no targets judged (it only keeps the benchmark building and running).
 *   bench_defer [--ops N] [--lat-ops L] --one defer1|defer2|latency swiftrcu|urcu
 *       one run of one side in this process (for a profiler).
 */
#define _GNU_SOURCE
#define _LGPL_SOURCE 1
#include <urcu/urcu-memb.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_NAME "bench_defer"
#include "bench_check.h"

#define MAX_REPS 64
#define MAX_WRITERS 2

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The object of every update: what a program would publish, with liburcu's rcu_head inside. */
struct obj {
    uint64_t value;
    uint64_t payload[3];
    struct rcu_head head;
};

static struct obj *new_obj(uint64_t value) {
    struct obj *o = malloc(sizeof *o);
    if (!o) die("malloc", ENOMEM);
    o->value = value;
    return o;
}

/* Destroys queued and destroys run, for the peak-pending figure (the same counting for both). */
static uint64_t queued_count, destroyed_count;

static void count_queued(void) { __atomic_fetch_add(&queued_count, 1, __ATOMIC_RELAXED); }

static uint64_t pending_now(void) {
    uint64_t done = __atomic_load_n(&destroyed_count, __ATOMIC_RELAXED);
    uint64_t queued = __atomic_load_n(&queued_count, __ATOMIC_RELAXED);
    return queued > done ? queued - done : 0;
}

static void destroy_free(void *object, void *context) {
    (void)context;
    free(object);
    __atomic_fetch_add(&destroyed_count, 1, __ATOMIC_RELAXED);
}

static void urcu_free_cb(struct rcu_head *head) {
    free(caa_container_of(head, struct obj, head));
    __atomic_fetch_add(&destroyed_count, 1, __ATOMIC_RELAXED);
}

/* ---- One run (in a child process). ---- */

struct writer {
    pthread_t thread;
    int swift;
    uint64_t ops;
    swiftrcu_ptr *sptr;
    struct obj *uptr;
    uint64_t peak_pending;
};

static pthread_barrier_t start_line;

static void *writer_main(void *p) {
    struct writer *w = p;
    urcu_memb_register_thread(); /* liburcu's call_rcu needs a registered thread; ours adopts it */
    uint64_t peak = 0;
    pthread_barrier_wait(&start_line);
    if (w->swift) {
        for (uint64_t i = 0; i < w->ops; i++) {
            swiftrcu_old *old;
            CHECK_RCU(swiftrcu_replace(w->sptr, new_obj(i), &old));
            count_queued();
            CHECK_RCU(swiftrcu_old_defer(old));
            if ((i & 255) == 0) {
                uint64_t p_ = pending_now();
                if (p_ > peak) peak = p_;
            }
        }
    } else {
        for (uint64_t i = 0; i < w->ops; i++) {
            struct obj *old = rcu_xchg_pointer(&w->uptr, new_obj(i));
            count_queued();
            urcu_memb_call_rcu(&old->head, urcu_free_cb);
            if ((i & 255) == 0) {
                uint64_t p_ = pending_now();
                if (p_ > peak) peak = p_;
            }
        }
    }
    w->peak_pending = peak;
    urcu_memb_unregister_thread();
    return NULL;
}

struct result {
    double value; /* updates/s (defer), or median ns per update (latency) */
    double peak_pending;
    double max_rss_kib;
};

/* Deferred updates with `nwriters` writers of `ops` updates each; returns updates/s. */
static double run_defer(int swift, int nwriters, uint64_t ops, double *peak_pending) {
    struct writer w[MAX_WRITERS];
    memset(w, 0, sizeof w);
    pthread_barrier_init(&start_line, NULL, (unsigned)nwriters + 1);
    for (int i = 0; i < nwriters; i++) {
        w[i].swift = swift;
        w[i].ops = ops;
        w[i].uptr = new_obj(0);
        if (swift && !(w[i].sptr = swiftrcu_new(new_obj(0), destroy_free, NULL))) die("swiftrcu_new", ENOMEM);
        int e = pthread_create(&w[i].thread, NULL, writer_main, &w[i]);
        if (e) die("pthread_create", e);
    }
    pthread_barrier_wait(&start_line);
    uint64_t t0 = now_ns();
    for (int i = 0; i < nwriters; i++) pthread_join(w[i].thread, NULL);
    uint64_t elapsed = now_ns() - t0;
    *peak_pending = 0;
    for (int i = 0; i < nwriters; i++) {
        if ((double)w[i].peak_pending > *peak_pending) *peak_pending = (double)w[i].peak_pending;
        if (swift) CHECK_RCU(swiftrcu_free(w[i].sptr));
        free(w[i].uptr);
    }
    if (swift) CHECK_RCU(swiftrcu_barrier());
    else urcu_memb_barrier();
    if (pending_now() != 0) die("drain (destroys left pending)", EINVAL);
    pthread_barrier_destroy(&start_line);
    return (double)ops * nwriters * 1e9 / (double)elapsed;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Synchronous updates: median ns of malloc + publish + wait + free. */
static double run_latency(int swift, uint64_t ops) {
    uint64_t *samples = malloc(ops * sizeof *samples);
    if (!samples) die("malloc", ENOMEM);
    urcu_memb_register_thread();
    swiftrcu_ptr *sptr = swift ? swiftrcu_new(new_obj(0), destroy_free, NULL) : NULL;
    struct obj *uptr = new_obj(0);
    for (uint64_t i = 0; i < ops; i++) {
        uint64_t t0 = now_ns();
        if (swift) {
            swiftrcu_old *old;
            CHECK_RCU(swiftrcu_replace(sptr, new_obj(i), &old));
            CHECK_RCU(swiftrcu_old_free(old));
        } else {
            struct obj *old = rcu_xchg_pointer(&uptr, new_obj(i));
            urcu_memb_synchronize_rcu();
            free(old);
        }
        samples[i] = now_ns() - t0;
    }
    if (swift) CHECK_RCU(swiftrcu_free(sptr));
    free(uptr);
    urcu_memb_unregister_thread();
    qsort(samples, ops, sizeof *samples, cmp_u64);
    double median = (double)samples[ops / 2];
    free(samples);
    return median;
}

enum kind { DEFER1, DEFER2, LATENCY };

/* Runs one measurement in a child process; the child's peak resident memory comes from wait4. */
static struct result measure(enum kind kind, int swift, uint64_t ops) {
    int fds[2];
    if (pipe(fds) != 0) die("pipe", errno);
    pid_t pid = fork();
    if (pid < 0) die("fork", errno);
    if (pid == 0) {
        close(fds[0]);
        struct result r = {0, 0, 0};
        if (kind == LATENCY) r.value = run_latency(swift, ops);
        else r.value = run_defer(swift, kind == DEFER1 ? 1 : 2, ops, &r.peak_pending);
        if (write(fds[1], &r, sizeof r) != (ssize_t)sizeof r) _exit(3);
        _exit(0);
    }
    close(fds[1]);
    struct result r;
    ssize_t got = read(fds[0], &r, sizeof r);
    close(fds[0]);
    int status;
    struct rusage usage;
    if (wait4(pid, &status, 0, &usage) != pid) die("wait4", errno);
    if (got != (ssize_t)sizeof r || !WIFEXITED(status) || WEXITSTATUS(status) != 0) die("a run", EIO);
    r.max_rss_kib = (double)usage.ru_maxrss;
    return r;
}

static double median(double *xs, int n) {
    qsort(xs, (size_t)n, sizeof *xs, cmp_double);
    return n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
}

static double max_of(const double *xs, int n) {
    double m = xs[0];
    for (int i = 1; i < n; i++) m = xs[i] > m ? xs[i] : m;
    return m;
}

/* One scenario, `reps` alternating runs of each side; prints a row; returns ours / liburcu's
 * (for latency: ours / liburcu's median time). */
static double scenario(const char *name, enum kind kind, uint64_t ops, int reps) {
    double v[2][MAX_REPS], pend[2][MAX_REPS], rss[2][MAX_REPS];
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < 2; k++) {
            int swift = (r + k) % 2; /* alternate which side goes first */
            struct result x = measure(kind, swift, ops);
            v[swift][r] = x.value;
            pend[swift][r] = x.peak_pending;
            rss[swift][r] = x.max_rss_kib;
        }
    }
    double ours = median(v[1], reps), theirs = median(v[0], reps);
    double ratio = kind == LATENCY ? ours / theirs : ours / theirs;
    if (kind == LATENCY) {
        printf("%-8s ours %9.0f ns  liburcu %9.0f ns  ratio %.2fx (time)  peak RSS %6.0f / %6.0f KiB\n", name,
               ours, theirs, ratio, max_of(rss[1], reps), max_of(rss[0], reps));
    } else {
        printf("%-8s ours %7.2f M/s  liburcu %7.2f M/s  ratio %.2fx  peak pending %8.0f / %8.0f  "
               "peak RSS %7.0f / %7.0f KiB\n",
               name, ours / 1e6, theirs / 1e6, ratio, max_of(pend[1], reps), max_of(pend[0], reps),
               max_of(rss[1], reps), max_of(rss[0], reps));
    }
    fflush(stdout);
    return ratio;
}

int main(int argc, char **argv) {
    uint64_t ops = 2000000, lat_ops = 2000;
    int reps = 5, smoke = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ops") && i + 1 < argc) ops = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--lat-ops") && i + 1 < argc) lat_ops = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--smoke")) smoke = 1;
        else if (!strcmp(argv[i], "--one") && i + 2 < argc) {
            /* One run in this process, for a profiler: --one defer1|defer2|latency swiftrcu|urcu */
            const char *k = argv[++i];
            int swift = !strcmp(argv[++i], "swiftrcu");
            double pending = 0;
            if (!strcmp(k, "latency")) printf("%.0f ns\n", run_latency(swift, lat_ops));
            else printf("%.2f M/s\n", run_defer(swift, strcmp(k, "defer2") ? 1 : 2, ops, &pending) / 1e6);
            return 0;
        }
        else {
            fprintf(stderr, "usage: bench_defer [--ops N] [--reps R] [--lat-ops L] [--smoke | --one KIND SIDE]\n");
            return 2;
        }
    }
    if (smoke) ops = 20000, lat_ops = 50, reps = 1;
    if (reps < 1 || reps > MAX_REPS || ops < 1 || lat_ops < 1) {
        fprintf(stderr, "bench_defer: reps must be 1..%d, counts at least 1\n", MAX_REPS);
        return 2;
    }
    printf("deferred updates, objects allocated in the loop (%llu updates per writer, %d runs each, "
           "medians; ours / liburcu):\n", (unsigned long long)ops, reps);
    double r1 = scenario("defer1", DEFER1, ops, reps);
    double r2 = scenario("defer2", DEFER2, ops, reps);
    double rl = scenario("latency", LATENCY, lat_ops, reps);
    if (smoke) return 0;
    int met = (r1 >= 0.9) + (r2 >= 0.8) + (rl <= 1.1);
    printf("targets: defer1 >= 0.90x %s, defer2 >= 0.80x %s, latency <= 1.10x %s (%d of 3 met)\n",
           r1 >= 0.9 ? "met" : "MISSED", r2 >= 0.8 ? "met" : "MISSED", rl <= 1.1 ? "met" : "MISSED", met);
    return 0;
}
