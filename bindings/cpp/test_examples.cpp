/*
 * The three examples of the kernel patch "rust: sync: rcu: Add RCU protected pointer" (in the doc
 * comments of Rcu::dereference and Rcu::replace), in C++ with swiftrcu::ptr.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <swiftrcu.hpp>

#include <atomic>
#include <memory>
#include <thread>

#include "check.hpp"
#include "tracked.hpp"

struct box {
    int value;
};

/* Rcu::dereference, first example: read under the read lock. */
static void dereference_under_read_lock() {
    swiftrcu::ptr<box> x(std::make_unique<box>(box{100}));
    swiftrcu::read_guard g;
    // Read in under RCU read lock protection.
    const box *v = x.dereference(g);
    CHECK(v != nullptr && v->value == 100);
}

struct config {
    int a, b, c;
    std::atomic<int> *released;
    ~config() { released->store(1); }
};

/* Rcu::dereference, second example: a borrowed object outlives the reader's reference to the
 * pointer, because the read section keeps it alive; dropping the last reference to the pointer
 * waits for the reader. (The kernel's Arc<Rcu<..>> is a shared_ptr<ptr<..>> here.) */
static void borrow_outlives_reference() {
    std::atomic<int> released{0};
    auto shared = std::make_shared<swiftrcu::ptr<config>>(std::unique_ptr<config>(new config{1, 2, 3, &released}));
    auto cloned = shared;
    std::atomic<bool> dropped{false};
    std::atomic<int> reader_saw{0};
    std::atomic<bool> released_too_early{false};
    std::thread worker([&] {
        swiftrcu::read_guard g;
        const config *v = cloned->dereference(g);
        cloned.reset(); // release the reference to `shared`
        dropped.store(true);
        check::sleep_ms(50); // let the main thread start dropping `shared`
        // But still need to access `v`.
        if (released.load() != 0)
            released_too_early.store(true);
        reader_saw.store(v->a);
    });
    // Wait until `cloned` is dropped.
    while (!dropped.load())
        std::this_thread::yield();
    shared.reset(); // the last reference: the destructor waits for the worker's read section
    CHECK_EQ(released.load(), 1);
    worker.join();
    CHECK_EQ(reader_saw.load(), 1);
    CHECK(!released_too_early.load());
}

/* Rcu::replace: a reader keeps the old object, new readers see the new one, and the old one is
 * freed outside the read-side critical section. */
static void replace_keeps_old_for_readers() {
    ledger book(16);
    swiftrcu::ptr<tracked> x(make_tracked(book, 100));
    auto q = make_tracked(book, 101);
    swiftrcu::old<tracked> old;
    {
        // Read in under RCU read lock protection.
        swiftrcu::read_guard g;
        const tracked *v = x.dereference(g);

        // Replace with a new object.
        old = x.replace(std::move(q));
        CHECK(static_cast<bool>(old));
        CHECK(old.get() == v);

        // `v` should still read the old value.
        CHECK_EQ(v->value, 100);
        CHECK(v->alive());

        // New readers should get the new value.
        CHECK_EQ(x.dereference(g)->value, 101);
    }
    // Can free the object outside the read-side critical section.
    old.free();
    CHECK(!old);
    CHECK_EQ(book.times(0), 1);
    CHECK_EQ(book.times(1), 0);
}

int main() {
    check::watchdog(60);
    dereference_under_read_lock();
    borrow_outlives_reference();
    replace_keeps_old_for_readers();
    return check::finish();
}
