//! Seeded random sequences of changes, run on the kernel's overlayfs and
//! under `ovl-exec` on identical layers: every step's exit status, the final
//! view, the upper layers' records and the kernel's view of ovl's upper must
//! agree, and no lower layer may change.
//!
//! `OVL_RANDOM_SCENARIOS` (default 200) sets how many sequences run,
//! `OVL_RANDOM_SEED` the first seed (default 1); a failure prints the seed
//! and the script, to replay it.

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

const FILES: &[&str] = &[
    "a/f1", "a/low1", "a/d/g", "b/c/f", "keep", "n/x", "a/new", "b/c/h", "top",
];
const DIRS: &[&str] = &["a", "a/d", "b", "b/c", "n", "n/m", "a/e"];

fn layers() -> Fixture {
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

fn step(r: &mut Rng) -> String {
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
        10 => format!(
            "ln -s {} {g}",
            r.pick(&["../keep", "low1", "/nonexistent", "f1"])
        ),
        11 => format!("chmod {} {f}", r.pick(&["600", "755", "444"])),
        12 => format!(
            "python3 -c \"import os; os.setxattr('{f}', 'user.t', b'{}')\"",
            r.next() % 10
        ),
        _ => format!("mkdir -p {d} && echo p > {d}/p"),
    };
    format!(
        "{cmd} 2>/dev/null; echo \"{} -> $?\"\n",
        cmd.replace('"', "'")
    )
}

fn script(seed: u64, steps: usize) -> String {
    let mut r = Rng(seed);
    (0..steps).map(|_| step(&mut r)).collect()
}

#[test]
fn random_sequences_agree_with_the_kernel() {
    require_root!();
    let count: u64 = std::env::var("OVL_RANDOM_SCENARIOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let first: u64 = std::env::var("OVL_RANDOM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let fx = layers();
    for seed in first..first + count {
        let body = script(seed, 12);
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
