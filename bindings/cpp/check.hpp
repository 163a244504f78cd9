/*
 * Minimal test harness of the C++ test programs: CHECK counts, a watchdog turns a hang into a
 * failure, and every program ends with the line "N passed, M failed".
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef SWIFTRCU_CPP_CHECK_HPP
#define SWIFTRCU_CPP_CHECK_HPP

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <unistd.h>

namespace check {

inline std::atomic<int> passed{0};
inline std::atomic<int> failed{0};

inline void record(bool ok, const char *file, int line, const char *expr) {
    if (ok) {
        passed.fetch_add(1, std::memory_order_relaxed);
    } else {
        failed.fetch_add(1, std::memory_order_relaxed);
        std::fprintf(stderr, "FAIL %s:%d: %s\n", file, line, expr);
    }
}

template <class A, class E>
void record_eq(const A &actual, const E &expected, const char *file, int line, const char *a, const char *e) {
    if (actual == expected) {
        passed.fetch_add(1, std::memory_order_relaxed);
    } else {
        failed.fetch_add(1, std::memory_order_relaxed);
        std::fprintf(stderr, "FAIL %s:%d: %s == %lld, expected %s == %lld\n", file, line, a,
                     static_cast<long long>(actual), e, static_cast<long long>(expected));
    }
}

inline void on_alarm(int) {
    static const char msg[] = "FAIL watchdog: the test hung (a wait that should have ended did not)\n";
    if (write(2, msg, sizeof msg - 1) < 0) { /* nothing more to do */ }
    _exit(2);
}

/* Fails the program (exit 2) if it runs longer than `seconds`. */
inline void watchdog(unsigned seconds) {
    std::signal(SIGALRM, on_alarm);
    alarm(seconds);
}

/* Prints the closing line and returns the exit status. */
inline int finish() {
    std::printf("%d passed, %d failed\n", passed.load(), failed.load());
    return failed.load() == 0 ? 0 : 1;
}

inline void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

} // namespace check

#define CHECK(cond) ::check::record(static_cast<bool>(cond), __FILE__, __LINE__, #cond)
#define CHECK_EQ(actual, expected) ::check::record_eq((actual), (expected), __FILE__, __LINE__, #actual, #expected)

/* CHECK that `expr` throws an exception of type `type`; `then` runs on the caught exception `e`. */
#define CHECK_THROWS(type, expr, then)                                                             \
    do {                                                                                           \
        bool threw_ = false;                                                                       \
        try {                                                                                      \
            expr;                                                                                  \
        } catch (type & e) {                                                                       \
            threw_ = true;                                                                         \
            then;                                                                                  \
        }                                                                                          \
        ::check::record(threw_, __FILE__, __LINE__, "throws " #type ": " #expr);                  \
    } while (0)

#endif
