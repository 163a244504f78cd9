/*
 * bench_common.h - shared between the C benchmark's translation units (and bench_cpp.cpp).
 * bench_read.c includes liburcu with _LGPL_SOURCE (inline read path); urcu_exported.c includes it
 * without (calls into liburcu's exported functions).
 */
#ifndef SWIFTRCU_BENCH_COMMON_H
#define SWIFTRCU_BENCH_COMMON_H

#include <stdint.h>

#define BENCH_CACHELINE 64

/* The object every read section reads one field of; one per cache line. */
struct bench_obj {
    uint64_t value;
    uint64_t refs; /* used by the atomic-refcount reference only */
} __attribute__((aligned(BENCH_CACHELINE)));

/* The pointer the exported-liburcu loop reads (also read inline by the urcu_inline variant). */
extern struct bench_obj *bench_urcu_ptr;

/* K read sections through liburcu's exported functions; returns the sum of the fields read. */
uint64_t bench_loop_urcu_exported(uint64_t n);

/* The C++ read path (bench_cpp.cpp): a swiftrcu::ptr publishing `object`, and K reads of its
 * field through swiftrcu::ptr::read. */
void bench_cpp_init(struct bench_obj *object);
uint64_t bench_loop_cpp_read(uint64_t n);

#endif
