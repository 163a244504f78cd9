/* bench_floor.c - storage for the floor loop's pointer. */
#include "bench_floor.h"

static struct bench_floor_obj bench_floor_obj = {1};
struct bench_floor_obj *bench_floor_ptr = &bench_floor_obj;
