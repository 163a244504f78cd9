// A C++ program built by CMake against an installed SwiftRCU (find_package(swiftrcu)).
#include <cstdio>
#include <memory>
#include <mutex>
#include <swiftrcu.hpp>

struct config : swiftrcu::rcu_obj_base<config> {
    int timeout_ms = 100;
};

int main() {
    swiftrcu::ptr<int> p(std::make_unique<int>(1));
    int seen = p.read([](const int *v) { return *v; });
    p.replace(std::make_unique<int>(2)).free();
    {
        std::scoped_lock l(swiftrcu::rcu_default_domain());
        seen += p.read([](const int *v) { return *v; });
    }
    (new config)->retire();
    swiftrcu::rcu_barrier();
    std::printf("consumer_cpp: read %d, library %s\n", seen, swiftrcu_version());
    return seen == 3 ? 0 : 1;
}
