#!/usr/bin/env bash
# Disassembly check of SwiftRCU's read path in an installed release library.
#
#   bench/check-readpath.sh [--json FILE] [LIBRARY]     (default: $PREFIX/lib/libswiftrcu.so)
#
# Disassembles swiftrcu_read_lock, swiftrcu_dereference, swiftrcu_read_unlock,
# swiftrcu_read_lock_dereference, swiftrcu_load, swiftrcu_load_retained, swiftrcu_read_section, swiftrcu_read_copy,
# swiftrcu_region_enter and swiftrcu_region_exit
# (objdump -d --no-show-raw-insn, by dynamic
# symbol, so a stripped library works too) and, for reference, liburcu memb's exported
# urcu_memb_read_lock / urcu_memb_read_unlock. For each function it reports the calls it makes to
# swift_retain / swift_release / swift_beginAccess / swift_endAccess / malloc, its __tls_get_addr
# calls, locked instructions (lock prefix, xchg with memory) and fences (mfence/lfence/sfence).
#
# An mfence that is only reached when urcu_memb_has_sys_membarrier is 0 is liburcu's fallback for
# kernels without sys_membarrier (liburcu's own read path has the same one) and is reported as
# "fallback", not as a finding. Our read path tests a copy of that flag kept in the thread's state
# (the `membarrier` byte of struct rcushim_thread, at MEMBARRIER_OFFSET, reached through the
# pointer loaded from %fs); both forms are recognised, and every mfence in the block a test of
# the flag branches to (up to the jump back) counts as fallback. The scan is linear: a call
# clobbers the caller-saved registers until its block ends with a ret or jmp, after which the
# registers are as they were before the call. Only direct contents are checked; other callees are
# listed by name.
#
# Exit status: 1 when a swiftrcu_* function calls retain/release/beginAccess/malloc or contains a
# locked instruction or an mfence that is not the fallback; 2 on usage errors; 0 otherwise.
set -euo pipefail

json=""
lib=""
while [ $# -gt 0 ]; do
  case "$1" in
    --json) json="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) lib="$1"; shift ;;
  esac
done
if [ -z "$lib" ]; then
  if [ -z "${PREFIX:-}" ]; then
    echo "check-readpath: give the library path, or set PREFIX" >&2
    exit 2
  fi
  lib="$PREFIX/lib/libswiftrcu.so"
fi
[ -f "$lib" ] || { echo "check-readpath: no library at $lib" >&2; exit 2; }
command -v objdump >/dev/null || { echo "check-readpath: objdump not found (binutils)" >&2; exit 2; }
command -v nm >/dev/null || { echo "check-readpath: nm not found (binutils)" >&2; exit 2; }

# liburcu-memb as the dynamic loader resolves it for our library.
urcu_lib=$(ldd "$lib" 2>/dev/null | awk '/liburcu-memb\.so/ {print $3; exit}' || true)

exec python3 - "$lib" "${urcu_lib:-}" "$json" <<'PY'
import json
import re
import subprocess
import sys

lib, urcu_lib, json_path = sys.argv[1], sys.argv[2], sys.argv[3]
OURS = ["swiftrcu_read_lock", "swiftrcu_dereference", "swiftrcu_read_unlock",
        "swiftrcu_read_lock_dereference", "swiftrcu_load", "swiftrcu_load_retained",
        "swiftrcu_read_section", "swiftrcu_read_copy", "swiftrcu_region_enter", "swiftrcu_region_exit"]
REFERENCE = ["urcu_memb_read_lock", "urcu_memb_read_unlock"]
CLASSES = [  # (column, pattern on the callee's name, fails the check)
    ("retain", re.compile(r"^swift_(\w*[rR]etain\w*)$"), True),
    ("release", re.compile(r"^swift_(\w*[rR]elease\w*)$"), True),
    ("beginAccess", re.compile(r"^swift_beginAccess$"), True),
    ("endAccess", re.compile(r"^swift_endAccess$"), False),
    ("malloc", re.compile(r"^(malloc|calloc|realloc|posix_memalign|aligned_alloc|swift_slowAlloc|swift_allocObject)$"), True),
]
REG64 = {}
for base in "abcd":
    for r in ("r%sx" % base, "e%sx" % base, "%sx" % base, "%sl" % base):
        REG64[r] = "r%sx" % base
for base in ("si", "di", "bp", "sp"):
    for r in ("r" + base, "e" + base, base, base + "l"):
        REG64[r] = "r" + base
for n in range(8, 16):
    for suffix in ("", "d", "w", "b"):
        REG64["r%d%s" % (n, suffix)] = "r%d" % n


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def dynamic_symbols(path):
    """name -> (address, size) of the defined dynamic functions."""
    out = {}
    for line in run("nm", "-D", "-S", "--defined-only", path).splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "TtWi":
            out[parts[3].split("@")[0]] = (int(parts[0], 16), int(parts[1], 16))
    return out


def got_slots(path):
    """GOT address -> symbol, from the dynamic relocations."""
    out = {}
    for line in run("objdump", "-R", path).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].endswith("GLOB_DAT"):
            out[int(parts[0], 16)] = parts[2].split("@")[0]
    return out


CALLER_SAVED = {"rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11"}
# offsetof(struct rcushim_thread, membarrier); the shim's header asserts the same value.
MEMBARRIER_OFFSET = 0x0f
MEM = re.compile(r"(-?0x[0-9a-f]+)?\(%(\w+)\)")
INSN = re.compile(r"^\s*([0-9a-f]+):\s+(.*)$")


def disassemble(path, start, size):
    text = run("objdump", "-d", "--no-show-raw-insn", "--start-address=%#x" % start,
               "--stop-address=%#x" % (start + size), path)
    insns = []
    for line in text.splitlines():
        m = INSN.match(line)
        if not m:
            continue
        body = m.group(2)
        comment = ""
        if "#" in body:
            body, comment = body.split("#", 1)
        fields = body.split(None, 1)
        if not fields:
            continue
        mnemonic = fields[0]
        operands = fields[1].strip() if len(fields) > 1 else ""
        if mnemonic in ("lock", "rep", "repz", "repnz", "notrack", "bnd", "data16", "cs", "ds"):
            prefix_rest = operands.split(None, 1)
            if mnemonic == "lock":
                mnemonic = "lock " + (prefix_rest[0] if prefix_rest else "")
                operands = prefix_rest[1] if len(prefix_rest) > 1 else ""
            else:
                while prefix_rest and prefix_rest[0] in ("data16", "cs", "ds", "rex.W", "notrack", "bnd"):
                    prefix_rest = prefix_rest[1].split(None, 1) if len(prefix_rest) > 1 else []
                mnemonic = prefix_rest[0] if prefix_rest else mnemonic
                operands = prefix_rest[1] if len(prefix_rest) > 1 else ""
        insns.append((int(m.group(1), 16), mnemonic, operands, comment.strip()))
    return insns


def target_of(operands, comment):
    """(address, name) of a direct branch or call, else (None, None)."""
    m = re.match(r"^\*?([0-9a-f]+)\s*<([^>]+)>", operands)
    if not m:
        return None, None
    name = re.sub(r"(@plt|@@?\w+)?(\+0x[0-9a-f]+)?$", "", m.group(2))
    return int(m.group(1), 16), name


def regs_in(operand):
    return [REG64.get(r, r) for r in re.findall(r"%(\w+)", operand)]


def analyse(path, name, start, size, got):
    insns = disassemble(path, start, size)
    end = start + size
    res = {"function": name, "instructions": sum(1 for i in insns if not i[1].startswith("nop")), "tls_get_addr": 0, "fs_tls": 0,
           "lock": 0, "mfence": 0, "mfence_fallback": 0, "other_fences": 0, "other_calls": []}
    for col, _, _ in CLASSES:
        res[col] = 0
    addr_regs, value_regs = set(), set()  # registers holding &has_sys_membarrier / its value
    state_regs = set()  # registers holding the thread-state pointer (loaded from %fs)
    flag_is_membarrier = False
    guarded_targets = set()
    prev_guarded_branch = False
    mfences = []
    before_call = None  # register sets before the last call, until its block ends
    for addr, mn, ops, comment in insns:
        last = ops.split(",")[-1].strip() if ops else ""
        dst = REG64.get(last[1:], last[1:]) if re.match(r"^%\w+$", last) else None
        # What a rip-relative operand refers to: a GOT slot holding &has_sys_membarrier ("got"),
        # or the variable itself ("var").
        ref = None
        cm = re.match(r"([0-9a-f]+)\s*<([^>]+)>", comment)
        if cm and "(%rip)" in ops:
            if got.get(int(cm.group(1), 16)) == "urcu_memb_has_sys_membarrier":
                ref = "got"
            elif re.match(r"^urcu_memb_has_sys_membarrier(@@?\w+)?$", cm.group(2)):
                ref = "var"
        is_jcc = mn.startswith("j") and mn != "jmp"
        is_cmp = mn.startswith("cmp") or mn.startswith("test")
        guarded_here = False
        if mn == "call" or (mn == "jmp" and "<" in ops):
            taddr, tname = target_of(ops, comment)
            if mn == "jmp" and taddr is not None and start <= taddr < end:
                tname = None  # a jump inside the function
            if tname:
                if tname == "__tls_get_addr":
                    res["tls_get_addr"] += 1
                else:
                    hit = False
                    for col, pat, _ in CLASSES:
                        if pat.match(tname):
                            res[col] += 1
                            hit = True
                    if not hit and tname not in res["other_calls"]:
                        res["other_calls"].append(tname)
            if mn == "call":  # a call clobbers these (a jump does not)
                before_call = (set(addr_regs), set(value_regs), set(state_regs))
                addr_regs.difference_update(CALLER_SAVED)
                value_regs.difference_update(CALLER_SAVED)
                state_regs.difference_update(CALLER_SAVED)
        elif mn == "call":
            res["other_calls"].append("indirect")
        elif mn.startswith("lock"):
            res["lock"] += 1
        elif mn.startswith("xchg") and "(" in ops:
            res["lock"] += 1  # xchg with a memory operand is implicitly locked
        elif mn == "mfence":
            mfences.append((addr, prev_guarded_branch))
        elif mn in ("lfence", "sfence"):
            res["other_fences"] += 1
        elif is_jcc:
            taddr, _ = target_of(ops, comment)
            if flag_is_membarrier and taddr is not None:
                guarded_targets.add(taddr)
                guarded_here = True
        if "%fs:" in ops:
            res["fs_tls"] += 1
        # Follow has_sys_membarrier through registers into the flags.
        mem_m = MEM.search(ops)
        mem_base = REG64.get(mem_m.group(2), mem_m.group(2)) if mem_m else None
        mem_off = int(mem_m.group(1), 16) if mem_m and mem_m.group(1) else 0
        state_flag = mem_base in state_regs and mem_off == MEMBARRIER_OFFSET
        if is_cmp:
            mem = re.search(r"\(%(\w+)\)", ops)
            operand_regs = regs_in(ops)
            flag_is_membarrier = bool(
                (mem and REG64.get(mem.group(1), mem.group(1)) in addr_regs and ops.startswith("$0x0,"))
                or (state_flag and ops.startswith("$0x0,"))
                or (ref == "var" and ops.startswith("$0x0,"))
                or (mn.startswith("test") and operand_regs and all(r in value_regs for r in operand_regs)))
        elif not (is_jcc or mn.startswith("mov") or mn.startswith("lea") or mn.startswith("nop")):
            flag_is_membarrier = False
        if dst and not is_cmp and not is_jcc and mn not in ("push", "call", "jmp"):
            src = ops.split(",")[0]
            src_mem = re.match(r"^\(%(\w+)\)$", src)
            loads_value = bool(mn.startswith("mov") and src_mem
                               and REG64.get(src_mem.group(1), src_mem.group(1)) in addr_regs)
            loads_value = loads_value or bool(mn.startswith("mov") and state_flag and src.startswith(("0x", "(")))
            addr_regs.discard(dst)
            value_regs.discard(dst)
            state_regs.discard(dst)
            if mn.startswith("mov") and src.startswith("%fs:"):
                state_regs.add(dst)
            if mn.startswith("mov") and ref == "got":
                addr_regs.add(dst)
            elif (mn.startswith("mov") and ref == "var") or loads_value:
                value_regs.add(dst)
            elif mn.startswith("lea") and ref == "var":
                addr_regs.add(dst)
        prev_guarded_branch = guarded_here
        # A block that ends after a call (a slow path that calls out and returns) is left by
        # its ret or jmp: the code that follows it is reached by jumps from before the call,
        # so the call did not clobber the registers there.
        if before_call is not None and (mn == "jmp" or mn.startswith("ret")):
            addr_regs, value_regs, state_regs = before_call
            before_call = None
    # The fallback blocks: from a guarded branch target up to the next jmp or ret.
    fallback = set()
    inside = False
    for addr, mn, _, _ in insns:
        inside = inside or addr in guarded_targets
        if inside:
            fallback.add(addr)
            if mn in ("jmp", "ret") or mn.startswith("ret"):
                inside = False
    for addr, fallthrough_guarded in mfences:
        if addr in fallback or fallthrough_guarded:
            res["mfence_fallback"] += 1
        else:
            res["mfence"] += 1
    res["fails"] = [col for col, _, fails in CLASSES if fails and res[col]] + \
        (["lock"] if res["lock"] else []) + (["mfence"] if res["mfence"] else [])
    return res


rows = []
syms = dynamic_symbols(lib)
got = got_slots(lib)
missing = [f for f in OURS if f not in syms]
for f in OURS:
    if f in syms:
        rows.append(dict(analyse(lib, f, *syms[f], got), library="libswiftrcu", ours=True))
if urcu_lib:
    usyms, ugot = dynamic_symbols(urcu_lib), got_slots(urcu_lib)
    for f in REFERENCE:
        if f in usyms:
            rows.append(dict(analyse(urcu_lib, f, *usyms[f], ugot), library="liburcu-memb", ours=False))

cols = [("function", 31), ("insns", 5), ("tls_get_addr", 12), ("fs_tls", 6), ("retain", 6), ("release", 7),
        ("beginAccess", 11), ("endAccess", 9), ("malloc", 6), ("lock", 4), ("mfence", 6),
        ("mfence_fallback", 15)]
print("read path of %s" % lib)
print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(cols)) + "  other calls")
for r in rows:
    cells = []
    for i, (h, w) in enumerate(cols):
        v = r["function"] + ("" if r["ours"] else " (liburcu)") if h == "function" else \
            r["instructions"] if h == "insns" else r[h]
        cells.append(str(v).ljust(w) if i == 0 else str(v).rjust(w))
    print("  ".join(cells) + "  " + (", ".join(r["other_calls"]) or "-"))
failed = [r for r in rows if r["ours"] and r["fails"]]
for r in failed:
    print("FINDING: %s contains %s" % (r["function"], ", ".join(r["fails"])))
for f in missing:
    print("FINDING: %s is not exported by %s" % (f, lib))
ok = not failed and not missing
print("check-readpath: %s" % ("OK: no retain/release/beginAccess/malloc, no locked instruction, "
                               "no mfence outside liburcu's no-sys_membarrier fallback" if ok else "FAILED"))
if json_path:
    with open(json_path, "w") as fh:
        json.dump({"library": lib, "liburcu": urcu_lib, "ok": ok, "missing": missing, "functions": rows}, fh, indent=2)
sys.exit(0 if ok else 1)
PY
