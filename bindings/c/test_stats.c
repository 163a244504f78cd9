/*
 * swiftrcu_stats_get against the installed library: the size protocol, and the exact change of
 * every counter across a scenario with known counts (n replace + old_free, m replace + old_defer
 * + barrier, k threads that exit inside a section, refused calls, a deferring flood that makes a
 * writer pause). Single-threaded apart from the threads it starts, so every delta is exact.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <swiftrcu.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include "harness.h"

static atomic_int destroy_calls;
static atomic_int destroy_gate_closed; /* while 1, destroy_blocking waits */
static int objects[64];

static void destroy_counting(void *object, void *context) {
    (void)object;
    (void)context;
    atomic_fetch_add(&destroy_calls, 1);
}

static void destroy_blocking(void *object, void *context) {
    (void)object;
    (void)context;
    while (atomic_load(&destroy_gate_closed))
        usleep(1000);
    atomic_fetch_add(&destroy_calls, 1);
}

static swiftrcu_stats get(void) {
    swiftrcu_stats s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    int rc = swiftrcu_stats_get(&s);
    CHECK_EQ_INT(rc, SWIFTRCU_OK);
    CHECK_EQ_INT(s.size, sizeof s);
    return s;
}

/* The counters as an array, in the struct's order. */
static const uint64_t *counters(const swiftrcu_stats *s) { return &s->grace_periods; }

#define FIRST offsetof(swiftrcu_stats, grace_periods)

static void test_size_protocol(void) {
    CHECK_EQ_INT(FIRST, sizeof(size_t) > 8 ? sizeof(size_t) : 8);
    CHECK_EQ_INT(sizeof(swiftrcu_stats), FIRST + SWIFTRCU_STATS_FIELDS * 8);
    swiftrcu_stats before = get();

    /* NULL and sizes below one counter are refused and change nothing. */
    CHECK_EQ_INT(swiftrcu_stats_get(NULL), SWIFTRCU_EINVAL);
    size_t too_small[] = {0, 1, sizeof(size_t), FIRST, FIRST + 7};
    for (size_t i = 0; i < sizeof too_small / sizeof too_small[0]; i++) {
        unsigned char buf[sizeof(swiftrcu_stats)];
        memset(buf, 0xAB, sizeof buf);
        memcpy(buf, &too_small[i], sizeof(size_t));
        CHECK_EQ_INT(swiftrcu_stats_get((swiftrcu_stats *)(void *)buf), SWIFTRCU_EINVAL);
        size_t size_after;
        memcpy(&size_after, buf, sizeof size_after);
        CHECK_EQ_INT(size_after, too_small[i]);
        int untouched = 1;
        for (size_t j = sizeof(size_t); j < sizeof buf; j++)
            untouched &= buf[j] == 0xAB;
        CHECK(untouched);
    }
    swiftrcu_stats after = get();
    /* Each of the six refusals counted, nothing else. */
    CHECK_EQ_INT(after.einval_refusals - before.einval_refusals, 6);

    /* A smaller size: filled up to the last whole counter that fits, the rest untouched. */
    for (size_t extra = 0; extra < 8 * 3 + 8; extra++) {
        union {
            swiftrcu_stats s;
            unsigned char bytes[sizeof(swiftrcu_stats) + 64];
        } u;
        memset(&u, 0xCD, sizeof u);
        size_t given = FIRST + 8 + extra; /* at least one counter */
        u.s.size = given;
        CHECK_EQ_INT(swiftrcu_stats_get(&u.s), SWIFTRCU_OK);
        size_t whole = (given - FIRST) / 8;
        CHECK_EQ_INT(u.s.size, FIRST + whole * 8);
        int untouched = 1;
        for (size_t j = FIRST + whole * 8; j < sizeof u; j++)
            untouched &= u.bytes[j] == 0xCD;
        CHECK(untouched);
        /* The first counter is grace_periods: nothing waited meanwhile. */
        CHECK_EQ_INT(u.s.grace_periods, after.grace_periods);
        int written = 1; /* every filled counter was written (none still holds the fill bytes) */
        for (size_t c = 0; c < whole; c++)
            written &= counters(&u.s)[c] != 0xCDCDCDCDCDCDCDCDull;
        CHECK(written);
    }

    /* A larger size (a newer header): every counter filled, size says how many, the rest untouched. */
    union {
        swiftrcu_stats s;
        unsigned char bytes[sizeof(swiftrcu_stats) + 64];
    } big;
    memset(&big, 0xEF, sizeof big);
    big.s.size = sizeof big;
    CHECK_EQ_INT(swiftrcu_stats_get(&big.s), SWIFTRCU_OK);
    CHECK_EQ_INT(big.s.size, sizeof(swiftrcu_stats));
    int untouched = 1;
    for (size_t j = sizeof(swiftrcu_stats); j < sizeof big; j++)
        untouched &= big.bytes[j] == 0xEF;
    CHECK(untouched);
    CHECK_EQ_INT(big.s.grace_periods, after.grace_periods);
    CHECK_EQ_INT(big.s.einval_refusals, after.einval_refusals);
    CHECK(big.s.deferred_pending_peak >= big.s.deferred_pending);
}

struct thread_arg {
    int hold_in_section; /* 1: exit holding a read lock */
    pthread_barrier_t *registered; /* when set: wait here once registered, then once more */
};

static void *thread_body(void *p) {
    struct thread_arg *a = p;
    swiftrcu_guard g = swiftrcu_read_lock();
    if (!a->hold_in_section)
        CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_OK);
    if (a->registered) {
        pthread_barrier_wait(a->registered);
        pthread_barrier_wait(a->registered);
    }
    return NULL; /* exits with the guard held when hold_in_section */
}

#define DELTA(field) ((long long)(s1.field - s0.field))

static void test_scenario(void) {
    /* Warm up: the calling thread registered, liburcu's call_rcu worker adopted (it registers
     * with the library when it first runs a destroy), so the scenario's counts are its own. */
    swiftrcu_ptr *warm = swiftrcu_new(&objects[0], destroy_counting, NULL);
    swiftrcu_old *old = NULL;
    CHECK_EQ_INT(swiftrcu_replace(warm, &objects[1], &old), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_old_defer(old), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(warm), SWIFTRCU_OK);

    /* n replace + old_free on one new pointer. */
    const int n = 5;
    swiftrcu_stats s0 = get();
    swiftrcu_ptr *p = swiftrcu_new(&objects[2], destroy_counting, NULL);
    CHECK(p != NULL);
    for (int i = 0; i < n; i++) {
        CHECK_EQ_INT(swiftrcu_replace(p, &objects[3 + i], &old), SWIFTRCU_OK);
        swiftrcu_stats mid = get();
        CHECK_EQ_INT(mid.olds_live - s0.olds_live, 1);
        CHECK_EQ_INT(swiftrcu_old_free(old), SWIFTRCU_OK);
    }
    swiftrcu_stats s1 = get();
    CHECK_EQ_INT(DELTA(grace_periods), n);
    CHECK_EQ_INT(DELTA(objects_destroyed), n);
    CHECK_EQ_INT(DELTA(ptrs_live), 1);
    CHECK_EQ_INT(DELTA(olds_live), 0);
    CHECK_EQ_INT(DELTA(deferred_queued), 0);
    CHECK_EQ_INT(DELTA(deferred_completed), 0);
    CHECK_EQ_INT(DELTA(threads_registered), 0);
    CHECK_EQ_INT(DELTA(threads_registered_total), 0);
    CHECK_EQ_INT(DELTA(edeadlk_refusals) + DELTA(eperm_refusals) + DELTA(einval_refusals), 0);

    /* m replace + old_defer, then barrier. */
    const int m = 7;
    s0 = get();
    swiftrcu_old *olds[16];
    for (int i = 0; i < m; i++)
        CHECK_EQ_INT(swiftrcu_replace(p, &objects[10 + i], &olds[i]), SWIFTRCU_OK);
    s1 = get();
    CHECK_EQ_INT(DELTA(olds_live), m);
    for (int i = 0; i < m; i++)
        CHECK_EQ_INT(swiftrcu_old_defer(olds[i]), SWIFTRCU_OK);
    s1 = get();
    CHECK_EQ_INT(DELTA(olds_live), 0); /* deferred handles are no longer the caller's */
    CHECK_EQ_INT(DELTA(deferred_queued), m);
    CHECK(s1.deferred_pending_peak >= s1.deferred_pending);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    s1 = get();
    CHECK_EQ_INT(DELTA(deferred_queued), m);
    CHECK_EQ_INT(DELTA(deferred_completed), m);
    CHECK_EQ_INT(s1.deferred_pending, 0);
    CHECK(s1.deferred_pending_peak >= 1);
    CHECK_EQ_INT(DELTA(objects_destroyed), m);
    CHECK_EQ_INT(DELTA(grace_periods), 0); /* call_rcu's own waits are not ours */
    CHECK_EQ_INT(DELTA(threads_registered_total), 0);

    /* k threads that exit inside a section, one that exits outside, one seen while alive. */
    const int k = 3;
    s0 = get();
    pthread_t th[8];
    struct thread_arg in = {1, NULL}, out = {0, NULL};
    for (int i = 0; i < k; i++)
        CHECK_EQ_INT(pthread_create(&th[i], NULL, thread_body, &in), 0);
    CHECK_EQ_INT(pthread_create(&th[k], NULL, thread_body, &out), 0);
    for (int i = 0; i <= k; i++)
        CHECK_EQ_INT(pthread_join(th[i], NULL), 0);
    s1 = get();
    CHECK_EQ_INT(DELTA(threads_registered_total), k + 1);
    CHECK_EQ_INT(DELTA(threads_registered), 0);
    CHECK_EQ_INT(DELTA(threads_exited_in_section), k);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    struct thread_arg alive = {0, &bar};
    CHECK_EQ_INT(pthread_create(&th[0], NULL, thread_body, &alive), 0);
    pthread_barrier_wait(&bar);
    s1 = get();
    CHECK_EQ_INT(DELTA(threads_registered), 1);
    pthread_barrier_wait(&bar);
    CHECK_EQ_INT(pthread_join(th[0], NULL), 0);
    pthread_barrier_destroy(&bar);
    s1 = get();
    CHECK_EQ_INT(DELTA(threads_registered), 0);
    CHECK_EQ_INT(DELTA(threads_registered_total), k + 2);
    /* A grace period after they left: nobody waits for the dead threads' sections. */
    CHECK_EQ_INT(swiftrcu_synchronize(), SWIFTRCU_OK);

    /* Refused calls: three EDEADLK, two EPERM, five EINVAL; NULL-returning refusals not counted. */
    s0 = get();
    CHECK_EQ_INT(swiftrcu_replace(p, &objects[20], &old), SWIFTRCU_OK);
    swiftrcu_guard g = swiftrcu_read_lock();
    CHECK_EQ_INT(swiftrcu_old_free(old), SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(swiftrcu_synchronize(), SWIFTRCU_EDEADLK);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_EDEADLK);
    swiftrcu_guard bogus = g;
    bogus._private[1] ^= 0x100; /* another sequence number */
    CHECK_EQ_INT(swiftrcu_read_unlock(&bogus), SWIFTRCU_EPERM);
    CHECK(swiftrcu_dereference(p, &bogus) == NULL); /* refused with NULL: not counted */
    CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_read_unlock(&g), SWIFTRCU_EPERM); /* spent */
    CHECK_EQ_INT(swiftrcu_read_unlock(NULL), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_old_free(NULL), SWIFTRCU_EINVAL);
    swiftrcu_old *unused = NULL;
    CHECK_EQ_INT(swiftrcu_replace(NULL, &objects[21], &unused), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_read_section(p, NULL, NULL), SWIFTRCU_EINVAL);
    CHECK_EQ_INT(swiftrcu_stats_get(NULL), SWIFTRCU_EINVAL);
    CHECK(swiftrcu_load(NULL) == NULL); /* refused with NULL: not counted */
    s1 = get();
    CHECK_EQ_INT(DELTA(edeadlk_refusals), 3);
    CHECK_EQ_INT(DELTA(eperm_refusals), 2);
    CHECK_EQ_INT(DELTA(einval_refusals), 5);
    CHECK_EQ_INT(DELTA(grace_periods), 0);
    CHECK_EQ_INT(DELTA(olds_live), 1); /* the refused old_free changed nothing: `old` still live */

    /* old_free then free: two grace periods, two destroys, both handles gone. */
    s0 = get();
    CHECK_EQ_INT(swiftrcu_old_free(old), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);
    s1 = get();
    CHECK_EQ_INT(DELTA(grace_periods), 2);
    CHECK_EQ_INT(DELTA(objects_destroyed), 2);
    CHECK_EQ_INT(DELTA(olds_live), -1);
    CHECK_EQ_INT(DELTA(ptrs_live), -1);
    CHECK_EQ_INT(DELTA(writer_pauses), 0);
}

/* A writer that defers faster than the destroys run: past 2^18 pending it pauses (at most
 * 10 ms a call) on every call. Destroys are held back until the flood is over, so exactly the
 * calls beyond the threshold pause, each for the full 10 ms. */
static void test_writer_pauses(void) {
    const int threshold = 1 << 18, beyond = 3;
    swiftrcu_stats s0 = get();
    CHECK_EQ_INT(s0.deferred_pending, 0);
    atomic_store(&destroy_gate_closed, 1);
    swiftrcu_ptr *p = swiftrcu_new(&objects[30], destroy_blocking, NULL);
    int ok = 1;
    for (int i = 0; i < threshold + beyond; i++) {
        swiftrcu_old *old = NULL;
        ok &= swiftrcu_replace(p, &objects[31 + (i & 1)], &old) == SWIFTRCU_OK;
        ok &= swiftrcu_old_defer(old) == SWIFTRCU_OK;
    }
    CHECK(ok);
    swiftrcu_stats s1 = get();
    CHECK_EQ_INT(DELTA(writer_pauses), beyond);
    CHECK(DELTA(writer_pause_ns) >= beyond * 10000000LL);
    CHECK(DELTA(writer_pause_ns) < 60000000000LL);
    CHECK(s1.deferred_pending_peak >= (uint64_t)(threshold + beyond));
    CHECK_EQ_INT(DELTA(deferred_queued), threshold + beyond);
    atomic_store(&destroy_gate_closed, 0);
    CHECK_EQ_INT(swiftrcu_barrier(), SWIFTRCU_OK);
    CHECK_EQ_INT(swiftrcu_free(p), SWIFTRCU_OK);
    s1 = get();
    CHECK_EQ_INT(DELTA(deferred_completed), threshold + beyond);
    CHECK_EQ_INT(s1.deferred_pending, 0);
    CHECK_EQ_INT(DELTA(objects_destroyed), threshold + beyond + 1);
    CHECK_EQ_INT(DELTA(ptrs_live), 0);
    CHECK_EQ_INT(DELTA(olds_live), 0);
}

/* The child of test_exit_line: a known amount of work, then exit. */
static int exit_line_child(void) {
    swiftrcu_ptr *p = swiftrcu_new(&objects[40], destroy_counting, NULL);
    swiftrcu_guard g = swiftrcu_read_lock(); /* registers this thread */
    swiftrcu_read_unlock(&g);
    swiftrcu_synchronize();
    swiftrcu_synchronize();
    swiftrcu_old_free(NULL);
    (void)p; /* left live: ptrs_live=1 at exit */
    return 0;
}

/* Runs this program as the child with SWIFTRCU_STATS set to `value` (NULL: unset) and returns
 * what it wrote to stderr. */
static char *run_child(const char *self, const char *value) {
    int fds[2];
    if (pipe(fds) != 0)
        return NULL;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        if (value)
            setenv("SWIFTRCU_STATS", value, 1);
        else
            unsetenv("SWIFTRCU_STATS");
        execl(self, self, "--exit-line-child", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    static char buf[4096];
    size_t used = 0;
    ssize_t r;
    while (used < sizeof buf - 1 && (r = read(fds[0], buf + used, sizeof buf - 1 - used)) > 0)
        used += (size_t)r;
    buf[used] = 0;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return buf;
}

/* SWIFTRCU_STATS=1 prints one line of key=value pairs to stderr at exit; unset or 0, nothing. */
static void test_exit_line(const char *self) {
    char *line = run_child(self, "1");
    CHECK(line != NULL);
    if (line == NULL)
        return;
    CHECK(strncmp(line, "swiftrcu stats: ", 16) == 0);
    char *nl = strchr(line, '\n');
    CHECK(nl != NULL && nl[1] == 0); /* exactly one line */
    static const char *const keys[SWIFTRCU_STATS_FIELDS] = {
        "grace_periods", "deferred_queued", "deferred_completed", "deferred_pending",
        "deferred_pending_peak", "objects_destroyed", "ptrs_live", "olds_live",
        "threads_registered", "threads_registered_total", "threads_exited_in_section",
        "writer_pauses", "writer_pause_ns", "edeadlk_refusals", "eperm_refusals",
        "einval_refusals"};
    char *cursor = line + 16;
    int in_order = 1;
    for (int i = 0; i < SWIFTRCU_STATS_FIELDS; i++) {
        char want[64];
        snprintf(want, sizeof want, "%s=", keys[i]);
        char *at = strstr(cursor, want);
        in_order &= at != NULL && (at == line + 16 || at[-1] == ' ');
        if (at)
            cursor = at + strlen(want);
    }
    CHECK(in_order);
    CHECK(strstr(line, " grace_periods=2 ") != NULL || strncmp(line, "swiftrcu stats: grace_periods=2 ", 32) == 0);
    CHECK(strstr(line, " ptrs_live=1 ") != NULL);
    CHECK(strstr(line, " einval_refusals=1\n") != NULL);
    CHECK(strstr(line, " threads_registered_total=1 ") != NULL);
    CHECK_EQ_INT(strlen(run_child(self, NULL)), 0);
    CHECK_EQ_INT(strlen(run_child(self, "0")), 0);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--exit-line-child") == 0)
        return exit_line_child();
    harness_watchdog(120);
    test_exit_line("/proc/self/exe");
    test_size_protocol();
    test_scenario();
    test_writer_pauses();
    return harness_finish();
}
