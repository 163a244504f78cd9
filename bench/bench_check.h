/*
 * bench_check.h - the error exit of the C benchmark programs that call the library (bench_read.c,
 * bench_defer.c). Define BENCH_NAME (the program's name, a string) before including it.
 */
#ifndef SWIFTRCU_BENCH_CHECK_H
#define SWIFTRCU_BENCH_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <swiftrcu.h>

/* Ends the program: `what` failed with `status`, a SwiftRCU status when negative, else an errno. */
static void die(const char *what, int status) {
    fprintf(stderr, BENCH_NAME ": %s failed: %d (%s)\n", what, status,
            status < 0 ? swiftrcu_strerror(status) : strerror(status));
    exit(2);
}

/* Ends the program unless `call` returns SWIFTRCU_OK. */
#define CHECK_RCU(call)                        \
    do {                                       \
        int s_ = (call);                       \
        if (s_ != SWIFTRCU_OK) die(#call, s_); \
    } while (0)

#endif
