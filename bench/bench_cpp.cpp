/*
 * bench_cpp.cpp - the C++ read path for bench_read.c: swiftrcu::ptr::read (swiftrcu.hpp), the same
 * read as the C ABI trio's (one field of a bench_obj), through the header-only C++ layer.
 */
#include <swiftrcu.hpp>

#include <memory>

extern "C" {
#include "bench_common.h"
}

namespace {

/* The benchmark's objects are static: the pointer never destroys them. */
struct keep {
    void operator()(bench_obj *) const noexcept {}
};

swiftrcu::ptr<bench_obj, keep> *cpp_ptr;

} // namespace

extern "C" void bench_cpp_init(struct bench_obj *object) {
    cpp_ptr = new swiftrcu::ptr<bench_obj, keep>(std::unique_ptr<bench_obj, keep>(object));
}

extern "C" __attribute__((noinline)) uint64_t bench_loop_cpp_read(uint64_t n) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += cpp_ptr->read([](const bench_obj *o) { return o->value; });
    return sum;
}
