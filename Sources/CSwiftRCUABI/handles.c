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

void rcuabi_table_lock(void) { pthread_mutex_lock(&table_lock); }
void rcuabi_table_unlock(void) { pthread_mutex_unlock(&table_lock); }

/* Fork: the lock is held across it, so no refill or growth is halfway in the child (taking and
 * returning slots need no lock: one cut short by the fork leaves the lists consistent, at worst
 * without that slot). The lock nests inside no other lock of the library, and no other lock is
 * taken while it is held, so the order of these handlers and the shim's does not matter. */
static void before_fork(void) { pthread_mutex_lock(&table_lock); }
static void after_fork_parent(void) { pthread_mutex_unlock(&table_lock); }
static void after_fork_child(void) { pthread_mutex_init(&table_lock, NULL); }

__attribute__((constructor)) static void setup(void) {
    (void)pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}
