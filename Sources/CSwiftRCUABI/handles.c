/*
 * SwiftRCU C ABI (room 3 of 3), its C part: the handle table's storage and its lock (the layout
 * and how they are used: include/swiftrcu_abi.h and Sources/SwiftRCUCABI/Handles.swift).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "swiftrcu_abi.h"

#include <pthread.h>

uintptr_t rcuabi_directory[RCUABI_DIRECTORY_SIZE] __attribute__((aligned(64)));
struct rcuabi_slot rcuabi_first_segment[RCUABI_SEGMENT_SLOTS] __attribute__((aligned(RCUABI_SLOT_BYTES)));
/* Every list starts empty. */
uint64_t rcuabi_free_words[RCUABI_SHARDS][16] __attribute__((aligned(64))) = {
    [0 ... RCUABI_SHARDS - 1] = {[0] = UINT32_MAX, [8] = UINT32_MAX},
};
uint32_t rcuabi_segment_count;

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

__thread uint64_t rcuabi_cache __attribute__((tls_model("initial-exec")));
static pthread_key_t cache_key;
static void (*cache_exit_step)(uint64_t word);

/* A thread with an adopted cache exits: its slots go back (the word is cleared first, so a later
 * release on this thread goes to the table's lists). */
static void cache_exit(void *unused) {
    (void)unused;
    uint64_t word = rcuabi_cache;
    rcuabi_cache = 0;
    void (*step)(uint64_t) = __atomic_load_n(&cache_exit_step, __ATOMIC_ACQUIRE); /* Ordering: pairs with the setter. */
    if (step != NULL && (word & RCUABI_CACHE_ADOPTED))
        step(word);
}

int rcuabi_cache_adopt(void) {
    if (pthread_setspecific(cache_key, (void *)1) != 0)
        return 0;
    rcuabi_cache |= RCUABI_CACHE_ADOPTED;
    return 1;
}

void rcuabi_cache_on_exit(void (*step)(uint64_t word)) {
    __atomic_store_n(&cache_exit_step, step, __ATOMIC_RELEASE); /* Ordering: pairs with cache_exit. */
}

void rcuabi_table_lock(void) { pthread_mutex_lock(&table_lock); }
void rcuabi_table_unlock(void) { pthread_mutex_unlock(&table_lock); }

/* Fork: the lock is held across it, so no refill or growth is halfway in the child (taking and
 * returning slots need no lock: one cut short by the fork leaves the lists consistent, at worst
 * without that slot). The table lock nests inside no other lock of the library and is held only
 * for work that waits for nothing, so the liburcu shim's fork handler (which waits for the
 * call_rcu threads to pause and for a grace period) cannot wait for these handlers nor they for
 * it, in either order. */
static void before_fork(void) { pthread_mutex_lock(&table_lock); }

static void after_fork_parent(void) { pthread_mutex_unlock(&table_lock); }

static void after_fork_child(void) { pthread_mutex_init(&table_lock, NULL); }

__attribute__((constructor)) static void setup(void) {
    (void)pthread_key_create(&cache_key, cache_exit);
    (void)pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}
