/*
 * The C++26 working draft's usage patterns of <rcu> ([saferecl.rcu]), written for `std::` and
 * compiled against swiftrcu through a namespace alias: a std::scoped_lock on the domain as the
 * read section, rcu_obj_base::retire, rcu_retire with a custom deleter, rcu_synchronize before a
 * plain delete, rcu_barrier at the end. Plus the standard's signatures, checked at compile time.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <swiftrcu.hpp>

#include <atomic>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "check.hpp"
#include "tracked.hpp"

namespace rcu = swiftrcu; // the only line that differs from code written for std::

// The standard's shapes.
static_assert(!std::is_copy_constructible_v<rcu::rcu_domain>, "rcu_domain is not copyable");
static_assert(!std::is_move_constructible_v<rcu::rcu_domain>, "rcu_domain is not movable");
static_assert(!std::is_copy_assignable_v<rcu::rcu_domain>, "rcu_domain is not assignable");
static_assert(std::is_same_v<decltype(rcu::rcu_default_domain()), rcu::rcu_domain &>);
static_assert(noexcept(rcu::rcu_default_domain()));
static_assert(noexcept(rcu::rcu_default_domain().lock()));
static_assert(noexcept(rcu::rcu_default_domain().try_lock()));
static_assert(noexcept(rcu::rcu_default_domain().unlock()));
static_assert(std::is_same_v<decltype(rcu::rcu_default_domain().try_lock()), bool>);
static_assert(noexcept(rcu::rcu_synchronize()));
static_assert(noexcept(rcu::rcu_barrier()));
static_assert(noexcept(rcu::rcu_synchronize(rcu::rcu_default_domain())));
static_assert(noexcept(rcu::rcu_barrier(rcu::rcu_default_domain())));

// A class that retires itself ([saferecl.rcu.base]).
static ledger book(1 << 16);

struct foo : rcu::rcu_obj_base<foo> {
    std::uint32_t magic = kLive;
    int id;
    int a, b;
    foo(int a_, int b_) : id(book.next_id()), a(a_), b(b_) {}
    ~foo() {
        magic = kDead;
        book.destroyed(id);
    }
};
static_assert(noexcept(std::declval<foo &>().retire()));
static_assert(!std::is_constructible_v<rcu::rcu_obj_base<foo>>, "the base's constructor is protected");

std::atomic<foo *> foo_ptr{nullptr};
std::atomic<long> bad_reads{0};

void do_reads(int rounds) {
    for (int i = 0; i < rounds; i++) {
        std::scoped_lock l(rcu::rcu_default_domain());
        foo *p = foo_ptr.load(std::memory_order_acquire);
        if (p != nullptr && (p->magic != kLive || p->b != p->a + 1))
            bad_reads.fetch_add(1);
    }
}

void do_writes(int rounds) {
    for (int i = 0; i < rounds; i++) {
        foo *p = new foo(i, i + 1);
        foo *old = foo_ptr.exchange(p, std::memory_order_acq_rel);
        if (old != nullptr)
            old->retire();
    }
}

// A deleter with state ([saferecl.rcu.retire]: rcu_retire(p, d)).
struct counting_deleter {
    std::atomic<int> *count;
    void operator()(tracked *p) const {
        count->fetch_add(1);
        delete p;
    }
};

// rcu_obj_base with a deleter of its own.
struct pooled;
struct pool_deleter {
    std::atomic<int> *returned;
    void operator()(pooled *p) const;
};
struct pooled : rcu::rcu_obj_base<pooled, pool_deleter> {
    int value = 7;
};
void pool_deleter::operator()(pooled *p) const {
    returned->fetch_add(p->value);
    delete p;
}

static void readers_and_writers() {
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; i++)
        threads.emplace_back(do_reads, 20000);
    for (int i = 0; i < 2; i++)
        threads.emplace_back(do_writes, 2000);
    for (auto &t : threads)
        t.join();
    foo *last = foo_ptr.exchange(nullptr);
    last->retire();
    rcu::rcu_barrier();
    CHECK_EQ(bad_reads.load(), 0);
    CHECK_EQ(book.count(1), book.created()); // every foo destroyed exactly once
}

static void lockable_forms() {
    auto &dom = rcu::rcu_default_domain();
    CHECK_EQ(swiftrcu_in_read_section(), 0);
    {
        std::lock_guard<rcu::rcu_domain> outer(dom);
        std::scoped_lock inner(dom); // regions nest
        CHECK_EQ(swiftrcu_in_read_section(), 1);
    }
    CHECK_EQ(swiftrcu_in_read_section(), 0);
    {
        std::unique_lock<rcu::rcu_domain> l(dom, std::try_to_lock);
        CHECK(l.owns_lock());
        l.unlock();
        CHECK_EQ(swiftrcu_in_read_section(), 0);
        l.lock();
        CHECK_EQ(swiftrcu_in_read_section(), 1);
    }
    {
        std::unique_lock<rcu::rcu_domain> l(dom, std::defer_lock);
        CHECK(!l.owns_lock());
        CHECK_EQ(swiftrcu_in_read_section(), 0);
        CHECK(l.try_lock());
    }
    CHECK_EQ(swiftrcu_in_read_section(), 0);
}

static void retire_forms() {
    ledger items(64);
    std::atomic<int> deleted{0};

    // rcu_retire with the default deleter and with one that has state.
    rcu::rcu_retire(new tracked(items, 1));
    rcu::rcu_retire(new tracked(items, 2), counting_deleter{&deleted});
    // A lambda deleter (a closure type with a capture).
    std::atomic<int> lambda_calls{0};
    rcu::rcu_retire(new tracked(items, 3), [&lambda_calls](tracked *p) {
        lambda_calls.fetch_add(1);
        delete p;
    });
    rcu::rcu_barrier();
    CHECK_EQ(items.count(1), 3);
    CHECK_EQ(deleted.load(), 1);
    CHECK_EQ(lambda_calls.load(), 1);

    // Retired inside a region: held back until it ends.
    tracked *held = new tracked(items, 4);
    const int held_id = held->id;
    {
        std::scoped_lock l(rcu::rcu_default_domain());
        rcu::rcu_retire(held, counting_deleter{&deleted});
        check::sleep_ms(50);
        CHECK_EQ(items.times(held_id), 0);
        CHECK(held->alive());
    }
    rcu::rcu_barrier();
    CHECK_EQ(items.times(held_id), 1);
    CHECK_EQ(deleted.load(), 2);

    // rcu_obj_base with a deleter of its own, which carries state through retire().
    std::atomic<int> returned{0};
    pooled *p = new pooled;
    p->retire(pool_deleter{&returned});
    rcu::rcu_barrier();
    CHECK_EQ(returned.load(), 7);

    // The deleter runs d(nullptr) for a null pointer, as the standard says d(p).
    std::atomic<int> null_calls{0};
    rcu::rcu_retire(static_cast<tracked *>(nullptr), [&null_calls](tracked *q) { null_calls.fetch_add(q == nullptr); });
    rcu::rcu_barrier();
    CHECK_EQ(null_calls.load(), 1);

    // rcu_synchronize, then a plain delete: the classic form.
    foo *f = new foo(1, 2);
    foo *expected = nullptr;
    CHECK(foo_ptr.compare_exchange_strong(expected, f));
    foo *unpublished = foo_ptr.exchange(nullptr);
    rcu::rcu_synchronize();
    delete unpublished;
}

static void synchronize_waits_for_regions() {
    std::atomic<int> stage{0};
    std::atomic<bool> synchronized{false};
    std::thread reader([&] {
        std::scoped_lock l(rcu::rcu_default_domain());
        stage.store(1);
        while (stage.load() != 2)
            std::this_thread::yield();
        check::sleep_ms(100);
        CHECK(!synchronized.load());
    });
    while (stage.load() != 1)
        std::this_thread::yield();
    stage.store(2);
    rcu::rcu_synchronize();
    synchronized.store(true);
    reader.join();
}

int main() {
    check::watchdog(120);
    lockable_forms();
    retire_forms();
    synchronize_waits_for_regions();
    readers_and_writers();
    return check::finish();
}
