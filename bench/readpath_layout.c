/*
 * readpath_layout.c - compile-time check of the one layout fact bench/check-readpath.sh relies on:
 * the read path's membarrier test reads the `membarrier` byte of the liburcu shim's struct
 * rcushim_thread at MEMBARRIER_OFFSET (0x0f). Only compiled (clang -fsyntax-only, by
 * bench/Makefile before check-readpath and the benchmarks); if it fails, update the offset in
 * check-readpath.sh and here.
 */
#include "liburcu_shim.h"

_Static_assert(__builtin_offsetof(struct rcushim_thread, membarrier) == 0x0f,
               "update MEMBARRIER_OFFSET in bench/check-readpath.sh");
