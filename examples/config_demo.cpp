/*
 * SwiftRCU C++ demo: reader threads look up a configuration through swiftrcu::ptr while a writer
 * publishes new versions; a second, C++26-style part publishes through a std::atomic and retires
 * old versions with rcu_obj_base::retire. Readers take no lock and write no shared memory; each
 * old version is destroyed only after every reader that could see it has moved on.
 *
 *   c++ -std=c++17 config_demo.cpp $(pkg-config --cflags --libs swiftrcu) -lpthread -o config_demo_cpp
 *   ./config_demo_cpp [readers] [seconds]
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <swiftrcu.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr unsigned kLive = 0x600DC0DEu;
constexpr unsigned kDead = 0xDEADBEEFu;

std::atomic<long> created{0}, destroyed{0}, reads{0}, bad_reads{0};
std::atomic<bool> stop{false};

/* One version of the configuration. Readers check `magic`: a destroyed version is poisoned. It
 * can also retire itself (the C++26 way), which the second part uses. */
struct config : swiftrcu::rcu_obj_base<config> {
    unsigned magic = kLive;
    long version;
    int timeout_ms;
    std::string name;

    explicit config(long v) : version(v), timeout_ms(100 + static_cast<int>(v % 900)), name("config-v" + std::to_string(v)) {
        created++;
    }
    ~config() {
        magic = kDead;
        destroyed++;
    }
    bool valid() const { return magic == kLive && timeout_ms >= 100; }
};

swiftrcu::ptr<config> current(std::make_unique<config>(1));
std::atomic<config *> published{nullptr}; // the C++26-style part

void reader() {
    long n = 0, last_version = 0;
    while (!stop.load(std::memory_order_relaxed)) {
        // The typed read path: the object is valid inside the function.
        long v = current.read([](const config *c) { return c != nullptr && c->valid() ? c->version : -1; });
        if (v < last_version)
            bad_reads++;
        else
            last_version = v;
        // The C++26 read path: a scoped_lock on the domain is the read section.
        {
            std::scoped_lock l(swiftrcu::rcu_default_domain());
            const config *c = published.load(std::memory_order_acquire);
            if (c != nullptr && !c->valid())
                bad_reads++;
        }
        n += 2;
    }
    reads += n;
}

} // namespace

int main(int argc, char **argv) {
    int readers = argc > 1 ? std::atoi(argv[1]) : 2;
    double seconds = argc > 2 ? std::atof(argv[2]) : 2.0;
    if (readers < 1 || readers > 64 || seconds <= 0) {
        std::fprintf(stderr, "usage: %s [readers 1-64] [seconds]\n", argv[0]);
        return 2;
    }
    std::printf("SwiftRCU %s C++ demo: %d reader thread(s), 1 writer, %.1f s\n", swiftrcu_version(), readers, seconds);

    std::vector<std::thread> threads;
    for (int i = 0; i < readers; i++)
        threads.emplace_back(reader);

    long updates = 0;
    auto start = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    while (elapsed() < seconds) {
        // Typed writer: derive the next version from the current one, release the previous one
        // asynchronously (every 64th waits for its grace period here instead).
        swiftrcu::old<config> previous = current.copy_update(
            [](const config *c) { return std::make_unique<config>(c->version + 1); });
        if (updates % 64 == 0)
            previous.free();
        else
            previous.defer();
        // C++26-style writer: exchange, then retire the unpublished version.
        if (config *old = published.exchange(new config(updates + 1), std::memory_order_acq_rel))
            old->retire();
        updates++;
    }
    double secs = elapsed();
    stop = true;
    for (auto &t : threads)
        t.join();

    if (config *last = published.exchange(nullptr))
        last->retire();
    current.replace(nullptr).free(); // waits for a grace period, destroys the last version
    swiftrcu::rcu_barrier();         // waits for the deferred destroys and retired versions

    std::printf("reads:    %12.0f /s  (%ld in total)\n", reads / secs, reads.load());
    std::printf("updates:  %12.0f /s  (%ld in total, two versions each)\n", updates / secs, updates);
    std::printf("versions: %ld created, %ld destroyed, %ld bad reads\n", created.load(), destroyed.load(), bad_reads.load());
    bool ok = created == destroyed && bad_reads == 0;
    std::printf("%s\n", ok ? "OK: every old version destroyed exactly once, none while a reader could see it"
                           : "FAILED: versions leaked or a reader saw a destroyed version");
    return ok ? 0 : 1;
}
