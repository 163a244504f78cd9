// SwiftRCU C ABI (room 3 of 3): the exported `swiftrcu_*` functions.
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Each function checks its arguments, then calls the Swift core (SwiftRCU) and the handle table.
// The declarations C programs see are generated from this file (`make header`), doc comments
// included; the types come from include/swiftrcu_types.h.

import CLiburcuShim
import CSwiftRCUABI
import CSwiftRCUCore
import Glibc
import Synchronization
@_spi(CABI) import SwiftRCUCore
import SwiftRCUTypes

/// A refusal's status code, counted for swiftrcu_stats_get (out of line, see Stats.swift).
@inline(__always) private func status(_ error: RcuError) -> CInt { refusal(error) }

@inline(__always) private func bits(_ p: OpaquePointer) -> UInt { UInt(bitPattern: p) }

/// What a ptr handle publishes now: nil for a stale handle, `.some(nil)` when it publishes NULL.
/// Call inside a read section.
@inline(__always)
private func published(_ handle: UInt) -> UnsafeMutableRawPointer?? {
    guard let slot = HandleTable.lookup(handle, .ptr) else { return nil }
    // SAFETY: a slot from lookup lies in a segment that is never freed, and a live ptr slot holds
    // its cell; `load` pairs with the writers' release store, so the object's initialisation is
    // visible to the caller.
    return .some(UnsafeMutableRawPointer(bitPattern: slot.cell.load()))
}

/// The object a live ptr handle publishes now; nil for a stale handle. Call inside a read section.
@inline(__always)
private func publishedObject(_ handle: UInt) -> UnsafeMutableRawPointer? { published(handle) ?? nil }

private let versionString: StaticString = "0.1.0"

/// Returns the library's version as "MAJOR.MINOR.PATCH", equal to the SWIFTRCU_VERSION_* macros of
/// the headers it was built with. The string is static: never free it.
@c(swiftrcu_version)
public func swiftrcu_version() -> UnsafePointer<CChar> {
    UnsafeRawPointer(versionString.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// Returns a static one-line description of a status code, starting with its name
/// ("SWIFTRCU_EINVAL: ..."). Never NULL: unknown codes give "SWIFTRCU_UNKNOWN: unknown status".
@c(swiftrcu_strerror)
public func swiftrcu_strerror(_ status: CInt) -> UnsafePointer<CChar> {
    let text: StaticString
    switch status {
    case 0: text = "SWIFTRCU_OK: success"
    case RcuError.invalidArgument.rawValue:
        text = "SWIFTRCU_EINVAL: invalid argument: NULL, stale or wrong-kind handle"
    case RcuError.notPermitted.rawValue:
        text = "SWIFTRCU_EPERM: not permitted: guard is not the thread's innermost held guard, or call not allowed now"
    case RcuError.deadlock.rawValue:
        text = "SWIFTRCU_EDEADLK: would deadlock: grace-period wait inside a read-side critical section, re-entrant write, or a cycle of writers"
    case RcuError.outOfMemory.rawValue: text = "SWIFTRCU_ENOMEM: out of memory or out of handles"
    default: text = "SWIFTRCU_UNKNOWN: unknown status"
    }
    return UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// Creates an RCU-protected pointer that publishes object (which may be NULL).
///
/// destroy(object, context) runs exactly once for every non-NULL object ever published in the
/// pointer (initially, by replace or by copy_update): when its old handle is freed or deferred,
/// or, for the object current at that time, by swiftrcu_free(). It may run on any thread. With a
/// NULL destroy the library never destroys objects.
///
/// Returns NULL only when out of memory (or out of handles). Any thread may call it.
@c(swiftrcu_new)
public func swiftrcu_new(
    _ object: UnsafeMutableRawPointer?, _ destroy: swiftrcu_destroy_fn?, _ context: UnsafeMutableRawPointer?
) -> swiftrcu_ptr_ref? {
    guard let (slot, handle) = HandleTable.reserve(.ptr) else { return nil }
    // The slot is ours until `publish` releases it with the stamp.
    PointerCell.initialize(
        rcuabi_slot_cell(slot), object: UInt(bitPattern: object), destroy: destroy, context: context)
    HandleTable.publish(slot, handle)
    return OpaquePointer(bitPattern: handle)
}

/// Waits for a grace period, destroys the current object (if any, and if the pointer has a
/// destroy function) and releases the handle.
///
/// Returns SWIFTRCU_OK; SWIFTRCU_EINVAL for NULL or a stale handle; SWIFTRCU_EDEADLK, changing
/// nothing, inside a read-side critical section (including a copy_update callback);
/// SWIFTRCU_EPERM, changing nothing, on a thread that is exiting or where grace periods are
/// refused (see swiftrcu_synchronize).
@c(swiftrcu_free)
@discardableResult
public func swiftrcu_free(_ ptr: swiftrcu_ptr_ref?) -> CInt {
    guard let ptr else { return status(.invalidArgument) }
    guard !ReadSide.isInSection else { return status(.deadlock) }
    guard rcushim_grace_periods_refused() == 0 else { return status(.notPermitted) }
    let handle = bits(ptr)
    let found: UnsafeMutablePointer<HandleSlot>?? = ReadSide.withInternalSection {
        guard let slot = HandleTable.lookup(handle, .ptr), HandleTable.retire(slot, handle) else { return nil }
        return slot
    }
    guard let found else { return status(.notPermitted) }
    guard let slot = found else { return status(.invalidArgument) }
    // Every writer that found the handle live is inside a read section: after this grace period
    // none is left, and no new one can find it. The slot stays ours until `release`. (Grace
    // periods are refused only in a forked child, from its start: checked above.)
    _ = waitForGracePeriod()
    slot.cell.destroyCurrent()
    HandleTable.release(slot)
    return SWIFTRCU_OK
}

/// Enters a read-side critical section and returns a guard for it.
///
/// Nestable; registers the calling thread with liburcu on first use. A thread may exit without
/// unregistering; read locks it still holds then are released at its exit, so writers are never
/// blocked forever. Never blocks, writes no shared memory.
///
/// Returns a zeroed guard, entering nothing, when the thread already holds 255 nested sections or is
/// exiting, or on its first use where grace periods are refused (see swiftrcu_synchronize); a
/// zeroed guard dereferences NULL and unlocks with SWIFTRCU_EPERM.
///
/// Async-signal-safe, like every read-side call (read_lock, dereference, read_unlock,
/// read_lock_dereference, read_section, read_copy, load, load_retained), on a thread that has
/// already used the library (so is registered) and is not exiting: a signal handler may take
/// sections of its own while the interrupted code is anywhere in one of these calls, and must
/// end them before it returns (it may not unlock the interrupted code's guards).
@c(swiftrcu_read_lock)
public func swiftrcu_read_lock() -> swiftrcu_guard {
    let t = rcushim_self()
    // The common case needs no call: the slow path (first use, adopted registration) is a call
    // of its own that returns straight away, so this function needs no stack frame.
    guard _fastPath(rcushim_is_ready(t) != 0) else { return readLockSlow() }
    return cGuard(ReadSide.lock(ready: t))
}

@inline(never)
private func readLockSlow() -> swiftrcu_guard { cGuard(ReadSide.lock()) }

@inline(__always)
private func cGuard(_ token: ReadToken?) -> swiftrcu_guard {
    guard let token else { return swiftrcu_guard() }
    return swiftrcu_guard(_private: (token.thread, token.word))
}

/// Leaves the read-side critical section of guard, which must be the calling thread's innermost
/// held guard; on success the guard is spent (zeroed).
///
/// Returns SWIFTRCU_OK; SWIFTRCU_EINVAL for NULL; SWIFTRCU_EPERM, changing nothing, for any other
/// guard (already unlocked, another thread's, out of order, zeroed, or a copy of a spent one).
@c(swiftrcu_read_unlock)
@discardableResult
public func swiftrcu_read_unlock(_ `guard`: UnsafeMutablePointer<swiftrcu_guard>?) -> CInt {
    guard let guard_ = `guard` else { return status(.invalidArgument) }
    let token = ReadToken(thread: guard_.pointee._private.0, word: guard_.pointee._private.1)
    let t = rcushim_self()
    guard ReadSide.isInnermost(token, of: t) else { return status(.notPermitted) }
    guard_.pointee = swiftrcu_guard()
    // The rare wake-up of a waiting writer is a call of its own that returns straight away, so
    // the common path needs no stack frame.
    if _slowPath(ReadSide.leave(token, of: t)) {
        rcushim_wake_writer()
        return SWIFTRCU_OK
    }
    return SWIFTRCU_OK
}

/// Enters a read-side critical section without a guard (an anonymous region), to be left with
/// swiftrcu_region_exit() on the same thread: for callers that have no place to keep a guard
/// (C++'s rcu_domain::lock(), foreign function interfaces). Takes no argument.
///
/// Regions and guards nest in one stack per thread: a region may be opened inside a guard's
/// section and a guard inside a region, and each is closed innermost first by its own call
/// (swiftrcu_region_exit() never closes a guard's section, swiftrcu_read_unlock() never a
/// region). Same rules as swiftrcu_read_lock(): registers the thread on first use; the thread's
/// open sections (regions included) count towards its limit of 255; a thread that exits inside a
/// region has it released at its exit. Never blocks, writes no shared memory.
///
/// Returns SWIFTRCU_OK; SWIFTRCU_EPERM, entering nothing, when the thread already holds 255
/// nested sections or is exiting.
@c(swiftrcu_region_enter)
public func swiftrcu_region_enter() -> CInt {
    let t = rcushim_self()
    // The common case needs no call: the slow path (first use, adopted registration) is a call
    // of its own, not a tail call, so this function needs no stack frame on the common path.
    let entered = _fastPath(rcushim_is_ready(t) != 0) ? ReadSide.enterRegion(ready: t) : regionEnterSlow()
    return entered ? SWIFTRCU_OK : status(.notPermitted)
}

@inline(never)
private func regionEnterSlow() -> Bool {
    guard let t = rcushim_ready_self() else { return false }
    return ReadSide.enterRegion(ready: t)
}

/// Leaves the calling thread's innermost read-side critical section, which must be a region
/// opened by swiftrcu_region_enter(). Takes no argument.
///
/// Returns SWIFTRCU_OK; SWIFTRCU_EPERM, changing nothing, when the thread's innermost section is
/// a guard's (swiftrcu_read_lock()) or the thread has no section of this library open. Never
/// blocks, writes no shared memory.
@c(swiftrcu_region_exit)
public func swiftrcu_region_exit() -> CInt {
    let t = rcushim_self()
    guard ReadSide.innermostIsRegion(of: t) else { return status(.notPermitted) }
    // The rare wake-up of a waiting writer is a call of its own that returns straight away, so
    // the common path needs no stack frame.
    if _slowPath(ReadSide.leaveRegion(of: t)) {
        rcushim_wake_writer()
        return SWIFTRCU_OK
    }
    return SWIFTRCU_OK
}

/// Returns 1 when the calling thread is inside a read-side critical section (a guard's, a
/// region's, a callback's of this library, or one the program opened with liburcu-memb itself),
/// else 0. swiftrcu_synchronize, swiftrcu_free and swiftrcu_old_free return SWIFTRCU_EDEADLK
/// exactly where this returns 1 (swiftrcu_barrier also inside a destroy running deferred). Never
/// blocks, writes no shared memory.
@c(swiftrcu_in_read_section)
public func swiftrcu_in_read_section() -> CInt {
    ReadSide.isInSection ? 1 : 0
}

/// Returns the object ptr publishes now (may be NULL), valid until guard is unlocked.
///
/// guard must be held by the calling thread (the innermost or an outer one). Returns NULL when
/// ptr or guard is NULL, the guard is not held by the calling thread, or ptr is stale.
/// Never blocks, writes no shared memory.
@c(swiftrcu_dereference)
public func swiftrcu_dereference(
    _ ptr: swiftrcu_const_ptr_ref?, _ `guard`: UnsafePointer<swiftrcu_guard>?
) -> UnsafeMutableRawPointer? {
    guard let guard_ = `guard` else { return nil }
    let token = ReadToken(thread: guard_.pointee._private.0, word: guard_.pointee._private.1)
    guard ReadSide.holds(token) else { return refused() }
    // A NULL ptr is 0, which no live handle is: the lookup refuses it.
    return publishedObject(UInt(bitPattern: ptr))
}

/// NULL, out of line: the only call in swiftrcu_dereference, so its common path needs no frame.
@inline(never)
private func refused() -> UnsafeMutableRawPointer? { nil }

/// Enters a read-side critical section and dereferences ptr in one call: the same as
/// swiftrcu_read_lock() followed by swiftrcu_dereference(ptr, guard_out), for one call less per
/// read. *guard_out receives the guard, to be passed to swiftrcu_read_unlock() as usual.
///
/// Returns the current object (may be NULL). When guard_out is NULL nothing is entered and NULL is
/// returned; when ptr is NULL or stale the section is still entered (unlock it) and NULL is
/// returned; when no section can be entered (255 nested, or the thread is exiting) *guard_out is
/// zeroed and NULL is returned.
@c(swiftrcu_read_lock_dereference)
public func swiftrcu_read_lock_dereference(
    _ ptr: swiftrcu_const_ptr_ref?, _ guard_out: UnsafeMutablePointer<swiftrcu_guard>?
) -> UnsafeMutableRawPointer? {
    guard let guard_out else { return nil }
    let t = rcushim_self()
    guard _fastPath(rcushim_is_ready(t) != 0) else { return lockDereferenceSlow(ptr, guard_out) }
    return lockDereference(ReadSide.lock(ready: t), ptr, guard_out)
}

@inline(__always)
private func lockDereference(
    _ token: ReadToken?, _ ptr: swiftrcu_const_ptr_ref?, _ guard_out: UnsafeMutablePointer<swiftrcu_guard>
) -> UnsafeMutableRawPointer? {
    guard_out.pointee = cGuard(token)
    guard token != nil else { return nil }
    // A NULL ptr is 0, which no live handle is: the lookup refuses it.
    return publishedObject(UInt(bitPattern: ptr))
}

@inline(never)
private func lockDereferenceSlow(
    _ ptr: swiftrcu_const_ptr_ref?, _ guard_out: UnsafeMutablePointer<swiftrcu_guard>
) -> UnsafeMutableRawPointer? {
    lockDereference(ReadSide.lock(), ptr, guard_out)
}

/// Returns the object ptr publishes now, reading it inside a read-side critical section that has
/// ended again when the call returns (one call instead of three).
///
/// The object is no longer protected by RCU when this returns: use it only where its destroy
/// function cannot complete meanwhile by other means (for example, destroy needs a lock the caller
/// holds, as the Python binding's destroy needs the interpreter lock), or where the pointer has no
/// destroy function. Returns NULL for a NULL or stale ptr. Never blocks, writes no shared memory.
@c(swiftrcu_load)
public func swiftrcu_load(_ ptr: swiftrcu_const_ptr_ref?) -> UnsafeMutableRawPointer? {
    let t = rcushim_self()
    guard _fastPath(rcushim_is_ready(t) != 0) else { return loadSlow(ptr) }
    rcushim_read_lock(t)
    // A NULL ptr is 0, which no live handle is: the lookup refuses it.
    let object = publishedObject(UInt(bitPattern: ptr))
    if _slowPath(rcushim_read_leave(t) != 0) { return wakeWriter(returning: object) }
    return object
}

/// Wakes the waiting writer (rcushim_wake_writer), then returns `result`: the last step of a
/// read function that left its section, out of line, so that nothing is live across the call
/// and the read function saves no registers.
@inline(never)
private func wakeWriter<R>(returning result: R) -> R {
    rcushim_wake_writer()
    return result
}

@inline(never)
private func loadSlow(_ ptr: swiftrcu_const_ptr_ref?) -> UnsafeMutableRawPointer? {
    ReadSide.withInternalSection { publishedObject(UInt(bitPattern: ptr)) } ?? nil
}

/// Runs `fn(object, context)` inside a read-side critical section, object being what ptr
/// publishes (may be NULL): a whole read section in one call, with the object usable until fn
/// returns. fn must return normally (no longjmp out of it); the rules of a section hold inside it
/// (grace-period waits return SWIFTRCU_EDEADLK; sections may nest).
///
/// Returns SWIFTRCU_OK once fn has run; SWIFTRCU_EINVAL, fn not called, for a NULL fn or a NULL,
/// stale or wrong-kind ptr; SWIFTRCU_EPERM, fn not called, when no section can be entered (the
/// thread is exiting). Never blocks, writes no shared memory (other than what fn writes).
@c(swiftrcu_read_section)
public func swiftrcu_read_section(
    _ ptr: swiftrcu_const_ptr_ref?, _ fn: swiftrcu_read_fn?, _ context: UnsafeMutableRawPointer?
) -> CInt {
    guard let fn else { return status(.invalidArgument) }
    let t = rcushim_self()
    guard _fastPath(rcushim_is_ready(t) != 0) else { return readSectionSlow(ptr, fn, context) }
    rcushim_read_lock(t)
    let rc = runReadSection(UInt(bitPattern: ptr), fn, context)
    if _slowPath(rcushim_read_leave(t) != 0) { rcushim_wake_writer() }
    return rc
}

/// The body of swiftrcu_read_section; call inside a read section.
@inline(__always)
private func runReadSection(
    _ handle: UInt, _ fn: swiftrcu_read_fn, _ context: UnsafeMutableRawPointer?
) -> CInt {
    // A NULL ptr is 0, which no live handle is: the lookup refuses it.
    guard let object = published(handle) else { return status(.invalidArgument) }
    fn(object.map { UnsafeRawPointer($0) }, context)
    return 0
}

@inline(never)
private func readSectionSlow(
    _ ptr: swiftrcu_const_ptr_ref?, _ fn: swiftrcu_read_fn, _ context: UnsafeMutableRawPointer?
) -> CInt {
    ReadSide.withInternalSection { runReadSection(UInt(bitPattern: ptr), fn, context) } ?? status(.notPermitted)
}

/// Copies size bytes, starting offset bytes into the object ptr publishes now, to dst, inside a
/// read-side critical section: a whole read section in one call, with no callback, for reading
/// a field (or a whole small struct) of the current object into the caller's memory. The copy
/// comes from one object: the one the call returns.
///
/// Returns that object, as an identity only: its section has ended when the call returns, so do
/// not dereference it unless the object is kept alive by other means; comparing it with an
/// earlier result tells whether the object was replaced in between (unless an object was freed
/// and another allocated at its address). Returns NULL, copying nothing, when ptr publishes NULL,
/// for a NULL, stale or wrong-kind ptr, for a NULL dst with a nonzero size, when offset or size
/// exceeds PTRDIFF_MAX, or when no section can be entered (the thread is exiting). The library
/// does not know the object's size: offset + size must lie within it, as for memcpy. size 0
/// copies nothing. Never blocks, writes no shared memory (other than dst).
@c(swiftrcu_read_copy)
public func swiftrcu_read_copy(
    _ ptr: swiftrcu_const_ptr_ref?, _ offset: UInt, _ dst: UnsafeMutableRawPointer?, _ size: UInt
) -> UnsafeRawPointer? {
    let t = rcushim_self()
    guard _fastPath(rcushim_is_ready(t) != 0) else { return readCopySlow(ptr, offset, dst, size) }
    rcushim_read_lock(t)
    let handle = UInt(bitPattern: ptr)
    // The common case inline: a live ptr with an object, and 8 or 4 bytes to copy. Everything
    // else, refusals included, is done by readCopyRest, which leaves the section too; so nothing
    // is live across a call on any path, and the function saves no registers.
    guard let object = publishedObject(handle) else { return readCopyRest(handle, offset, dst, size, t) }
    guard let dst else { return readCopyRest(handle, offset, nil, size, t) }
    guard _fastPath(Int(bitPattern: offset) >= 0) else { return readCopyRest(handle, offset, dst, size, t) }
    // SAFETY: as in copyFromPublished.
    guard copyInOneMove(UnsafeRawPointer(object) + Int(bitPattern: offset), dst, size) else {
        return readCopyRest(handle, offset, dst, size, t)
    }
    if _slowPath(rcushim_read_leave(t) != 0) { return wakeWriter(returning: UnsafeRawPointer(object)) }
    return UnsafeRawPointer(object)
}

/// swiftrcu_read_copy's other cases, inside the section the caller entered on `t`, which this
/// leaves.
@inline(never)
private func readCopyRest(
    _ handle: UInt, _ offset: UInt, _ dst: UnsafeMutableRawPointer?, _ size: UInt,
    _ t: UnsafeMutablePointer<rcushim_thread>
) -> UnsafeRawPointer? {
    let object = copyFromPublished(handle, offset, dst, size)
    if _slowPath(rcushim_read_leave(t) != 0) { rcushim_wake_writer() }
    return object
}

/// The body of swiftrcu_read_copy; call inside a read section.
@inline(__always)
private func copyFromPublished(
    _ handle: UInt, _ offset: UInt, _ dst: UnsafeMutableRawPointer?, _ size: UInt
) -> UnsafeRawPointer? {
    // A NULL ptr is 0, which no live handle is: the lookup refuses it.
    guard let object = publishedObject(handle) else { return nil }
    // Both within Int, so the conversions below keep their values and cannot trap; and a
    // nonzero size needs a destination.
    guard (offset | size) <= UInt(Int.max) else { return nil }
    guard let dst else { return size == 0 ? UnsafeRawPointer(object) : nil }
    // SAFETY: the caller vouches that object[offset ..< offset + size] lies in the object and
    // that dst has size bytes; the object cannot be destroyed before this section ends. Neither
    // side need be aligned: the fixed sizes (one move each) use unaligned loads and stores.
    let source = UnsafeRawPointer(object) + Int(bitPattern: offset)
    if !copyInOneMove(source, dst, size) {
        dst.copyMemory(from: source, byteCount: Int(bitPattern: size))
    }
    return UnsafeRawPointer(object)
}

/// Copies 8 or 4 bytes from source to dst with one unaligned load and store and returns true;
/// returns false, copying nothing, for any other size. The caller vouches for both ranges.
@inline(__always)
private func copyInOneMove(_ source: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, _ size: UInt) -> Bool {
    switch size {
    case 8: dst.storeBytes(of: source.loadUnaligned(as: UInt64.self), as: UInt64.self)
    case 4: dst.storeBytes(of: source.loadUnaligned(as: UInt32.self), as: UInt32.self)
    default: return false
    }
    return true
}

@inline(never)
private func readCopySlow(
    _ ptr: swiftrcu_const_ptr_ref?, _ offset: UInt, _ dst: UnsafeMutableRawPointer?, _ size: UInt
) -> UnsafeRawPointer? {
    ReadSide.withInternalSection { copyFromPublished(UInt(bitPattern: ptr), offset, dst, size) } ?? nil
}

/// Returns the object ptr publishes now after calling `retain(object)` on it inside a read-side
/// critical section (for a non-NULL object), so the caller holds a reference of its own when the
/// section has ended: swiftrcu_load for reference-counted objects, which stays safe however the
/// object's destroy function runs. The section has ended again when the call returns.
///
/// retain runs inside the section: it must not wait for a grace period or block for long.
/// Returns NULL (calling nothing) for a NULL object, a NULL or stale ptr, or a NULL retain.
/// Never blocks, writes no shared memory (other than what retain writes).
@c(swiftrcu_load_retained)
public func swiftrcu_load_retained(
    _ ptr: swiftrcu_const_ptr_ref?, _ retain: swiftrcu_retain_fn?
) -> UnsafeMutableRawPointer? {
    guard let retain else { return nil }
    // A NULL ptr is 0, which no live handle is: the lookup refuses it.
    return loadRetained(UInt(bitPattern: ptr), retain, nil)
}

/// The object ptr publishes, or ifNull where there is none (NULL published, stale handle), after
/// retain(object); NULL when that is NULL too.
@inline(__always)
private func retainedObject(
    _ handle: UInt, _ retain: swiftrcu_retain_fn, _ ifNull: UnsafeMutableRawPointer?
) -> UnsafeMutableRawPointer? {
    guard let object = publishedObject(handle) ?? ifNull else { return nil }
    retain(object)
    return object
}

@inline(__always)
private func loadRetained(
    _ handle: UInt, _ retain: swiftrcu_retain_fn, _ ifNull: UnsafeMutableRawPointer?
) -> UnsafeMutableRawPointer? {
    let t = rcushim_self()
    guard _fastPath(rcushim_is_ready(t) != 0) else { return loadRetainedSlow(handle, retain, ifNull) }
    rcushim_read_lock(t)
    let object = retainedObject(handle, retain, ifNull)
    if _slowPath(rcushim_read_leave(t) != 0) { rcushim_wake_writer() }
    return object
}

@inline(never)
private func loadRetainedSlow(
    _ handle: UInt, _ retain: swiftrcu_retain_fn, _ ifNull: UnsafeMutableRawPointer?
) -> UnsafeMutableRawPointer? {
    if let object = ReadSide.withInternalSection({ retainedObject(handle, retain, ifNull) }) { return object }
    // No section can be entered (the thread is exiting): answer as for a pointer publishing NULL.
    if let ifNull { retain(ifNull) }
    return ifNull
}

/// What a bound loader calls, with the loader's bound triple.
private let boundLoad: rcuabi_load_impl = { handle, retain, ifNull in loadRetained(handle, retain, ifNull) }

/// Binds a loader to ptr: a function without arguments that does what
/// `swiftrcu_load_retained(ptr, retain)` does, except that where that returns NULL (ptr
/// publishes NULL, or was freed) it returns if_null, after retain(if_null) when if_null is not
/// NULL. So a bound loader with a non-NULL if_null never returns NULL. It is for foreign function
/// interfaces where converting an argument costs more than the call itself (the Python binding
/// reads with one, if_null being Python's None).
///
/// SWIFTRCU_LOADERS_MAX loaders can be bound at once. A loader stays bound until
/// swiftrcu_loader_unbind, also after ptr is freed; an unbound loader returns NULL, and a later
/// bind may hand the same function out again, so do not call a loader after (or while) unbinding
/// it.
///
/// Returns SWIFTRCU_OK and the loader in *loader_out; SWIFTRCU_EINVAL for a NULL, stale or
/// wrong-kind ptr, a NULL retain or a NULL loader_out; SWIFTRCU_ENOMEM when all loaders are bound;
/// SWIFTRCU_EPERM on a thread that is exiting. *loader_out is set to NULL on failure.
@c(swiftrcu_loader_bind)
public func swiftrcu_loader_bind(
    _ ptr: swiftrcu_const_ptr_ref?, _ retain: swiftrcu_retain_fn?, _ if_null: UnsafeMutableRawPointer?,
    _ loader_out: UnsafeMutablePointer<swiftrcu_loader_fn?>?
) -> CInt {
    guard let loader_out else { return status(.invalidArgument) }
    loader_out.pointee = nil
    guard let retain else { return status(.invalidArgument) }
    let handle = UInt(bitPattern: ptr)
    guard let live = ReadSide.withInternalSection({ HandleTable.lookup(handle, .ptr) != nil }) else {
        return status(.notPermitted)
    }
    guard live else { return status(.invalidArgument) }
    guard let loader = rcuabi_loader_bind(handle, retain, if_null, boundLoad) else {
        return status(.outOfMemory)
    }
    loader_out.pointee = loader
    return 0
}

/// Unbinds a loader returned by swiftrcu_loader_bind, so its slot can be bound again.
///
/// Returns SWIFTRCU_OK; SWIFTRCU_EINVAL for NULL, a function that is not a loader of this library,
/// or a loader that is not bound (already unbound).
@c(swiftrcu_loader_unbind)
public func swiftrcu_loader_unbind(_ loader: swiftrcu_loader_fn?) -> CInt {
    rcuabi_loader_unbind(loader) == 0 ? 0 : status(.invalidArgument)
}

/// The C face of the cell's writer sequence (`PointerCell.write`), shared by replace and
/// copy_update: inside an internal read section (which keeps the ptr's slot alive), refuse a stale
/// ptr and a re-entrant write, reserve a slot for the old handle, then run the cell's write with
/// `next` (refused when waiting for the writer lock would deadlock; if the thread exits inside
/// `next`, its exit handler returns the reserved slot). The previous object goes to a new old
/// handle in *old_out; when nothing was unpublished the reserved slot goes back.
@inline(__always)
private func write(
    _ ptr: swiftrcu_ptr_ref, _ old_out: UnsafeMutablePointer<swiftrcu_old_ref?>, _ next: (UInt) -> UInt
) -> CInt {
    let result: CInt? = ReadSide.withInternalSection {
        guard let slot = HandleTable.lookup(bits(ptr), .ptr) else { return status(.invalidArgument) }
        let cell = slot.cell
        guard !cell.isWriterHeldByCurrentThread else { return status(.deadlock) }
        guard let old = HandleTable.reserve(.old) else { return status(.outOfMemory) }
        guard let previous = cell.write(abandon: abandonOldSlot, argument: old.handle, next) else {
            HandleTable.release(old.handle)
            return status(.deadlock)
        }
        guard previous != 0 else {
            HandleTable.release(old.slot)
            return SWIFTRCU_OK
        }
        // The reserved slot is ours until `publish` releases it with the stamp.
        cell.retire(previous, into: rcuabi_slot_retired(old.slot))
        HandleTable.publish(old.slot, old.handle)
        old_out.pointee = OpaquePointer(bitPattern: old.handle)
        return SWIFTRCU_OK
    }
    return result ?? status(.notPermitted)
}

/// Publishes new_object (may be NULL); *old_out gets the previous object's old handle, or NULL
/// when it was NULL. Publishing the object ptr publishes now changes nothing and gives
/// *old_out == NULL (as a copy_update that returns current does): that object stays published.
///
/// Readers that already dereferenced keep the previous object; later readers see the new one. Safe
/// with concurrent writers on the same ptr (serialised inside) and any number of readers. Never
/// waits for a grace period, so it is allowed inside a read section.
///
/// Returns SWIFTRCU_OK; SWIFTRCU_EINVAL for a NULL or stale ptr or a NULL old_out;
/// SWIFTRCU_EDEADLK from inside this ptr's own copy_update callback, or when waiting for ptr's
/// writer lock would deadlock (its holder waits, directly or through other writers, for a writer
/// lock the caller holds: see swiftrcu_copy_update); SWIFTRCU_ENOMEM; SWIFTRCU_EPERM on a thread
/// that is exiting (its thread-exit handlers are running). On any error nothing is published and
/// *old_out (when old_out is not NULL) is set to NULL.
@c(swiftrcu_replace)
@discardableResult
public func swiftrcu_replace(
    _ ptr: swiftrcu_ptr_ref?, _ new_object: UnsafeMutableRawPointer?,
    _ old_out: UnsafeMutablePointer<swiftrcu_old_ref?>?
) -> CInt {
    guard let old_out else { return status(.invalidArgument) }
    old_out.pointee = nil
    guard let ptr else { return status(.invalidArgument) }
    // Publishing the current object again changes nothing (the cell publishes nothing then).
    return write(ptr, old_out) { _ in UInt(bitPattern: new_object) }
}

/// Calls update(current, context) with the ptr's other writers excluded and publishes the result
/// like swiftrcu_replace. If update returns current itself, nothing changes and *old_out is
/// NULL.
///
/// update runs inside a read-side critical section: calls that wait for a grace period (free,
/// old_free, synchronize, barrier) return SWIFTRCU_EDEADLK there, and replace / copy_update / free
/// on the same ptr return SWIFTRCU_EDEADLK. Writing another ptr works, except where it would wait
/// for ever: a write that would wait for a writer lock whose holder waits, directly or through
/// other writers, for a writer lock the caller holds (thread 1 in copy_update(A) writes B while
/// thread 2 in copy_update(B) writes A) is refused with SWIFTRCU_EDEADLK, changing nothing; the
/// other writer of the cycle then goes on. Never waits for a grace period itself, so it is allowed
/// inside a read section.
///
/// update must return normally: longjmp out of it is forbidden (the writer lock and the read
/// section would stay held, and every later writer and grace period would wait for ever). A thread
/// that exits inside it (pthread_exit, or cancellation at a cancellation point) has the writer lock
/// released by its thread-exit handler and the reserved old handle slot returned; its update is
/// abandoned (nothing is published, whatever update had built is not destroyed by the library).
///
/// Returns SWIFTRCU_OK; SWIFTRCU_EINVAL for a NULL or stale ptr, a NULL update or a NULL
/// old_out; SWIFTRCU_EDEADLK from inside this ptr's own copy_update callback, or when waiting for
/// the writer lock would deadlock (see above; update was not called); SWIFTRCU_ENOMEM (then update
/// was not called); SWIFTRCU_EPERM on a thread that is exiting. On any error *old_out (when not
/// NULL) is set to NULL.
@c(swiftrcu_copy_update)
@discardableResult
public func swiftrcu_copy_update(
    _ ptr: swiftrcu_ptr_ref?, _ update: swiftrcu_update_fn?, _ context: UnsafeMutableRawPointer?,
    _ old_out: UnsafeMutablePointer<swiftrcu_old_ref?>?
) -> CInt {
    guard let old_out else { return status(.invalidArgument) }
    old_out.pointee = nil
    guard let ptr, let update else { return status(.invalidArgument) }
    return write(ptr, old_out) { current in
        UInt(bitPattern: update(UnsafeRawPointer(bitPattern: current), context))
    }
}

/// Returns the unpublished object of old; NULL for NULL or a stale handle, and on a thread that is
/// exiting (the handle stays live there: another thread can read and free it). The object stays
/// valid until the old handle is freed or deferred.
@c(swiftrcu_old_object)
public func swiftrcu_old_object(_ old: swiftrcu_const_old_ref?) -> UnsafeMutableRawPointer? {
    guard let old, rcushim_ready_self() != nil else { return nil } // NULL, or the thread is exiting
    let handle = UInt(bitPattern: old)
    guard let slot = HandleTable.lookup(handle, .old) else { return nil }
    // SAFETY: a live old slot holds its retired record, written before the stamp's release. A
    // deferred old's slot is reused at once (swiftrcu_old_defer), so a racing defer may hand it
    // to the next old: the object word is read atomically, and kept only if the stamp still
    // carries this handle after the read.
    let object = UnsafeMutableRawPointer(rcucore_retired_object(rcuabi_slot_retired(slot)))
        .assumingMemoryBound(to: Atomic<UInt>.self).pointee.load(ordering: .relaxed)
    // Ordering: the acquire fence pairs with the release store of a record's object word
    // (PointerCell.retire): if the read above saw a later owner's object, the stamp's change
    // (retiring this handle came before that store) is visible to the second load.
    atomicMemoryFence(ordering: .acquiring)
    guard slot.stamp.pointee.load(ordering: .relaxed) == UInt64(handle) else { return nil }
    return UnsafeMutableRawPointer(bitPattern: object)
}

/// Retires old and returns its slot, which is the caller's from then on; nil when it is not a
/// live old handle.
///
/// Needs no read section: slots are never freed, nothing of the slot is read before the retiring
/// exchange, and that exchange succeeds only while the slot still carries this very handle
/// (its generation included), after which no one else can retire or release it.
private func retireOld(_ old: swiftrcu_old_ref) -> UnsafeMutablePointer<HandleSlot>? {
    let handle = UInt(bitPattern: old)
    guard let slot = HandleTable.lookup(handle, .old), HandleTable.retire(slot, handle) else { return nil }
    return slot
}

/// Destroys the object of a retired old slot (owned by the caller) with its destroy function.
@inline(__always)
func destroyOld(_ slot: UnsafeMutablePointer<HandleSlot>) {
    // SAFETY: the retiring exchange (acquire) ordered the record for the retiring thread, and
    // whoever runs this later was handed the slot by it (call_rcu's own ordering).
    destroyRetired(rcuabi_slot_retired(slot))
}

/// Waits for a grace period, destroys the object of old and releases the old handle.
///
/// Returns SWIFTRCU_OK; SWIFTRCU_EINVAL for NULL or a stale handle (already freed or deferred);
/// SWIFTRCU_EDEADLK inside a read-side critical section, changing nothing: the old handle stays
/// the caller's and can be freed later; SWIFTRCU_EPERM, changing nothing likewise, on a thread
/// that is exiting or where grace periods are refused (see swiftrcu_synchronize).
@c(swiftrcu_old_free)
@discardableResult
public func swiftrcu_old_free(_ old: swiftrcu_old_ref?) -> CInt {
    guard let old else { return status(.invalidArgument) }
    guard !ReadSide.isInSection else { return status(.deadlock) }
    guard rcushim_grace_periods_refused() == 0 else { return status(.notPermitted) }
    guard rcushim_ready_self() != nil else { return status(.notPermitted) } // the thread is exiting
    guard let slot = retireOld(old) else { return status(.invalidArgument) }
    _ = releaseAfterGracePeriod(rcuabi_slot_retired(slot)) // not refused: checked above
    HandleTable.release(slot)
    return SWIFTRCU_OK
}

/// Returns the old slot a writer had reserved when its thread exits inside copy_update.
private let abandonOldSlot: @convention(c) (UInt) -> Void = { HandleTable.release($0) }

/// Hands old over: its object is destroyed after a grace period, asynchronously (call_rcu), on a
/// liburcu call_rcu thread. Never waits for a grace period; allowed inside a read section.
///
/// Memory stays bounded under a sustained stream of calls made outside read sections: past 65536
/// pending destroys (in the process) the library asks liburcu for one call_rcu worker per CPU,
/// and past 262144 a caller outside any read section pauses (at most 10 ms per call) until fewer
/// than half that many are pending. Inside a read section no destroy can complete and the caller
/// cannot be paused, so the queue grows with every call: there, past a hard limit of 2097152
/// pending destroys, old_defer refuses with SWIFTRCU_ENOMEM (changing nothing: the old handle
/// stays the caller's, to be freed or deferred once the section has ended). Releases that cannot
/// report an error (the Swift API's RcuOld, dropped inside a section) are exempt from the limit.
///
/// Returns SWIFTRCU_OK; SWIFTRCU_EINVAL for NULL or a stale handle (already freed or deferred);
/// SWIFTRCU_ENOMEM inside a read section past the hard limit; SWIFTRCU_EPERM, changing nothing,
/// on a thread that is exiting.
@c(swiftrcu_old_defer)
@discardableResult
public func swiftrcu_old_defer(_ old: swiftrcu_old_ref?) -> CInt {
    guard let old else { return status(.invalidArgument) }
    if ReadSide.isInSection, rcushim_deferred_pending() >= UInt64(RCUSHIM_DEFER_HARD_LIMIT) {
        return status(.outOfMemory)
    }
    guard rcushim_ready_self() != nil else { return status(.notPermitted) } // the thread is exiting
    guard let slot = retireOld(old) else { return status(.invalidArgument) }
    // SAFETY: the slot is ours since the retiring exchange (acquire), which ordered its record.
    let record = rcuabi_slot_retired(slot)
    if DeferredBatches.add(object: record.pointee.object, destroy: record.pointee.destroy, context: record.pointee.context) {
        // The record goes on in the batch (one call_rcu per batch), so the slot is free at once,
        // still in this thread's cache: no lookup of the retired handle matches it any more, and
        // swiftrcu_old_object checks the stamp again after reading a record.
        HandleTable.release(slot)
    } else {
        // No memory for a batch block: the slot's own record waits for its grace period.
        enqueueDeferred(rcuabi_slot_head(slot), deferredOldCallback)
    }
    return SWIFTRCU_OK
}

/// The call_rcu callback of an old handle deferred on its own (see swiftrcu_old_defer).
private let deferredOldCallback: DeferredCallback = { head in
    // SAFETY: liburcu hands back the head swiftrcu_old_defer queued: that of a retired old slot,
    // which nothing else uses until it is released here.
    let slot: UnsafeMutablePointer<HandleSlot> = rcuabi_slot_of_head(head)
    runDeferred { destroyOld(slot) }
    HandleTable.release(slot)
}

/// Retires any object: destroy(object, context) runs after a grace period, asynchronously, on a
/// liburcu call_rcu thread (the library keeps it in a batch block of 64 words: one word when its
/// destroy and context are those of the block's first entry, else three; or else in a small record
/// of its own). For objects the program unpublished
/// itself, outside any swiftrcu_ptr. Never waits for a grace period; allowed inside a read section
/// and inside a destroy that runs deferred. swiftrcu_barrier() waits for it, and it follows
/// swiftrcu_old_defer()'s memory rules (the pending count and the pause past 262144).
///
/// Returns SWIFTRCU_OK; SWIFTRCU_EINVAL for a NULL object or destroy (context may be NULL);
/// SWIFTRCU_ENOMEM, queueing nothing, when neither can be allocated.
@c(swiftrcu_retire)
public func swiftrcu_retire(
    _ object: UnsafeMutableRawPointer?, _ destroy: swiftrcu_destroy_fn?, _ context: UnsafeMutableRawPointer?
) -> CInt {
    guard let object, let destroy else { return status(.invalidArgument) }
    return deferDestroy(object: object, destroy: destroy, context: context) ? SWIFTRCU_OK : status(.outOfMemory)
}

/// Calls fn(head) after a grace period, asynchronously, on a liburcu call_rcu thread, allocating
/// nothing: head is a node embedded in the caller's object (as liburcu's call_rcu). The node
/// belongs to the library until fn starts: do not modify it or pass it again before then (the
/// library cannot tell and would queue it twice). fn usually frees the object around head.
/// Never waits for a grace period; allowed inside a read section and inside a function that runs
/// deferred. swiftrcu_barrier() waits for it, and it follows swiftrcu_old_defer()'s memory rules.
///
/// Returns SWIFTRCU_OK, or SWIFTRCU_EINVAL for a NULL head or fn.
@c(swiftrcu_call)
@discardableResult
public func swiftrcu_call(_ head: UnsafeMutablePointer<swiftrcu_head>?, _ fn: swiftrcu_call_fn?) -> CInt {
    guard let head, let fn else { return status(.invalidArgument) }
    // A swiftrcu_head is four pointers, pointer-aligned: room for the core's node.
    assert(MemoryLayout<swiftrcu_head>.size >= deferredCallNodeSize)
    // SAFETY: fn takes one pointer and returns nothing, as NodeFunction does (same C signature,
    // only the pointee's type differs); head is the caller's node (see above).
    deferCall(in: UnsafeMutableRawPointer(head), unsafeBitCast(fn, to: NodeFunction.self))
    return SWIFTRCU_OK
}

/// Waits for a grace period: every read-side critical section open when the call began has ended
/// when it returns.
///
/// Grace periods are refused in a process forked by a thread inside a read-side critical section
/// while another thread waited for a grace period (which may have been waiting for the forking
/// thread, so fork does not wait for it): liburcu's grace-period lock, and maybe its registry
/// lock, are held there by a thread that does not exist. There (and in its own forked children)
/// every call that would wait for a grace period (swiftrcu_free, swiftrcu_old_free, this,
/// swiftrcu_barrier) returns SWIFTRCU_EPERM at once, changing nothing; a thread's first
/// registration is refused (swiftrcu_thread_register returns SWIFTRCU_EPERM, swiftrcu_read_lock a
/// zeroed guard), liburcu's unregistration at thread exit is skipped, and deferred destroys never
/// run. The forking thread keeps its sections and can still read, replace and copy_update.
///
/// Returns SWIFTRCU_OK; SWIFTRCU_EDEADLK inside a read-side critical section; SWIFTRCU_EPERM
/// where grace periods are refused (see above).
@c(swiftrcu_synchronize)
@discardableResult
public func swiftrcu_synchronize() -> CInt {
    guard !ReadSide.isInSection else { return status(.deadlock) }
    guard waitForGracePeriod() else { return status(.notPermitted) }
    return SWIFTRCU_OK
}

/// Waits until every destroy requested by swiftrcu_old_defer() before the call has run.
///
/// Returns SWIFTRCU_OK; SWIFTRCU_EDEADLK inside a read-side critical section or from a destroy
/// function that is running deferred; SWIFTRCU_EPERM where grace periods are refused (see
/// swiftrcu_synchronize).
@c(swiftrcu_barrier)
@discardableResult
public func swiftrcu_barrier() -> CInt {
    guard !ReadSide.isInSection, !ReadSide.isInDeferredCallback else { return status(.deadlock) }
    guard rcushim_grace_periods_refused() == 0 else { return status(.notPermitted) }
    waitForDeferred() // queues the batched old handles first (DeferredBatches.flushAll)
    return SWIFTRCU_OK
}

/// Prepares a fork() that the calling thread is about to make: waits until no grace-period wait of
/// this library is in progress, and keeps new ones from starting until that fork, so the library's
/// fork handler then waits for none. For bindings whose threads may need, to leave their read-side
/// sections, a lock that the forking thread holds while it forks (Python's interpreter lock): call
/// it with that lock released, right before fork(). Calling it again before the fork does nothing.
///
/// Must be followed by fork() on the same thread (the fork handlers undo it, also when fork fails):
/// until then every grace-period wait in the process except this thread's waits.
///
/// Returns SWIFTRCU_OK; SWIFTRCU_EDEADLK, waiting for nothing, inside a read-side critical section.
@c(swiftrcu_prepare_fork)
@discardableResult
public func swiftrcu_prepare_fork() -> CInt {
    guard !ReadSide.isInSection else { return status(.deadlock) }
    rcushim_prepare_fork()
    return SWIFTRCU_OK
}

/// Registers the calling thread with liburcu now (read_lock does it on first use). Registering a
/// registered thread does nothing. A thread the program registered with liburcu-memb itself is
/// adopted, never registered twice.
///
/// Returns SWIFTRCU_OK, or SWIFTRCU_EPERM on a thread that is exiting, and for a thread's first
/// registration where grace periods are refused (see swiftrcu_synchronize).
@c(swiftrcu_thread_register)
@discardableResult
public func swiftrcu_thread_register() -> CInt {
    ReadSide.register() ? SWIFTRCU_OK : status(.notPermitted)
}

/// Undoes the library's registration of the calling thread (an adopted registration is left to the
/// program). Not needed before a thread exits. Unregistering an unregistered thread does nothing.
///
/// Returns SWIFTRCU_OK, or SWIFTRCU_EPERM, changing nothing, inside a read-side critical section.
@c(swiftrcu_thread_unregister)
@discardableResult
public func swiftrcu_thread_unregister() -> CInt {
    ReadSide.unregister() ? SWIFTRCU_OK : status(.notPermitted)
}
