#!/usr/bin/env python3
"""Writes shim/hot-symbols.txt: what of the shim a process touches when it
starts and first calls each hook, for the linker to lay out first.

A process that starts with the shim pays a page fault for each 64 KiB of the
shim's code it runs and for each page of its variables it writes. Functions
in the order the compiler left them are spread over most of the library, so a
compiler process under `make` touched 12 windows of code and 6 pages of
variables (8-10 faults). Listed first (lld's --symbol-ordering-file, see
shim/build.rs), they take 4-5 windows and 1-4 faults.

How: each program below runs once in a scratch view, under gdb with a
breakpoint on every function of the shim; the functions it reaches are
recorded. Functions more programs reach come first. Then come the shim's
small variables (the libc functions each hook has looked up, flags, locks),
then the tables whose first entries every process uses.

The names are the linker's (mangled, with a hash that changes with the
compiler, the dependencies and the features): run this again after any of
those change; `bench/bench.py` says how many of the names the shim it runs
still has.

With --launcher it writes launcher/hot-symbols.txt the same way for
ovl-exec, which runs once before every command: what it runs before its
`execve` (the C library's start, the command line's parse, the checks) goes
first in the executable (see launcher/build.rs).

Usage: scripts/hot-symbols.py [SHIM]   (default target/release/libovl_shim.so)
       scripts/hot-symbols.py --launcher [OVL_EXEC]   (default target/release/ovl-exec)
Needs gdb, gcc, make, git, python3, tar.
"""

import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "shim", "hot-symbols.txt")
LAUNCHER_OUT = os.path.join(ROOT, "launcher", "hot-symbols.txt")

# What runs in the view (cwd): (name, argv). Compilers, build tools,
# coreutils, shells, python and git: the programs the benchmark and the
# users' builds start by the hundred.
def programs(scratch):
    cc1 = subprocess.run(["gcc", "-print-prog-name=cc1"], capture_output=True, text=True).stdout.strip()
    py = "import os, subprocess\nfor r, ds, fs in os.walk('.'):\n    [os.stat(os.path.join(r, f)) for f in fs]\nsubprocess.run(['true'])\n"
    return [
        ("true", ["true"]),
        ("env", ["env", "true"]),
        ("sh-exec", ["sh", "-c", "exec true"]),
        ("sh", ["sh", "-c", "test -f a.c && echo x > out.txt"]),
        ("bash", ["bash", "-c", "for f in *.c; do [ -e $f ]; done; echo y >> a.h; rm -f out.txt"]),
        ("cc1", [cc1, "-quiet", "a.c", "-O2", "-o", f"{scratch}/a.s"]),
        ("as", ["as", "--64", "-o", "a.o", f"{scratch}/a.s"]),
        ("gcc", ["gcc", "-O2", "-c", "b.c", "-o", "b.o"]),
        ("make", ["make", "-s", "-n"]),
        ("ar", ["ar", "rcs", "lib.a", "a.o"]),
        ("cat", ["cat", "a.c"]),
        ("ls", ["ls", "-l"]),
        ("find", ["find", ".", "-name", "*.h"]),
        ("grep", ["grep", "-r", "main", "."]),
        ("sed", ["sed", "-i", "s/0/1/", "b.c"]),
        ("cp", ["cp", "a.c", "c.c"]),
        ("rm", ["rm", "-f", "b.h"]),
        ("mkdir", ["mkdir", "-p", "d/e"]),
        ("tar", ["tar", "cf", f"{scratch}/t.tar", "."]),
        ("python3", ["python3", "-c", py]),
        ("git", ["git", "status", "--short"]),
    ]

# A binary under gdb: a breakpoint on each of its functions, and each one
# reached recorded. The shim (HOT_MODE=library) once the loader has mapped
# it, until the program runs exec; ovl-exec (HOT_MODE=program) from its
# first instruction (at its load address when it is position-independent)
# until it executes the command.
GDB_SCRIPT = r"""
import gdb, os, subprocess
BIN = os.environ['HOT_BIN']
library = os.environ['HOT_MODE'] == 'library'
out = open(os.environ['HOT_OUT'], 'w')
syms = {}
for l in subprocess.run(['nm', BIN], capture_output=True, text=True).stdout.splitlines():
    p = l.split()
    # Every function, also those without a size (the C run-time's
    # frame_dummy and the like, which run at every start).
    if len(p) == 3 and p[1] in 'tTW':
        syms.setdefault(int(p[0], 16), p[2])
class Hit(gdb.Breakpoint):
    def __init__(self, addr, name):
        super().__init__('*0x%x' % addr, internal=True)
        self.silent = True
        self.name = name
    def stop(self):
        out.write(self.name + '\n')
        out.flush()
        self.enabled = False
        return False
def mapped_at(match):
    for l in gdb.execute('info proc mappings', to_string=True).splitlines():
        if match(l.rstrip()):
            return int(l.split()[0], 16)
gdb.execute('set pagination off')
gdb.execute('set startup-with-shell off')
if library:
    gdb.execute('catch load libovl_shim')
    gdb.execute('run', to_string=True)
    base = mapped_at(lambda l: BIN in l)
else:
    gdb.execute('starti', to_string=True)
    pie = 'DYN' in subprocess.run(['readelf', '-h', BIN], capture_output=True, text=True).stdout
    base = mapped_at(lambda l: l.endswith(BIN)) if pie else 0
    # The first instruction (the entry point) has run already.
    entry = syms.get(int(gdb.parse_and_eval('$pc')) - base)
    if entry:
        out.write(entry + '\n')
for off, name in syms.items():
    Hit(base + off, name)
if library:
    gdb.execute('delete 1')
else:
    gdb.execute('catch exec')
try:
    gdb.execute('continue', to_string=True)
except gdb.error:
    pass  # the program ran exec: what it reached so far is written
if not library:
    gdb.execute('kill')
gdb.execute('quit')
"""


def launcher_runs(scratch):
    """ovl-exec's usual command lines: a program found along PATH, a shell,
    a read-only overlay with its target, a script of the view by its path."""
    lower, upper, work, view = (f"{scratch}/{d}" for d in ("lower", "upper", "work", "view"))
    return [
        ("path", ["-l", lower, "-u", upper, "-w", work, "--", "true"]),
        ("shell", ["-l", lower, "-u", upper, "-w", work, "-t", view, "--", "sh", "-c", "true"]),
        ("read-only", ["-l", lower, "-t", view, "--", "/bin/true"]),
        ("script", ["-l", lower, "-u", upper, "-w", work, "-t", view, "--", f"{view}/run.sh"]),
    ]


def traced(gdb, argv, cwd, env, name, scratch, missing):
    """Runs `argv` under `gdb` (its options, before the script) with
    GDB_SCRIPT and returns the functions it recorded; exits saying
    `missing` if none."""
    script = f"{scratch}/trace.py"
    if not os.path.exists(script):
        with open(script, "w") as f:
            f.write(GDB_SCRIPT)
    out = f"{scratch}/{name}.hits"
    subprocess.run(gdb + ["-x", script, "--args"] + argv, cwd=cwd, env=dict(env, HOT_OUT=out),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    hits = open(out).read().split() if os.path.exists(out) else []
    print(f"{name:9} {len(hits):4} functions", file=sys.stderr)
    if not hits:
        sys.exit(f"hot-symbols: {missing}: is gdb working, and the binary a build with symbols?")
    return hits


def launcher_trace(exe, scratch):
    for d in ("lower", "upper", "work", "view"):
        os.makedirs(f"{scratch}/{d}")
    with open(f"{scratch}/lower/run.sh", "w") as f:
        f.write("#!/bin/sh\ntrue\n")
    os.chmod(f"{scratch}/lower/run.sh", 0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OVL_") and k != "LD_PRELOAD"}
    env.update(HOT_BIN=exe, HOT_MODE="program")
    gdb = ["gdb", "-q", "-batch", "-nx"]
    return [traced(gdb, [exe] + args, scratch, env, name, scratch, f"ovl-exec reached no function of its own ({name})")
            for name, args in launcher_runs(scratch)]


def key(name):
    """A symbol's name without the hash and the suffixes that vary."""
    name = re.sub(r"\.(llvm\.)?\d+$", "", name)
    return re.sub(r"17h[0-9a-f]{16}E$", "E", name)


def scratch_tree(lower):
    files = {
        "a.c": '#include "a.h"\nint a(int x) { return x * A; }\nint main(void) { return a(0); }\n',
        "a.h": "#define A 3\n",
        "b.c": '#include "b.h"\nint b(void) { return B + 0; }\n',
        "b.h": "#define B 4\n",
        "Makefile": "all: lib.a\nlib.a: a.o b.o\n\t$(AR) rcs $@ $^\n%.o: %.c %.h\n\t$(CC) -O2 -c $< -o $@\n",
    }
    for name, text in files.items():
        with open(os.path.join(lower, name), "w") as f:
            f.write(text)
    git = ["git", "-c", "user.name=hot", "-c", "user.email=hot@localhost", "-C", lower]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "tree"], check=True)


def trace(shim, scratch):
    lower, view = f"{scratch}/lower", f"{scratch}/view"
    for d in ("lower", "upper", "work", "view"):
        os.makedirs(f"{scratch}/{d}")
    scratch_tree(lower)
    subprocess.run(["gcc", "-S", "-O2", "-o", f"{scratch}/a.s", f"{lower}/a.c"], check=True)
    env = [f"LD_PRELOAD={shim}", f"OVL_SHIM={shim}", f"OVL_LOWER={lower}", f"OVL_UPPER={scratch}/upper",
           f"OVL_WORK={scratch}/work", f"OVL_TARGET={view}", "OVL_WHITEOUT=kernel", "OVL_XATTR=trusted",
           "GIT_CONFIG_NOSYSTEM=1", f"HOME={scratch}"]
    gdb = ["gdb", "-q", "-batch", "-nx"] + [a for e in env for a in ("-ex", f"set environment {e}")]
    hot_env = dict(os.environ, HOT_BIN=shim, HOT_MODE="library")
    return [traced(gdb, [shutil.which(argv[0]) or argv[0]] + argv[1:], view, hot_env, name, scratch,
                   f"{name} reached no function of the shim")
            for name, argv in programs(scratch)]


def main():
    launcher = "--launcher" in sys.argv[1:]
    args = [a for a in sys.argv[1:] if a != "--launcher"]
    default = "target/release/ovl-exec" if launcher else "target/release/libovl_shim.so"
    binary = os.path.abspath(args[0] if args else os.path.join(ROOT, default))
    if not os.path.exists(binary):
        sys.exit(f"hot-symbols: {binary} not found: run cargo build --release --workspace first")
    scratch = tempfile.mkdtemp(prefix="ovl-hot-")
    try:
        runs = launcher_trace(binary, scratch) if launcher else trace(binary, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    tables = () if launcher else ("3ovl3hot3HOT", "6locate7READERS", "3dir8AT_START")
    write_order(binary, runs, tables, LAUNCHER_OUT if launcher else OUT)


def write_order(binary, runs, table_patterns, out):
    """Functions the runs reached (those more runs reached first), then the
    small variables, then the tables named by `table_patterns`."""
    count, first = collections.Counter(), {}
    for i, hits in enumerate(runs):
        for pos, name in enumerate(dict.fromkeys(key(n) for n in hits)):
            count[name] += 1
            first.setdefault(name, (i, pos))
    text, data = collections.defaultdict(list), []
    nm = subprocess.run(["nm", "-S", "-n", binary], capture_output=True, text=True, check=True).stdout
    for line in nm.splitlines():
        p = line.split()
        if len(p) == 3 and p[1] in "tTW":  # a function without a size
            text[key(p[2])].append(p[2])
        if len(p) != 4:
            continue
        if p[2] in "tTW":
            text[key(p[3])].append(p[3])
        elif p[2] in "bBdD":
            data.append((int(p[1], 16), p[3]))
    # Code most programs run first; past eight programs, in the order run.
    order = sorted(count, key=lambda k: (-min(count[k], 8), first[k]))
    functions = [n for k in order for n in text.get(k, [])]
    small = [n for size, n in data if size <= 256]
    tables = [n for pat in table_patterns for _, n in data if pat in n]
    with open(out, "w") as f:
        f.write("\n".join(functions + small + tables) + "\n")
    print(f"hot-symbols: {len(functions)} functions, {len(small)} small variables, {len(tables)} tables -> {out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
