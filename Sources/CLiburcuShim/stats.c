/*
 * SwiftRCU - liburcu shim (room 1 of 3): statistics counters, their reading, and the line that
 * SWIFTRCU_STATS=1 prints at exit. Nothing here is on the read path.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "liburcu_shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct rcushim_stats_counters rcushim_stats;

/* The status codes of include/swiftrcu_types.h (the shim does not include the public header). */
enum { STATUS_EINVAL = -22, STATUS_EPERM = -1, STATUS_EDEADLK = -35 };

int32_t rcushim_stats_refuse(int32_t status) {
    switch (status) {
    case STATUS_EDEADLK: rcushim_stats_add(&rcushim_stats.edeadlk_refusals, 1); break;
    case STATUS_EPERM: rcushim_stats_add(&rcushim_stats.eperm_refusals, 1); break;
    case STATUS_EINVAL: rcushim_stats_add(&rcushim_stats.einval_refusals, 1); break;
    default: break;
    }
    return status;
}

uint64_t rcushim_stats_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void rcushim_stats_pause_done(uint64_t start_ns) {
    uint64_t now = rcushim_stats_now_ns();
    rcushim_stats_add(&rcushim_stats.writer_pauses, 1);
    rcushim_stats_add(&rcushim_stats.writer_pause_ns, now > start_ns ? now - start_ns : 0);
}

static uint64_t load(const uint64_t *counter) {
    return __atomic_load_n(counter, __ATOMIC_RELAXED); /* Ordering: statistics only. */
}

void rcushim_stats_read(uint64_t *out) {
    /* Pending first, from the shim's pair (completed read before queued, so it is never negative);
     * the peak is read after it and raised to it, so a reader never sees pending above peak. */
    uint64_t pending = rcushim_deferred_pending();
    rcushim_stats_note_pending(pending);
    out[RCUSHIM_STAT_DEFERRED_PENDING] = pending;
    out[RCUSHIM_STAT_DEFERRED_PENDING_PEAK] = load(&rcushim_stats.deferred_pending_peak);
    uint64_t local[RCUSHIM_LOCAL_COUNT];
    rcushim_stats_sum_local(local);
    out[RCUSHIM_STAT_GRACE_PERIODS] = load(&rcushim_stats.grace_periods) + local[RCUSHIM_LOCAL_GRACE_PERIODS];
    out[RCUSHIM_STAT_DEFERRED_QUEUED] = load(&rcushim_deferred_queued);
    out[RCUSHIM_STAT_DEFERRED_COMPLETED] = load(&rcushim_deferred_completed);
    out[RCUSHIM_STAT_OBJECTS_DESTROYED] =
        load(&rcushim_stats.objects_destroyed) + local[RCUSHIM_LOCAL_OBJECTS_DESTROYED];
    out[RCUSHIM_STAT_PTRS_LIVE] = load(&rcushim_stats.ptrs_live) + local[RCUSHIM_LOCAL_PTRS_LIVE];
    out[RCUSHIM_STAT_OLDS_LIVE] = load(&rcushim_stats.olds_live) + local[RCUSHIM_LOCAL_OLDS_LIVE];
    out[RCUSHIM_STAT_THREADS_REGISTERED] = load(&rcushim_stats.threads_registered);
    out[RCUSHIM_STAT_THREADS_REGISTERED_TOTAL] = load(&rcushim_stats.threads_registered_total);
    out[RCUSHIM_STAT_THREADS_EXITED_IN_SECTION] = load(&rcushim_stats.threads_exited_in_section);
    out[RCUSHIM_STAT_WRITER_PAUSES] = load(&rcushim_stats.writer_pauses);
    out[RCUSHIM_STAT_WRITER_PAUSE_NS] = load(&rcushim_stats.writer_pause_ns);
    out[RCUSHIM_STAT_EDEADLK_REFUSALS] = load(&rcushim_stats.edeadlk_refusals);
    out[RCUSHIM_STAT_EPERM_REFUSALS] = load(&rcushim_stats.eperm_refusals);
    out[RCUSHIM_STAT_EINVAL_REFUSALS] = load(&rcushim_stats.einval_refusals);
}

static const char *const stat_names[RCUSHIM_STAT_COUNT] = {
    "grace_periods",       "deferred_queued",          "deferred_completed",        "deferred_pending",
    "deferred_pending_peak", "objects_destroyed",      "ptrs_live",                 "olds_live",
    "threads_registered",  "threads_registered_total", "threads_exited_in_section", "writer_pauses",
    "writer_pause_ns",     "edeadlk_refusals",         "eperm_refusals",            "einval_refusals",
};

void rcushim_stats_print(int fd) {
    uint64_t values[RCUSHIM_STAT_COUNT];
    rcushim_stats_read(values);
    char line[1024];
    size_t used = (size_t)snprintf(line, sizeof line, "swiftrcu stats:");
    for (int i = 0; i < RCUSHIM_STAT_COUNT && used < sizeof line; i++)
        used += (size_t)snprintf(line + used, sizeof line - used, " %s=%llu", stat_names[i],
                                 (unsigned long long)values[i]);
    if (used >= sizeof line - 1)
        used = sizeof line - 2;
    line[used++] = '\n';
    (void)!write(fd, line, used);
}

/* SWIFTRCU_STATS=1 in the environment when the library is loaded: print the line at exit. */
static int print_at_exit;

__attribute__((constructor)) static void stats_setup(void) {
    const char *s = getenv("SWIFTRCU_STATS");
    print_at_exit = s != NULL && strcmp(s, "1") == 0;
}

/* Runs at process exit (or when the library is unloaded): after exit() began, so threads that
 * still run may change a counter meanwhile; the line shows what the loads found. */
__attribute__((destructor)) static void stats_at_exit(void) {
    if (print_at_exit) {
        fflush(stdout); /* the program's own output first, also when stdout is a pipe */
        rcushim_stats_print(2);
    }
}
