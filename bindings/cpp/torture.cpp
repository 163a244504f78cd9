/*
 * C++ torture: readers through ptr::read, read_guard + dereference and the domain's regions over
 * a std::atomic; writers through replace, copy_update and every way an old object ends (free,
 * defer, destructor inside and outside a read section), and rcu_retire / rcu_obj_base::retire
 * of objects unpublished from the atomic. Every object must be destroyed exactly once and never
 * while a reader can see it: readers check each object's magic (and under AddressSanitizer any
 * read of freed memory stops the run).
 *
 *   torture [milliseconds=1000] [readers=3] [writers=2]
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <swiftrcu.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "check.hpp"
#include "tracked.hpp"

static ledger book(1 << 22);
static std::atomic<bool> stop{false};
static std::atomic<long> bad{0};
static std::atomic<long> reads{0};
static std::atomic<long> updates{0};

/* An object published through a std::atomic and retired by itself. */
struct node : swiftrcu::rcu_obj_base<node> {
    std::uint32_t magic = kLive;
    int id;
    int value;
    explicit node(int v) : id(book.next_id()), value(v) {}
    ~node() {
        magic = kDead;
        book.destroyed(id);
    }
};

static swiftrcu::ptr<tracked> *shared_ptr_;
static std::atomic<node *> shared_node{nullptr};

static void reader(int seed) {
    auto &p = *shared_ptr_;
    long n = 0;
    for (int i = seed; !stop.load(std::memory_order_relaxed); i++) {
        switch (i % 3) {
        case 0:
            if (!p.read([](const tracked *t) { return t != nullptr && t->alive() && t->value == t->id; }))
                bad.fetch_add(1);
            break;
        case 1: {
            swiftrcu::read_guard g;
            const tracked *t = p.dereference(g);
            if (t == nullptr) {
                bad.fetch_add(1);
                break;
            }
            {
                swiftrcu::read_guard inner; // nesting
                if (!t->alive() || p.dereference(inner) == nullptr)
                    bad.fetch_add(1);
            }
            if (!t->alive() || t->value != t->id)
                bad.fetch_add(1);
            break;
        }
        default: {
            std::scoped_lock l(swiftrcu::rcu_default_domain());
            node *q = shared_node.load(std::memory_order_acquire);
            if (q != nullptr && (q->magic != kLive || q->value != q->id))
                bad.fetch_add(1);
            break;
        }
        }
        n++;
    }
    reads.fetch_add(n);
}

static std::unique_ptr<tracked> fresh() {
    auto t = std::make_unique<tracked>(book, 0);
    t->value = t->id;
    return t;
}

static void writer(int seed) {
    auto &p = *shared_ptr_;
    long n = 0;
    for (int i = seed; !stop.load(std::memory_order_relaxed) && !book.full(); i++) {
        swiftrcu::old<tracked> o;
        if (i % 2 == 0)
            o = p.replace(fresh());
        else
            o = p.copy_update([](const tracked *cur) {
                auto t = fresh();
                if (cur == nullptr || !cur->alive())
                    t->value = -1; // noticed by readers
                return t;
            });
        switch (i % 5) {
        case 0: o.free(); break;
        case 1: o.defer(); break;
        case 2: break; // the destructor frees
        case 3: {
            swiftrcu::read_guard g; // the destructor defers inside a section
            swiftrcu::old<tracked> moved(std::move(o));
            break;
        }
        default: {
            node *q = new node(0);
            q->value = q->id;
            node *prev = shared_node.exchange(q, std::memory_order_acq_rel);
            if (prev != nullptr) {
                if (i % 2)
                    prev->retire();
                else
                    swiftrcu::rcu_retire(prev);
            }
            o.defer();
        }
        }
        n++;
    }
    updates.fetch_add(n);
}

int main(int argc, char **argv) {
    int ms = argc > 1 ? std::atoi(argv[1]) : 1000;
    int nreaders = argc > 2 ? std::atoi(argv[2]) : 3;
    int nwriters = argc > 3 ? std::atoi(argv[3]) : 2;
    check::watchdog(static_cast<unsigned>(ms / 1000 + 120));
    {
        swiftrcu::ptr<tracked> p(fresh());
        shared_ptr_ = &p;
        std::vector<std::thread> threads;
        for (int i = 0; i < nreaders; i++)
            threads.emplace_back(reader, i);
        for (int i = 0; i < nwriters; i++)
            threads.emplace_back(writer, i * 7);
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        stop.store(true);
        for (auto &t : threads)
            t.join();
        node *last = shared_node.exchange(nullptr);
        if (last != nullptr)
            last->retire();
    } // the ptr frees its current object
    swiftrcu::rcu_barrier();
    CHECK_EQ(bad.load(), 0);
    CHECK(reads.load() > 0 && updates.load() > 0);
    CHECK_EQ(book.count(1), book.created()); // every object destroyed, exactly once
    std::printf("torture: %d ms, %d readers, %d writers: %ld reads, %ld updates, %d objects\n", ms, nreaders,
                nwriters, reads.load(), updates.load(), book.created());
    return check::finish();
}
