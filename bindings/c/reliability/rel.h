/*
 * Helpers shared by the reliability programs: the C harness (CHECK, watchdog, closing line),
 * clocks, resident-set readings, a bounded wait for a child process, and the expected-failure
 * convention for library bugs that are known and not fixed yet.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef SWIFTRCU_RELIABILITY_H
#define SWIFTRCU_RELIABILITY_H

#include <swiftrcu.h>

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#include "../harness.h"

#define REL_LIVE 0x4C495645u   /* "LIVE" */
#define REL_POISON 0xDEADBEEFu /* written by destroy before the memory goes away */

static inline double rel_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void rel_sleep_us(unsigned long us) {
    struct timespec ts = {.tv_sec = (time_t)(us / 1000000), .tv_nsec = (long)(us % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static inline void rel_sleep_ms(unsigned ms) { rel_sleep_us((unsigned long)ms * 1000); }

/* A value of /proc/self/status in KiB ("VmRSS", "VmHWM"); -1 when it cannot be read. */
static inline long rel_status_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long value = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            value = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return value;
}

/* Peak resident set of this process in KiB (getrusage; Linux reports KiB). */
static inline long rel_peak_rss_kib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return ru.ru_maxrss;
}

/* A positive integer argument, or `fallback` when absent; exits on garbage. */
static inline long rel_arg(int argc, char **argv, int index, long fallback) {
    if (index >= argc)
        return fallback;
    char *end = NULL;
    long v = strtol(argv[index], &end, 10);
    if (end == argv[index] || *end != '\0' || v < 0) {
        fprintf(stderr, "bad argument %d: '%s'\n", index, argv[index]);
        exit(2);
    }
    return v;
}

/*
 * Waits for child `pid` at most `seconds`; kills it (SIGKILL) when it takes longer.
 * Returns the wait status, and sets *timed_out.
 */
static inline int rel_wait_child(pid_t pid, double seconds, int *timed_out) {
    double deadline = rel_now() + seconds;
    int status = 0;
    *timed_out = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0 && errno != EINTR)
            return -1;
        if (rel_now() > deadline) {
            *timed_out = 1;
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            return status;
        }
        rel_sleep_ms(5);
    }
}

/* "exited 0", "exited 3", "killed by signal 6", "hung (killed after the timeout)". */
static inline const char *rel_describe_status(int status, int timed_out, char *buf, size_t len) {
    if (timed_out)
        snprintf(buf, len, "hung (killed after the timeout)");
    else if (WIFEXITED(status))
        snprintf(buf, len, "exited %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "status %#x", status);
    return buf;
}

/*
 * Runs this program again as a child process (fork + exec of /proc/self/exe with "--case NAME"),
 * so the case starts from a fresh process and a crash or hang in it is reported, not fatal.
 * Waits at most `seconds`. Returns the child's exit code, or -1 when it hung or died; describes
 * the outcome in `outcome`.
 */
static inline int rel_run_case(const char *name, double seconds, char *outcome, size_t len) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "/proc/self/exe", "--case", name, (char *)NULL);
        _exit(127);
    }
    if (pid < 0) {
        snprintf(outcome, len, "could not fork");
        return -1;
    }
    int timed_out;
    int st = rel_wait_child(pid, seconds, &timed_out);
    rel_describe_status(st, timed_out, outcome, len);
    return (!timed_out && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
}

/* Whether argv asks for case `name` ("--case NAME"). */
static inline int rel_is_case(int argc, char **argv, const char *name) {
    return argc == 3 && strcmp(argv[1], "--case") == 0 && strcmp(argv[2], name) == 0;
}

/*
 * Known library bugs: a check named by REL_XFAIL is reported but not counted as failed, unless
 * the environment sets RELIABILITY_STRICT=1. When it passes, "XPASS" says the bug looks fixed
 * and the check can become an ordinary one.
 */
static atomic_int rel_xfailed;
static atomic_int rel_xpassed;

static inline int rel_strict(void) {
    const char *s = getenv("RELIABILITY_STRICT");
    return s != NULL && strcmp(s, "1") == 0;
}

static inline void rel_xfail_check(int ok, const char *what, const char *file, int line) {
    if (ok) {
        atomic_fetch_add(&rel_xpassed, 1);
        atomic_fetch_add(&harness_passed, 1);
        printf("XPASS %s:%d: %s (known bug no longer shows: make this an ordinary check)\n", file,
               line, what);
    } else if (rel_strict()) {
        atomic_fetch_add(&harness_failed, 1);
        fprintf(stderr, "FAIL %s:%d: known bug: %s\n", file, line, what);
    } else {
        atomic_fetch_add(&rel_xfailed, 1);
        printf("XFAIL %s:%d: known bug: %s\n", file, line, what);
    }
}
#define REL_XFAIL(cond, what) rel_xfail_check((cond) ? 1 : 0, (what), __FILE__, __LINE__)

/* The closing line; known bugs that showed are listed before it. */
static inline int rel_finish(void) {
    int xf = atomic_load(&rel_xfailed);
    if (xf > 0)
        printf("(%d known library bug(s) reported as XFAIL, not counted; RELIABILITY_STRICT=1 counts them)\n", xf);
    fflush(stdout);
    return harness_finish();
}

#endif
