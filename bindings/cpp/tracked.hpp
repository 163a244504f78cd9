/*
 * Objects that count their lives, for the C++ tests: each has an id, is destroyed at most once
 * (checked), and readers can tell a live one from a destroyed one.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef SWIFTRCU_CPP_TRACKED_HPP
#define SWIFTRCU_CPP_TRACKED_HPP

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

constexpr std::uint32_t kLive = 0x4C495645u;
constexpr std::uint32_t kDead = 0xDEADDEADu;

/* Per-id destroy counts of up to `capacity` objects. */
class ledger {
public:
    explicit ledger(std::size_t capacity) : counts_(capacity) {}
    int next_id() { return next_.fetch_add(1, std::memory_order_relaxed); }
    bool full() const { return next_.load(std::memory_order_relaxed) >= static_cast<int>(counts_.size()) - 64; }
    void destroyed(int id) { counts_[static_cast<std::size_t>(id)].fetch_add(1, std::memory_order_relaxed); }
    int times(int id) const { return counts_[static_cast<std::size_t>(id)].load(std::memory_order_relaxed); }
    int created() const { return next_.load(); }
    /* How many created objects were destroyed exactly `n` times. */
    int count(int n) const {
        int c = 0;
        for (int i = 0; i < created(); i++)
            c += times(i) == n;
        return c;
    }

private:
    std::vector<std::atomic<int>> counts_;
    std::atomic<int> next_{0};
};

struct tracked {
    std::uint32_t magic = kLive;
    int id;
    int value;
    ledger *book;

    tracked(ledger &l, int v) : id(l.next_id()), value(v), book(&l) {}
    tracked(const tracked &) = delete;
    tracked &operator=(const tracked &) = delete;
    ~tracked() {
        magic = kDead;
        book->destroyed(id);
    }
    bool alive() const { return magic == kLive; }
};

inline std::unique_ptr<tracked> make_tracked(ledger &l, int v) { return std::make_unique<tracked>(l, v); }

#endif
