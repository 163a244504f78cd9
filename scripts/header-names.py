#!/usr/bin/env python3
"""Lists the identifiers that installed headers define at file scope without the project prefix.

    header-names.py macros BASELINE_DM HEADERS_DM
        BASELINE_DM and HEADERS_DM are `cc -dM -E` outputs of a file that includes only the
        standard headers the installed headers include, and of one that includes the installed
        headers. Prints each macro of the second that the first lacks and that does not start
        with SWIFTRCU_ or swiftrcu_.

    header-names.py decls PREPROCESSED INCLUDE_DIR
        PREPROCESSED is `cc -E` output (with line markers) of a file that includes the installed
        headers. Parses the text that came from C headers (*.h) in INCLUDE_DIR and prints every
        file-scope name they declare (typedefs, functions, variables, struct / union / enum tags,
        enumerators) that does not start with swiftrcu_ or SWIFTRCU_.

Exit status 1 when something was printed, 2 on usage errors. Python 3 standard library only.
"""
import os
import re
import sys

PREFIXES = ("swiftrcu_", "SWIFTRCU_")
TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|[A-Za-z_]\w*|\d[\w.]*|::|->|\.\.\.|\S')
IDENT = re.compile(r"[A-Za-z_]\w*$")
SKIP_STATEMENTS = {"_Static_assert", "static_assert"}


def macro_names(path):
    names = set()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.match(r"\s*#\s*define\s+([A-Za-z_]\w*)", line)
            if m:
                names.add(m.group(1))
    return names


def own_text(path, include_dir):
    """The preprocessed lines that came from C headers in include_dir."""
    include_dir = os.path.realpath(include_dir)
    keep, out = False, []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.match(r'#\s*(?:line\s+)?\d+\s+"([^"]*)"', line)
            if m:
                name = os.path.realpath(m.group(1)) if m.group(1)[:1] != "<" else ""
                keep = os.path.dirname(name) == include_dir and name.endswith(".h")
                continue
            if keep and not line.startswith("#"):
                out.append(line)
    return "".join(out)


def strip_attributes(tokens):
    """Drops __attribute__((...)), __declspec(...), [[...]], noexcept and throw()."""
    out, i = [], 0
    while i < len(tokens):
        t = tokens[i]
        if t in ("__attribute__", "__attribute", "__declspec", "__asm__", "asm", "__asm") \
                and i + 1 < len(tokens) and tokens[i + 1] == "(":
            depth, i = 0, i + 1
            while i < len(tokens):
                depth += {"(": 1, ")": -1}.get(tokens[i], 0)
                i += 1
                if depth == 0:
                    break
            continue
        if t == "[" and i + 1 < len(tokens) and tokens[i + 1] == "[":
            depth = 0
            while i < len(tokens):
                depth += {"[": 1, "]": -1}.get(tokens[i], 0)
                i += 1
                if depth == 0:
                    break
            continue
        if t == "noexcept" or (t == "throw" and tokens[i + 1:i + 3] == ["(", ")"]):
            i += 3 if t == "throw" else 1
            continue
        out.append(t)
        i += 1
    return out


def split_top(tokens, separator):
    parts, current, depth = [], [], 0
    for t in tokens:
        if t in "([{":
            depth += 1
        elif t in ")]}":
            depth -= 1
        if t == separator and depth == 0:
            parts.append(current)
            current = []
        else:
            current.append(t)
    parts.append(current)
    return parts


def statement_names(tokens):
    """Names a file-scope declaration (or definition) declares."""
    if not tokens or tokens[0] in SKIP_STATEMENTS:
        return []
    names = []
    # Tags, and enumerators of enum bodies; then the bodies are dropped.
    flat, i = [], 0
    while i < len(tokens):
        t = tokens[i]
        if t in ("struct", "union", "enum", "class") and i + 1 < len(tokens) \
                and IDENT.match(tokens[i + 1]):
            names.append(tokens[i + 1])
        if t == "{":
            depth, j = 0, i
            while j < len(tokens):
                depth += {"{": 1, "}": -1}.get(tokens[j], 0)
                if depth == 0:
                    break
                j += 1
            body = tokens[i + 1:j]
            opener = [x for x in tokens[max(0, i - 3):i] if x in ("struct", "union", "enum")]
            if opener == ["enum"]:
                for item in split_top(body, ","):
                    if item and IDENT.match(item[0]):
                        names.append(item[0])
            i = j + 1
            continue
        flat.append(t)
        i += 1
    # Declarators: the first carries the specifiers; a function body ends the statement.
    for declarator in split_top(flat, ","):
        declarator = split_top(declarator, "=")[0]
        if "(" in declarator:
            k = declarator.index("(")
            if k + 1 < len(declarator) and declarator[k + 1] in ("*", "^", "&"):
                inner = [x for x in declarator[k + 1:] if IDENT.match(x)
                         and x not in ("const", "volatile", "restrict", "__restrict")]
                if inner:
                    names.append(inner[0])
            elif k > 0 and IDENT.match(declarator[k - 1]):
                names.append(declarator[k - 1])
        else:
            idents = [x for x in split_top(declarator, "[")[0] if IDENT.match(x)]
            if idents:
                names.append(idents[-1])
    return names


def declared_names(text):
    tokens = strip_attributes(TOKEN.findall(text))
    names, statement, transparent, i = [], [], 0, 0
    while i < len(tokens):
        t = tokens[i]
        if t == "extern" and i + 2 < len(tokens) and tokens[i + 1].startswith('"') \
                and tokens[i + 2] == "{":
            transparent += 1
            i += 3
            continue
        if t == "}" and transparent and not statement:
            transparent -= 1
            i += 1
            continue
        if t == "{":
            depth, j = 0, i
            while j < len(tokens):
                depth += {"{": 1, "}": -1}.get(tokens[j], 0)
                if depth == 0:
                    break
                j += 1
            if statement[-1:] == [")"]:  # a function body: the definition ends with it
                names += statement_names(statement)
                statement = []
            else:
                statement += tokens[i:j + 1]
            i = j + 1
            continue
        if t == ";":
            names += statement_names(statement)
            statement = []
        else:
            statement.append(t)
        i += 1
    if statement:
        names += statement_names(statement)
    return names


def main(argv):
    if len(argv) != 4 or argv[1] not in ("macros", "decls"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "macros":
        bad = sorted(n for n in macro_names(argv[3]) - macro_names(argv[2])
                     if not n.startswith(PREFIXES))
        kind = "macro"
    else:
        bad = sorted({n for n in declared_names(own_text(argv[2], argv[3]))
                      if not n.startswith(PREFIXES)})
        kind = "name"
    for name in bad:
        print(f"unprefixed {kind}: {name}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
