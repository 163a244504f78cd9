/*
 * SwiftRCU C ABI (room 3 of 3), its C part: bound loaders, zero-argument functions bound to one
 * (handle, retain) pair each.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A foreign function interface such as Python's ctypes spends more on converting one argument
 * than on the call itself. A loader carries its argument in a slot of its own, so such a caller
 * reads an RCU pointer with a call that has no arguments. There is one compiled function per
 * slot (no code is generated at run time): `loader_NNN` passes its slot number to loader_call.
 */
#include "swiftrcu_abi.h"

#include <stddef.h>

_Static_assert(RCUABI_LOADERS == 1024, "the LOADERS_* macros below make exactly 1024 loaders");

/*
 * One loader's binding.
 *
 * Invariants:
 *  - `claimed` is 1 from the claim in rcuabi_loader_bind until rcuabi_loader_unbind, else 0;
 *  - `handle` is non-zero exactly while the loader is bound, and then `retain` and `if_null`
 *    are the ones bound with it (stored before `handle`, with release);
 *  - `load_impl` is set (always to the same function) before any handle is published.
 */
struct loader_slot {
    uintptr_t handle;
    rcuabi_retain_fn _Nullable retain;
    void *_Nullable if_null;
    uint32_t claimed;
};

static struct loader_slot slots[RCUABI_LOADERS];
static rcuabi_load_impl _Nullable load_impl;
static uint32_t next_hint; /* where the next bind starts looking: slots are reused round robin */

/* The common body of every loader: reads the slot's binding and calls the implementation. */
__attribute__((noinline)) static void *_Nullable loader_call(uint32_t i) {
    struct loader_slot *s = &slots[i];
    for (;;) {
        /* Ordering: acquire pairs with bind's release store of `handle`, so `load_impl` and a
         * `retain` stored before it are visible. */
        uintptr_t handle = __atomic_load_n(&s->handle, __ATOMIC_ACQUIRE);
        if (handle == 0)
            return NULL;
        /* Ordering: acquire pairs with bind's release store of `retain`: a retain of a later
         * binding brings that binding's unbind (handle 0) with it, so the re-check below sees
         * the handle change and the pair is never mixed. */
        rcuabi_retain_fn retain = __atomic_load_n(&s->retain, __ATOMIC_ACQUIRE);
        /* Ordering: acquire, as for `retain`. */
        void *if_null = __atomic_load_n(&s->if_null, __ATOMIC_ACQUIRE);
        /* Ordering: relaxed; ordered after the acquire above. */
        if (__atomic_load_n(&s->handle, __ATOMIC_RELAXED) == handle) {
            /* Ordering: relaxed; published by the acquire of `handle`. */
            rcuabi_load_impl impl = __atomic_load_n(&load_impl, __ATOMIC_RELAXED);
            return impl(handle, retain, if_null);
        }
    }
}

#define LOADER(x) \
    static void *_Nullable loader_##x(void) { return loader_call(0x##x); }
#define LOADERS_16(x) \
    LOADER(x##0) LOADER(x##1) LOADER(x##2) LOADER(x##3) LOADER(x##4) LOADER(x##5) LOADER(x##6) \
    LOADER(x##7) LOADER(x##8) LOADER(x##9) LOADER(x##a) LOADER(x##b) LOADER(x##c) LOADER(x##d) \
    LOADER(x##e) LOADER(x##f)
#define LOADERS_256(x) \
    LOADERS_16(x##0) LOADERS_16(x##1) LOADERS_16(x##2) LOADERS_16(x##3) LOADERS_16(x##4) \
    LOADERS_16(x##5) LOADERS_16(x##6) LOADERS_16(x##7) LOADERS_16(x##8) LOADERS_16(x##9) \
    LOADERS_16(x##a) LOADERS_16(x##b) LOADERS_16(x##c) LOADERS_16(x##d) LOADERS_16(x##e) \
    LOADERS_16(x##f)

LOADERS_256(0) LOADERS_256(1) LOADERS_256(2) LOADERS_256(3)

#define ENTRY(x) loader_##x,
#define ENTRIES_16(x) \
    ENTRY(x##0) ENTRY(x##1) ENTRY(x##2) ENTRY(x##3) ENTRY(x##4) ENTRY(x##5) ENTRY(x##6) \
    ENTRY(x##7) ENTRY(x##8) ENTRY(x##9) ENTRY(x##a) ENTRY(x##b) ENTRY(x##c) ENTRY(x##d) \
    ENTRY(x##e) ENTRY(x##f)
#define ENTRIES_256(x) \
    ENTRIES_16(x##0) ENTRIES_16(x##1) ENTRIES_16(x##2) ENTRIES_16(x##3) ENTRIES_16(x##4) \
    ENTRIES_16(x##5) ENTRIES_16(x##6) ENTRIES_16(x##7) ENTRIES_16(x##8) ENTRIES_16(x##9) \
    ENTRIES_16(x##a) ENTRIES_16(x##b) ENTRIES_16(x##c) ENTRIES_16(x##d) ENTRIES_16(x##e) \
    ENTRIES_16(x##f)

/* loaders[i] is the loader of slot i. */
static const rcuabi_loader_fn loaders[RCUABI_LOADERS] = {
    ENTRIES_256(0) ENTRIES_256(1) ENTRIES_256(2) ENTRIES_256(3)
};

rcuabi_loader_fn _Nullable rcuabi_loader_bind(uintptr_t handle, rcuabi_retain_fn retain,
                                                void *_Nullable if_null, rcuabi_load_impl impl) {
    if (handle == 0)
        return NULL;
    /* Ordering: relaxed; the release store of `handle` below publishes it. */
    __atomic_store_n(&load_impl, impl, __ATOMIC_RELAXED);
    /* Ordering: relaxed; only a starting point. */
    uint32_t start = __atomic_fetch_add(&next_hint, 1, __ATOMIC_RELAXED);
    for (uint32_t k = 0; k < RCUABI_LOADERS; k++) {
        uint32_t i = (start + k) % RCUABI_LOADERS;
        uint32_t expected = 0;
        /* Ordering: acquire pairs with unbind's release of `claimed`, so the previous binding's
         * `handle = 0` happens before the stores below. */
        if (!__atomic_compare_exchange_n(&slots[i].claimed, &expected, 1, 0, __ATOMIC_ACQUIRE,
                                         __ATOMIC_RELAXED))
            continue;
        /* Ordering: release; see loader_call. */
        __atomic_store_n(&slots[i].retain, retain, __ATOMIC_RELEASE);
        /* Ordering: release; see loader_call. */
        __atomic_store_n(&slots[i].if_null, if_null, __ATOMIC_RELEASE);
        /* Ordering: release; see loader_call. */
        __atomic_store_n(&slots[i].handle, handle, __ATOMIC_RELEASE);
        /* Ordering: relaxed; only a starting point. */
        __atomic_store_n(&next_hint, i + 1, __ATOMIC_RELAXED);
        return loaders[i];
    }
    return NULL;
}

int rcuabi_loader_unbind(rcuabi_loader_fn _Nullable loader) {
    if (loader == NULL)
        return -1;
    for (uint32_t i = 0; i < RCUABI_LOADERS; i++) {
        if (loaders[i] != loader)
            continue;
        /* Ordering: relaxed; the exchange makes one of two racing unbinds the winner, and the
         * release of `claimed` below orders it before the next binding. */
        if (__atomic_exchange_n(&slots[i].handle, 0, __ATOMIC_RELAXED) == 0)
            return -1;
        /* Ordering: release pairs with bind's acquiring claim. */
        __atomic_store_n(&slots[i].claimed, 0, __ATOMIC_RELEASE);
        return 0;
    }
    return -1;
}
