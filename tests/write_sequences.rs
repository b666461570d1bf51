//! Seeded random sequences of changes, run on the kernel's overlayfs and
//! under `ovl-exec` on identical layers: every step's exit status and
//! output, the final view, the upper layers' records and the kernel's view
//! of ovl's upper must agree, and no lower layer may change.
//!
//! Two vocabularies: shell built-ins and the basic coreutils on a small
//! tree (`random_sequences_agree_with_the_kernel`), and the programs that
//! change trees in their own ways (`cp -a`, `tar`, `sed -i`, `install`,
//! `dd`, `touch -d`, `chmod -R`, `find -delete`, Python's `os.rename`,
//! `os.utime`, `os.truncate`, `removexattr`) on a tree with hard links,
//! symlinks, fixed times and modes (`random_program_sequences_agree_with_the_kernel`).
//!
//! `OVL_RANDOM_SCENARIOS` sets how many sequences each runs (default 200
//! and 100), `OVL_RANDOM_SEED` the first seed (default 1),
//! `OVL_RANDOM_STEPS` the steps in each (default 12 and 14); a failure
//! prints the seed and the script, to replay it.

mod common;

use common::*;

/// A small deterministic generator (64-bit LCG).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() as usize) % items.len()]
    }
}

/// A symlink target outside the view that no write through the link can
/// create (procfs makes no files): a dangling link that stays dangling,
/// and nothing outside the test's directories changes.
const NOWHERE: &str = "/proc/ovl-nowhere";

const FILES: &[&str] = &[
    "a/f1", "a/low1", "a/d/g", "b/c/f", "keep", "n/x", "a/new", "b/c/h", "top",
];
const DIRS: &[&str] = &["a", "a/d", "b", "b/c", "n", "n/m", "a/e"];

fn basic_layers() -> Fixture {
    let fx = Fixture::new(2);
    fx.lower(2)
        .file("a/f1", "f1 low\n")
        .file("a/d/g", "g\n")
        .dir("a/e")
        .file("keep", "keep\n")
        .xattr("keep", "user.k", "v");
    fx.lower(1)
        .file("a/low1", "low1\n")
        .file("b/c/f", "f\n")
        .symlink("a/sl", "low1");
    fx
}

fn basic_step(r: &mut Rng) -> String {
    let f = r.pick(FILES);
    let g = r.pick(FILES);
    let d = r.pick(DIRS);
    let e = r.pick(DIRS);
    let cmd = match r.next() % 14 {
        0 => format!("echo w{} >> {f}", r.next() % 100),
        1 => format!(": > {f}"),
        2 => format!("truncate -s {} {f}", r.next() % 8),
        3 => format!("rm {f}"),
        4 => format!("rmdir {d}"),
        5 => format!("rm -rf {d}"),
        6 => format!("mkdir {d}"),
        7 => format!("mv {f} {g}"),
        8 => format!("mv {d} {e}"),
        9 => format!("ln {f} {g}"),
        10 => format!("ln -s {} {g}", r.pick(&["../keep", "low1", NOWHERE, "f1"])),
        11 => format!("chmod {} {f}", r.pick(&["600", "755", "444"])),
        12 => format!(
            "python3 -c \"import os; os.setxattr('{f}', 'user.t', b'{}')\"",
            r.next() % 10
        ),
        _ => format!("mkdir -p {d} && echo p > {d}/p"),
    };
    reported(&cmd)
}

/// A step as the script runs it: the command, then a line that names it
/// (quotes and `$` made literal) with its exit status.
fn reported(cmd: &str) -> String {
    let shown = cmd.replace('"', "'").replace('$', "\\$");
    format!("{cmd} 2>/dev/null; echo \"{shown} -> $?\"\n")
}

const PROGRAM_FILES: &[&str] = &[
    "a/f1", "a/low1", "a/d/g", "b/c/f", "keep", "n/x", "a/new", "b/c/h", "top", "a/hl", "a/sl",
    "b/sl2",
];
const PROGRAM_DIRS: &[&str] = &["a", "a/d", "b", "b/c", "n", "n/m", "a/e", "b/c/deep", "o"];

/// `basic_layers` and more: a lower hard link, a symlink to a directory,
/// a deeper tree, a file with a fixed time and one with another mode.
fn program_layers() -> Fixture {
    let fx = Fixture::new(2);
    fx.lower(2)
        .file("a/f1", "f1 low\n")
        .file("a/d/g", "g\n")
        .dir("a/e")
        .file("keep", "keep\n")
        .xattr("keep", "user.k", "v")
        .file("o/in", "in\n")
        .mtime("a/f1", 1_000_000, 5);
    fx.lower(1)
        .file("a/low1", "low1\n")
        .hardlink("a/hl", "a/low1")
        .file("b/c/f", "f\n")
        .file("b/c/deep/z", "z\n")
        .symlink("a/sl", "low1")
        .symlink("b/sl2", "../a/d")
        .chmod("b/c/f", 0o640);
    fx
}

/// Times set by the steps are below 3,000,000; others are the clock's,
/// which differs between the two runs: shown as `now`.
const SET_TIME_OR_NOW: &str = "awk '{t=$NF; if (t > 3000000) t=\"now\"; $NF=t; print}'";

fn program_step(r: &mut Rng) -> String {
    let f = r.pick(PROGRAM_FILES);
    let g = r.pick(PROGRAM_FILES);
    let d = r.pick(PROGRAM_DIRS);
    let e = r.pick(PROGRAM_DIRS);
    let n = r.next() % 100;
    let cmd = match r.next() % 30 {
        0 => format!("echo w{n} >> {f}"),
        1 => format!("cp -a {f} {g}"),
        // A copy into itself goes as far as the order of the directory's
        // inode numbers, which differs between any two upper layers.
        2 if e == d || e.starts_with(&format!("{d}/")) => format!("cp -r {d} cpdst"),
        2 => format!("cp -r {d} {e}"),
        3 => format!("mv -T {d} {e}"),
        4 => format!(
            "ln -sf {} {g}",
            r.pick(&["../keep", "low1", "d", NOWHERE])
        ),
        5 => format!("touch -d @{} {f}", 1_000_000 + n),
        6 => format!("touch -h -d @{} {f}", 2_000_000 + n),
        7 => format!("sed -i s/w/W/ {f}"),
        8 => format!("python3 -c \"f = open('{f}', 'r+'); f.seek(1); f.write('X')\""),
        9 => format!("ln -s {f} {d}/s{n}"),
        10 => format!("rm -r {d}"),
        11 => format!("find {d} -delete"),
        12 => format!("chmod -R {} {d}", r.pick(&["700", "755", "1777"])),
        13 => format!("python3 -c \"import os; os.removexattr('{f}', 'user.k')\""),
        14 => format!("cat {f}"),
        15 => format!("ls -a {d}"),
        16 => format!("stat -c '%n %F %a %s %h %Y' {f} | {SET_TIME_OR_NOW}"),
        17 => format!(
            "t=$(mktemp) && tar cf $t {d} && mkdir -p {e} && tar xf $t -C {e}; r=$?; rm -f $t; (exit $r)"
        ),
        18 => format!("mv {f} {d}/"),
        19 => format!("ln {f} {d}/hl{n}"),
        20 => format!("python3 -c \"import os; os.rename('{d}', '{e}')\""),
        21 => format!("python3 -c \"import os; os.utime('{f}', (1, {n}))\""),
        22 => format!("install -m 644 {f} {g}"),
        23 => format!(
            "dd if=/dev/zero of={f} bs=1 count=1 seek={} conv=notrunc status=none",
            n % 9
        ),
        24 => format!("rm {f}"),
        25 => format!("rmdir {d}"),
        26 => format!("mkdir -p {d}/q && echo p > {d}/q/p"),
        27 => format!("mv {f} {g}"),
        28 => format!("ls -la --time-style=+%s {d} | awk '{{print $1, $2, $5, $7, $8, $9}}'"),
        _ => format!("python3 -c \"import os; os.truncate('{f}', {})\"", n % 7),
    };
    reported(&cmd)
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `OVL_RANDOM_SCENARIOS` sequences of `step`s on `fx`'s layers, on
/// the kernel and under ovl, and compares them; the first that disagrees
/// fails with its seed and script.
fn agree_with_the_kernel(fx: &Fixture, step: fn(&mut Rng) -> String, scenarios: u64, steps: u64) {
    let count = env_number("OVL_RANDOM_SCENARIOS", scenarios);
    let first = env_number("OVL_RANDOM_SEED", 1);
    let steps = env_number("OVL_RANDOM_STEPS", steps);
    for seed in first..first + count {
        let mut r = Rng(seed);
        let body: String = (0..steps).map(|_| step(&mut r)).collect();
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let pair = fx.pair();
            pair.run(&format!("{body}{LIST}{CAT_ALL}"));
            pair.assert_uppers_equal(&DumpOpts::uppers());
            let k = run_kernel(&pair.kernel, &format!("{LIST}{CAT_ALL}"));
            let o = run_kernel(&pair.ovl, &format!("{LIST}{CAT_ALL}"));
            compare(&k, &o);
        }));
        if run.is_err() {
            panic!("sequence with OVL_RANDOM_SEED={seed} disagrees with the kernel (see above); its script:\n{body}");
        }
    }
}

#[test]
fn random_sequences_agree_with_the_kernel() {
    require_root!();
    agree_with_the_kernel(&basic_layers(), basic_step, 200, 12);
}

#[test]
fn random_program_sequences_agree_with_the_kernel() {
    require_root!();
    agree_with_the_kernel(&program_layers(), program_step, 100, 14);
}
