/*
 * SwiftRCU core (room 2 of 3), its C part: the storage and locks of the batches of deferred
 * destroys (the layout: include/rcucore.h; how they are used: Sources/SwiftRCUCore/
 * DeferredBatches.swift). Also compiles the layout checks of include/rcucore.h.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "rcucore.h"

#include <pthread.h>

uintptr_t rcucore_batch_words[RCUCORE_BATCH_SHARDS][8] __attribute__((aligned(64)));
uint64_t rcucore_batches_in_flight __attribute__((aligned(64)));
uintptr_t rcucore_batch_spares[RCUCORE_BATCH_SHARDS][8] __attribute__((aligned(64)));

static pthread_mutex_t batch_locks[RCUCORE_BATCH_SHARDS] = {
    [0 ... RCUCORE_BATCH_SHARDS - 1] = PTHREAD_MUTEX_INITIALIZER,
};

void rcucore_batch_lock(uint32_t shard) { pthread_mutex_lock(&batch_locks[shard]); }
int rcucore_batch_trylock(uint32_t shard) { return pthread_mutex_trylock(&batch_locks[shard]) == 0; }
void rcucore_batch_unlock(uint32_t shard) { pthread_mutex_unlock(&batch_locks[shard]); }

/* Fork: the locks are held across it, so no batch is between its take and its queue in the child
 * (adding to a batch needs no lock: an add cut short by the fork leaves the batch consistent). A
 * batch lock is held only around taking a batch and queueing it (liburcu's call_rcu, which does
 * not wait), and neither a call_rcu thread nor a thread inside a read section ever waits for one
 * (they only try), so the liburcu shim's fork handler, which waits for those threads to pause and
 * for a grace period, cannot wait for these handlers nor they for it, in either order. */
static void before_fork(void) {
    for (int k = 0; k < RCUCORE_BATCH_SHARDS; k++)
        pthread_mutex_lock(&batch_locks[k]);
}

static void after_fork_parent(void) {
    for (int k = RCUCORE_BATCH_SHARDS - 1; k >= 0; k--)
        pthread_mutex_unlock(&batch_locks[k]);
}

static void after_fork_child(void) {
    for (int k = 0; k < RCUCORE_BATCH_SHARDS; k++)
        pthread_mutex_init(&batch_locks[k], NULL);
}

__attribute__((constructor)) static void setup(void) {
    (void)pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}
