/*
 * bench_floor.h - the C side of the Swift benchmark.
 *  - liburcu memb's inline read path (_LGPL_SOURCE), as static inline functions, so the Swift loop
 *    that calls them pays no call into liburcu: the floor a read section can reach;
 *  - the public C ABI of libswiftrcu (swiftrcu.h from the installed prefix), called from Swift.
 */
#ifndef SWIFTRCU_BENCH_FLOOR_H
#define SWIFTRCU_BENCH_FLOOR_H

#ifndef _LGPL_SOURCE
#define _LGPL_SOURCE 1
#endif
#include <stdint.h>
#include <urcu/urcu-memb.h>

#include <swiftrcu.h>

struct bench_floor_obj {
    uint64_t value;
};

/* The pointer the floor loop reads; defined in bench_floor.c. */
extern struct bench_floor_obj *bench_floor_ptr;

static inline void bench_floor_register(void) { urcu_memb_register_thread(); }
static inline void bench_floor_unregister(void) { urcu_memb_unregister_thread(); }
static inline void bench_floor_read_lock(void) { urcu_memb_read_lock(); }
static inline void bench_floor_read_unlock(void) { urcu_memb_read_unlock(); }
static inline const struct bench_floor_obj *bench_floor_dereference(void) {
    return rcu_dereference(bench_floor_ptr);
}

#endif
