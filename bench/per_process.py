#!/usr/bin/env python3
"""What ovl costs each process it starts, counted rather than timed.

    python3 bench/per_process.py [--runs N]

A build starts hundreds of short processes (the build workload of
bench/bench.py: 603 for 200 files), and the shim is loaded into each, so
what it costs a process at its start and on its first calls is most of
what ovl costs a build. Times of a few milliseconds swing by 10-20% from
run to run on this machine; page faults and system calls do not. So this
runs a few of a build's programs (the compiler driver with its cc1 and as,
cc1 and as alone, /bin/true) on one of the build's C files, and a shell
script's way of running commands (bash forks for each), four ways:

  native        as they are
  empty preload with an empty library in LD_PRELOAD: what any preloaded
                library costs (opening it, mapping it, the loader's work)
  shim inert    with the shim in LD_PRELOAD but no overlay described
  ovl           in the view, with the environment ovl-exec gives them

and prints, for each, the page faults (the process and the children it
waited for: minor and major, median over the runs), the system calls
(strace -f, one run; left out without strace) and the CPU time (mean over
the runs, interleaved: only a hint, it is noisy here).

Needs gcc and as (binutils); target/release built (cargo build --release).
"""

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
# The build workload's own C files, and the files the benchmark runs.
from bench import BUILT, OVL_EXEC, gen_cproj  # noqa: E402

SHIM = os.path.join(BUILT, "libovl_shim.so")
MODES = ("native", "empty preload", "shim inert", "ovl")


def plain_env():
    """This process's environment without any overlay or preload in it."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OVL_") and k != "LD_PRELOAD"}


def overlay_env(lower, upper, work):
    """The environment ovl-exec gives a command in the view (its own checks pass first)."""
    out = subprocess.run([OVL_EXEC, "-l", lower, "-u", upper, "-w", work, "--", "env", "-0"],
                         capture_output=True, check=True, env=plain_env()).stdout
    pairs = (e.split(b"=", 1) for e in out.split(b"\0") if b"=" in e)
    return {k.decode(): v.decode() for k, v in pairs}


def empty_library(scratch):
    src, lib = os.path.join(scratch, "empty.c"), os.path.join(scratch, "empty.so")
    with open(src, "w") as f:
        f.write("int ovl_bench_empty(void) { return 0; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", lib, src], check=True)
    return lib


def driver_commands(cwd, asm):
    """cc1's and as's command lines as the compiler driver runs them (`cc -###`),
    cc1 writing `asm`."""
    err = subprocess.run(["cc", "-###", "-O2", "-c", "m000.c", "-o", "m000.o"], cwd=cwd,
                         capture_output=True, text=True, check=True).stderr
    lines = [shlex.split(line) for line in err.splitlines() if line.startswith(" ")]
    cc1 = next(a for a in lines if os.path.basename(a[0]) == "cc1")
    cc1[cc1.index("-o") + 1] = asm
    as_ = next(a for a in lines if os.path.basename(a[0]) == "as")
    as_[-1] = asm
    return cc1, as_


def programs(cc1, as_):
    """(name, argv, output file it writes or None)."""
    return [
        ("cc -c (cc, cc1, as)", ["cc", "-O2", "-c", "m000.c", "-o", "m000.o"], "m000.o"),
        ("cc1", cc1, None),
        ("as", as_, "m000.o"),
        ("true", ["/bin/true"], None),
        # A shell script's way: bash forks, and the child runs the command.
        ("bash, 10 commands", ["bash", "-c", "for i in 0 1 2 3 4 5 6 7 8 9; do /bin/true; done"], None),
    ]


def run_once(argv, env, cwd, output, outdirs):
    """Faults (minor + major) and CPU seconds of one run, its children's included."""
    if output:
        for d in outdirs:  # every run writes a new file, as in a build
            try:
                os.unlink(os.path.join(d, output))
            except FileNotFoundError:
                pass
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(cwd)
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, 1)
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{argv[0]} failed (status {status}) in {cwd}")
    return ru.ru_minflt + ru.ru_majflt, ru.ru_utime + ru.ru_stime


def syscalls(argv, env, cwd):
    """System calls of one run and its children (strace -f -c), or None."""
    if not shutil.which("strace"):
        return None
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
        p = subprocess.run(["strace", "-f", "-c", "-o", out.name] + argv, env=env, cwd=cwd,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if p.returncode != 0:
            return None
        for line in out.read().splitlines():
            words = line.split()
            if words and words[-1] == "total":
                return int(words[3])
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="runs of each program each way (default 20)")
    args = ap.parse_args()
    for f in (SHIM, OVL_EXEC):
        if not os.path.exists(f):
            sys.exit(f"{f} not found: run cargo build --release first")
    scratch = tempfile.mkdtemp(prefix="ovl-per-process-")
    try:
        gen_cproj(scratch, 1, 7)
        lower = os.path.join(scratch, "lower")
        native = os.path.join(scratch, "native")
        upper, work = os.path.join(scratch, "upper"), os.path.join(scratch, "work")
        shutil.copytree(lower, native)
        os.makedirs(upper)
        os.makedirs(work)
        asm = os.path.join(scratch, "m000.s")
        subprocess.run(["cc", "-O2", "-S", "m000.c", "-o", asm], cwd=native, check=True)
        cc1, as_ = driver_commands(native, asm)
        base = plain_env()
        ways = {
            "native": (base, native),
            "empty preload": (dict(base, LD_PRELOAD=empty_library(scratch)), native),
            "shim inert": (dict(base, LD_PRELOAD=SHIM), native),
            "ovl": (overlay_env(lower, upper, work), lower),
        }
        print(f"per process, {args.runs} runs each way, interleaved; "
              f"faults: median; CPU: mean (noisy); calls: strace -f, one run")
        head = "".join(f"{m:>24}" for m in MODES)
        print(f"{'':20}{head}")
        print(f"{'':20}" + f"{'faults  calls    CPU ms':>24}" * len(MODES))
        for name, argv, output in programs(cc1, as_):
            faults = {m: [] for m in MODES}
            cpu = {m: [] for m in MODES}
            for r in range(args.runs):
                for m in (MODES if r % 2 == 0 else MODES[::-1]):
                    env, cwd = ways[m]
                    f, c = run_once(argv, env, cwd, output, (native, upper))
                    faults[m].append(f)
                    cpu[m].append(c)
            calls = {m: syscalls(argv, *ways[m]) for m in MODES}
            cells = []
            for m in MODES:
                n = "-" if calls[m] is None else str(calls[m])
                cells.append(f"{statistics.median(faults[m]):>8.0f}{n:>7}{statistics.mean(cpu[m]) * 1e3:>9.2f}")
            print(f"{name:20}" + "".join(f"{c:>24}" for c in cells))
            f0, c0 = statistics.median(faults["native"]), statistics.mean(cpu["native"])
            more = []
            for m in MODES[1:]:
                d = "" if calls[m] is None or calls["native"] is None else f", {calls[m] - calls['native']:+d} calls"
                more.append(f"{m} {statistics.median(faults[m]) - f0:+.0f} faults{d}, "
                            f"CPU x{statistics.mean(cpu[m]) / c0:.3f}")
            print(f"{'':20}vs native: " + "; ".join(more))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    t0 = time.time()
    main()
    print(f"({time.time() - t0:.0f} s)", file=sys.stderr)
