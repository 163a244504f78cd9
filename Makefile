# SwiftRCU - build, install and test. Everything built goes to build/ and .build/.
#   make, make lib      build libswiftrcu.so into build/lib (release, Swift runtime linked in statically)
#   make deps           install liburcu-dev and pkg-config when missing (scripts/ensure-deps.sh)
#   make demo           run the examples (C, C++ and Python): readers and a writer on one pointer
#   make install        PREFIX=/usr/local DESTDIR= ; make uninstall likewise
#   make wheel          the Python wheel (libswiftrcu.so and its liburcu inside) into build/dist/
#   make header         regenerate include/swiftrcu_generated.h from the @c functions (commit it)
#   make test           all of: test-swift test-swift-client check-header test-install test-headers test-c
#                       test-cpp test-python test-reliability fuzz-short bench-smoke bench-scale-smoke
#     test-swift        the Swift tests (swift test)
#     test-swift-client the Swift API from a client package: public symbols, tests, code that must not compile
#     check-header      include/swiftrcu_generated.h is what `make header` would write
#     test-install      the installed prefix: files, SONAME, exported symbols, pkg-config
#     test-headers      the installed headers under C99/C11/C2x and C++17/C++20, gcc and clang;
#                       no pragmas, every file-scope name prefixed (scripts/check-headers.sh)
#     test-c            the C contract harness (bindings/c)
#     test-cpp          the C++ tests: g++ and clang++, C++17 and C++20, ASan + UBSan torture,
#                       abort rules, a CMake consumer (bindings/cpp)
#     test-python       the Python suite against the wheel, installed in a fresh venv
#     test-reliability  the short reliability suites (bindings/c/reliability all-short)
#     fuzz-short        60 s of API fuzzing (bindings/c/fuzz)
#     bench-smoke       the benchmark with tiny counts, figures not judged
#     bench-scale-smoke the scale benchmark shortened to seconds, figures not judged
#   make torture        the long torture run (TORTURE_ARGS="readers writers seconds")
#   make test-asan      the C harness, torture, callbacks and churn under AddressSanitizer + UBSan
#   make test-valgrind  the C harness under valgrind
#   make test-fork      the fork suite alone
#   make fuzz           API fuzzing for FUZZ_SECONDS (default 300)
#   make bench          the full benchmark beside liburcu and pthread locks (bench/README.md)
#   make bench-scale    costs against 1-64 reader threads, 1-1M live pointers and a deferred-destroy flood
#   make clean          remove build/ and the harnesses' outputs
SHELL := /bin/bash
.DEFAULT_GOAL := all

PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
SWIFT ?= swift
CC ?= cc
PYTHON ?= python3

version_part = $(shell sed -n 's/^\#define SWIFTRCU_VERSION_$(1) \([0-9]*\).*/\1/p' include/swiftrcu_types.h)
MAJOR := $(call version_part,MAJOR)
MINOR := $(call version_part,MINOR)
PATCH := $(call version_part,PATCH)
VERSION := $(MAJOR).$(MINOR).$(PATCH)

OUT := build
LIBNAME := libswiftrcu.so
REAL := $(LIBNAME).$(VERSION)
SONAME := $(LIBNAME).$(MAJOR)
TESTPREFIX := $(CURDIR)/$(OUT)/test-prefix
DEMOPREFIX := $(CURDIR)/$(OUT)/demo-prefix
WHEEL_TOOLS := $(CURDIR)/$(OUT)/wheel-tools
WHEEL_VENV := $(CURDIR)/$(OUT)/wheel-venv

# -z nodelete: the library stays mapped after dlclose, since threads that used it run its
# thread-exit handler later and liburcu's call_rcu threads run its code.
SWIFT_LIB_FLAGS := -c release --product swiftrcu -Xswiftc -static-stdlib \
	-Xlinker -soname=$(SONAME) -Xlinker --version-script=$(CURDIR)/scripts/exports.map -Xswiftc -use-ld=lld \
	-Xlinker -z -Xlinker nodelete \
	-Xlinker --symbol-ordering-file=$(CURDIR)/scripts/read-path-order.txt
GENERATED_SRC = $(shell $(SWIFT) build -c release --show-bin-path)/SwiftRCUCABI.build/include/SwiftRCUCABI-Swift.h
HEADERS := include/swiftrcu.h include/swiftrcu_types.h include/swiftrcu_generated.h include/swiftrcu.hpp
CMAKEDIR ?= $(LIBDIR)/cmake/swiftrcu
CMAKE_SUBST = -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	-e 's|@MAJOR@|$(MAJOR)|' -e 's|@MINOR@|$(MINOR)|'

.PHONY: all deps lib header check-header install uninstall test test-swift test-swift-client test-c test-python \
	test-install test-headers test-cpp test-reliability torture test-asan test-valgrind test-fork fuzz fuzz-short bench \
	wheel test-python-source \
	bench-smoke bench-scale bench-scale-smoke demo clean

all: lib

deps:
	@scripts/ensure-deps.sh

lib: deps
	$(SWIFT) build $(SWIFT_LIB_FLAGS)
	@mkdir -p $(OUT)/lib
	cp "$$($(SWIFT) build -c release --show-bin-path)/$(LIBNAME)" $(OUT)/lib/$(REAL)
	strip --strip-debug $(OUT)/lib/$(REAL)
	ln -sf $(REAL) $(OUT)/lib/$(SONAME)
	ln -sf $(SONAME) $(OUT)/lib/$(LIBNAME)

# The declarations swiftc generates from the @c functions, made a plain C header grouped by topic
# (scripts/clean-header.py fails on a function it has no group for).
$(OUT)/swiftrcu_generated.h: lib scripts/clean-header.py
	$(PYTHON) scripts/clean-header.py "$(GENERATED_SRC)" $@

header: $(OUT)/swiftrcu_generated.h
	cp $(OUT)/swiftrcu_generated.h include/swiftrcu_generated.h

check-header: $(OUT)/swiftrcu_generated.h
	@if ! diff -u include/swiftrcu_generated.h $(OUT)/swiftrcu_generated.h > $(OUT)/header.diff; then \
	  cat $(OUT)/header.diff; echo "include/swiftrcu_generated.h is stale: run 'make header' and commit it"; exit 1; \
	fi
	@echo "check-header: include/swiftrcu_generated.h is up to date"

install: lib
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 755 $(OUT)/lib/$(REAL) $(DESTDIR)$(LIBDIR)/$(REAL)
	ln -sf $(REAL) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/$(LIBNAME)
	install -m 644 $(HEADERS) $(DESTDIR)$(INCLUDEDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' pkgconfig/swiftrcu.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/swiftrcu.pc
	install -d $(DESTDIR)$(CMAKEDIR)
	sed $(CMAKE_SUBST) cmake/swiftrcu-config.cmake.in > $(DESTDIR)$(CMAKEDIR)/swiftrcu-config.cmake
	sed $(CMAKE_SUBST) cmake/swiftrcu-config-version.cmake.in > $(DESTDIR)$(CMAKEDIR)/swiftrcu-config-version.cmake
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/$(REAL) $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/$(LIBNAME)
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/,$(notdir $(HEADERS)))
	rm -f $(DESTDIR)$(LIBDIR)/pkgconfig/swiftrcu.pc
	rm -f $(DESTDIR)$(CMAKEDIR)/swiftrcu-config.cmake $(DESTDIR)$(CMAKEDIR)/swiftrcu-config-version.cmake
	-rmdir $(DESTDIR)$(CMAKEDIR) 2>/dev/null
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi

# A private install used by the C harness, the examples and the Python tests.
$(OUT)/.installed-%: lib
	rm -rf $(CURDIR)/$(OUT)/$*
	$(MAKE) --no-print-directory install PREFIX=$(CURDIR)/$(OUT)/$* DESTDIR=
	touch $@

test-swift: deps
	$(SWIFT) test
	SWIFTRCU_STATS_EXCLUSIVE=1 $(SWIFT) test --filter StatisticsTests

# The Swift API from outside: its public symbols, a client package's tests, snippets that must not compile.
test-swift-client: deps
	SWIFT=$(SWIFT) scripts/check-swift-client.sh

test-c: $(OUT)/.installed-test-prefix
	$(MAKE) -C bindings/c test PREFIX=$(TESTPREFIX)

# C++: swiftrcu.hpp with g++ and clang++ (C++17, C++20), the torture under ASan + UBSan, the
# abort rules in child processes, and a CMake project (C and C++) using find_package(swiftrcu).
test-cpp: $(OUT)/.installed-test-prefix
	scripts/ensure-deps.sh g++ cmake
	$(MAKE) -C bindings/cpp test PREFIX=$(TESTPREFIX)

test-install: $(OUT)/.installed-test-prefix
	bindings/c/check-install.sh $(TESTPREFIX)

# The installed headers as users compile them: C99 / C11 / C2x and C++17 / C++20 with gcc and
# clang, no pragmas, every file-scope name prefixed; each check shown able to fail.
test-headers: $(OUT)/.installed-test-prefix
	scripts/ensure-deps.sh gcc g++
	$(PYTHON) scripts/clean-header.py --selftest
	scripts/check-headers.sh $(TESTPREFIX)
	scripts/check-headers.sh --selftest $(TESTPREFIX)

# The Python wheel: built from a copy of bindings/python with the library added, then repaired by
# auditwheel (liburcu copied into swiftrcu.libs/, the manylinux tag). The tools live in a venv.
wheel: lib
	scripts/ensure-wheel-tools.sh $(WHEEL_TOOLS)
	scripts/build-wheel.sh $(WHEEL_TOOLS) $(OUT)/lib/$(REAL) $(VERSION) $(OUT)/wheel $(OUT)/dist

# The Python suite against what users install: the wheel in a fresh venv, run from a directory
# where the source tree is not importable, with no variable pointing at a library; then again
# with the system's liburcu and the Swift toolchain hidden (when root can unshare a mount
# namespace).
test-python: wheel
	rm -rf $(WHEEL_VENV) $(OUT)/python-test
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/python -m pip install --quiet $(OUT)/dist/swiftrcu-*.whl pytest mypy
	cd bindings/python && $(WHEEL_VENV)/bin/python -m mypy --strict --cache-dir $(CURDIR)/$(OUT)/mypy-cache swiftrcu
	mkdir -p $(OUT)/python-test
	cd $(OUT)/python-test && env -u SWIFTRCU_LIBRARY -u LD_LIBRARY_PATH -u PYTHONPATH \
	  $(WHEEL_VENV)/bin/python -m pytest -q -p no:cacheprovider --wheel $(CURDIR)/bindings/python/tests
	scripts/test-wheel-without-urcu.sh $(WHEEL_VENV)/bin/python $(CURDIR)/bindings/python/tests \
	  $(CURDIR)/$(OUT)/python-test -q -p no:cacheprovider --wheel

# The same suite against the source tree's package and the privately installed library.
test-python-source: $(OUT)/.installed-test-prefix
	scripts/ensure-python-deps.sh
	cd bindings/python && $(PYTHON) -m mypy --strict swiftrcu
	cd bindings/python && SWIFTRCU_LIBRARY=$(TESTPREFIX)/lib/$(LIBNAME) $(PYTHON) -m pytest -q tests

# Reliability and fuzzing (bindings/c/reliability, bindings/c/fuzz): short runs in `make test`,
# long ones as their own targets.
test-reliability: $(OUT)/.installed-test-prefix
	scripts/ensure-deps.sh valgrind
	$(MAKE) -C bindings/c/reliability all-short PREFIX=$(TESTPREFIX)

torture: $(OUT)/.installed-test-prefix
	$(MAKE) -C bindings/c/reliability torture PREFIX=$(TESTPREFIX)

test-asan: $(OUT)/.installed-test-prefix
	$(MAKE) -C bindings/c/reliability asan PREFIX=$(TESTPREFIX)

test-valgrind: $(OUT)/.installed-test-prefix
	scripts/ensure-deps.sh valgrind
	$(MAKE) -C bindings/c/reliability valgrind PREFIX=$(TESTPREFIX)

test-fork: $(OUT)/.installed-test-prefix
	$(MAKE) -C bindings/c/reliability fork PREFIX=$(TESTPREFIX)

fuzz: $(OUT)/.installed-test-prefix
	$(MAKE) -C bindings/c/fuzz fuzz PREFIX=$(TESTPREFIX)

fuzz-short: $(OUT)/.installed-test-prefix
	$(MAKE) -C bindings/c/fuzz fuzz-short PREFIX=$(TESTPREFIX)

# Benchmarks (bench/): the full run prints the table and writes bench/results; the smoke run only
# keeps the benchmark building and running.
bench:
	$(MAKE) -C bench bench

bench-smoke: $(OUT)/.installed-test-prefix
	$(MAKE) -C bench bench-smoke PREFIX=$(TESTPREFIX)

# Scale (bench/run_scale.py): reader threads, live pointers, deferred-destroy flood; a few minutes.
bench-scale:
	$(MAKE) -C bench bench-scale

bench-scale-smoke: $(OUT)/.installed-test-prefix
	$(MAKE) -C bench bench-scale-smoke PREFIX=$(TESTPREFIX)

test: deps test-swift test-swift-client check-header test-install test-headers test-c test-cpp test-python test-reliability fuzz-short bench-smoke bench-scale-smoke
	@echo "make test: all suites passed"

demo: $(OUT)/.installed-demo-prefix
	@scripts/ensure-deps.sh g++
	$(MAKE) -C examples demo PREFIX=$(DEMOPREFIX)

clean:
	rm -rf $(OUT)
	$(MAKE) -C bindings/c clean
	$(MAKE) -C examples clean
