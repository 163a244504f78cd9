/*
 * The typed layer of swiftrcu.hpp: ptr, old, read_guard, error, synchronize, barrier.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <swiftrcu.hpp>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <unistd.h>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "check.hpp"
#include "tracked.hpp"

using swiftrcu::old;
using swiftrcu::ptr;
using swiftrcu::read_guard;

static_assert(!std::is_copy_constructible_v<ptr<int>> && std::is_nothrow_move_constructible_v<ptr<int>>);
static_assert(!std::is_copy_assignable_v<ptr<int>> && std::is_nothrow_move_assignable_v<ptr<int>>);
static_assert(!std::is_copy_constructible_v<old<int>> && std::is_nothrow_move_constructible_v<old<int>>);
static_assert(!std::is_copy_constructible_v<read_guard> && !std::is_move_constructible_v<read_guard>);
static_assert(!std::is_convertible_v<std::unique_ptr<int>, ptr<int>>, "the constructor is explicit");
static_assert(std::is_base_of_v<std::system_error, swiftrcu::error>);
static_assert(noexcept(std::declval<const old<int> &>().get()));
static_assert(std::is_same_v<decltype(std::declval<const old<int> &>().get()), int *>);
static_assert(noexcept(std::declval<const ptr<int> &>().dereference(std::declval<const read_guard &>())));
static_assert(std::is_same_v<decltype(std::declval<const ptr<int> &>().dereference(std::declval<const read_guard &>())),
                             const int *>);

static bool contains(const char *text, const char *part) { return std::strstr(text, part) != nullptr; }

static void errors() {
    swiftrcu::error e(SWIFTRCU_EDEADLK, "here");
    CHECK_EQ(e.status(), SWIFTRCU_EDEADLK);
    CHECK(contains(e.what(), "here"));
    CHECK(contains(e.what(), "SWIFTRCU_EDEADLK"));
    CHECK(e.code() == std::errc::resource_deadlock_would_occur);
    CHECK(swiftrcu::error(SWIFTRCU_EINVAL).code() == std::errc::invalid_argument);
    CHECK(swiftrcu::error(SWIFTRCU_EPERM).code() == std::errc::operation_not_permitted);
    CHECK(std::string(swiftrcu::error_category().name()) == "swiftrcu");

    // synchronize / barrier: fine outside, EDEADLK inside any read section.
    swiftrcu::synchronize();
    swiftrcu::barrier();
    {
        read_guard g;
        CHECK_THROWS(swiftrcu::error, swiftrcu::synchronize(), CHECK_EQ(e.status(), SWIFTRCU_EDEADLK));
        CHECK_THROWS(swiftrcu::error, swiftrcu::barrier(), CHECK(contains(e.what(), "SWIFTRCU_EDEADLK")));
    }
    {
        std::scoped_lock l(swiftrcu::rcu_default_domain());
        CHECK_THROWS(swiftrcu::error, swiftrcu::synchronize(), CHECK_EQ(e.status(), SWIFTRCU_EDEADLK));
    }
}

static void read_paths() {
    ledger book(64);
    ptr<tracked> empty;
    CHECK(empty.read([](const tracked *t) { return t == nullptr; }));
    {
        read_guard g;
        CHECK(empty.dereference(g) == nullptr);
    }

    ptr<tracked> p(make_tracked(book, 5));
    CHECK_EQ(p.read([](const tracked *t) { return t->value; }), 5);
    // read passes the object and returns f's result, void included.
    int seen = 0;
    p.read([&](const tracked *t) { seen = t->value; });
    CHECK_EQ(seen, 5);
    // Inside a section while f runs, and not after.
    CHECK(p.read([](const tracked *) { return swiftrcu_in_read_section() == 1; }));
    CHECK_EQ(swiftrcu_in_read_section(), 0);
    // An exception from f propagates and closes the section.
    CHECK_THROWS(std::runtime_error, p.read([](const tracked *) -> int { throw std::runtime_error("from f"); }),
                 CHECK(contains(e.what(), "from f")));
    CHECK_EQ(swiftrcu_in_read_section(), 0);

    // Guards nest, with each other and with regions.
    {
        read_guard outer;
        {
            std::scoped_lock l(swiftrcu::rcu_default_domain());
            read_guard inner;
            CHECK(p.dereference(inner) == p.dereference(outer));
            CHECK_EQ(p.dereference(outer)->value, 5);
        }
        CHECK_EQ(swiftrcu_in_read_section(), 1);
    }
    CHECK_EQ(swiftrcu_in_read_section(), 0);

    // Another thread's guard dereferences nothing here.
    std::atomic<int> stage{0};
    const read_guard *theirs = nullptr;
    std::thread t([&] {
        read_guard g;
        theirs = &g;
        stage.store(1);
        while (stage.load() != 2)
            std::this_thread::yield();
    });
    while (stage.load() != 1)
        std::this_thread::yield();
    CHECK(p.dereference(*theirs) == nullptr);
    stage.store(2);
    t.join();

    // The nesting limit: read_guard and read throw swiftrcu::error (EPERM) past it.
    auto &dom = swiftrcu::rcu_default_domain();
    int opened = 0;
    while (opened < 300 && dom.try_lock())
        opened++;
    CHECK_EQ(opened, 255);
    CHECK_THROWS(swiftrcu::error, read_guard g, CHECK_EQ(e.status(), SWIFTRCU_EPERM));
    CHECK_THROWS(swiftrcu::error, (void)p.read([](const tracked *) { return 0; }), CHECK_EQ(e.status(), SWIFTRCU_EPERM));
    for (int i = 0; i < opened; i++)
        dom.unlock();
    CHECK_EQ(swiftrcu_in_read_section(), 0);
}

static void replace_and_old() {
    ledger book(64);
    ptr<tracked> p;
    old<tracked> none = p.replace(make_tracked(book, 1));
    CHECK(!none);
    CHECK(none.get() == nullptr);
    none.free(); // empty: nothing to do
    none.defer();

    // free waits for a grace period, then destroys.
    old<tracked> o = p.replace(make_tracked(book, 2));
    CHECK(static_cast<bool>(o));
    CHECK_EQ(o.get()->value, 1);
    o.free();
    CHECK(!o);
    CHECK_EQ(book.times(0), 1);

    // Inside a section free throws EDEADLK and keeps the object; afterwards it works.
    o = p.replace(make_tracked(book, 3));
    {
        read_guard g;
        CHECK_THROWS(swiftrcu::error, o.free(), CHECK_EQ(e.status(), SWIFTRCU_EDEADLK));
        CHECK(static_cast<bool>(o));
        CHECK(o.get()->alive());
    }
    o.free();
    CHECK_EQ(book.times(1), 1);

    // defer: destroyed after a grace period, asynchronously; barrier waits.
    o = p.replace(make_tracked(book, 4));
    const int deferred_id = o.get()->id;
    {
        read_guard g;
        o.defer(); // allowed inside a section
        CHECK(!o);
        check::sleep_ms(50);
        CHECK_EQ(book.times(deferred_id), 0);
    }
    swiftrcu::barrier();
    CHECK_EQ(book.times(deferred_id), 1);

    // The destructor frees outside a section (synchronously) ...
    {
        old<tracked> scoped = p.replace(make_tracked(book, 5));
        CHECK_EQ(scoped.get()->value, 4);
    }
    CHECK_EQ(book.times(3), 1);
    // ... and defers inside one, never destroying what the section may still read.
    const tracked *still_read = nullptr;
    int held_id = -1;
    {
        read_guard g;
        still_read = p.dereference(g);
        held_id = still_read->id;
        { old<tracked> dropped = p.replace(make_tracked(book, 6)); }
        check::sleep_ms(50);
        CHECK(still_read->alive());
        CHECK_EQ(book.times(held_id), 0);
    }
    swiftrcu::barrier();
    CHECK_EQ(book.times(held_id), 1);

    // Moves.
    old<tracked> a = p.replace(make_tracked(book, 7));
    old<tracked> b(std::move(a));
    CHECK(!a && static_cast<bool>(b));
    a = std::move(b);
    CHECK(static_cast<bool>(a) && !b);
    a = p.replace(nullptr); // frees the held one, takes the next
    CHECK_EQ(a.get()->value, 7);
    CHECK(p.read([](const tracked *t) { return t == nullptr; }));
    a.free();

    ptr<tracked> q(make_tracked(book, 8));
    ptr<tracked> r(std::move(q));
    CHECK_EQ(r.read([](const tracked *t) { return t->value; }), 8);
    CHECK(q.read([](const tracked *t) { return t == nullptr; })); // moved from: publishes nothing
    q = std::move(r);
    CHECK_EQ(q.read([](const tracked *t) { return t->value; }), 8);
}

static void copy_update() {
    ledger book(64);
    ptr<tracked> p(make_tracked(book, 10));
    old<tracked> o = p.copy_update([&](const tracked *cur) {
        CHECK_EQ(swiftrcu_in_read_section(), 1);
        return make_tracked(book, cur->value + 1);
    });
    CHECK_EQ(o.get()->value, 10);
    CHECK_EQ(p.read([](const tracked *t) { return t->value; }), 11);
    o.free();

    // An exception from f publishes nothing and propagates; the object f made is destroyed.
    int made = -1;
    CHECK_THROWS(std::runtime_error, p.copy_update([&](const tracked *cur) -> std::unique_ptr<tracked> {
        auto next = make_tracked(book, cur->value + 1);
        made = next->id;
        throw std::runtime_error("no update");
    }), CHECK(contains(e.what(), "no update")));
    CHECK_EQ(p.read([](const tracked *t) { return t->value; }), 11);
    CHECK(made >= 0 && book.times(made) == 1);
    CHECK_EQ(swiftrcu_in_read_section(), 0);

    // A write to the same ptr from inside f: swiftrcu::error (EDEADLK), nothing published.
    CHECK_THROWS(swiftrcu::error, p.copy_update([&](const tracked *) {
        (void)p.replace(make_tracked(book, 99));
        return make_tracked(book, 98);
    }), CHECK_EQ(e.status(), SWIFTRCU_EDEADLK));
    CHECK_EQ(p.read([](const tracked *t) { return t->value; }), 11);

    // nullptr publishes null; from null, f gets nullptr.
    o = p.copy_update([](const tracked *) { return std::unique_ptr<tracked>(); });
    CHECK_EQ(o.get()->value, 11);
    o.free();
    old<tracked> none = p.copy_update([&](const tracked *cur) {
        CHECK(cur == nullptr);
        return make_tracked(book, 12);
    });
    CHECK(!none);
    swiftrcu::barrier();
    CHECK_EQ(book.count(2), 0);
}

/* A deleter with state: every object is destroyed with it, also deferred ones after the ptr is
 * gone (the deleter's state outlives the ptr until the last one ran). */
struct tagged_deleter {
    std::shared_ptr<std::atomic<int>> calls;
    int tag;
    void operator()(tracked *t) const {
        if (tag == 42)
            calls->fetch_add(1);
        delete t;
    }
};

static void stateful_deleter() {
    ledger book(64);
    auto calls = std::make_shared<std::atomic<int>>(0);
    using tptr = std::unique_ptr<tracked, tagged_deleter>;
    auto make = [&](int v) { return tptr(new tracked(book, v), tagged_deleter{calls, 42}); };
    old<tracked, tagged_deleter> late;
    {
        ptr<tracked, tagged_deleter> p(make(1));
        p.replace(make(2)).free();
        late = p.replace(make(3));
        p.replace(tptr(nullptr, tagged_deleter{calls, 0})).defer();
        (void)p.copy_update([&](const tracked *) { return make(4); }); // previous was null
    } // frees 4
    CHECK_EQ(calls->load(), 2);
    late.defer(); // the ptr is gone; its deleter is not
    swiftrcu::barrier();
    CHECK_EQ(calls->load(), 4);
    CHECK_EQ(book.count(1), 4);
}

/* The destructor of a ptr inside a read section frees asynchronously: no hang, no leak. */
static void destructor_inside_section() {
    ledger book(16);
    int id;
    {
        read_guard g;
        auto p = std::make_unique<ptr<tracked>>(make_tracked(book, 1));
        const tracked *t = p->dereference(g);
        id = t->id;
        p.reset(); // would wait forever synchronously
        check::sleep_ms(50);
        CHECK(t->alive());
    }
    swiftrcu::barrier();
    CHECK_EQ(book.times(id), 1);

    // Also inside a region, and with a stateful deleter.
    auto calls = std::make_shared<std::atomic<int>>(0);
    {
        std::scoped_lock l(swiftrcu::rcu_default_domain());
        ptr<tracked, tagged_deleter> p(std::unique_ptr<tracked, tagged_deleter>(new tracked(book, 2), tagged_deleter{calls, 42}));
    }
    swiftrcu::barrier();
    CHECK_EQ(calls->load(), 1);
    CHECK_EQ(book.count(1), 2);
}

/* pthread_cancel while copy_update's function runs: the update completes, the thread is
 * cancelled at its next cancellation point, and the ptr stays usable (no lock left held). */
static ptr<int> *cancel_target;
static std::atomic<int> cancel_stage{0};
static void *cancelled_writer(void *) {
    (void)cancel_target->copy_update([](const int *cur) {
        cancel_stage.store(1);
        while (cancel_stage.load() != 2)
            usleep(1000); // a cancellation point, held off here
        pthread_testcancel();
        return std::make_unique<int>(*cur + 1);
    }).defer();
    cancel_stage.store(3);
    for (;;)
        pthread_testcancel(); // cancelled here
    return nullptr;
}

static void cancellation() {
    ptr<int> p(std::make_unique<int>(1));
    cancel_target = &p;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, nullptr, cancelled_writer, nullptr), 0);
    while (cancel_stage.load() != 1)
        std::this_thread::yield();
    CHECK_EQ(pthread_cancel(t), 0);
    cancel_stage.store(2);
    void *result = nullptr;
    pthread_join(t, &result);
    CHECK(result == PTHREAD_CANCELED);
    CHECK_EQ(cancel_stage.load(), 3);
    CHECK_EQ(p.read([](const int *v) { return *v; }), 2);
    p.replace(std::make_unique<int>(3)).free(); // the writer lock was released
    swiftrcu::synchronize();                    // no section was left open
    swiftrcu::barrier();
}

int main() {
    check::watchdog(120);
    errors();
    read_paths();
    replace_and_old();
    copy_update();
    stateful_deleter();
    destructor_inside_section();
#if !defined(__SANITIZE_ADDRESS__)
    // Not under AddressSanitizer: the forced unwind of a cancelled thread leaves ASan's
    // use-after-scope poison on its stack, and ASan then reports its own thread teardown.
    cancellation();
#else
    (void)&cancellation;
#endif
    return check::finish();
}
