/*
 * swiftrcu.h - SwiftRCU: an RCU-protected pointer (read-copy-update) for C.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Build:  cc app.c $(pkg-config --cflags --libs swiftrcu)
 *
 * OVERVIEW
 *   A swiftrcu_ptr publishes one object. Readers look at the current object inside a read-side
 *   critical section: no lock taken, no shared memory written, never blocked. Writers publish a
 *   new object and get the previous one back as a swiftrcu_old handle, which destroys it once no
 *   reader can still see it (after a grace period). Grace periods come from liburcu (memb
 *   flavour). swiftrcu_types.h has the types, status codes and version macros;
 *   swiftrcu_generated.h declares the functions, each with its contract, in the groups below.
 *
 * LIFECYCLE
 *   swiftrcu_new(object, destroy, context) creates a pointer that publishes object; destroy runs
 *   exactly once for every non-NULL object the pointer ever published. swiftrcu_free(ptr) waits
 *   for a grace period, destroys the current object and releases the handle.
 *
 * READ SIDE
 *   swiftrcu_read_lock() enters a section and returns a guard, swiftrcu_dereference(ptr, &guard)
 *   gives the current object (valid until the guard is unlocked), swiftrcu_read_unlock(&guard)
 *   leaves. Sections nest (up to 255 per thread), innermost unlocked first. Fewer calls per read:
 *   swiftrcu_read_lock_dereference() enters and dereferences in one call;
 *   swiftrcu_read_section(ptr, fn, context) runs fn on the current object inside a section;
 *   swiftrcu_read_copy(ptr, offset, dst, size) copies a field (or a small struct) of the current
 *   object to dst inside a section, with no callback. For reference-counted objects,
 *   swiftrcu_load_retained(ptr, retain) returns the object after calling retain on it inside the
 *   section. swiftrcu_load() returns the object after the section has ended: only for objects
 *   kept alive by other means.
 *
 * WRITE SIDE
 *   swiftrcu_replace(ptr, new_object, &old) publishes new_object; swiftrcu_copy_update(ptr, update,
 *   context, &old) publishes what update computes from the current object, with the pointer's
 *   other writers excluded. Neither waits for a grace period, so both are allowed inside a read
 *   section. Writers of one pointer are serialised; writers of different pointers run in
 *   parallel. A copy_update callback runs inside a read-side critical section.
 *
 * OLD HANDLES
 *   swiftrcu_old_object(old) gives the unpublished object. swiftrcu_old_free(old) waits for a
 *   grace period and destroys it; swiftrcu_old_defer(old) has it destroyed after a grace period on
 *   a liburcu call_rcu thread, without waiting. One of the two must be called exactly once.
 *
 * GRACE PERIODS
 *   swiftrcu_synchronize() waits until every read section open when it began has ended;
 *   swiftrcu_barrier() waits until every destroy deferred before it has run. Calls that wait for
 *   a grace period (swiftrcu_free, swiftrcu_old_free, swiftrcu_synchronize, swiftrcu_barrier)
 *   return SWIFTRCU_EDEADLK inside a read-side critical section instead of hanging, and change
 *   nothing.
 *
 * THREADS
 *   - Any thread may call any function. A thread is registered with liburcu on its first read lock
 *     (or any write); it need not unregister before exiting. A thread that exits while holding read
 *     locks has them released at exit, so writers never wait for it forever; one that exits inside a
 *     copy_update callback (pthread_exit, cancellation) has the writer lock released too and its
 *     update abandoned. Callbacks must return: longjmp out of one is forbidden.
 *   - On a thread whose pthread key destructors run after the library's own (exiting), calls that
 *     need a read section refuse and change nothing: SWIFTRCU_EPERM from read_section, replace,
 *     copy_update, free, old_free, old_defer and thread_register; NULL from dereference, load,
 *     load_retained, read_copy and old_object; read_lock gives a zeroed guard. Handles stay live
 *     for other threads. Limit: a thread whose first use of the library is in glibc's last round of
 *     key destructors is never unregistered from liburcu, and a later grace period may crash: use
 *     the library on a thread before it starts exiting.
 *   - A guard belongs to the thread that took it; guards nest and are unlocked innermost first.
 *   - Calls that wait for a grace period (swiftrcu_free, swiftrcu_old_free, swiftrcu_synchronize,
 *     swiftrcu_barrier) return SWIFTRCU_EDEADLK inside a read-side critical section instead of
 *     hanging, and change nothing.
 *   - Writers of one pointer are serialised inside the library; writers of different pointers run
 *     in parallel. A copy_update callback runs inside a read-side critical section. A write that
 *     would close a cycle of writers each waiting for another's pointer (copy_update(A) writing B
 *     while copy_update(B) writes A) returns SWIFTRCU_EDEADLK and changes nothing.
 *   - Signals: the read-side calls (read_lock, dereference, read_unlock, read_lock_dereference,
 *     read_section, read_copy, load, load_retained, region_enter, region_exit) are async-signal-safe on a thread that has
 *     already used the library and is not exiting; a handler's own sections nest inside the
 *     interrupted one and must end before the handler returns.
 *   - fork(): the child may create, read, write, free, synchronize and barrier. Deferred destroys
 *     pending at the fork run in the child too (liburcu moves its queue there), each process on
 *     its own copy. An update another thread had in progress at the fork is lost in the child,
 *     and the child can write that pointer. fork() inside a read section while another thread
 *     waits for a grace period returns, but in that child grace periods are refused (see
 *     swiftrcu_synchronize). Do not fork inside a read section while a deferred destroy is
 *     pending, nor while another thread's read section waits for the forking thread: liburcu's
 *     fork handler waits for a grace period and hangs (in the first case the library writes a
 *     warning to stderr first). fork() from a destroy running deferred aborts with a message.
 *     See docs/c.md.
 *   - dlclose(): the library stays loaded (it is linked with -z nodelete).
 *
 * ERRORS AND VERSION
 *   Functions that can fail return SWIFTRCU_OK (0) or a negative status code (swiftrcu_types.h);
 *   swiftrcu_strerror(code) names it. SWIFTRCU_VERSION_MAJOR / _MINOR / _PATCH at compile time;
 *   swiftrcu_version() at run time.
 *
 * BINDINGS SUPPORT
 *   swiftrcu_loader_bind(ptr, retain, if_null, &loader) binds a loader: a function without
 *   arguments that does what swiftrcu_load_retained() does with that pointer, for foreign
 *   function interfaces (such as Python's ctypes) where converting an argument costs more than
 *   the call. swiftrcu_loader_unbind() releases it. swiftrcu_prepare_fork(), called right before
 *   fork() with the binding's own lock released, lets the fork handler find no grace-period wait
 *   in progress (for bindings whose readers need that lock to leave their sections).
 *
 * REGIONS WITHOUT A GUARD, AND RETIRING ANY OBJECT
 *   swiftrcu_region_enter() / swiftrcu_region_exit() open and close a read-side critical section
 *   without a guard (no argument: for C++'s rcu_domain and foreign function interfaces); they nest
 *   with guards in one stack per thread, and each call closes only its own kind of section.
 *   swiftrcu_in_read_section() tells whether the calling thread is inside any section.
 *   swiftrcu_retire(object, destroy, context) destroys any object after a grace period,
 *   asynchronously; swiftrcu_call(head, fn) does the same without allocating, through a
 *   swiftrcu_head embedded in the object. swiftrcu_barrier() waits for both.
 *
 * OWNERSHIP
 *   - The library owns every published object from swiftrcu_new() / replace / copy_update on, and
 *     destroys each non-NULL one exactly once with the pointer's destroy function.
 *   - An old handle is the caller's until it passes it to swiftrcu_old_free() or
 *     swiftrcu_old_defer(); one of the two must be called exactly once, or the object leaks.
 *   - A dereferenced object may be used only until the guard it was read under is unlocked.
 *
 * MISUSE
 *   NULL handles, stale handles (already freed or deferred, also after other handles were created
 *   and freed) and handles of the wrong kind are refused with SWIFTRCU_EINVAL (NULL where a
 *   function returns a pointer): never a crash, never a second destroy. A value that was never a
 *   handle (a random pointer) is refused too, unless it happens to equal a live handle. A guard
 *   the calling thread does not hold (spent, another thread's, zeroed) dereferences NULL, and
 *   unlocking any guard but the thread's innermost held one gives SWIFTRCU_EPERM.
 *
 * STATISTICS
 *   swiftrcu_stats_get() fills a swiftrcu_stats: grace periods waited, deferred destroys queued,
 *   run and pending (with the peak), destroys, live handles, registered threads, writer pauses and
 *   refused calls by status, counted since the library was loaded and read one at a time (not a
 *   snapshot). Setting SWIFTRCU_STATS=1 in the environment makes the library print them at exit as
 *   one line "swiftrcu stats: key=value ..." on stderr, for programs that cannot be changed.
 */
#ifndef SWIFTRCU_H
#define SWIFTRCU_H

#include "swiftrcu_types.h"
#include "swiftrcu_generated.h"

#endif /* SWIFTRCU_H */
