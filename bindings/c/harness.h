/*
 * Minimal test harness shared by the C test programs: CHECK counts, a watchdog turns a hang into a
 * failure, and every program ends with the line "N passed, M failed".
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef SWIFTRCU_TEST_HARNESS_H
#define SWIFTRCU_TEST_HARNESS_H

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int harness_passed;
static atomic_int harness_failed;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (cond) {                                                                    \
            atomic_fetch_add(&harness_passed, 1);                                      \
        } else {                                                                       \
            atomic_fetch_add(&harness_failed, 1);                                      \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);            \
        }                                                                              \
    } while (0)

#define CHECK_EQ_INT(actual, expected)                                                 \
    do {                                                                               \
        long long a_ = (long long)(actual), e_ = (long long)(expected);                \
        if (a_ == e_) {                                                                \
            atomic_fetch_add(&harness_passed, 1);                                      \
        } else {                                                                       \
            atomic_fetch_add(&harness_failed, 1);                                      \
            fprintf(stderr, "FAIL %s:%d: %s == %lld, expected %s == %lld\n", __FILE__, \
                    __LINE__, #actual, a_, #expected, e_);                             \
        }                                                                              \
    } while (0)

static void harness_on_alarm(int sig) {
    static const char msg[] = "FAIL watchdog: the test hung (a wait that should have ended did not)\n";
    (void)sig;
    if (write(2, msg, sizeof msg - 1) < 0) { /* nothing more to do */ }
    _exit(2);
}

/* Fails the program (exit 2) if it runs longer than `seconds`. */
static void harness_watchdog(unsigned seconds) {
    signal(SIGALRM, harness_on_alarm);
    alarm(seconds);
}

/* `n` divided by HARNESS_SCALE (a positive integer in the environment; 1 when unset), at least 1:
 * stress loops take their length from it, so that slow runs (valgrind) can be shortened. */
static inline int harness_scaled(int n) {
    const char *s = getenv("HARNESS_SCALE");
    int d = s ? atoi(s) : 1;
    if (d < 1)
        d = 1;
    return n / d > 0 ? n / d : 1;
}

/* Prints the closing line and returns the exit status. */
static int harness_finish(void) {
    int failed = atomic_load(&harness_failed);
    printf("%d passed, %d failed\n", atomic_load(&harness_passed), failed);
    return failed == 0 ? 0 : 1;
}

#endif
