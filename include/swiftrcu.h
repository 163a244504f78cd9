/*
 * swiftrcu.h - SwiftRCU: an RCU-protected pointer (read-copy-update) for C.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Build:  cc app.c $(pkg-config --cflags --libs swiftrcu)
 *
 * OVERVIEW
 *   A swiftrcu_ptr publishes one object. Readers enter a read-side critical section with
 *   swiftrcu_read_lock(), get the current object with swiftrcu_dereference() and leave with
 *   swiftrcu_read_unlock(): no locks taken, no shared memory written, never blocked. Writers
 *   publish a new object with swiftrcu_replace() or swiftrcu_copy_update() and receive the previous
 *   one as a swiftrcu_old handle. swiftrcu_old_free() waits for a grace period (until every reader
 *   that could still see the object has left its section) and then destroys it;
 *   swiftrcu_old_defer() does the same asynchronously. Grace periods come from liburcu (memb
 *   flavour).
 *
 * FEWER CALLS PER READ
 *   swiftrcu_read_section(ptr, fn, context) runs fn on the current object inside a section (one
 *   call); swiftrcu_read_copy(ptr, offset, dst, size) copies a field of the current object (or a
 *   whole small struct) to dst inside a section (one call, no callback);
 *   swiftrcu_read_lock_dereference() enters and dereferences in one call. For objects with
 *   a reference count, swiftrcu_load_retained(ptr, retain) returns the object after calling
 *   retain on it inside the section, and a loader from swiftrcu_loader_bind() does the same with
 *   no arguments (for foreign function interfaces such as Python's ctypes). swiftrcu_load()
 *   returns the object after the section has ended: only for objects kept alive by other means.
 *
 * OWNERSHIP
 *   - The library owns every published object from swiftrcu_new() / replace / copy_update on, and
 *     destroys each non-NULL one exactly once with the pointer's destroy function.
 *   - An old handle is the caller's until it passes it to swiftrcu_old_free() or
 *     swiftrcu_old_defer(); one of the two must be called exactly once, or the object leaks.
 *   - A dereferenced object may be used only until the guard it was read under is unlocked.
 *
 * THREADS
 *   - Any thread may call any function. A thread is registered with liburcu on its first read lock
 *     (or any write); it need not unregister before exiting. A thread that exits while holding read
 *     locks has them released at exit, so writers never wait for it forever.
 *   - A guard belongs to the thread that took it; guards nest and are unlocked innermost first.
 *   - Calls that wait for a grace period (swiftrcu_free, swiftrcu_old_free, swiftrcu_synchronize,
 *     swiftrcu_barrier) return SWIFTRCU_EDEADLK inside a read-side critical section instead of
 *     hanging, and change nothing.
 *   - Writers of one pointer are serialised inside the library; writers of different pointers run
 *     in parallel. A copy_update callback runs inside a read-side critical section.
 *   - fork(): the child may create, read, write, free, synchronize and barrier. Deferred destroys
 *     pending at the fork run in the child too (liburcu moves its queue there), each process on
 *     its own copy. An update another thread had in progress at the fork is lost in the child,
 *     and the child can write that pointer. Do not fork inside a read section while a deferred
 *     destroy is pending, nor while another thread's read section waits for the forking thread:
 *     liburcu's fork handler waits for a grace period and hangs (in the first case the library
 *     writes a warning to stderr first). See README "Guarantees and limits".
 *
 * MISUSE
 *   NULL handles, stale handles (already freed or deferred, also after other handles were created
 *   and freed) and handles of the wrong kind are refused with SWIFTRCU_EINVAL (NULL where a
 *   function returns a pointer): never a crash, never a second destroy. A value that was never a
 *   handle (a random pointer) is refused too, unless it happens to equal a live handle.
 *
 * STATISTICS
 *   swiftrcu_stats_get() fills a swiftrcu_stats: grace periods waited, deferred destroys queued,
 *   run and pending (with the peak), destroys, live handles, registered threads, writer pauses and
 *   refused calls by status, counted since the library was loaded and read one at a time (not a
 *   snapshot). Setting SWIFTRCU_STATS=1 in the environment makes the library print them at exit as
 *   one line "swiftrcu stats: key=value ..." on stderr, for programs that cannot be changed.
 *
 * VERSION
 *   SWIFTRCU_VERSION_MAJOR / _MINOR / _PATCH at compile time; swiftrcu_version() at run time.
 */
#ifndef SWIFTRCU_H
#define SWIFTRCU_H

#include "swiftrcu_types.h"
#include "swiftrcu_generated.h"

#endif /* SWIFTRCU_H */
