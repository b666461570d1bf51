#!/usr/bin/env python3
"""The same work, natively and under each overlay, in one run.

    python3 bench/bench.py            # full data sets, 5 runs each
    python3 bench/bench.py --quick    # ~10x smaller, 3 runs (a smoke test)

Implementations: native (a plain copy of the lower tree), ovl (ovl-exec),
and, where available, the kernel's overlayfs (root) and fuse-overlayfs.
Prints, per workload, each one's median time and its ratio to native.
Data sets are generated deterministically under --dir and reused.
"""

import argparse
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OVL_EXEC = os.path.join(ROOT, "target", "release", "ovl-exec")

GOALS = {
    "stat-find": 1.25, "stat-walk": 1.3, "readdir-merged": 1.5, "copy-up-big": 1.1,
    "small-writes": 1.5, "build": 1.03, "git-status": 1.3, "outside": 1.02,
}


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, **kw)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data sets

def make_tree(path, dirs, files_per_dir, seed):
    """A lower tree: `dirs` directories two levels deep, small files in each."""
    if os.path.exists(os.path.join(path, ".done")):
        return
    shutil.rmtree(path, ignore_errors=True)
    rnd = random.Random(seed)
    for d in range(dirs):
        p = os.path.join(path, f"d{d // 50:03}", f"e{d % 50:02}")
        os.makedirs(p, exist_ok=True)
        for f in range(files_per_dir):
            with open(os.path.join(p, f"f{f:03}.txt"), "w") as fh:
                fh.write("x" * rnd.randrange(0, 200))
    open(os.path.join(path, ".done"), "w").close()


def make_merged(base, n):
    """A directory with n names in lower and n other names in an upper template."""
    lower, upper = os.path.join(base, "lower"), os.path.join(base, "upper-template")
    if os.path.exists(os.path.join(base, ".done")):
        return
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(os.path.join(lower, "big"))
    os.makedirs(os.path.join(upper, "big"))
    for i in range(n):
        open(os.path.join(lower, "big", f"low{i:05}"), "w").close()
        open(os.path.join(upper, "big", f"up{i:05}"), "w").close()
    open(os.path.join(base, ".done"), "w").close()


def make_big(base, size):
    path = os.path.join(base, "lower", "big")
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        block = random.Random(7).randbytes(1 << 20)
        for _ in range(size >> 20):
            fh.write(block)


def make_c_project(base, n):
    lower = os.path.join(base, "lower")
    if os.path.exists(os.path.join(base, ".done")):
        return
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(lower)
    objs = []
    for i in range(n):
        with open(os.path.join(lower, f"m{i}.h"), "w") as fh:
            fh.write(f"int f{i}(int);\n")
        with open(os.path.join(lower, f"m{i}.c"), "w") as fh:
            fh.write(f'#include "m{i}.h"\n#include <stdio.h>\n'
                     f"int f{i}(int x) {{ int s = 0; for (int k = 0; k < x; k++) s += k * {i}; return s; }}\n")
        objs.append(f"m{i}.o")
    with open(os.path.join(lower, "Makefile"), "w") as fh:
        fh.write("CFLAGS=-O2\nall: " + " ".join(objs) + "\n%.o: %.c %.h\n\t$(CC) $(CFLAGS) -c $< -o $@\n")
    open(os.path.join(base, ".done"), "w").close()


def make_git_repo(base, n):
    lower = os.path.join(base, "lower")
    if os.path.exists(os.path.join(base, ".done")):
        return
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(lower)
    for i in range(n):
        d = os.path.join(lower, f"src{i // 200:03}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"file{i}.txt"), "w") as fh:
            fh.write(f"line {i}\n")
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b",
               GIT_COMMITTER_EMAIL="b@b", GIT_AUTHOR_DATE="2020-01-01T00:00:00Z",
               GIT_COMMITTER_DATE="2020-01-01T00:00:00Z")
    sh("git init -q . && git add -A && git commit -qm init", cwd=lower, env=env)
    open(os.path.join(base, ".done"), "w").close()


# ---------------------------------------------------------- implementations

class Impl:
    """How one implementation shows a lower (and upper) at a view directory."""

    name = "?"

    def __init__(self, scratch):
        self.scratch = scratch

    def fresh(self, tag):
        d = os.path.join(self.scratch, f"{self.name}-{tag}")
        if os.path.exists(d):
            sh(f"chattr -R -i {d} 2>/dev/null || true; rm -rf {d}")
        os.makedirs(d)
        return d

    def layers(self, lower, upper_template, tag):
        d = self.fresh(tag)
        up, work, view = (os.path.join(d, x) for x in ("upper", "work", "view"))
        if upper_template:
            sh(f"cp -a {upper_template} {up}")
        else:
            os.makedirs(up)
        os.makedirs(work)
        os.makedirs(view)
        return up, work, view


class Native(Impl):
    name = "native"

    def prepare(self, lower, upper_template, tag, writes=True):
        if not writes and not upper_template:
            return lower, [], lambda: None
        d = self.fresh(tag)
        view = os.path.join(d, "view")
        sh(f"cp -a {lower} {view}")
        if upper_template:
            sh(f"cp -a {upper_template}/. {view}/")
        if os.path.isdir(os.path.join(view, ".git")):
            # A copy has new inodes and ctimes: let git take note before timing,
            # as the layers' own index already matches the lower files.
            sh("git update-index -q --refresh", cwd=view)
        return view, [], lambda: None


class Ovl(Impl):
    name = "ovl"

    def prepare(self, lower, upper_template, tag, writes=True):
        up, work, view = self.layers(lower, upper_template, tag)
        return view, [OVL_EXEC, "-l", lower, "-u", up, "-w", work, "-t", view, "--"], lambda: None


class Kernel(Impl):
    name = "kernel"

    def prepare(self, lower, upper_template, tag, writes=True):
        up, work, view = self.layers(lower, upper_template, tag)
        sh(f"mount -t overlay overlay -o lowerdir={lower},upperdir={up},workdir={work} {view}")
        return view, [], lambda: sh(f"umount {view}")


class Fuse(Impl):
    name = "fuse-overlayfs"

    def prepare(self, lower, upper_template, tag, writes=True):
        up, work, view = self.layers(lower, upper_template, tag)
        sh(f"fuse-overlayfs -o lowerdir={lower},upperdir={up},workdir={work} {view} 2>/dev/null")
        return view, [], lambda: sh(f"fusermount -u {view} 2>/dev/null || umount {view}")


def available_impls(scratch):
    impls = [Native(scratch), Ovl(scratch)]
    if os.geteuid() == 0:
        impls.append(Kernel(scratch))
        if not shutil.which("fuse-overlayfs"):
            log("installing fuse-overlayfs to compare with it")
            subprocess.run("apt-get update -qq && apt-get install -y -qq fuse-overlayfs >/dev/null",
                           shell=True, check=False)
        if shutil.which("fuse-overlayfs") and os.path.exists("/dev/fuse"):
            impls.append(Fuse(scratch))
        else:
            log("fuse-overlayfs: not available here (binary or /dev/fuse missing); column skipped")
    else:
        log("not root: the kernel's overlayfs and fuse-overlayfs columns are skipped")
    return impls


# ---------------------------------------------------------------- workloads

def workloads(data, q):
    tree = os.path.join(data, "tree")
    py_walk = ("import os,sys\nfor r,ds,fs in os.walk(sys.argv[1]):\n"
               "    for f in fs: os.stat(os.path.join(r,f))\n")
    small = ("import os,sys\nv=sys.argv[1]\n"
             "for d in range(50):\n    os.makedirs(f'{v}/w{d}', exist_ok=True)\n"
             f"    for i in range({100 // q}): open(f'{{v}}/w{{d}}/n{{i}}','w').write('x')\n"
             "for d in range(50):\n"
             f"    for i in range(0, {100 // q}, 2): os.unlink(f'{{v}}/w{{d}}/n{{i}}')\n"
             f"for d in range(0, {2500 // q}, 50):\n    p=f'{{v}}/d{{d//50:03}}/e00'\n"
             f"    for i in range(0, {20 if q == 1 else 5}): os.unlink(f'{{p}}/f{{i:03}}.txt')\n")
    return [
        ("stat-find", tree, None, "find {v} -printf '%s\\n' > /dev/null", False),
        ("stat-walk", tree, None, f"python3 -c {sh_quote(py_walk)} {{v}}", False),
        ("readdir-merged", os.path.join(data, "merged", "lower"), os.path.join(data, "merged", "upper-template"),
         "for i in $(seq 20); do ls -f {v}/big > /dev/null; done", False),
        ("copy-up-big", os.path.join(data, "big", "lower"), None, "printf x >> {v}/big", True),
        ("small-writes", tree, None, f"python3 -c {sh_quote(small)} {{v}}", True),
        ("build", os.path.join(data, "cproj", "lower"), None, "make -s -j2 -C {v}", True),
        ("git-status", os.path.join(data, "git", "lower"), None, "cd {v} && git status --short > /dev/null", True),
        ("outside", os.path.join(data, "tiny"), None, "find /usr/share -printf '%s\\n' > /dev/null", False),
    ]


def sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def run_once(impl, lower, upper_template, cmd, tag, writes):
    view, prefix, cleanup = impl.prepare(lower, upper_template, tag, writes)
    try:
        full = prefix + ["sh", "-c", cmd.replace("{v}", view)]
        t0 = time.perf_counter()
        p = subprocess.run(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            first = (p.stderr.decode(errors="replace").strip().splitlines() or [""])[0]
            return None, f"FAIL (exit {p.returncode}: {first[:60]})"
        return dt, None
    finally:
        cleanup()


def measure(impl, name, lower, upper_template, cmd, runs, writes):
    run_once(impl, lower, upper_template, cmd, name, writes)  # warm-up, not timed
    times = []
    for _ in range(runs):
        dt, err = run_once(impl, lower, upper_template, cmd, name, writes)
        if err:
            return None, err
        times.append(dt)
    return statistics.median(times), None


def native_cp_time(data, runs):
    src = os.path.join(data, "big", "lower", "big")
    dst = os.path.join(data, "big-cp")
    times = []
    for _ in range(runs):
        if os.path.exists(dst):
            os.unlink(dst)
        t0 = time.perf_counter()
        sh(f"cp {src} {dst}")
        times.append(time.perf_counter() - t0)
    os.unlink(dst)
    return statistics.median(times)


def rss_kib(prefix):
    """Peak resident memory of a small python3 process, in KiB."""
    code = "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    out = subprocess.run(prefix + ["python3", "-c", code], capture_output=True, text=True).stdout.strip()
    return int(out) if out.isdigit() else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="data sets ~10x smaller, 3 runs")
    ap.add_argument("--runs", type=int, help="timed runs per workload (default 5, quick 3)")
    ap.add_argument("--only", help="comma-separated workload names")
    ap.add_argument("--dir", default="/var/tmp/ovl-bench", help="where data sets and scratch dirs live")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build first")
    args = ap.parse_args()
    q = 10 if args.quick else 1
    runs = args.runs or (3 if args.quick else 5)
    if not args.no_build:
        sh("cargo build --release --workspace --quiet", cwd=ROOT)
    data = os.path.join(args.dir, "quick" if args.quick else "full")
    scratch = os.path.join(args.dir, "scratch")
    os.makedirs(data, exist_ok=True)
    os.makedirs(os.path.join(data, "tiny"), exist_ok=True)
    t0 = time.perf_counter()
    make_tree(os.path.join(data, "tree"), 2500 // q, 20, 1)
    make_merged(os.path.join(data, "merged"), 10000 // q)
    make_big(os.path.join(data, "big"), (1024 // q) << 20)
    make_c_project(os.path.join(data, "cproj"), 200 // q)
    make_git_repo(os.path.join(data, "git"), 20000 // q)
    log(f"data sets ready in {time.perf_counter() - t0:.1f} s under {data}")

    impls = available_impls(scratch)
    only = set(args.only.split(",")) if args.only else None
    rows = []
    for name, lower, upper_t, cmd, writes in workloads(data, q):
        if only and name not in only:
            continue
        cells = {}
        for impl in impls:
            if name == "outside" and impl.name not in ("native", "ovl"):
                continue
            med, err = measure(impl, name, lower, upper_t, cmd, runs, writes)
            cells[impl.name] = (med, err)
            log(f"{name:15} {impl.name:15} {err or f'{med:.3f} s'}")
        base = native_cp_time(data, runs) if name == "copy-up-big" else cells["native"][0]
        rows.append((name, cells, base))

    names = [i.name for i in impls]
    print(f"\nmachine: {os.cpu_count()} cores, {cpu_model()}, kernel {platform.release()}, "
          f"data on {fs_type(data)}; median of {runs} runs; ratio = time / native"
          " (copy-up-big: / a native cp of the file)")
    head = f"{'workload':15}" + "".join(f"{n:>24}" for n in names) + f"{'ovl goal':>10}{'':>6}"
    print(head)
    print("-" * len(head))
    for name, cells, base in rows:
        line = f"{name:15}"
        for n in names:
            med, err = cells.get(n, (None, "n/a"))
            if err:
                line += f"{err[:23]:>24}"
            else:
                ratio = f"{med / base:.2f}x" if base else "?"
                line += f"{f'{med:.3f}s {ratio}':>24}"
        ovl_med = cells.get("ovl", (None, None))[0]
        ok = ovl_med is not None and base and ovl_med / base <= GOALS[name]
        line += f"{'<= ' + str(GOALS[name]):>10}{'ok' if ok else 'MISS':>6}"
        print(line)
    tiny = os.path.join(data, "tiny")
    native_kib = rss_kib([])
    ovl_kib = rss_kib([OVL_EXEC, "-l", tiny, "--"])
    if native_kib and ovl_kib:
        print(f"\npeak resident memory of python3: native {native_kib} KiB, under ovl {ovl_kib} KiB "
              f"(+{ovl_kib - native_kib} KiB)")


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def fs_type(path):
    try:
        return subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


if __name__ == "__main__":
    main()
