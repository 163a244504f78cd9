#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_api (bindings/c/fuzz/corpus/): one small program per theme.

The byte code is the one fuzz_api.c reads: an operation byte (value % 18 picks the call), then
its argument bytes. Handle argument bytes: 0x00-0x7f a variable (value % 4 for pointers, % 6
for old handles), 0x80-0x9f a stale handle, 0xa0-0xbf a handle of the other kind, 0xc0-0xdf a
made-up value (8 more bytes), 0xe0-0xff NULL.
"""
import os
import sys

NEW, FREE, REPLACE, COPY_UPDATE, OLD_FREE, OLD_DEFER, OLD_OBJECT, LOCK = range(8)
UNLOCK, DEREF, LOCK_DEREF, LOAD, SYNC, BARRIER, REGISTER, STRERROR = 9, 11, 12, 13, 14, 15, 16, 17
DEEP = 0x8E  # 142 % 18 == 16 with the high bit set
END_NESTED = 0xFF
STALE, OTHER_KIND, MADE_UP, NULL = 0x80, 0xA0, 0xC0, 0xE0
OBJ_DESTROY = 0x03  # new: with an object and a destroy function
LOAD_RETAINED = 0x43  # 67 % 18 == 13, bits 0xC0 == 0x40
LOADER = 0x8B  # 139 % 18 == 13, bits 0xC0 == 0x80; then a byte: loader % 4, action (>> 3) & 3
BIND, UNBIND, CALL = 0x00, 0x08, 0x10  # actions; bind takes a ptr byte and a flags byte
WITH_RETAIN, WITH_IF_NULL, NULL_OUT = 0x01, 0x08, 0x10  # bind flags
READ_SECTION = 0xC1  # 193 % 18 == 13, bits 0xC0 == 0xC0; then a ptr byte and a byte (& 7: with fn)
READ_COPY = 0xC5  # 197 % 18 == 17, bits 0xC0 == 0xC0; then a ptr byte, a size byte, an offset byte
COPY_NULL_DST, COPY_OVERFLOW = 0xC0, 0xE0  # size byte flags (the size is & 31)

SEEDS = {
    "basic": [NEW, OBJ_DESTROY, LOCK, DEREF, 0, 0, UNLOCK, 0, REPLACE, 0, 1, OLD_OBJECT, 0,
              OLD_FREE, 0, LOAD, 0, FREE, 0, BARRIER],
    "in_section": [NEW, OBJ_DESTROY, LOCK, REPLACE, 0, 1, OLD_FREE, 0, OLD_DEFER, 0, SYNC,
                   BARRIER, FREE, 0, REGISTER, 0, UNLOCK, 0, BARRIER, SYNC],
    "stale": [NEW, OBJ_DESTROY, REPLACE, 0, 1, OLD_DEFER, 0, OLD_DEFER, STALE, OLD_FREE, STALE,
              OLD_OBJECT, STALE, FREE, 0, FREE, STALE, REPLACE, STALE, 1, NEW, OBJ_DESTROY,
              FREE, STALE, LOAD, STALE, LOCK, DEREF, STALE, 0, UNLOCK, 0, BARRIER],
    "unlock_order": [LOCK, LOCK, LOCK, UNLOCK, 2, UNLOCK, 0, UNLOCK, 3, UNLOCK, 4, UNLOCK, 5,
                     UNLOCK, 13, DEREF, 0, 2, DEREF, 0, 3, UNLOCK, 0, UNLOCK, 0, UNLOCK, 0],
    "copy_update_reentry": [NEW, OBJ_DESTROY, NEW, OBJ_DESTROY, LOCK,
                            COPY_UPDATE, 0, 3,  # nested program inside the callback of var 0
                            REPLACE, 0, 1, COPY_UPDATE, 0, 1, FREE, 0, FREE, 1,
                            COPY_UPDATE, 1, 1, REPLACE, 1, 1, SYNC, BARRIER, OLD_FREE, 0,
                            OLD_DEFER, 1, UNLOCK, 0, END_NESTED,
                            UNLOCK, 0, OLD_FREE, 0, COPY_UPDATE, 0, 0, COPY_UPDATE, 0, 2,
                            COPY_UPDATE, 1, 0x40, COPY_UPDATE, 1, 0x80, BARRIER],
    "deep": [NEW, OBJ_DESTROY, LOCK, DEEP, DEREF, 0, 0, UNLOCK, 0, SYNC],
    "wrong_kind": [NEW, OBJ_DESTROY, REPLACE, 0, 1, FREE, OTHER_KIND, OLD_FREE, OTHER_KIND,
                   OLD_OBJECT, OTHER_KIND, LOAD, MADE_UP, 0, 0, 0, 1, 0, 0, 0, 5,
                   FREE, MADE_UP, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 1, STRERROR, 0xFF, 0xFF, 0xFF,
                   0xFF, 0xFF, 0xFF, 0xFF, 0xDD, OLD_FREE, NULL, FREE, NULL, REPLACE, NULL, 1],
    "lock_dereference": [NEW, OBJ_DESTROY, NEW, 0x00, LOCK_DEREF, 0, 0, LOCK_DEREF, 1, 1,
                         LOCK_DEREF, NULL, 0, UNLOCK, 0, UNLOCK, 0, REGISTER, 1, REGISTER, 0,
                         LOAD, 1, REPLACE, 1, 1, OLD_DEFER, 0, BARRIER],
    "loaders": [NEW, OBJ_DESTROY, LOAD_RETAINED, 0, 1, LOAD_RETAINED, 0, 0,
                LOADER, BIND | 0, 0, WITH_RETAIN | WITH_IF_NULL, LOADER, CALL | 0, LOCK,
                LOADER, CALL | 0, REPLACE, 0, 1, UNLOCK, 0, LOADER, CALL | 0, OLD_FREE, 0,
                LOADER, BIND | 1, 0, WITH_RETAIN, LOADER, CALL | 1, FREE, 0, LOADER, CALL | 0,
                LOADER, CALL | 1, LOADER, UNBIND | 0, LOADER, UNBIND | 0, LOADER, BIND | 2, STALE,
                WITH_RETAIN, LOADER, BIND | 2, 0, NULL_OUT, LOADER, BIND | 3, 0, 0, BARRIER],
    "read_section": [NEW, OBJ_DESTROY, NEW, 0x00, READ_SECTION, 0, 1, READ_SECTION, 1, 1,
                     READ_SECTION, 0, 0, LOCK, READ_SECTION, 0, 1, UNLOCK, 0, READ_SECTION, STALE,
                     1, REPLACE, 0, 1, READ_SECTION, 0, 1, OLD_DEFER, 0, FREE, 0,
                     READ_SECTION, STALE, 1, READ_SECTION, OTHER_KIND, 1, BARRIER],
    "read_copy": [NEW, OBJ_DESTROY, NEW, 0x00, READ_COPY, 0, 8, 0, READ_COPY, 0, 4, 4, READ_COPY, 0, 16, 3,
                  READ_COPY, 0, 0, 0, READ_COPY, 1, 8, 0, READ_COPY, 0, COPY_NULL_DST | 8, 0,
                  READ_COPY, 0, COPY_NULL_DST, 0, READ_COPY, 0, COPY_OVERFLOW | 1, 2, LOCK,
                  READ_COPY, 0, 31, 1, UNLOCK, 0, READ_COPY, STALE, 8, 0, REPLACE, 0, 1,
                  READ_COPY, 0, 8, 0, OLD_DEFER, 0, FREE, 0, READ_COPY, STALE, 8, 0,
                  READ_COPY, OTHER_KIND, 8, 0, READ_COPY, NULL, 8, 0, BARRIER],
}


def main() -> int:
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, program in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes(program))
    print(f"{len(SEEDS)} seeds written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
