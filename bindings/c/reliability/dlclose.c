/*
 * dlclose() of the library while its code may still run later: a thread that used it exits
 * afterwards (its thread-exit handler runs), and liburcu's call_rcu thread, which runs the
 * library's deferred destroys, goes on. None of this may crash: the library is linked with
 * -z nodelete, so dlclose leaves it mapped.
 *
 *   dlclose        (the library is loaded with dlopen from SWIFTRCU_LIBRARY, set when building)
 *
 * Each case runs in a process of its own, with a timeout:
 *   - thread-exit: a thread reads (registers), the program dlcloses, then the thread exits;
 *   - deferred: old_defer, a barrier, dlclose, then the process lives on a while;
 *   - pending: 2000 destroys still pending at dlclose;
 *   - reopen: dlclose, dlopen again, and the library works (handles made before included).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "rel.h"

#include <dlfcn.h>

#ifndef SWIFTRCU_LIBRARY
#error "build with -DSWIFTRCU_LIBRARY=\"/path/to/libswiftrcu.so\""
#endif

/* The library's functions, looked up with dlsym. */
static struct {
    swiftrcu_ptr *(*new_)(void *, swiftrcu_destroy_fn, void *);
    int (*replace)(swiftrcu_ptr *, void *, swiftrcu_old **);
    int (*old_defer)(swiftrcu_old *);
    int (*barrier)(void);
    int (*free_)(swiftrcu_ptr *);
    swiftrcu_guard (*read_lock)(void);
    void *(*dereference)(const swiftrcu_ptr *, const swiftrcu_guard *);
    int (*read_unlock)(swiftrcu_guard *);
} api;

static void *open_library(void) {
    void *lib = dlopen(SWIFTRCU_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "dlopen %s: %s\n", SWIFTRCU_LIBRARY, dlerror());
        exit(3);
    }
    /* SAFETY (of the casts): each symbol is the library's function of that signature. */
    *(void **)&api.new_ = dlsym(lib, "swiftrcu_new");
    *(void **)&api.replace = dlsym(lib, "swiftrcu_replace");
    *(void **)&api.old_defer = dlsym(lib, "swiftrcu_old_defer");
    *(void **)&api.barrier = dlsym(lib, "swiftrcu_barrier");
    *(void **)&api.free_ = dlsym(lib, "swiftrcu_free");
    *(void **)&api.read_lock = dlsym(lib, "swiftrcu_read_lock");
    *(void **)&api.dereference = dlsym(lib, "swiftrcu_dereference");
    *(void **)&api.read_unlock = dlsym(lib, "swiftrcu_read_unlock");
    if (!api.new_ || !api.replace || !api.old_defer || !api.barrier || !api.free_ || !api.read_lock ||
        !api.dereference || !api.read_unlock) {
        fprintf(stderr, "dlsym: a swiftrcu_* function is missing\n");
        exit(3);
    }
    return lib;
}

static atomic_int destroyed;
static void destroy(void *p, void *c) {
    (void)p;
    (void)c;
    atomic_fetch_add(&destroyed, 1);
}

static int objects[4096];

static atomic_int thread_state;
static void *reader(void *arg) {
    swiftrcu_ptr *p = arg;
    swiftrcu_guard g = api.read_lock();
    int ok = api.dereference(p, &g) == &objects[0] && api.read_unlock(&g) == SWIFTRCU_OK;
    atomic_store(&thread_state, ok ? 1 : 3);
    while (atomic_load(&thread_state) != 2)
        rel_sleep_ms(1);
    return NULL; /* exits after dlclose: the library's thread-exit handler runs now */
}

static int case_thread_exit(void) {
    void *lib = open_library();
    swiftrcu_ptr *p = api.new_(&objects[0], NULL, NULL);
    pthread_t t;
    if (p == NULL || pthread_create(&t, NULL, reader, p) != 0)
        return 10;
    while (atomic_load(&thread_state) == 0)
        rel_sleep_ms(1);
    if (atomic_load(&thread_state) != 1)
        return 11;
    if (dlclose(lib) != 0)
        return 12;
    atomic_store(&thread_state, 2);
    pthread_join(t, NULL);
    rel_sleep_ms(50);
    return 0;
}

/* Defers `count` destroys (replacing one pointer's object), then dlcloses; with `barrier`, waits
 * for them first. */
static int case_deferred(int count, int barrier) {
    void *lib = open_library();
    swiftrcu_ptr *p = api.new_(&objects[0], destroy, NULL);
    if (p == NULL)
        return 10;
    for (int i = 1; i <= count; i++) {
        swiftrcu_old *old = NULL;
        if (api.replace(p, &objects[i % 4096], &old) != SWIFTRCU_OK || api.old_defer(old) != SWIFTRCU_OK)
            return 11;
    }
    if (barrier && api.barrier() != SWIFTRCU_OK)
        return 12;
    if (dlclose(lib) != 0)
        return 13;
    rel_sleep_ms(300); /* liburcu's call_rcu thread goes on meanwhile */
    return 0;
}

static int case_reopen(void) {
    void *lib = open_library();
    swiftrcu_ptr *p = api.new_(&objects[1], NULL, NULL);
    if (p == NULL || dlclose(lib) != 0)
        return 10;
    lib = open_library();
    swiftrcu_guard g = api.read_lock();
    int ok = api.dereference(p, &g) == &objects[1] && api.read_unlock(&g) == SWIFTRCU_OK;
    if (!ok || api.free_(p) != SWIFTRCU_OK || api.barrier() != SWIFTRCU_OK)
        return 11;
    return dlclose(lib) == 0 ? 0 : 12;
}

static int isolated(const char *name, const char *what) {
    char outcome[96];
    int code = rel_run_case(name, 20, outcome, sizeof outcome);
    printf("%s: %s\n", what, outcome);
    return code;
}

int main(int argc, char **argv) {
    if (rel_is_case(argc, argv, "thread-exit"))
        return case_thread_exit();
    if (rel_is_case(argc, argv, "deferred"))
        return case_deferred(1, 1);
    if (rel_is_case(argc, argv, "pending"))
        return case_deferred(2000, 0);
    if (rel_is_case(argc, argv, "reopen"))
        return case_reopen();
    harness_watchdog(120);
    CHECK_EQ_INT(isolated("thread-exit", "a thread that used the library exits after dlclose"), 0);
    CHECK_EQ_INT(isolated("deferred", "old_defer, barrier, dlclose"), 0);
    CHECK_EQ_INT(isolated("pending", "dlclose with 2000 destroys pending"), 0);
    CHECK_EQ_INT(isolated("reopen", "dlclose, dlopen again, handles still work"), 0);
    return rel_finish();
}
