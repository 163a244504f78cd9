/*
 * swiftrcu.hpp - SwiftRCU for C++: the C++26 <rcu> names today, and a typed owning pointer.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Header-only, C++17 (unchanged in C++20 and C++23), over the C ABI of <swiftrcu.h>.
 * Build:  c++ -std=c++17 app.cpp $(pkg-config --cflags --libs swiftrcu)
 *         or CMake: find_package(swiftrcu 0.1 REQUIRED), target_link_libraries(app swiftrcu::swiftrcu)
 *
 * TWO LAYERS, ONE NAMESPACE (swiftrcu)
 *   1. The names and semantics of C++26's <rcu> ([saferecl.rcu]): rcu_domain (a Lockable: a
 *      std::scoped_lock on rcu_default_domain() is a read-side critical section), rcu_synchronize,
 *      rcu_barrier, rcu_retire and rcu_obj_base. Code written for std:: compiles against swiftrcu::
 *      by changing the namespace (`namespace rcu = swiftrcu;`). Where the standard leaves the
 *      behaviour undefined or lets the program deadlock, these functions write one line naming the
 *      misuse to stderr and call std::abort() (they are noexcept):
 *        - rcu_synchronize() or rcu_barrier() inside a region of RCU protection;
 *        - rcu_barrier() from a deleter that runs deferred;
 *        - rcu_domain::unlock() when the calling thread's innermost section is not a region
 *          opened by lock() (none open, or a read_guard's is innermost);
 *        - rcu_domain::lock() past 255 nested sections, or on a thread that is exiting
 *          (try_lock() returns false there instead).
 *   2. A typed layer in the shape of the kernel's Rust Rcu<P> / RcuOld<P>: ptr<T, D> (owning,
 *      move-only), old<T, D> (an unpublished object), read_guard (RAII read section), error, and
 *      the throwing synchronize() / barrier().
 *
 * EXCEPTIONS
 *   swiftrcu::error (a std::system_error) carries the SWIFTRCU_* status (status()); what()
 *   includes swiftrcu_strerror's text. Out of memory throws std::bad_alloc. A deleter that throws
 *   while running deferred (on a liburcu call_rcu thread) ends the program through std::terminate.
 *
 * THREADS
 *   Any thread may call anything. A region or a read_guard belongs to the thread that opened it;
 *   sections nest, regions and read_guards in one stack per thread, closed innermost first.
 *   Concurrent writers of one ptr (replace, copy_update) are serialised inside the library;
 *   destroying or moving a ptr while other threads use it is a data race, as for any object.
 */
#ifndef SWIFTRCU_HPP
#define SWIFTRCU_HPP

#include "swiftrcu.h"

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include <pthread.h>
#if defined(__GLIBCXX__)
#include <cxxabi.h>
#endif

namespace swiftrcu {

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

namespace detail {

/* The error category of the SWIFTRCU_* status codes; messages come from swiftrcu_strerror. */
class category_impl final : public std::error_category {
public:
    const char *name() const noexcept override { return "swiftrcu"; }
    std::string message(int status) const override { return swiftrcu_strerror(status); }
    std::error_condition default_error_condition(int status) const noexcept override {
        switch (status) {
        case SWIFTRCU_EINVAL: return std::errc::invalid_argument;
        case SWIFTRCU_EPERM: return std::errc::operation_not_permitted;
        case SWIFTRCU_EDEADLK: return std::errc::resource_deadlock_would_occur;
        case SWIFTRCU_ENOMEM: return std::errc::not_enough_memory;
        default: return std::error_condition(status, *this);
        }
    }
};

} // namespace detail

/** The category of swiftrcu::error's codes (values are the SWIFTRCU_* status codes). */
inline const std::error_category &error_category() noexcept {
    static const detail::category_impl category;
    return category;
}

/** A refusal of the library: status() is the SWIFTRCU_* code; what() names the call and includes
 *  swiftrcu_strerror(status()). Equivalent std::errc conditions compare equal to code(). */
class error : public std::system_error {
public:
    explicit error(int status, const char *what = "swiftrcu") : std::system_error(status, error_category(), what) {}
    int status() const noexcept { return code().value(); }
};

namespace detail {

/* Throws for a nonzero status: std::bad_alloc for SWIFTRCU_ENOMEM, else swiftrcu::error. */
inline void check(int status, const char *what) {
    if (status == SWIFTRCU_OK)
        return;
    if (status == SWIFTRCU_ENOMEM)
        throw std::bad_alloc();
    throw error(status, what);
}

/* The end of a noexcept function that met a misuse: one line on stderr, then abort(). */
[[noreturn]] inline void fail(const char *where, const char *misuse, int status) noexcept {
    std::fprintf(stderr, "swiftrcu: %s: %s (%s)\n", where, misuse, swiftrcu_strerror(status));
    std::fflush(stderr);
    std::abort();
}

/* Whether a deleter needs no storage: an empty, trivially copyable, default-constructible class
 * (std::default_delete) has no state, so a default-constructed one does what a copy would. */
template <class D>
constexpr bool stateless_v =
    std::is_empty_v<D> && std::is_trivially_copyable_v<D> && std::is_default_constructible_v<D>;

/*
 * A node for swiftrcu_call that also keeps a deleter: the head first, then room for one D,
 * constructed only when put there (so D need not be default constructible); no room at all for
 * a stateless D. Standard layout with `head` first, so the swiftrcu_head * the library hands
 * back converts to the node.
 * Invariants: `bytes` holds a D between put() and take(), and nothing otherwise.
 */
template <class D, bool = stateless_v<D>>
struct call_node {
    swiftrcu_head head;
    alignas(D) unsigned char bytes[sizeof(D)];

    void put(D &&d) noexcept(std::is_nothrow_move_constructible_v<D>) {
        ::new (static_cast<void *>(bytes)) D(std::move(d));
    }
    D take() noexcept(std::is_nothrow_move_constructible_v<D>) {
        // SAFETY: put() constructed a D in `bytes` (type invariant); launder names that object.
        D *stored = std::launder(reinterpret_cast<D *>(bytes));
        D d(std::move(*stored));
        stored->~D();
        return d;
    }
};

template <class D>
struct call_node<D, true> {
    swiftrcu_head head;

    void put(D &&) noexcept {}
    D take() noexcept { return D(); }
};

/* What rcu_retire allocates for a deleter with state (or a null pointer): a node and the object.
 * Standard layout with the node first. */
template <class T, class D>
struct retire_node {
    call_node<D> node;
    T *object;

    static void run(swiftrcu_head *head) noexcept {
        // SAFETY: head is the first member of the first member of a standard-layout
        // retire_node that rcu_retire allocated and queued once; it is ours again now.
        std::unique_ptr<retire_node> n(reinterpret_cast<retire_node *>(head));
        D d = n->node.take();
        T *object = n->object;
        n.reset();
        d(object);
    }
};

} // namespace detail

// ---------------------------------------------------------------------------------------------
// The C++26 <rcu> names
// ---------------------------------------------------------------------------------------------

/**
 * The RCU domain: a Cpp17Lockable whose lock() opens a region of RCU protection (a read-side
 * critical section) on the calling thread and whose unlock() closes the region the calling thread
 * opened last. There is one domain, rcu_default_domain(). Regions nest, also with read_guards.
 */
class rcu_domain {
public:
    rcu_domain(const rcu_domain &) = delete;
    rcu_domain &operator=(const rcu_domain &) = delete;

    /** Opens a region. Aborts (with a message) past 255 nested sections or on an exiting thread. */
    void lock() noexcept {
        int status = swiftrcu_region_enter();
        if (status != SWIFTRCU_OK)
            detail::fail("rcu_domain::lock()", "cannot open a region: 255 nested sections, or the thread is exiting", status);
    }

    /** Opens a region and returns true; false, opening nothing, where lock() would abort. */
    bool try_lock() noexcept { return swiftrcu_region_enter() == SWIFTRCU_OK; }

    /** Closes the region the calling thread opened last. Aborts (with a message) when the thread's
     *  innermost section is not such a region: none open, or a read_guard's is innermost. */
    void unlock() noexcept {
        int status = swiftrcu_region_exit();
        if (status != SWIFTRCU_OK)
            detail::fail("rcu_domain::unlock()",
                         swiftrcu_in_read_section() ? "the innermost read-side section is not a region opened by lock()"
                                                    : "no region of RCU protection is open on this thread",
                         status);
    }

private:
    constexpr rcu_domain() noexcept = default;
    friend rcu_domain &rcu_default_domain() noexcept;
};

/** The default (and only) domain. */
inline rcu_domain &rcu_default_domain() noexcept {
    static rcu_domain domain;
    return domain;
}

/** Waits for a grace period: every region open when the call began has ended when it returns.
 *  Aborts (with a message) inside a region of RCU protection, where it would wait forever. */
inline void rcu_synchronize(rcu_domain &dom = rcu_default_domain()) noexcept {
    (void)dom;
    int status = swiftrcu_synchronize();
    if (status != SWIFTRCU_OK)
        detail::fail("rcu_synchronize()", "called inside a region of RCU protection: it would wait forever", status);
}

/** Waits until every deleter retired before the call has run (rcu_retire, rcu_obj_base::retire,
 *  and the library's other deferred destroys). Aborts (with a message) inside a region of RCU
 *  protection or from a deleter running deferred, where it would wait forever. */
inline void rcu_barrier(rcu_domain &dom = rcu_default_domain()) noexcept {
    (void)dom;
    int status = swiftrcu_barrier();
    if (status != SWIFTRCU_OK)
        detail::fail("rcu_barrier()",
                     swiftrcu_in_read_section() ? "called inside a region of RCU protection: it would wait forever"
                                                : "called from a deleter running deferred: it would wait for itself",
                     status);
}

/**
 * Schedules d(p) to run after a grace period, asynchronously (on a liburcu call_rcu thread);
 * rcu_barrier() waits for it. Never waits itself, so it is allowed inside a region. May throw
 * std::bad_alloc (it allocates a small record; a stateless deleter such as std::default_delete
 * needs no C++ allocation).
 */
template <class T, class D = std::default_delete<T>>
void rcu_retire(T *p, D d = D(), rcu_domain &dom = rcu_default_domain()) {
    static_assert(std::is_move_constructible_v<D>, "rcu_retire: D must be move constructible");
    (void)dom;
    if constexpr (detail::stateless_v<D>) {
        if (p != nullptr) {
            (void)d;
            auto destroy = [](void *object, void *) noexcept { D()(static_cast<T *>(object)); };
            detail::check(swiftrcu_retire(const_cast<void *>(static_cast<const volatile void *>(p)), destroy, nullptr),
                          "swiftrcu::rcu_retire");
            return;
        }
    }
    auto n = std::make_unique<detail::retire_node<T, D>>();
    n->node.put(std::move(d));
    n->object = p;
    // Never fails: both arguments are non-NULL. The node is the library's until run() starts.
    (void)swiftrcu_call(&n.release()->node.head, &detail::retire_node<T, D>::run);
}

/**
 * A base for objects that retire themselves: class X : public rcu_obj_base<X> { ... };
 * x->retire() schedules d(x) after a grace period, asynchronously, without allocating (the base
 * carries the node, as liburcu's rcu_head does). rcu_barrier() waits for it.
 *
 * Invariants: `node_` is the only member (so the class is standard layout and a pointer to its
 * node's head converts back to the object); the node holds a D from retire() until the deferred
 * call takes it.
 */
template <class T, class D = std::default_delete<T>>
class rcu_obj_base {
public:
    /** Schedules d(static_cast<T *>(this)) after a grace period. Call at most once per object,
     *  and touch the object no more afterwards. Allowed inside a region. */
    void retire(D d = D(), rcu_domain &dom = rcu_default_domain()) noexcept {
        (void)dom;
        node_.put(std::move(d));
        // Never fails: both arguments are non-NULL.
        (void)swiftrcu_call(&node_.head, &rcu_obj_base::run);
    }

protected:
    rcu_obj_base() = default;
    rcu_obj_base(const rcu_obj_base &) = default;
    rcu_obj_base(rcu_obj_base &&) = default;
    rcu_obj_base &operator=(const rcu_obj_base &) = default;
    rcu_obj_base &operator=(rcu_obj_base &&) = default;
    ~rcu_obj_base() = default;

private:
    detail::call_node<D> node_;

    static void run(swiftrcu_head *head) noexcept {
        // SAFETY: head is the first member of node_, the only member of this standard-layout
        // class, and retire() queued it once: the object is alive until d runs.
        auto *base = reinterpret_cast<rcu_obj_base *>(reinterpret_cast<detail::call_node<D> *>(head));
        D d = base->node_.take();
        d(static_cast<T *>(base));
    }
};

// ---------------------------------------------------------------------------------------------
// The typed layer
// ---------------------------------------------------------------------------------------------

/** Waits for a grace period. Throws swiftrcu::error (SWIFTRCU_EDEADLK) inside a read section. */
inline void synchronize() { detail::check(swiftrcu_synchronize(), "swiftrcu::synchronize"); }

/** Waits for every deferred destroy requested before the call. Throws swiftrcu::error
 *  (SWIFTRCU_EDEADLK) inside a read section or from a destroy running deferred. */
inline void barrier() { detail::check(swiftrcu_barrier(), "swiftrcu::barrier"); }

/** The library's statistics (swiftrcu_stats_get(); the fields are described at swiftrcu_stats in
 *  swiftrcu_types.h): counted since libswiftrcu.so was loaded, read one at a time (not a
 *  snapshot). A counter the loaded library does not fill (one older than this header) reads 0. */
inline swiftrcu_stats stats() noexcept {
    swiftrcu_stats s{};
    s.size = sizeof s;
    int status = swiftrcu_stats_get(&s); // a full-size, non-NULL struct: cannot be refused
    (void)status;
    return s;
}

template <class T, class D>
class ptr;

/**
 * A read-side critical section, open for the guard's lifetime (RAII); not copyable or movable.
 * Guards nest (also with rcu_domain regions) and must end innermost first, as scopes do.
 * Throws swiftrcu::error (SWIFTRCU_EPERM) when no section can be opened (255 nested sections,
 * or the thread is exiting). Destroying a guard whose section is not the thread's innermost
 * (a region opened by rcu_domain::lock() inside it is still open) aborts with a message.
 *
 * Invariants: `guard_` is the C guard of a section the constructing thread holds, from the
 * constructor to the destructor (which is why the guard can be neither copied nor moved).
 */
class read_guard {
public:
    read_guard() : guard_(swiftrcu_read_lock()) { check_entered(); }
    read_guard(const read_guard &) = delete;
    read_guard &operator=(const read_guard &) = delete;
    ~read_guard() {
        int status = swiftrcu_read_unlock(&guard_);
        if (status != SWIFTRCU_OK)
            detail::fail("swiftrcu::read_guard::~read_guard()",
                         "its section is not the thread's innermost (a region opened inside it is still open)", status);
    }

private:
    template <class T, class D>
    friend class ptr;
    swiftrcu_guard guard_;

    /* Enters and dereferences in one call (ptr::read); *object gets what handle publishes. */
    read_guard(const swiftrcu_ptr *handle, void **object) {
        *object = swiftrcu_read_lock_dereference(handle, &guard_);
        check_entered();
    }

    /* A zeroed guard is how read_lock says it entered nothing. */
    void check_entered() {
        if ((guard_._private[0] | guard_._private[1]) == 0)
            throw error(SWIFTRCU_EPERM, "swiftrcu::read_guard: 255 nested sections, or the thread is exiting");
    }
};

/**
 * An object unpublished by ptr::replace or ptr::copy_update, which readers that found it earlier
 * may still use (the kernel's RcuOld<P>). Move-only; empty (false) when nothing was unpublished.
 * free() waits for a grace period and destroys the object with the ptr's deleter; defer() does
 * the same asynchronously. The destructor frees, or defers when the thread is inside a read
 * section (where the wait could never end).
 *
 * Invariants: `handle_` is NULL or a live old handle this object owns; `object_` is its object.
 */
template <class T, class D = std::default_delete<T>>
class old {
public:
    old() noexcept = default;
    old(old &&other) noexcept
        : handle_(std::exchange(other.handle_, nullptr)), object_(std::exchange(other.object_, nullptr)) {}
    old &operator=(old &&other) noexcept {
        if (this != &other) {
            release();
            handle_ = std::exchange(other.handle_, nullptr);
            object_ = std::exchange(other.object_, nullptr);
        }
        return *this;
    }
    old(const old &) = delete;
    old &operator=(const old &) = delete;
    ~old() { release(); }

    /** The unpublished object (nullptr when empty). */
    T *get() const noexcept { return object_; }
    explicit operator bool() const noexcept { return handle_ != nullptr; }

    /** Waits for a grace period, then destroys the object; empty afterwards. Does nothing when
     *  empty. Throws swiftrcu::error (SWIFTRCU_EDEADLK), changing nothing, inside a read section. */
    void free() {
        if (handle_ == nullptr)
            return;
        detail::check(swiftrcu_old_free(handle_), "swiftrcu::old::free");
        handle_ = nullptr;
        object_ = nullptr;
    }

    /** Destroys the object after a grace period, asynchronously (barrier() waits for it); empty
     *  afterwards. Never waits; allowed inside a read section. Does nothing when empty. */
    void defer() noexcept {
        if (handle_ == nullptr)
            return;
        (void)swiftrcu_old_defer(handle_); // a live handle of ours: never refused
        handle_ = nullptr;
        object_ = nullptr;
    }

private:
    template <class, class>
    friend class ptr;
    swiftrcu_old *handle_ = nullptr;
    T *object_ = nullptr;

    explicit old(swiftrcu_old *handle) noexcept
        : handle_(handle), object_(handle ? static_cast<T *>(swiftrcu_old_object(handle)) : nullptr) {}

    void release() noexcept {
        if (handle_ == nullptr)
            return;
        if (swiftrcu_in_read_section() || swiftrcu_old_free(handle_) != SWIFTRCU_OK)
            (void)swiftrcu_old_defer(handle_);
        handle_ = nullptr;
        object_ = nullptr;
    }
};

namespace detail {

/* The deleter of a ptr with state, shared by the ptr and every object it published, so deferred
 * destroys can still use it after the ptr is gone.
 * Invariants: `references` counts the ptr (until it is freed) and each non-null object it
 * published that is not yet destroyed; the block is deleted when it reaches 0. */
template <class T, class D>
struct deleter_block {
    D deleter;
    std::atomic<std::size_t> references;

    void retain() noexcept {
        // Ordering: relaxed; a new reference is taken from one the caller already holds.
        references.fetch_add(1, std::memory_order_relaxed);
    }
    void release() noexcept {
        // Ordering: acq_rel; the last release sees every other holder's use of the deleter.
        if (references.fetch_sub(1, std::memory_order_acq_rel) == 1)
            delete this;
    }
};

/* What a ptr keeps besides its handle: a node for freeing it asynchronously, and the deleter
 * block (NULL for a stateless deleter). Standard layout with `head` first.
 * Invariants: `handle` is the ptr's live handle; `block` holds the ptr's reference. */
template <class T, class D>
struct ptr_cell {
    swiftrcu_head head;
    swiftrcu_ptr *handle;
    deleter_block<T, D> *block;

    void finish() noexcept {
        if (block != nullptr)
            block->release();
        delete this;
    }

    /* Frees the ptr from a liburcu call_rcu thread (outside any read section there). */
    static void free_later(swiftrcu_head *head) noexcept {
        // SAFETY: head is the first member of a standard-layout ptr_cell queued once by ~ptr.
        auto *cell = reinterpret_cast<ptr_cell *>(head);
        (void)swiftrcu_free(cell->handle);
        cell->finish();
    }
};

} // namespace detail

/**
 * An RCU-protected owning pointer to a T (the kernel's Rcu<P>): readers see the current object
 * inside a read section without locks or reference counts; writers publish a new one and get the
 * previous one back as an old<T, D>. Move-only. Every non-null object it ever published is
 * destroyed exactly once, with the deleter of the unique_ptr given to the constructor (the
 * deleters of the unique_ptrs passed to replace and copy_update are not kept).
 *
 * The destructor waits for a grace period and destroys the current object; inside a read
 * section, where that wait could never end, it hands both to a liburcu call_rcu thread instead
 * (barrier() waits for it): never a hang, never a leak.
 *
 * Invariants: `handle_` and `cell_` are both NULL (moved from) or both live, the handle owned
 * by this object; the handle's destroy function and context destroy objects with D.
 */
template <class T, class D = std::default_delete<T>>
class ptr {
public:
    /** Publishes initial (may be null). Throws std::bad_alloc. */
    explicit ptr(std::unique_ptr<T, D> initial = nullptr) {
        std::unique_ptr<cell> c(new cell{swiftrcu_head{}, nullptr, nullptr});
        swiftrcu_destroy_fn destroy = &destroy_stateless;
        if constexpr (!detail::stateless_v<D>) {
            c->block = new block{std::move(initial.get_deleter()), {1}};
            destroy = &destroy_with_block;
        }
        c->handle = swiftrcu_new(initial.get(), destroy, c->block);
        if (c->handle == nullptr) {
            // Out of memory: destroy the object with the deleter that now holds the state.
            if (c->block != nullptr && initial)
                c->block->deleter(initial.release());
            c.release()->finish();
            throw std::bad_alloc();
        }
        if (initial && c->block != nullptr)
            c->block->retain(); // the published object's reference
        initial.release();
        handle_ = c->handle;
        cell_ = c.release();
    }
    ptr(ptr &&other) noexcept
        : handle_(std::exchange(other.handle_, nullptr)), cell_(std::exchange(other.cell_, nullptr)) {}
    ptr &operator=(ptr &&other) noexcept {
        if (this != &other) {
            release();
            handle_ = std::exchange(other.handle_, nullptr);
            cell_ = std::exchange(other.cell_, nullptr);
        }
        return *this;
    }
    ptr(const ptr &) = delete;
    ptr &operator=(const ptr &) = delete;
    ~ptr() { release(); }

    /** Calls f(const T *) (nullptr when nothing is published) inside a read section and returns
     *  its result; the object is valid until f returns. Exceptions from f propagate (the section
     *  is closed). Throws swiftrcu::error (SWIFTRCU_EPERM) when no section can be opened. */
    template <class F>
    decltype(auto) read(F &&f) const {
        void *object;
        read_guard guard(handle_, &object);
        return std::invoke(std::forward<F>(f), static_cast<const T *>(object));
    }

    /** The object published now, valid while guard (held by the calling thread) lives; nullptr
     *  when nothing is published or guard is not the calling thread's. */
    const T *dereference(const read_guard &guard) const noexcept {
        return static_cast<const T *>(swiftrcu_dereference(handle_, &guard.guard_));
    }

    /** Publishes next (may be null) and returns the previous object (empty when there was none).
     *  Never waits; allowed inside a read section. Throws std::bad_alloc, or swiftrcu::error
     *  (SWIFTRCU_EDEADLK from inside this ptr's own copy_update function); then next is
     *  destroyed by its unique_ptr and nothing changes. */
    old<T, D> replace(std::unique_ptr<T, D> next) {
        T *object = next.get();
        retain_for(object);
        swiftrcu_old *previous = nullptr;
        int status = swiftrcu_replace(handle_, object, &previous);
        if (status != SWIFTRCU_OK) {
            release_for(object);
            detail::check(status, "swiftrcu::ptr::replace");
        }
        next.release();
        return old<T, D>(previous);
    }

    /** Calls f(const T *current) with the ptr's other writers excluded (inside a read section)
     *  and publishes the std::unique_ptr<T, D> it returns (nullptr publishes null); returns the
     *  previous object (empty when it was null or nothing changed). An exception thrown by f
     *  publishes nothing and propagates. Thread cancellation is disabled while f runs (a cancel
     *  requested meanwhile takes effect at the next cancellation point after the call). Throws std::bad_alloc (f not called), or
     *  swiftrcu::error (SWIFTRCU_EDEADLK from inside this ptr's own copy_update function). */
    template <class F>
    old<T, D> copy_update(F &&f) {
        struct context {
            ptr *self;
            F *f;
            std::exception_ptr thrown;
        } ctx{this, &f, nullptr};
        auto update = [](const void *current, void *raw) -> void * {
            auto *c = static_cast<context *>(raw);
            try {
                std::unique_ptr<T, D> next = std::invoke(std::forward<F>(*c->f), static_cast<const T *>(current));
                T *object = next.get();
                if (object == current) {
                    // Publishing the current object again changes nothing; keep it owned once.
                    (void)next.release();
                    return const_cast<void *>(current);
                }
                c->self->retain_for(object);
                return next.release();
#if defined(__GLIBCXX__)
            } catch (abi::__forced_unwind &) {
                throw; // never swallow a forced unwind (cancellation is held off around f anyway)
#endif
            } catch (...) {
                c->thrown = std::current_exception();
                return const_cast<void *>(current); // publishes nothing
            }
        };
        swiftrcu_old *previous = nullptr;
        // Thread cancellation is held off while f runs: a forced unwind cannot cross the library's
        // frames (it would end the program), so a cancel requested meanwhile is acted on at the
        // thread's next cancellation point after this call.
        int cancel_state = PTHREAD_CANCEL_ENABLE;
        (void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
        int status = swiftrcu_copy_update(handle_, update, &ctx, &previous);
        (void)pthread_setcancelstate(cancel_state, nullptr);
        if (ctx.thrown)
            std::rethrow_exception(ctx.thrown);
        detail::check(status, "swiftrcu::ptr::copy_update");
        return old<T, D>(previous);
    }

private:
    using cell = detail::ptr_cell<T, D>;
    using block = detail::deleter_block<T, D>;
    swiftrcu_ptr *handle_ = nullptr;
    cell *cell_ = nullptr;

    static void destroy_stateless(void *object, void *) noexcept { D()(static_cast<T *>(object)); }

    static void destroy_with_block(void *object, void *context) noexcept {
        auto *b = static_cast<block *>(context);
        b->deleter(static_cast<T *>(object));
        b->release();
    }

    /* The deleter block's reference for a newly published non-null object, and its undoing. */
    void retain_for(T *object) noexcept {
        if (object != nullptr && cell_ != nullptr && cell_->block != nullptr)
            cell_->block->retain();
    }
    void release_for(T *object) noexcept {
        if (object != nullptr && cell_ != nullptr && cell_->block != nullptr)
            cell_->block->release();
    }

    void release() noexcept {
        if (cell_ == nullptr)
            return;
        if (swiftrcu_free(handle_) == SWIFTRCU_OK)
            cell_->finish();
        else // inside a read section (or on an exiting thread): free it on a call_rcu thread
            (void)swiftrcu_call(&cell_->head, &cell::free_later);
        handle_ = nullptr;
        cell_ = nullptr;
    }
};

} // namespace swiftrcu

#endif /* SWIFTRCU_HPP */
