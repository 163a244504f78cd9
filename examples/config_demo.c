/*
 * SwiftRCU demo: reader threads look up a configuration through an RCU-protected pointer while a
 * writer publishes new versions. Readers take no lock and write no shared memory; each old version
 * is destroyed only after every reader that could see it has moved on.
 *
 *   cc config_demo.c $(pkg-config --cflags --libs swiftrcu) -lpthread -o config_demo
 *   ./config_demo [readers] [seconds]
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define _POSIX_C_SOURCE 200809L
#include <swiftrcu.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIVE 0x600DC0DEu
#define DEAD 0xDEADBEEFu

/* One version of the configuration. Readers check `magic`: a destroyed version is poisoned. */
struct config {
    unsigned magic;
    long version;
    int timeout_ms;
    int max_connections;
    char name[32];
};

static atomic_long versions_created;
static atomic_long versions_destroyed;
static atomic_long reads_total;
static atomic_long bad_reads;
static atomic_int stop;

static void destroy_config(void *object, void *context) {
    (void)context;
    struct config *c = object;
    c->magic = DEAD; /* a reader that still used it would notice */
    free(c);
    atomic_fetch_add(&versions_destroyed, 1);
}

static struct config *make_config(long version) {
    struct config *c = malloc(sizeof *c);
    if (c == NULL) {
        perror("malloc");
        exit(1);
    }
    c->magic = LIVE;
    c->version = version;
    c->timeout_ms = 100 + (int)(version % 900);
    c->max_connections = 16 + (int)(version % 64);
    snprintf(c->name, sizeof c->name, "config-v%ld", version);
    atomic_fetch_add(&versions_created, 1);
    return c;
}

static void *reader(void *arg) {
    swiftrcu_ptr *current = arg;
    long reads = 0, last_version = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        swiftrcu_guard g = swiftrcu_read_lock();
        const struct config *c = swiftrcu_dereference(current, &g);
        if (c == NULL || c->magic != LIVE || c->version < last_version || c->timeout_ms < 100)
            atomic_fetch_add(&bad_reads, 1);
        else
            last_version = c->version;
        swiftrcu_read_unlock(&g);
        /* One field can also be copied out in one call, inside a read section of its own. */
        int timeout_ms;
        const void *from = swiftrcu_read_copy(current, offsetof(struct config, timeout_ms), &timeout_ms,
                                              sizeof timeout_ms);
        if (from == NULL || timeout_ms < 100)
            atomic_fetch_add(&bad_reads, 1);
        reads += 2;
    }
    atomic_fetch_add(&reads_total, reads);
    return NULL;
}

/* copy_update callback: the next version is derived from the current one. */
static void *next_version(const void *current, void *context) {
    (void)context;
    const struct config *c = current;
    return make_config(c->version + 1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    int readers = argc > 1 ? atoi(argv[1]) : 2;
    double seconds = argc > 2 ? atof(argv[2]) : 2.0;
    if (readers < 1 || readers > 64 || seconds <= 0) {
        fprintf(stderr, "usage: %s [readers 1-64] [seconds]\n", argv[0]);
        return 2;
    }
    printf("SwiftRCU %s demo: %d reader thread(s), 1 writer, %.1f s\n", swiftrcu_version(), readers, seconds);

    swiftrcu_ptr *current = swiftrcu_new(make_config(1), destroy_config, NULL);
    if (current == NULL) {
        fprintf(stderr, "swiftrcu_new: out of memory\n");
        return 1;
    }
    pthread_t threads[64];
    for (int i = 0; i < readers; i++)
        pthread_create(&threads[i], NULL, reader, current);

    long updates = 0;
    double start = now();
    while (now() - start < seconds) {
        swiftrcu_old *old = NULL;
        int rc = (updates % 2 == 0) ? swiftrcu_copy_update(current, next_version, NULL, &old)
                                    : swiftrcu_replace(current, make_config(updates + 2), &old);
        if (rc != SWIFTRCU_OK) {
            fprintf(stderr, "update: %s\n", swiftrcu_strerror(rc));
            return 1;
        }
        /* Mostly asynchronous release; every 64th waits for its grace period here. */
        rc = (updates % 64 == 0) ? swiftrcu_old_free(old) : swiftrcu_old_defer(old);
        if (rc != SWIFTRCU_OK) {
            fprintf(stderr, "release: %s\n", swiftrcu_strerror(rc));
            return 1;
        }
        updates++;
    }
    double elapsed = now() - start;
    atomic_store(&stop, 1);
    for (int i = 0; i < readers; i++)
        pthread_join(threads[i], NULL);

    long before_barrier = atomic_load(&versions_destroyed);
    swiftrcu_free(current); /* waits for a grace period, destroys the last version */
    swiftrcu_barrier();     /* waits for the deferred destroys */

    long created = atomic_load(&versions_created), destroyed = atomic_load(&versions_destroyed);
    printf("reads:    %12.0f /s  (%ld in total)\n", atomic_load(&reads_total) / elapsed, atomic_load(&reads_total));
    printf("updates:  %12.0f /s  (%ld in total)\n", updates / elapsed, updates);
    printf("versions: %ld created, %ld destroyed (%ld of them before the final barrier), %ld bad reads\n",
           created, destroyed, before_barrier, atomic_load(&bad_reads));
    int ok = created == destroyed && atomic_load(&bad_reads) == 0;
    printf("%s\n", ok ? "OK: every old version destroyed exactly once, none while a reader could see it"
                      : "FAILED: versions leaked or a reader saw a destroyed version");
    return ok ? 0 : 1;
}
