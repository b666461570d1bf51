#!/usr/bin/env python3
"""The same work, natively and under each overlay, in one run.

    python3 bench/bench.py              # full data sets, 5 timed runs each
    python3 bench/bench.py --quick      # data sets ~10x smaller, 3 runs (< 2 minutes)
    python3 bench/bench.py --only stat-find,build --runs 9 --json out.json

Implementations: native (no overlay: the lower tree itself, or for a
workload that writes a fresh copy of it), ovl (target/release/ovl-exec), and
where they can be used here the kernel's overlayfs (needs root) and
fuse-overlayfs. Each workload is a shell command over a directory VIEW; the
table gives each implementation's median time and its ratio to native, next
to ovl's goal. Workloads that write get a fresh upper (native: a fresh copy)
for every run; for small-writes, build and git-status the overlays' lower
layer is a fresh copy too, so that every implementation reads files of the
same age. As root, copy-up-reflink runs on an XFS file system in a loop
image (XFS shares blocks between files): its copy-up must not copy the
data.
As root, the kernel's dentry and inode caches are dropped before each
workload (see drop_kernel_caches). See the README's Performance section.
"""

import argparse
import json
import math
import os
import platform
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
BUILT = os.path.join(ROOT, "target", "release")
# The ovl-exec the benchmark runs: an installed copy (see `install`).
OVL_EXEC = os.path.join(BUILT, "ovl-exec")
# Bump when a generator changes, so data sets made by an older one are remade.
GENERATOR_VERSION = 2
SCALE_QUICK = 10


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_checked(argv, what, **kw):
    """Runs a set-up step; raises SetupError with its first stderr line on failure."""
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    if p.returncode != 0:
        raise SetupError(f"{what}: exit {p.returncode}: {first_line(p.stderr)}")


def first_line(stderr_bytes):
    lines = stderr_bytes.decode(errors="replace").strip().splitlines()
    return lines[0].strip()[:100] if lines else "no message"


def remove_tree(path):
    if os.path.lexists(path):
        shutil.rmtree(path)


class SetupError(Exception):
    """An implementation could not prepare its view (mount, copy, ...)."""


# ------------------------------------------------------------------ data sets


class DataSet:
    """A deterministic tree under the data dir, generated once per parameter set.

    A `.params` file records what made it; a set whose record differs (or is
    missing, after an interrupted generation) is generated again.
    """

    def __init__(self, name, generate, **params):
        self.name, self.generate, self.params = name, generate, params

    def ensure(self, data_dir):
        path = os.path.join(data_dir, self.name)
        stamp = dict(self.params, generator=GENERATOR_VERSION)
        stamp_file = os.path.join(path, ".params")
        try:
            with open(stamp_file) as fh:
                if json.load(fh) == stamp:
                    return path, 0.0, True
        except (OSError, ValueError):
            pass
        t0 = time.perf_counter()
        tmp = path + ".tmp"
        remove_tree(tmp)
        remove_tree(path)
        os.makedirs(tmp)
        self.generate(tmp, **self.params)
        with open(os.path.join(tmp, ".params"), "w") as fh:
            json.dump(stamp, fh)
        os.rename(tmp, path)
        return path, time.perf_counter() - t0, False


def write_file(path, data):
    with open(path, "wb") as fh:
        fh.write(data)


def gen_tree(base, top, sub, files, seed):
    """lower/dNNN/eNN/fNNN.txt: top*sub directories of `files` small files."""
    rnd = random.Random(seed)
    for t in range(top):
        for s in range(sub):
            d = os.path.join(base, "lower", f"d{t:03}", f"e{s:02}")
            os.makedirs(d)
            for f in range(files):
                write_file(os.path.join(d, f"f{f:03}.txt"), b"x" * rnd.randrange(0, 1024))


def gen_merged(base, names):
    """names/ with `names` entries in lower and as many others in upper; combined/ has both."""
    for layer, prefix in (("lower", "l"), ("upper", "u")):
        for target in (os.path.join(base, layer, "names"), os.path.join(base, "combined", "names")):
            os.makedirs(target, exist_ok=True)
            for i in range(names):
                open(os.path.join(target, f"{prefix}{i:05}"), "w").close()


def gen_big(base, mib, seed):
    """lower/big: `mib` MiB of incompressible data, each MiB stamped with its number."""
    os.makedirs(os.path.join(base, "lower"))
    block = bytearray(random.Random(seed).randbytes(1 << 20))
    with open(os.path.join(base, "lower", "big"), "wb") as fh:
        for i in range(mib):
            block[0:8] = i.to_bytes(8, "little")
            fh.write(block)


def gen_writes(base, dirs, files, seed):
    """lower/wNN/lNNN: the directories small-writes creates files in and deletes from."""
    rnd = random.Random(seed)
    for d in range(dirs):
        p = os.path.join(base, "lower", f"w{d:02}")
        os.makedirs(p)
        for f in range(files):
            write_file(os.path.join(p, f"l{f:03}"), b"y" * rnd.randrange(1, 200))


def gen_cproj(base, units, seed):
    """lower/: `units` C files with a header each and a Makefile building a static library."""
    rnd = random.Random(seed)
    lower = os.path.join(base, "lower")
    os.makedirs(lower)
    for i in range(units):
        k = rnd.randrange(2, 50)
        write_file(os.path.join(lower, f"m{i:03}.h"),
                   f"#ifndef M{i}_H\n#define M{i}_H\nint f{i}(int x);\n#endif\n".encode())
        write_file(os.path.join(lower, f"m{i:03}.c"), (
            f'#include <stdio.h>\n#include <string.h>\n#include "m{i:03}.h"\n'
            f"int f{i}(int x) {{\n  int s = 0;\n"
            f"  for (int k = 0; k < x; k++) s += (k * {k}) ^ (s >> 3);\n"
            f"  return s;\n}}\n").encode())
    write_file(os.path.join(lower, "Makefile"), (
        "CFLAGS = -O2\n"
        "SRCS = $(wildcard m*.c)\n"
        "OBJS = $(SRCS:.c=.o)\n"
        "libbench.a: $(OBJS)\n\t$(AR) rcs $@ $^\n"
        "%.o: %.c %.h\n\t$(CC) $(CFLAGS) -c $< -o $@\n").encode())


GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_AUTHOR_DATE": "2020-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2020-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1",
}
OLD_TIME = 1577836800  # 2020-01-01: older than the index, so no entry is "racily clean"


def gen_git(base, files, per_dir, seed):
    """lower/: a git repository of `files` committed files, index up to date."""
    rnd = random.Random(seed)
    lower = os.path.join(base, "lower")
    os.makedirs(lower)
    paths = []
    for i in range(files):
        d = os.path.join(lower, f"src{i // per_dir:03}")
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, f"file{i:05}.txt")
        write_file(p, f"line {i} {rnd.random()}\n".encode())
        paths.append(p)
    env = dict(os.environ, **GIT_ENV)
    git = ["git", "-c", "init.defaultBranch=main", "-c", "gc.auto=0"]
    run_checked(git + ["init", "-q", "."], "git init", cwd=lower, env=env)
    run_checked(git + ["add", "-A"], "git add", cwd=lower, env=env)
    run_checked(git + ["commit", "-q", "-m", "generated"], "git commit", cwd=lower, env=env)
    for p in paths:
        os.utime(p, (OLD_TIME, OLD_TIME))
    # Write the index again after the files' times, so that it matches them.
    run_checked(["git", "update-index", "-q", "--really-refresh"], "git update-index", cwd=lower)


def gen_tiny(base):
    """lower/: one file, the unrelated overlay of the 'outside' workload."""
    os.makedirs(os.path.join(base, "lower"))
    write_file(os.path.join(base, "lower", "hello"), b"hello\n")


def data_sets(q):
    return [
        DataSet("tree", gen_tree, top=50 // q, sub=50, files=20, seed=1),
        DataSet("merged", gen_merged, names=10000 // q),
        DataSet("big", gen_big, mib=1024 // q, seed=2),
        DataSet("writes", gen_writes, dirs=50 // q, files=50, seed=3),
        DataSet("cproj", gen_cproj, units=200 // q, seed=4),
        DataSet("git", gen_git, files=20000 // q, per_dir=200, seed=5),
        DataSet("tiny", gen_tiny),
    ]


# ------------------------------------------------------------------ workloads


class Workload:
    """A shell command over VIEW ({v}); `lower` (and `upper`, pre-populated) are layer dirs."""

    def __init__(self, name, goal, cmd, lower, upper=None, native=None, writes=False,
                 fresh_lower=False, lower_once=False, overlay_only=None, big=False,
                 rounds_factor=1, scratch=None, yardstick="native", baselines=()):
        self.name, self.goal, self.cmd = name, goal, cmd
        self.lower, self.upper = lower, upper
        self.native = native or lower  # what native reads, for a workload that does not write
        self.writes = writes
        # Native writes in a fresh copy of the lower tree; with fresh_lower the
        # overlays get a fresh copy as their lower layer too, so that all read
        # files of the same age (a tree copied a moment ago stats ~15% faster
        # than one made earlier, whatever reads it).
        self.fresh_lower = fresh_lower
        # With lower_once that copy is made once per implementation, before
        # its warm-up, and kept for all its runs (each run still gets a fresh
        # upper and work dir): for a workload whose only writes are undone
        # before it ends (git status takes index.lock and removes it), so
        # that a 0.03 s command can have many rounds without copying 20,000
        # files for each.
        self.lower_once = lower_once
        self.overlay_only = overlay_only  # implementations that take part (None: all)
        # A run's scratch tree is removed when the benchmark ends, not right
        # after the run: ext4 skips inodes freed in the last minutes when it
        # allocates new ones, so a run made just after another's tree was
        # removed paid for that removal (small-writes, natively: 0.28 s to
        # 2.2 s). Only trees of big files (few inodes) go at once.
        self.big = big
        # A goal within a few percent needs more rounds than this machine's
        # noise would allow with the default: a build's single runs differ by
        # up to 30%, their ratios to native's in the same round by 7% (one
        # standard deviation), so the median of 20 is good to about 2%.
        self.rounds_factor = rounds_factor
        # Where its runs' trees are made (None: the benchmark's scratch), and
        # the implementation its goal is a ratio to (a baseline beside the
        # overlays: `cp` of the file for copy-up-big).
        self.scratch = scratch
        self.yardstick = yardstick
        # Native programs timed beside the implementations (Impl classes):
        # the yardstick among them.
        self.baselines = baselines

    def command(self, view):
        return self.cmd.replace("{v}", shlex.quote(view))


GOALS = {
    "stat-find": 1.25, "stat-walk": 1.3, "readdir-merged": 1.5, "copy-up-big": 1.1,
    "small-writes": 1.5, "build": 1.03, "git-status": 1.3, "outside": 1.02,
    # O(1) where the file system can reflink: well under a copy of the data.
    "copy-up-reflink": 0.1,
}


def workloads(paths, q, reflink=None):
    """The workloads; copy-up-reflink only with `reflink`, the mount point
    of a file system that shares blocks (see reflink_fs)."""
    py = shlex.quote(sys.executable or "python3")
    script = lambda s: shlex.quote(os.path.join(BENCH, s))  # noqa: E731
    tree, merged, big = paths["tree"], paths["merged"], paths["big"]
    ws = [
        Workload("stat-find", GOALS["stat-find"], "find {v} -printf '%s\\n' > /dev/null",
                 lower=f"{tree}/lower"),
        Workload("stat-walk", GOALS["stat-walk"], f"{py} {script('stat_walk.py')} {{v}}",
                 lower=f"{tree}/lower"),
        Workload("readdir-merged", GOALS["readdir-merged"],
                 "cd {v} && for i in $(seq 20); do ls -f names > /dev/null; done",
                 lower=f"{merged}/lower", upper=f"{merged}/upper", native=f"{merged}/combined"),
        Workload("copy-up-big", GOALS["copy-up-big"], "printf x >> {v}/big",
                 lower=f"{big}/lower", writes=True, big=True, yardstick="cp",
                 baselines=(CopyBaseline,)),
        Workload("small-writes", GOALS["small-writes"],
                 f"{py} {script('small_writes.py')} {{v}} {50 // q}",
                 lower=f"{paths['writes']}/lower", writes=True, fresh_lower=True),
        Workload("build", GOALS["build"], "cd {v} && make -s -j2",
                 lower=f"{paths['cproj']}/lower", writes=True, fresh_lower=True,
                 rounds_factor=BUILD_ROUNDS_FACTOR),
        Workload("git-status", GOALS["git-status"], "cd {v} && git status > /dev/null",
                 lower=f"{paths['git']}/lower", writes=True, fresh_lower=True, lower_once=True,
                 rounds_factor=GIT_ROUNDS_FACTOR),
        Workload("outside", GOALS["outside"],
                 f"find {shlex.quote(tree + '/lower')} -printf '%s\\n' > /dev/null",
                 lower=f"{paths['tiny']}/lower", overlay_only={"native", "ovl"},
                 rounds_factor=OUTSIDE_ROUNDS_FACTOR),
    ]
    if reflink:
        # Last: its full copies of the data go through a loop device, whose
        # write-back and discards must not overlap another workload's runs.
        # With it before the build (two full runs, and one of the two alone)
        # the kernel's overlayfs measured 1.06-1.09x native on the build,
        # against 1.01 pooled over the eight runs before and 0.99 in a run
        # of the build alone: not shown to be the cause, but placed so that
        # it cannot be.
        ws.append(Workload("copy-up-reflink", GOALS["copy-up-reflink"], "printf x >> {v}/big",
                           lower=f"{reflink}/lower", writes=True, big=True,
                           scratch=f"{reflink}/scratch", yardstick="full copy",
                           baselines=(CopyBaseline, FullCopy)))
    return ws


# ------------------------------------------------------------ implementations


class Layout:
    """One prepared view: the argv that runs a command in it, and how to undo it."""

    def __init__(self, view, prefix=(), undo=None):
        self.view, self.prefix, self.undo = view, list(prefix), undo

    def argv(self, workload):
        return self.prefix + ["sh", "-c", workload.command(self.view)]

    def close(self):
        if self.undo:
            self.undo()
            self.undo = None


class Impl:
    name = "?"

    def __init__(self, scratch):
        self.scratch = scratch
        self.count = 0
        self.kept_lowers = {}  # workload name -> its lower copy, for lower_once

    def fresh_dir(self, workload):
        self.count += 1
        d = os.path.join(workload.scratch or self.scratch, f"{self.name}-{workload.name}-{self.count}")
        remove_tree(d)
        os.makedirs(d)
        return d

    def layers(self, workload):
        """Fresh upper (a copy of the workload's template, if any), work and
        view dirs, and the lower layer (a fresh copy, for fresh_lower)."""
        d = self.fresh_dir(workload)
        up, work, view = (os.path.join(d, x) for x in ("upper", "work", "view"))
        if workload.upper:
            run_checked(["cp", "-a", workload.upper, up], f"copy of upper {workload.upper}")
        else:
            os.mkdir(up)
        os.mkdir(work)
        os.mkdir(view)
        lower = workload.lower
        if workload.fresh_lower:
            lower = self.kept_lowers.get(workload.name)
            if lower is None:
                lower = os.path.join(d, "lower")
                fresh_copy(workload.lower, lower)
                if workload.lower_once:
                    self.kept_lowers[workload.name] = lower
        return d, lower, up, work, view

    def discard(self, d, workload):
        """How a run's tree `d` is undone: removed now if it is big, else at the end."""
        return (lambda: remove_tree(d)) if workload.big else (lambda: None)


def fresh_copy(src, dst):
    run_checked(["cp", "-a", src, dst], f"copy of {src}")
    if os.path.isdir(os.path.join(dst, ".git")):
        # A copy has new inode numbers and change times: let git take note
        # (untimed), so that no implementation's timed run rewrites the index.
        run_checked(["git", "update-index", "-q", "--refresh"], "git update-index", cwd=dst)


class Native(Impl):
    """No overlay: the lower tree itself, or for writers a fresh copy of it."""

    name = "native"

    def prepare(self, workload):
        if not workload.writes:
            return Layout(workload.native)
        kept = self.kept_lowers.get(workload.name)
        if kept:
            return Layout(kept)
        d = self.fresh_dir(workload)
        view = os.path.join(d, "view")
        fresh_copy(workload.lower, view)
        if workload.lower_once:
            self.kept_lowers[workload.name] = view
        return Layout(view, undo=self.discard(d, workload))


class Ovl(Impl):
    name = "ovl"

    def prepare(self, workload):
        if not os.access(OVL_EXEC, os.X_OK):
            raise SetupError(f"{OVL_EXEC} not found: run cargo build --release --workspace")
        d, lower, up, work, view = self.layers(workload)
        prefix = [OVL_EXEC, "-l", lower, "-u", up, "-w", work, "-t", view, "--"]
        return Layout(view, prefix, self.discard(d, workload))


def unmount(view, fuse):
    cmds = ([["fusermount", "-u", view]] if fuse else []) + [["umount", view], ["umount", "-l", view]]
    for c in cmds:
        if shutil.which(c[0]) and subprocess.run(c, stderr=subprocess.DEVNULL).returncode == 0:
            return


class Kernel(Impl):
    name = "kernel"

    def prepare(self, workload):
        d, lower, up, work, view = self.layers(workload)
        opts = f"lowerdir={lower},upperdir={up},workdir={work}"
        try:
            run_checked(["mount", "-t", "overlay", "overlay", "-o", opts, view], "mount -t overlay")
        except SetupError:
            remove_tree(d)
            raise

        def undo():
            unmount(view, fuse=False)
            self.discard(d, workload)()
        return Layout(view, undo=undo)


class Fuse(Impl):
    name = "fuse-overlayfs"

    def prepare(self, workload):
        d, lower, up, work, view = self.layers(workload)
        opts = f"lowerdir={lower},upperdir={up},workdir={work}"
        try:
            run_checked(["fuse-overlayfs", "-o", opts, view], "fuse-overlayfs")
        except SetupError:
            remove_tree(d)
            raise

        def undo():
            unmount(view, fuse=True)
            self.discard(d, workload)()
        return Layout(view, undo=undo)



class CopyBaseline(Impl):
    """A native `cp` of the big file: the yardstick of copy-up-big's goal
    (where the file system can, `cp` shares the blocks, as a copy-up may)."""

    name = "cp"
    options = []

    def prepare(self, workload):
        d = self.fresh_dir(workload)
        src = os.path.join(workload.lower, "big")
        layout = Layout(d, undo=self.discard(d, workload))
        layout.argv = lambda _w: ["cp", *self.options, src, os.path.join(d, "big")]
        return layout


class FullCopy(CopyBaseline):
    """A `cp` that copies the data even where blocks could be shared: what
    a copy-up that copies costs, the yardstick of copy-up-reflink."""

    name = "full copy"
    options = ["--reflink=never"]


def reflink_fs(data_dir, big_lower):
    """A file system that shares blocks between files (XFS) in a loop image
    under `data_dir`, mounted at `data_dir/reflink`, holding a copy of the
    big file in `lower/`: copy-up-reflink's. Kept for the next run (and
    unmounted at the end of this one). Returns (mount point, None), or
    (None, why it cannot be made here)."""
    if os.geteuid() != 0:
        return None, "needs root (a loop mount)"
    if not shutil.which("mkfs.xfs"):
        return None, "needs mkfs.xfs (package xfsprogs)"
    src = os.path.join(big_lower, "big")
    size = os.path.getsize(src)
    image, mnt = os.path.join(data_dir, "reflink.img"), os.path.join(data_dir, "reflink")
    os.makedirs(mnt, exist_ok=True)
    if not os.path.ismount(mnt):
        if not os.path.exists(image):
            # Room for the file and two copies of it at once; freed blocks go
            # back to the image's own file system (discard).
            with open(image, "wb") as fh:
                fh.truncate(max(4 * size, 512 << 20))
            try:
                run_checked(["mkfs.xfs", "-q", "-f", image], "mkfs.xfs")
            except SetupError as e:
                os.unlink(image)
                return None, str(e)
        p = subprocess.run(["mount", "-o", "loop,discard", image, mnt], capture_output=True, text=True)
        if p.returncode != 0:
            return None, f"cannot mount an XFS image with a loop device: {p.stderr.strip()}"
    big = os.path.join(mnt, "lower", "big")
    if not os.path.exists(big) or os.path.getsize(big) != size:
        os.makedirs(os.path.dirname(big), exist_ok=True)
        try:
            run_checked(["cp", "--reflink=never", src, big + ".new"], "copy of the big file onto XFS")
        except SetupError as e:
            unmount(mnt, fuse=False)
            return None, str(e)
        os.replace(big + ".new", big)
    return mnt, None


def probe(impl, tiny_lower):
    """Mounts (and unmounts) an overlay of the tiny data set; returns why it fails, or None."""
    w = Workload("probe", 0, "true", lower=tiny_lower)
    try:
        layout = impl.prepare(w)
    except SetupError as e:
        return str(e)
    try:
        if not os.path.exists(os.path.join(layout.view, "hello")):
            return "the mounted view does not show the lower file"
    finally:
        layout.close()
    return None


def fuse_unusable_reason():
    if not shutil.which("fuse-overlayfs"):
        if os.geteuid() != 0:
            return "fuse-overlayfs is not installed (and installing it needs root)"
        log("fuse-overlayfs: not installed; installing it with apt-get")
        p = subprocess.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
                           "apt-get install -y -qq fuse-overlayfs", shell=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if p.returncode != 0 or not shutil.which("fuse-overlayfs"):
            return f"apt-get install fuse-overlayfs failed: {first_line(p.stderr)}"
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as e:
        return f"/dev/fuse cannot be opened: {e.strerror}"
    return None


def available_impls(scratch, tiny_lower):
    impls = [Native(scratch), Ovl(scratch)]
    if os.geteuid() != 0:
        log("kernel: skipped: mounting an overlay needs root")
    else:
        why = probe(Kernel(scratch), tiny_lower)
        if why:
            log(f"kernel: skipped: {why}")
        else:
            impls.append(Kernel(scratch))
    why = fuse_unusable_reason() or probe(Fuse(scratch), tiny_lower)
    if why:
        log(f"fuse-overlayfs: skipped: {why}")
    else:
        impls.append(Fuse(scratch))
    return impls


# ----------------------------------------------------------------- measuring


def time_command(argv, timeout):
    """Runs argv; returns (seconds, None) or (None, 'FAIL (...)')."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, start_new_session=True, cwd="/")
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return None, f"FAIL (timeout after {timeout} s)"
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        return None, f"FAIL (exit {p.returncode}: {first_line(err)})"
    return dt, None


class Cell:
    def __init__(self):
        self.times, self.error, self.warmup = [], None, None

    @property
    def median(self):
        return statistics.median(self.times) if self.times and not self.error else None


def drop_kernel_caches():
    """As root: drops the kernel's cached dentries and inodes (not file data).

    Every workload leaves hundreds of thousands of dentries behind (copies,
    removed trees, negative look-ups); on a machine with a small dentry hash
    table their chains slow every later path look-up, natively most (find
    over the tree took 183 ms after a full run, 83 ms after a drop). Each
    workload then starts from the same state; its warm-up fills the caches.
    """
    if os.geteuid() != 0:
        return
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("2\n")
    except OSError as e:
        log(f"could not drop the kernel's caches: {e.strerror}")


# A read-only workload whose quickest warm-up took less than this gets
# SHORT_FACTOR times the rounds: a tenth of a second swings by 10-20% from
# one run to the next here, and more rounds cost little. The first
# implementation's warm-up is not counted: it runs right after the kernel's
# caches were dropped (outside: 0.52 s cold, 0.09 s warm). The quickest, not
# every one: a slow peer (fuse-overlayfs's cold stat-find, over 0.5 s) would
# otherwise cut every implementation's rounds to a third. One second, not
# half of one: stat-walk takes 0.4-0.7 s in every implementation, its runs
# falling into two groups (0.38-0.44 s and 0.50-0.70 s here), and with a
# bar at 0.5 s it got 5 rounds or 15 as its warm-ups fell; five such runs'
# median lands in either group (ovl 1.35x native one run, 1.02-1.17x in
# the runs before, the kernel's overlayfs 1.44x and 1.08-1.33x).
SHORT_S = 1.0
SHORT_FACTOR = 3
# The build's goal is within 3%: see Workload.rounds_factor.
BUILD_ROUNDS_FACTOR = 4
# git status takes 0.03-0.05 s natively here: five rounds' ratio is good to
# a fifth, twenty to a few percent (its tree is copied once: lower_once).
GIT_ROUNDS_FACTOR = BUILD_ROUNDS_FACTOR
# outside's goal is within 2%, and here one round's ratio of ovl to native
# spreads by 9-13% (one standard deviation; three full runs of 15 rounds):
# the median of 15 is good to about 3.5%, of 200 to about 1%. Its runs take
# 0.2 s, so 200 rounds cost about 90 s.
OUTSIDE_ROUNDS_FACTOR = 40


def rounds_for(workload, cells, runs):
    warmups = [c.warmup for c in list(cells.values())[1:] if not c.error and c.warmup is not None]
    short = warmups and min(warmups) < SHORT_S
    if short and not workload.writes:
        return runs * max(SHORT_FACTOR, workload.rounds_factor)
    return runs * workload.rounds_factor


def measure(workload, impls, runs, timeout):
    """One untimed warm-up per implementation, then `runs` rounds over all of them
    (SHORT_FACTOR times as many for a short read-only workload: see rounds_for).

    A workload that writes gets a fresh view (upper, work; native: a fresh copy)
    for every run; a read-only one keeps each implementation's view (and mount)
    from its warm-up on. Rounds alternate implementations so that a slow phase
    of the machine is shared, and each round starts with the next one.
    """
    cells = {i.name: Cell() for i in impls}
    kept = {}

    def one_run(impl, timed):
        cell = cells[impl.name]
        layout = kept.get(impl.name)
        try:
            if layout is None:
                layout = impl.prepare(workload)
                if not workload.writes:
                    kept[impl.name] = layout
            if workload.writes:
                os.sync()  # no earlier run's write-back during this one
            dt, err = time_command(layout.argv(workload), timeout)
        except (SetupError, OSError) as e:
            dt, err = None, f"FAIL (setup: {e})"
        finally:
            if workload.writes and layout is not None:
                layout.close()
        if err:
            cell.error = err
        elif timed:
            cell.times.append(dt)
        else:
            cell.warmup = dt

    drop_kernel_caches()
    try:
        for impl in impls:
            one_run(impl, timed=False)
        for r in range(rounds_for(workload, cells, runs)):
            # Each round starts with another implementation: whatever the
            # place in a round does to a run (the run before it, its
            # write-back, its caches) falls on each one in turn.
            for impl in impls[r % len(impls):] + impls[:r % len(impls)]:
                if not cells[impl.name].error:
                    one_run(impl, timed=True)
    finally:
        for layout in kept.values():
            layout.close()
    return cells


def peak_rss_kib(prefix, argv, runs=5):
    """Median of a program's own peak resident memory (VmHWM), in KiB, or an error text."""
    values = []
    for _ in range(runs):
        p = subprocess.run(prefix + argv, capture_output=True, text=True)
        words = p.stdout.split()
        if p.returncode != 0 or len(words) < 2 or not words[1].isdigit():
            return f"FAIL (exit {p.returncode}: {(p.stderr.strip().splitlines() or ['no output'])[0][:80]})"
        values.append(int(words[1]))
    return int(statistics.median(values))


def memory_overhead(tiny_lower, scratch):
    """The shim's resident memory: small programs natively and under ovl-exec."""
    d = os.path.join(scratch, "rss")
    remove_tree(d)
    for x in ("upper", "work", "view"):
        os.makedirs(os.path.join(d, x))
    prefix = [OVL_EXEC, "-l", tiny_lower, "-u", f"{d}/upper", "-w", f"{d}/work", "-t", f"{d}/view", "--"]
    programs = {
        "grep": ["grep", "^VmHWM", "/proc/self/status"],
        "python3": [sys.executable or "python3", "-c",
                    "print(*[l for l in open('/proc/self/status') if l.startswith('VmHWM')])"],
    }
    out = {}
    for name, argv in programs.items():
        out[name] = {"native": peak_rss_kib([], argv), "ovl": peak_rss_kib(prefix, argv)}
    remove_tree(d)
    return out


# ------------------------------------------------------------------ reporting


def cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def fs_type(path):
    """The type of the filesystem holding path (findmnt names ext4 where stat -f says ext2/ext3)."""
    for argv in (["findmnt", "-n", "-o", "FSTYPE", "-T", path], ["stat", "-f", "-c", "%T", path]):
        if shutil.which(argv[0]):
            p = subprocess.run(argv, capture_output=True, text=True)
            if p.returncode == 0 and p.stdout.strip():
                return p.stdout.strip()
    return "?"


def machine(data_dir):
    return {"nproc": os.cpu_count(), "cpu": cpu_model(), "kernel": platform.release(),
            "data_dir": data_dir, "data_fs": fs_type(data_dir)}


def ratio(cell, base):
    """Time of `cell` relative to `base` (cells of one workload), as the
    goals are set: the ratio of the two medians. None if either has none."""
    if cell is None or base is None or cell.median is None or base.median is None:
        return None
    return cell.median / base.median


def paired(cell, base):
    """The rounds' own ratios of `cell` to `base` (runs alternate
    implementations round by round, so a pair shares the machine's state of
    the moment), or None when they cannot be paired."""
    if cell is None or base is None or cell.error or base.error or not cell.times:
        return None
    if len(cell.times) != len(base.times):
        return None
    return [t / b for t, b in zip(cell.times, base.times)]


def median_interval(values, level=0.95):
    """A distribution-free interval that holds the true median of what
    `values` sample with probability `level` at least: two of the sorted
    values, chosen by the binomial distribution. None with fewer than six
    values, which allow no 95% interval."""
    n = len(values)
    below, k = 0.0, 0
    # Largest k with P(Binomial(n, 1/2) < k) <= (1 - level) / 2.
    while True:
        p_k = math.comb(n, k) / 2 ** n
        if below + p_k > (1 - level) / 2:
            break
        below += p_k
        k += 1
    if k == 0:
        return None
    s = sorted(values)
    return s[k - 1], s[n - k]


def ratio_interval(cell, base, level=0.95, resamples=4000):
    """A `level` interval of `ratio(cell, base)`: the rounds drawn again
    with replacement (a round keeps its pair), the ratio of medians of
    each draw, the middle `level` of those (a fixed seed: the same times
    give the same interval). None with fewer than six rounds."""
    pairs = paired(cell, base)
    if pairs is None or len(pairs) < 6:
        return None
    rounds = list(zip(cell.times, base.times))
    rnd = random.Random(0)
    draws = []
    for _ in range(resamples):
        pick = [rnd.choice(rounds) for _ in rounds]
        draws.append(statistics.median(c for c, _ in pick) / statistics.median(b for _, b in pick))
    draws.sort()
    tail = int(resamples * (1 - level) / 2)
    return draws[tail], draws[resamples - 1 - tail]


def fmt_cell(cell, base, is_base=False):
    if cell is None:
        return "-"
    if cell.error:
        return cell.error
    r = ratio(cell, base)
    if r is not None and not is_base:
        return f"{cell.median:.3f} ({r:.2f}x)"
    return f"{cell.median:.3f}"


def verdict(cell, base, goal):
    r = ratio(cell, base)
    return "ok" if r is not None and r <= goal else "MISS"


def table_rows(results, names):
    """Rows of text cells: one per workload, and for a goal set against a
    baseline other than native (copy-up-big's `cp`) one row of ratios to it."""
    rows = []
    for name, cells, goal, yard in results:
        base = cells.get("native")
        if yard != "native" and yard in cells:
            rows.append([name] + [fmt_cell(cells.get(n), base, n == "native") for n in names] + ["(below)", ""])
            ys = cells[yard]
            first = f"{yard} {ys.median:.3f}" if ys.median else (ys.error or "-")
            rows.append([f"  ratio to {yard}", first]
                        + [fmt_ratio(cells.get(n), ys) for n in names[1:]]
                        + [f"<= {goal} x {yard}", verdict(cells.get("ovl"), ys, goal)])
            continue
        rows.append([name] + [fmt_cell(cells.get(n), base, n == "native") for n in names]
                    + [f"<= {goal}", verdict(cells.get("ovl"), base, goal)])
    return rows


def fmt_ratio(cell, base):
    if cell is None:
        return "-"
    if cell.error:
        return cell.error
    r = ratio(cell, base)
    return f"{r:.2f}x" if r is not None else "?"


def print_table(results, names, runs, mach):
    print()
    print(f"machine: nproc {mach['nproc']}, {mach['cpu']}, kernel {mach['kernel']}, "
          f"data dir {mach['data_dir']} on {mach['data_fs']}")
    print(f"median seconds of {runs} timed runs after one untimed warm-up ({runs * SHORT_FACTOR} for "
          f"read-only workloads under {SHORT_S} s, {runs * BUILD_ROUNDS_FACTOR} for build and git-status, "
          f"{runs * OUTSIDE_ROUNDS_FACTOR} for outside); ratio to native: of the medians")
    head = ["workload"] + names + ["ovl goal", "ovl"]
    rows = [head] + table_rows(results, names)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for k, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))


def print_intervals(results):
    """ovl's ratio to native with its 95% interval, and the median of the
    rounds' own ratios with that median's interval, for the goals within a
    few percent, where the intervals say whether a miss (or a pass) is
    more than this machine's noise."""
    lines = []
    for name, cells, goal, _yard in results:
        if goal > 1.05:
            continue
        cell, base = cells.get("ovl"), cells.get("native")
        r, iv, pairs = ratio(cell, base), ratio_interval(cell, base), paired(cell, base)
        if r is None or iv is None or pairs is None:
            continue
        m, miv = statistics.median(pairs), median_interval(pairs)
        lines.append(f"{name}: ovl {r:.4f}x native (goal <= {goal}), 95% interval {iv[0]:.3f}-{iv[1]:.3f}; "
                     f"the rounds' own ratios: median {m:.3f}, 95% interval {miv[0]:.3f}-{miv[1]:.3f} "
                     f"({len(pairs)} rounds)")
    if lines:
        print()
        print("\n".join(lines))


def print_memory(mem):
    print()
    for prog, m in mem.items():
        n, o = m["native"], m["ovl"]
        if isinstance(n, int) and isinstance(o, int):
            print(f"shim resident memory ({prog}, peak RSS): native {n} KiB, ovl {o} KiB, "
                  f"difference {o - n:+d} KiB")
        else:
            print(f"shim resident memory ({prog}): native {n}, ovl {o}")


def to_json(args, mach, gen, results, runs, mem):
    out = {"quick": args.quick, "runs": runs, "machine": mach, "data_generation_s": gen,
           "memory_kib": mem, "workloads": {}}
    for name, cells, goal, yard in results:
        native = cells.get("native")
        base = cells.get(yard, native)
        w = {"goal": goal, "ratio_base": yard if yard in cells else "native",
             "ovl_ok": verdict(cells.get("ovl"), base, goal) == "ok", "impls": {}}
        for n, c in cells.items():
            pairs = paired(c, native)
            w["impls"][n] = {"times_s": c.times, "warmup_s": c.warmup, "median_s": c.median,
                             "ratio_to_native": ratio(c, native),
                             "ratio_interval_95": ratio_interval(c, native),
                             "round_ratios_median": statistics.median(pairs) if pairs else None,
                             "error": c.error}
        out["workloads"][name] = w
    return out


# ----------------------------------------------------------------------- main


def build():
    log("building: cargo build --release --workspace")
    p = subprocess.run(["cargo", "build", "--release", "--workspace", "--quiet"], cwd=ROOT)
    if p.returncode != 0:
        log(f"build failed (exit {p.returncode}); the ovl column uses whatever {OVL_EXEC} exists")


def install(prefix):
    """Copies ovl-exec and the shim under `prefix` as the README's Install
    section places them (bin/, lib/ovl/), and points OVL_EXEC at the copy.

    Measured on this machine: a process starts about 40-50 us sooner with an
    installed copy of the shim than with the file the linker has just
    written, identical bytes, for as long as the linker's pages stay in the
    page cache (a copy, or the file read back from disk after they are
    evicted, is cached in larger pieces, which the kernel maps faster).
    What users run is an installed copy, so that is what is measured."""
    global OVL_EXEC
    for name, sub, mode in (("ovl-exec", "bin", 0o755), ("libovl_shim.so", "lib/ovl", 0o644)):
        src = os.path.join(BUILT, name)
        if not os.path.exists(src):
            log(f"{src} not found: the ovl column will fail (run cargo build --release --workspace)")
            return
        dest_dir = os.path.join(prefix, sub)
        os.makedirs(dest_dir, exist_ok=True)
        tmp = os.path.join(dest_dir, f".{name}.new")
        shutil.copyfile(src, tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, os.path.join(dest_dir, name))
    OVL_EXEC = os.path.join(prefix, "bin", "ovl-exec")
    log(f"installed ovl-exec and its shim under {prefix}")
    report_hot_symbols(os.path.join(prefix, "lib", "ovl", "libovl_shim.so"), "shim", "")
    report_hot_symbols(OVL_EXEC, "launcher", " --launcher")


def report_hot_symbols(binary, crate, option):
    """Says how many of the names in CRATE/hot-symbols.txt (laid out first
    by the linker) the binary has: they change with the compiler and the
    dependencies, and each one missing is code left where the linker put it."""
    listed = os.path.join(ROOT, crate, "hot-symbols.txt")
    try:
        names = [n for n in open(listed).read().split() if n]
        out = subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        log(f"hot symbols: not checked ({e})")
        return
    have = {line.split()[-1] for line in out.splitlines() if line.strip()}
    found = sum(n in have for n in names)
    note = "" if found >= 0.9 * len(names) else f": stale, run scripts/hot-symbols.py{option} and rebuild"
    log(f"hot symbols: {found} of {len(names)} listed in {crate}/hot-symbols.txt are in {os.path.basename(binary)}{note}")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="data sets ~10x smaller, 3 runs")
    ap.add_argument("--runs", type=int, help="timed runs per workload (default 5; --quick: 3)")
    ap.add_argument("--only", help="comma-separated workload names, e.g. stat-find,build")
    ap.add_argument("--json", metavar="FILE", help="also write every measurement to FILE as JSON")
    ap.add_argument("--dir", default="/var/tmp/ovl-bench", help="data sets and scratch (default %(default)s)")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build first")
    ap.add_argument("--timeout", type=float, help="seconds before one run counts as failed "
                    "(default 600; --quick: 60)")
    args = ap.parse_args()
    if args.runs is not None and args.runs < 1:
        ap.error("--runs must be at least 1")
    return args


def main():
    args = parse_args()
    q = SCALE_QUICK if args.quick else 1
    runs = args.runs or (3 if args.quick else 5)
    timeout = args.timeout or (60 if args.quick else 600)
    if not args.no_build:
        build()
    install(os.path.join(os.path.abspath(args.dir), "install"))

    data_dir = os.path.join(os.path.abspath(args.dir), "quick" if args.quick else "full")
    scratch = os.path.join(os.path.abspath(args.dir), "scratch")
    os.makedirs(data_dir, exist_ok=True)
    remove_tree(scratch)
    os.makedirs(scratch)

    paths, gen = {}, {}
    t0 = time.perf_counter()
    for ds in data_sets(q):
        paths[ds.name], secs, reused = ds.ensure(data_dir)
        gen[ds.name] = None if reused else round(secs, 2)
        log(f"data set {ds.name:7} {'reused' if reused else f'generated in {secs:.1f} s'}")
    log(f"data sets ready in {time.perf_counter() - t0:.1f} s under {data_dir}")

    reflink = why = None
    if not args.only or "copy-up-reflink" in args.only.split(","):
        reflink, why = reflink_fs(data_dir, paths["big"] + "/lower")
        if why:
            log(f"copy-up-reflink: skipped: {why}")
    try:
        results, names, mem = run_workloads(args, q, runs, timeout, paths, scratch, reflink, why)
    finally:
        if reflink:
            remove_tree(os.path.join(reflink, "scratch"))
            unmount(reflink, fuse=False)

    mach = machine(data_dir)
    print_table(results, names, runs, mach)
    print_intervals(results)
    if mem:
        print_memory(mem)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(to_json(args, mach, gen, results, runs, mem), fh, indent=2)
        log(f"results written to {args.json}")


def run_workloads(args, q, runs, timeout, paths, scratch, reflink, no_reflink_why):
    """Measures the workloads (those of --only); returns the results, the
    implementations' names and the shim's memory figures."""
    all_workloads = workloads(paths, q, reflink)
    if args.only:
        wanted = args.only.split(",")
        if "copy-up-reflink" in wanted and not reflink:
            sys.exit(f"bench.py: copy-up-reflink cannot run here: {no_reflink_why}")
        unknown = set(wanted) - {w.name for w in all_workloads}
        if unknown:
            sys.exit(f"bench.py: unknown workload {', '.join(sorted(unknown))}; "
                     f"known: {', '.join(w.name for w in all_workloads)}")
        all_workloads = [w for w in all_workloads if w.name in wanted]
    if reflink:
        remove_tree(os.path.join(reflink, "scratch"))
        os.makedirs(os.path.join(reflink, "scratch"))

    tiny_lower = os.path.join(paths["tiny"], "lower")
    impls = available_impls(scratch, tiny_lower)
    names = [i.name for i in impls]
    results = []
    for w in all_workloads:
        taking_part = [i for i in impls if w.overlay_only is None or i.name in w.overlay_only]
        taking_part += [baseline(scratch) for baseline in w.baselines]
        cells = measure(w, taking_part, runs, timeout)
        for n, c in cells.items():
            log(f"{w.name:15} {n:15} {c.error or f'{c.median:.3f} s'}")
        results.append((w.name, cells, w.goal, w.yardstick))

    mem = memory_overhead(tiny_lower, scratch) if os.access(OVL_EXEC, os.X_OK) else {}
    remove_tree(scratch)
    return results, names, mem


if __name__ == "__main__":
    main()
