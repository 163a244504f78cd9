/*
 * The abort rules of swiftrcu.hpp: each misuse runs in a child process, which must die of SIGABRT
 * after writing one line that names the misuse to stderr. A child that does the same calls
 * correctly must exit normally (so the harness itself can fail).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <swiftrcu.hpp>

#include <csignal>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.hpp"

namespace {

struct outcome {
    int status;
    std::string err; // what the child wrote to stderr
};

/* Runs body in a child process with stderr captured; the child exits 0 if body returns. */
template <class F>
outcome in_child(F body) {
    int fds[2];
    if (pipe(fds) != 0)
        std::abort();
    std::fflush(stdout);
    std::fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        (void)setrlimit(RLIMIT_CORE, &no_core);
        close(fds[0]);
        dup2(fds[1], 2);
        body();
        _exit(0);
    }
    close(fds[1]);
    outcome o{0, {}};
    char buf[512];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0)
        o.err.append(buf, static_cast<std::size_t>(n));
    close(fds[0]);
    waitpid(pid, &o.status, 0);
    return o;
}

bool aborted(const outcome &o) { return WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGABRT; }
bool exited_ok(const outcome &o) { return WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0; }
bool one_line(const std::string &s) { return !s.empty() && s.find('\n') == s.size() - 1; }
bool says(const outcome &o, const char *part) { return o.err.find(part) != std::string::npos; }

/* CHECKs that the child aborted with one line containing both parts. */
#define CHECK_ABORTS(o, part1, part2)                                                              \
    do {                                                                                           \
        CHECK(aborted(o));                                                                         \
        CHECK(one_line((o).err));                                                                  \
        CHECK(says(o, part1));                                                                     \
        CHECK(says(o, part2));                                                                     \
        if (!aborted(o) || !says(o, part1) || !says(o, part2))                                     \
            std::fprintf(stderr, "  child status %d, stderr: %s\n", (o).status, (o).err.c_str()); \
    } while (0)

auto &dom() { return swiftrcu::rcu_default_domain(); }

void barrier_from_deleter(int *p) {
    swiftrcu::rcu_barrier();
    delete p;
}

} // namespace

int main() {
    check::watchdog(120);

    // Controls: correct use exits normally.
    CHECK(exited_ok(in_child([] {
        { std::scoped_lock l(dom()); }
        swiftrcu::rcu_synchronize();
        swiftrcu::rcu_retire(new int(1));
        swiftrcu::rcu_barrier();
    })));

    // rcu_synchronize / rcu_barrier inside a region (or a read_guard's section).
    outcome o = in_child([] {
        std::scoped_lock l(dom());
        swiftrcu::rcu_synchronize();
    });
    CHECK_ABORTS(o, "rcu_synchronize()", "inside a region");
    CHECK(says(o, "SWIFTRCU_EDEADLK"));
    o = in_child([] {
        swiftrcu::read_guard g;
        swiftrcu::rcu_synchronize();
    });
    CHECK_ABORTS(o, "rcu_synchronize()", "inside a region");
    o = in_child([] {
        std::scoped_lock l(dom());
        swiftrcu::rcu_barrier();
    });
    CHECK_ABORTS(o, "rcu_barrier()", "inside a region");

    // rcu_barrier from a deleter that runs deferred.
    o = in_child([] {
        swiftrcu::rcu_retire(new int(1), &barrier_from_deleter);
        swiftrcu::rcu_barrier();
    });
    CHECK_ABORTS(o, "rcu_barrier()", "from a deleter running deferred");

    // unlock with no region open; unlock when a read_guard's section is innermost.
    o = in_child([] { dom().unlock(); });
    CHECK_ABORTS(o, "rcu_domain::unlock()", "no region");
    CHECK(says(o, "SWIFTRCU_EPERM"));
    o = in_child([] {
        dom().lock();
        swiftrcu::read_guard g;
        dom().unlock();
    });
    CHECK_ABORTS(o, "rcu_domain::unlock()", "not a region opened by lock()");

    // lock past the nesting limit (try_lock says false there instead).
    CHECK(exited_ok(in_child([] {
        int n = 0;
        while (n < 300 && dom().try_lock())
            n++;
        if (n != 255 || dom().try_lock())
            std::_Exit(3);
    })));
    o = in_child([] {
        for (int i = 0; i < 256; i++)
            dom().lock();
    });
    CHECK_ABORTS(o, "rcu_domain::lock()", "255 nested");
    CHECK(says(o, "SWIFTRCU_EPERM"));

    // A read_guard destroyed while a region opened inside it is still open.
    o = in_child([] {
        {
            swiftrcu::read_guard g;
            dom().lock();
        }
    });
    CHECK_ABORTS(o, "read_guard", "not the thread's innermost");

    // A deleter that throws on the call_rcu thread ends the program through std::terminate.
    o = in_child([] {
        swiftrcu::rcu_retire(new int(1), [](int *p) {
            delete p;
            throw std::runtime_error("deleter failed");
        });
        swiftrcu::rcu_barrier();
    });
    CHECK(aborted(o));
    CHECK(says(o, "terminate"));

    return check::finish();
}
