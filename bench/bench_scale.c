/*
 * bench_scale.c - how SwiftRCU's costs grow with reader threads, live pointers and pending
 * deferred destroys, each beside liburcu (memb, inline read side) used directly and a
 * pthread_rwlock, measured by the same loop in the same kind of process. One measurement per
 * process, so resident-set figures start clean; bench/run_scale.py runs the grid and makes the
 * tables and charts.
 *
 *   bench_scale threads  IMPL READERS SECONDS   READERS threads read one pointer flat out while one writer
 *                                               replaces it and frees the old object after a grace
 *                                               period (ours: replace + old_free; liburcu:
 *                                               xchg + synchronize_rcu + free; rwlock: wrlock +
 *                                               store + unlock + free), back to back
 *   bench_scale pointers IMPL LIVE SECONDS      one thread reads LIVE pointers at random (no
 *                                               writer); resident set per live pointer
 *   bench_scale flood    IMPL WRITERS SECONDS   WRITERS threads replace their own pointer and
 *                                               defer the old object's destroy (ours: old_defer;
 *                                               liburcu: call_rcu; rwlock: free after unlock),
 *                                               one reader reads them all; peak resident set and
 *                                               peak pending destroys
 *
 * IMPL is swiftrcu, urcu or rwlock. Each run prints one JSON object on stdout.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define _GNU_SOURCE
#define _LGPL_SOURCE 1
#include <urcu/urcu-memb.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <swiftrcu.h>

#define CACHELINE 64
#define MAX_THREADS 64
#define MAX_LAT_SAMPLES (1 << 20)
/* A flood stops early once the resident set passes this (liburcu's single call_rcu worker can
 * fall behind several writers without bound): the run reports that it stopped. */
#define FLOOD_RSS_LIMIT_KB (3L * 1024 * 1024)

enum impl { SWIFTRCU, URCU, RWLOCK };
static enum impl impl;
static const char *impl_name;

static void die(const char *what) {
    fprintf(stderr, "bench_scale: %s\n", what);
    exit(2);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A field of /proc/self/status in kB (VmRSS, VmHWM). */
static long status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = atol(line + n + 1);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* The object every read reads one field of. For liburcu's call_rcu it starts with an rcu_head. */
struct obj {
    struct rcu_head head;
    uint64_t value;
    char pad[CACHELINE - sizeof(struct rcu_head) - sizeof(uint64_t)];
};

static struct obj *new_obj(uint64_t value) {
    struct obj *o = malloc(sizeof *o);
    if (!o)
        die("out of memory");
    o->value = value;
    return o;
}

static void destroy_free(void *object, void *context) {
    (void)context;
    free(object);
}

/* One protected pointer of each kind. */
struct slot {
    swiftrcu_ptr *ptr;     /* swiftrcu */
    struct obj *urcu_ptr;  /* urcu: read with rcu_dereference */
    pthread_rwlock_t lock; /* rwlock: guards rw_ptr */
    struct obj *rw_ptr;
} __attribute__((aligned(CACHELINE)));

static void slot_init(struct slot *s, struct obj *o, swiftrcu_destroy_fn destroy) {
    switch (impl) {
    case SWIFTRCU:
        s->ptr = swiftrcu_new(o, destroy, NULL);
        if (!s->ptr)
            die("swiftrcu_new");
        break;
    case URCU: s->urcu_ptr = o; break;
    case RWLOCK:
        pthread_rwlock_init(&s->lock, NULL);
        s->rw_ptr = o;
        break;
    }
}

/* One read section of each kind: enter, load the pointer, read one field, leave. */
static inline uint64_t read_swiftrcu(swiftrcu_ptr *ptr) {
    uint64_t v = 0;
    swiftrcu_guard g = swiftrcu_read_lock();
    const struct obj *o = swiftrcu_dereference(ptr, &g);
    if (o)
        v = o->value;
    swiftrcu_read_unlock(&g);
    return v;
}

static inline uint64_t read_urcu(struct obj **p) {
    uint64_t v = 0;
    urcu_memb_read_lock();
    struct obj *o = rcu_dereference(*p);
    if (o)
        v = o->value;
    urcu_memb_read_unlock();
    return v;
}

static inline uint64_t read_rwlock(pthread_rwlock_t *lock, struct obj **p) {
    pthread_rwlock_rdlock(lock);
    uint64_t v = (*p)->value;
    pthread_rwlock_unlock(lock);
    return v;
}

static inline uint64_t read_once(struct slot *s) {
    switch (impl) {
    case SWIFTRCU: return read_swiftrcu(s->ptr);
    case URCU: return read_urcu(&s->urcu_ptr);
    case RWLOCK: return read_rwlock(&s->lock, &s->rw_ptr);
    }
    return 0;
}

static void thread_start(void) {
    if (impl == URCU)
        urcu_memb_register_thread();
}

static void thread_end(void) {
    if (impl == URCU)
        urcu_memb_unregister_thread();
}

/* ---- threads: read throughput and writer latency with N readers ---- */

static atomic_int stop;
static pthread_barrier_t start_barrier;
static struct slot shared_slot;

struct reader {
    uint64_t reads;
    uint64_t sum;
} __attribute__((aligned(CACHELINE)));
static struct reader readers[MAX_THREADS];

static void *reader_main(void *p) {
    struct reader *r = p;
    thread_start();
    pthread_barrier_wait(&start_barrier);
    uint64_t n = 0, sum = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (int i = 0; i < 256; i++)
            sum += read_once(&shared_slot);
        n += 256;
    }
    r->reads = n;
    r->sum = sum;
    thread_end();
    return NULL;
}

static uint64_t *lat;
static size_t lat_count;
static uint64_t writer_ops;

/* Replaces the object and frees the old one after a grace period (rwlock: after unlocking). */
static void update_and_free(struct slot *s, uint64_t i) {
    struct obj *o = new_obj(i);
    switch (impl) {
    case SWIFTRCU: {
        swiftrcu_old *old = NULL;
        if (swiftrcu_replace(s->ptr, o, &old) != SWIFTRCU_OK)
            die("swiftrcu_replace");
        if (old && swiftrcu_old_free(old) != SWIFTRCU_OK)
            die("swiftrcu_old_free");
        break;
    }
    case URCU: {
        struct obj *old = rcu_xchg_pointer(&s->urcu_ptr, o);
        urcu_memb_synchronize_rcu();
        free(old);
        break;
    }
    case RWLOCK: {
        pthread_rwlock_wrlock(&s->lock);
        struct obj *old = s->rw_ptr;
        s->rw_ptr = o;
        pthread_rwlock_unlock(&s->lock);
        free(old);
        break;
    }
    }
}

static void *latency_writer_main(void *unused) {
    (void)unused;
    thread_start();
    pthread_barrier_wait(&start_barrier);
    uint64_t i = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        uint64_t t0 = now_ns();
        update_and_free(&shared_slot, ++i);
        uint64_t t1 = now_ns();
        if (lat_count < MAX_LAT_SAMPLES)
            lat[lat_count++] = t1 - t0;
    }
    writer_ops = i;
    thread_end();
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile(const uint64_t *sorted, size_t n, double p) {
    if (n == 0)
        return -1;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)sorted[i];
}

static void run_threads(int nreaders, double seconds) {
    if (nreaders < 1 || nreaders > MAX_THREADS)
        die("readers: 1 to 64");
    lat = malloc(sizeof *lat * MAX_LAT_SAMPLES);
    if (!lat)
        die("out of memory");
    slot_init(&shared_slot, new_obj(0), destroy_free);
    pthread_barrier_init(&start_barrier, NULL, (unsigned)nreaders + 2);
    pthread_t th[MAX_THREADS + 1];
    for (int i = 0; i < nreaders; i++)
        if (pthread_create(&th[i], NULL, reader_main, &readers[i]) != 0)
            die("pthread_create");
    if (pthread_create(&th[nreaders], NULL, latency_writer_main, NULL) != 0)
        die("pthread_create");
    pthread_barrier_wait(&start_barrier);
    uint64_t t0 = now_ns();
    usleep((useconds_t)(seconds * 1e6));
    atomic_store(&stop, 1);
    uint64_t t1 = now_ns();
    for (int i = 0; i <= nreaders; i++)
        pthread_join(th[i], NULL);
    uint64_t reads = 0;
    for (int i = 0; i < nreaders; i++)
        reads += readers[i].reads;
    qsort(lat, lat_count, sizeof *lat, cmp_u64);
    double elapsed = (double)(t1 - t0) / 1e9;
    printf("{\"series\": \"threads\", \"impl\": \"%s\", \"readers\": %d, \"cpus\": %ld, \"seconds\": %.3f, "
           "\"reads_per_s\": %.1f, \"writer_ops\": %llu, \"lat_p50_ns\": %.0f, \"lat_p99_ns\": %.0f}\n",
           impl_name, nreaders, sysconf(_SC_NPROCESSORS_ONLN), elapsed, (double)reads / elapsed,
           (unsigned long long)writer_ops, percentile(lat, lat_count, 0.50), percentile(lat, lat_count, 0.99));
}

/* ---- pointers: read cost with LIVE pointers read at random; resident set per pointer ---- */

/* A random index below n: xorshift64*, scaled by a multiply (no division). */
static inline size_t random_index(uint64_t *state, size_t n) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return (size_t)(((unsigned __int128)(x * 0x2545F4914F6CDD1Dull) * n) >> 64);
}

/* What a program keeps per pointer with a lock: the lock and the pointer. */
struct rw_entry {
    pthread_rwlock_t lock;
    struct obj *ptr;
};

static void run_pointers(long live, double seconds) {
    if (live < 1)
        die("live: at least 1");
    size_t n = (size_t)live;
    /* The program's own storage, allocated and touched first, so the resident set measured
     * next is what the library adds: an array of handles (ours), of pointers (liburcu, which
     * adds nothing), of lock + pointer entries (rwlock, which adds nothing either). */
    struct obj *objects = calloc(n, sizeof *objects);
    swiftrcu_ptr **handles = impl == SWIFTRCU ? calloc(n, sizeof *handles) : NULL;
    struct obj **ptrs = impl == URCU ? calloc(n, sizeof *ptrs) : NULL;
    struct rw_entry *entries = impl == RWLOCK ? calloc(n, sizeof *entries) : NULL;
    if (!objects || (!handles && !ptrs && !entries))
        die("out of memory");
    for (size_t i = 0; i < n; i++)
        objects[i].value = (uint64_t)i;
    size_t own = impl == SWIFTRCU ? sizeof *handles : impl == URCU ? sizeof *ptrs : sizeof *entries;
    memset(handles ? (void *)handles : ptrs ? (void *)ptrs : (void *)entries, 0, n * own);
    thread_start();
    long rss0 = status_kb("VmRSS");
    for (size_t i = 0; i < n; i++) {
        switch (impl) {
        case SWIFTRCU:
            if (!(handles[i] = swiftrcu_new(&objects[i], NULL, NULL)))
                die("swiftrcu_new");
            break;
        case URCU: rcu_assign_pointer(ptrs[i], &objects[i]); break;
        case RWLOCK:
            pthread_rwlock_init(&entries[i].lock, NULL);
            entries[i].ptr = &objects[i];
            break;
        }
    }
    long rss1 = status_kb("VmRSS");
    /* Per pointer: the program's own entry plus what the library allocated. */
    double per_ptr = (double)own + (double)(rss1 - rss0) * 1024.0 / (double)n;
    uint64_t state = 0x9E3779B97F4A7C15ull, sum = 0, reads = 0;
    uint64_t t0 = now_ns(), t1;
    do {
        for (int k = 0; k < 65536; k++) {
            size_t i = random_index(&state, n);
            switch (impl) {
            case SWIFTRCU: sum += read_swiftrcu(handles[i]); break;
            case URCU: sum += read_urcu(&ptrs[i]); break;
            case RWLOCK: sum += read_rwlock(&entries[i].lock, &entries[i].ptr); break;
            }
        }
        reads += 65536;
        t1 = now_ns();
    } while ((double)(t1 - t0) < seconds * 1e9);
    /* The same loop without protection: the random index and the two loads. */
    uint64_t base_reads = 0, b0 = now_ns(), b1;
    struct obj **plain = malloc(n * sizeof *plain);
    if (!plain)
        die("out of memory");
    for (size_t i = 0; i < n; i++)
        plain[i] = &objects[i];
    b0 = now_ns();
    do {
        for (int k = 0; k < 65536; k++)
            sum += plain[random_index(&state, n)]->value;
        base_reads += 65536;
        b1 = now_ns();
    } while ((double)(b1 - b0) < seconds * 1e9 / 4);
    printf("{\"series\": \"pointers\", \"impl\": \"%s\", \"live\": %ld, \"ns_per_read\": %.2f, "
           "\"ns_per_plain_read\": %.2f, \"bytes_per_ptr\": %.1f, \"rss_delta_kb\": %ld, \"checksum\": %llu}\n",
           impl_name, live, (double)(t1 - t0) / (double)reads, (double)(b1 - b0) / (double)base_reads,
           per_ptr, rss1 - rss0, (unsigned long long)(sum & 0xffff));
    thread_end();
}

/* ---- flood: deferred destroys from WRITERS threads; peak resident set and pending ---- */

static atomic_uint_fast64_t urcu_queued, urcu_completed, urcu_pending_peak;

static void urcu_free_cb(struct rcu_head *head) {
    free(caa_container_of(head, struct obj, head));
    atomic_fetch_add_explicit(&urcu_completed, 1, memory_order_relaxed);
}

struct writer {
    struct slot slot;
    uint64_t ops;
} __attribute__((aligned(CACHELINE)));
static struct writer writers[MAX_THREADS];
static int nwriters;

static void update_and_defer(struct slot *s, uint64_t i) {
    if (impl == RWLOCK) {
        update_and_free(s, i); /* nothing to defer: no reader can hold the old object */
        return;
    }
    struct obj *o = new_obj(i);
    switch (impl) {
    case SWIFTRCU: {
        swiftrcu_old *old = NULL;
        if (swiftrcu_replace(s->ptr, o, &old) != SWIFTRCU_OK)
            die("swiftrcu_replace");
        if (old && swiftrcu_old_defer(old) != SWIFTRCU_OK)
            die("swiftrcu_old_defer");
        break;
    }
    case URCU: {
        struct obj *old = rcu_xchg_pointer(&s->urcu_ptr, o);
        /* The same bookkeeping our library does: count, and raise the peak of pending. */
        /* Completed first, so it cannot include destroys queued after `q` (never negative). */
        uint64_t c = atomic_load_explicit(&urcu_completed, memory_order_relaxed);
        uint64_t q = atomic_fetch_add_explicit(&urcu_queued, 1, memory_order_relaxed) + 1;
        uint64_t pending = q - c;
        uint64_t peak = atomic_load_explicit(&urcu_pending_peak, memory_order_relaxed);
        while (pending > peak &&
               !atomic_compare_exchange_weak_explicit(&urcu_pending_peak, &peak, pending, memory_order_relaxed,
                                                      memory_order_relaxed)) {
        }
        urcu_memb_call_rcu(&old->head, urcu_free_cb);
        break;
    }
    case RWLOCK: break;
    }
}

static void *flood_writer_main(void *p) {
    struct writer *w = p;
    thread_start();
    pthread_barrier_wait(&start_barrier);
    uint64_t i = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        update_and_defer(&w->slot, ++i);
        if ((i & 1023) == 0 && atomic_load_explicit(&stop, memory_order_relaxed))
            break;
    }
    w->ops = i;
    thread_end();
    return NULL;
}

static void *flood_reader_main(void *p) {
    struct reader *r = p;
    thread_start();
    pthread_barrier_wait(&start_barrier);
    uint64_t n = 0, sum = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (int i = 0; i < nwriters; i++)
            sum += read_once(&writers[i].slot);
        n += (uint64_t)nwriters;
    }
    r->reads = n;
    r->sum = sum;
    thread_end();
    return NULL;
}

static void run_flood(int w, double seconds) {
    if (w < 1 || w > MAX_THREADS)
        die("writers: 1 to 64");
    nwriters = w;
    for (int i = 0; i < w; i++)
        slot_init(&writers[i].slot, new_obj(0), destroy_free);
    long rss0 = status_kb("VmRSS");
    pthread_barrier_init(&start_barrier, NULL, (unsigned)w + 2);
    pthread_t th[MAX_THREADS + 1];
    for (int i = 0; i < w; i++)
        if (pthread_create(&th[i], NULL, flood_writer_main, &writers[i]) != 0)
            die("pthread_create");
    if (pthread_create(&th[w], NULL, flood_reader_main, &readers[0]) != 0)
        die("pthread_create");
    pthread_barrier_wait(&start_barrier);
    uint64_t t0 = now_ns(), t1;
    long peak_rss = rss0;
    int stopped_early = 0;
    do {
        usleep(10000);
        long rss = status_kb("VmRSS");
        if (rss > peak_rss)
            peak_rss = rss;
        t1 = now_ns();
        if (rss > FLOOD_RSS_LIMIT_KB) {
            stopped_early = 1;
            break;
        }
    } while ((double)(t1 - t0) < seconds * 1e9);
    atomic_store(&stop, 1);
    for (int i = 0; i <= w; i++)
        pthread_join(th[i], NULL);
    uint64_t ops = 0;
    for (int i = 0; i < w; i++)
        ops += writers[i].ops;
    uint64_t pending_peak = 0, pauses = 0, pause_ns = 0;
    if (impl == SWIFTRCU) {
        swiftrcu_stats s = {.size = sizeof s};
        if (swiftrcu_stats_get(&s) != SWIFTRCU_OK)
            die("swiftrcu_stats_get");
        pending_peak = s.deferred_pending_peak;
        pauses = s.writer_pauses;
        pause_ns = s.writer_pause_ns;
    } else if (impl == URCU) {
        pending_peak = atomic_load(&urcu_pending_peak);
    }
    long hwm = status_kb("VmHWM");
    uint64_t b0 = now_ns();
    if (impl == SWIFTRCU)
        swiftrcu_barrier();
    else if (impl == URCU) {
        urcu_memb_register_thread();
        urcu_memb_barrier();
        urcu_memb_unregister_thread();
    }
    uint64_t b1 = now_ns();
    double elapsed = (double)(t1 - t0) / 1e9;
    printf("{\"series\": \"flood\", \"impl\": \"%s\", \"writers\": %d, \"seconds\": %.3f, \"updates_per_s\": %.1f, "
           "\"rss_start_kb\": %ld, \"peak_rss_kb\": %ld, \"hwm_kb\": %ld, \"pending_peak\": %llu, "
           "\"writer_pauses\": %llu, \"writer_pause_s\": %.3f, \"drain_s\": %.3f, \"stopped_early\": %s}\n",
           impl_name, w, elapsed, (double)ops / elapsed, rss0, peak_rss, hwm, (unsigned long long)pending_peak,
           (unsigned long long)pauses, (double)pause_ns / 1e9, (double)(b1 - b0) / 1e9,
           stopped_early ? "true" : "false");
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: bench_scale threads|pointers|flood swiftrcu|urcu|rwlock N SECONDS\n");
        return 2;
    }
    impl_name = argv[2];
    if (strcmp(impl_name, "swiftrcu") == 0)
        impl = SWIFTRCU;
    else if (strcmp(impl_name, "urcu") == 0)
        impl = URCU;
    else if (strcmp(impl_name, "rwlock") == 0)
        impl = RWLOCK;
    else
        die("IMPL: swiftrcu, urcu or rwlock");
    long n = atol(argv[3]);
    double seconds = atof(argv[4]);
    if (strcmp(argv[1], "threads") == 0)
        run_threads((int)n, seconds);
    else if (strcmp(argv[1], "pointers") == 0)
        run_pointers(n, seconds);
    else if (strcmp(argv[1], "flood") == 0)
        run_flood((int)n, seconds);
    else
        die("series: threads, pointers or flood");
    return 0;
}
