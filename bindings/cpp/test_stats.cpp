/*
 * swiftrcu::stats(): equal to swiftrcu_stats_get read in the same process, and the exact change
 * of its counters across a known scenario (n replace + free, m replace + defer + barrier,
 * rcu_retire and rcu_obj_base::retire, k threads that exit inside a section, a refused wait).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <swiftrcu.hpp>

#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "check.hpp"

namespace {

struct node : swiftrcu::rcu_obj_base<node> {
    int value = 0;
};

long long delta(uint64_t after, uint64_t before) { return static_cast<long long>(after - before); }

void equals_c_counters() {
    swiftrcu::barrier();
    swiftrcu_stats a = swiftrcu::stats();
    swiftrcu_stats b{};
    b.size = sizeof b;
    CHECK_EQ(swiftrcu_stats_get(&b), SWIFTRCU_OK);
    CHECK_EQ(a.size, sizeof(swiftrcu_stats));
    CHECK(std::memcmp(&a, &b, sizeof a) == 0);
}

void exact_deltas() {
    // Warm up: this thread registered, liburcu's call_rcu worker adopted.
    {
        swiftrcu::ptr<int> warm(std::make_unique<int>(0));
        warm.replace(std::make_unique<int>(1)).defer();
        swiftrcu::barrier();
    }

    const int n = 4, m = 5, r = 3, k = 2;
    swiftrcu_stats s0 = swiftrcu::stats();
    swiftrcu::ptr<int> p(std::make_unique<int>(0));
    for (int i = 0; i < n; i++)
        p.replace(std::make_unique<int>(i)).free();
    swiftrcu_stats s1 = swiftrcu::stats();
    CHECK_EQ(delta(s1.grace_periods, s0.grace_periods), n);
    CHECK_EQ(delta(s1.objects_destroyed, s0.objects_destroyed), n);
    CHECK_EQ(delta(s1.ptrs_live, s0.ptrs_live), 1);
    CHECK_EQ(delta(s1.olds_live, s0.olds_live), 0);

    s0 = swiftrcu::stats();
    for (int i = 0; i < m; i++)
        p.replace(std::make_unique<int>(100 + i)).defer();
    for (int i = 0; i < r; i++)
        swiftrcu::rcu_retire(new int(i));
    for (int i = 0; i < r; i++)
        (new node)->retire();
    swiftrcu::barrier();
    s1 = swiftrcu::stats();
    CHECK_EQ(delta(s1.deferred_queued, s0.deferred_queued), m + 2 * r);
    CHECK_EQ(delta(s1.deferred_completed, s0.deferred_completed), m + 2 * r);
    CHECK_EQ(delta(s1.objects_destroyed, s0.objects_destroyed), m + 2 * r);
    CHECK_EQ(delta(s1.grace_periods, s0.grace_periods), 0);
    CHECK_EQ(s1.deferred_pending, 0u);
    CHECK(s1.deferred_pending_peak >= 1);

    s0 = swiftrcu::stats();
    std::vector<std::thread> threads;
    for (int i = 0; i < k; i++)
        threads.emplace_back([] {
            swiftrcu_guard g = swiftrcu_read_lock(); // the thread exits holding the section
            (void)g;
        });
    for (auto &t : threads)
        t.join();
    s1 = swiftrcu::stats();
    CHECK_EQ(delta(s1.threads_registered_total, s0.threads_registered_total), k);
    CHECK_EQ(delta(s1.threads_exited_in_section, s0.threads_exited_in_section), k);
    CHECK_EQ(delta(s1.threads_registered, s0.threads_registered), 0);

    s0 = swiftrcu::stats();
    {
        swiftrcu::read_guard g;
        CHECK_THROWS(swiftrcu::error, swiftrcu::synchronize(), CHECK_EQ(e.status(), SWIFTRCU_EDEADLK));
    }
    s1 = swiftrcu::stats();
    CHECK_EQ(delta(s1.edeadlk_refusals, s0.edeadlk_refusals), 1);
    CHECK_EQ(delta(s1.eperm_refusals, s0.eperm_refusals), 0);
    CHECK_EQ(delta(s1.einval_refusals, s0.einval_refusals), 0);
}

} // namespace

int main() {
    check::watchdog(60);
    equals_c_counters();
    exact_deltas();
    return check::finish();
}
