/*
 * urcu_exported.c - the "exported" liburcu reference: the same read section as the inline one,
 * but compiled WITHOUT _LGPL_SOURCE, so urcu_memb_read_lock / rcu_dereference /
 * urcu_memb_read_unlock are calls into liburcu-memb and liburcu-common.
 */
#ifdef _LGPL_SOURCE
#error "urcu_exported.c must be built without _LGPL_SOURCE"
#endif
#include <urcu/urcu-memb.h>

#include "bench_common.h"

__attribute__((noinline)) uint64_t bench_loop_urcu_exported(uint64_t n) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        urcu_memb_read_lock();
        const struct bench_obj *o = rcu_dereference(bench_urcu_ptr);
        sum += o->value;
        urcu_memb_read_unlock();
    }
    return sum;
}
