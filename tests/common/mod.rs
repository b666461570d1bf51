//! The integration-test harness: ovl against the kernel's overlayfs.
//!
//! Every behaviour is checked the same way: build lower/upper layers, run
//! the same shell script once in the kernel's overlay (mounted at a mount
//! point) and once under `ovl-exec` (with that same mount point as
//! `--target`), and require the same exit status, stdout and stderr. Both
//! runs see the same absolute paths, so outputs compare directly. After
//! every run the lower layers must be unchanged, byte for byte, xattrs and
//! times included.
//!
//! # Use
//!
//! ```ignore
//! mod common;
//! use common::*;
//!
//! #[test]
//! fn removed_file_is_gone() {
//!     require_root!();                          // kernel reference needs root
//!     let fx = Fixture::new(2);                 // lower1 (top), lower2, upper, work
//!     fx.lower(2).file("a/f", "low\n").dir("a/d");
//!     fx.lower(1).file("a/g", "mid\n").symlink("a/l", "g");
//!     fx.kernel_prepare("rm a/f");              // the kernel writes the whiteout
//!     compare_runs(&fx, "ls -la a; cat a/f");   // kernel vs ovl, lowers checked
//! }
//! ```
//!
//! # API
//!
//! Binaries and privileges
//! - `ovl_exec()`, `shim()`: paths of the built `ovl-exec` and
//!   `libovl_shim.so` (`$OVL_EXEC`/`$OVL_SHIM`, else `target/release`, else
//!   `target/debug`); panic with "build the workspace first: cargo build
//!   --release --workspace".
//! - `is_root()`; `require_root!()` returns early from the test (which then
//!   passes) after printing "skipped: needs root to mount the kernel's
//!   overlayfs as reference" on stderr.
//!
//! Fixtures (`fixture.rs`)
//! - `Fixture::new(n)`: n lower layers + upper + work; `Fixture::read_only(n)`:
//!   no upper (the kernel needs n >= 2 for that). Paths: `lower_dir(k)`
//!   (1 = topmost), `lower_dirs()`, `upper_dir()`, `work_dir()`, `mnt()`.
//! - Options: `.kernel_option("userxattr")` (kernel mount), `.ovl_args(&[..])`
//!   (`ovl-exec`, before `--`).
//! - Builders, on `fx.lower(k)` / `fx.upper()`, chainable, parents made:
//!   `file(rel, data)` (0644), `exe(rel, data)` (0755), `file_mode`, `dir`,
//!   `symlink(rel, target)`, `hardlink(rel, existing)`, `fifo`, `chardev`,
//!   `chmod`, `chown`, `mtime(rel, secs, nsecs)`, `xattr(rel, name, value)`;
//!   overlay formats: `whiteout` (char 0/0), `opaque(rel, Ns)`,
//!   `seed_whiteout(rel, Ns)` (symlink to `(overlay-whiteout)` + xattr;
//!   the kernel does not read it), `xattr_whiteout(rel, Ns, XwhiteoutMark)`
//!   (empty file + `overlay.whiteout`, parent marked `opaque=x` or
//!   `whiteouts`). `Ns::Trusted` / `Ns::User` picks `trusted.overlay.*` or
//!   `user.overlay.*` (the kernel reads the latter with `userxattr` only).
//! - `fx.kernel_prepare(script)`: mount the kernel overlay, run the script in
//!   it, unmount: whiteouts/opaque dirs/copy-ups exactly as the kernel writes.
//! - `fx.clone_layers()`: identical copy (cp -a, xattrs included) sharing the
//!   mount point; `fx.stacked(with_upper)`: upper becomes the topmost lower.
//! - `fx.snapshot_lowers()` / `assert_lowers_unchanged(&fx, &snap)` (also a
//!   method): exact dumps of every lower, before/after on the same fixture.
//!
//! Runs (`run.rs`); cwd = mount point; environment = only `PATH`, `HOME`
//! (empty dir), `LC_ALL=C`, `TZ=UTC`, `MNT` (the mount point)
//! - `run_kernel(&fx, script)`, `run_ovl(&fx, script)` (`ovl-exec -l .. -u ..
//!   -w .. -t MNT -- sh -c script`), `run_ovl_env(&fx, script)` (shim in
//!   `LD_PRELOAD`, `OVL_*` set by hand) -> `Outcome { code, stdout, stderr, .. }`.
//!   A run is killed after `$OVL_TEST_TIMEOUT` seconds (default 150).
//! - `compare(&kernel, &ovl)`: panics with a diff of what differs. Outputs
//!   are normalised: the clone's layer dir reads `$LAYERS`, the temporary
//!   dir `$ROOT`.
//! - `Outcome::assert_success()`, `Outcome::assert_stdout(expected)`.
//!
//! Comparisons (`pair.rs`)
//! - `compare_runs(&fx, script)`: clone twice, run kernel and ovl, compare,
//!   check both clones' lowers unchanged.
//! - `fx.pair()` -> `Pair { kernel, ovl }` for several steps: `pair.run(s)`,
//!   `pair.run_env(s)`, `pair.assert_uppers_equal(&DumpOpts::uppers())`.
//! - `expect_ovl(&fx, script, expected_stdout)`: ovl only, against a
//!   hand-written expectation (for formats the kernel does not read).
//! - `compare_twins(&kernel_fx, &ovl_fx, script)`: kernel on one fixture, ovl
//!   on another built to mean the same (a format the kernel does not read
//!   against the one it does).
//!
//! Randomness (`random.rs`): `Rng(seed)` (`next`, `pick`), a deterministic
//! generator for scripts made from a seed; `env_number(name, default)` for
//! the variables that size and replay such runs.
//!
//! Probes (`probes.rs`): `LIST` (find -printf), `STAT_ALL`, `CAT_ALL`,
//! `LS_LAR`: sorted snippets to concatenate into scripts.
//!
//! Trees (`dump.rs`)
//! - `tree_dump(dir, &DumpOpts)`: sorted listing: path, type, mode, uid, gid,
//!   size, nlink, content (inline up to 64 bytes, else sha256), symlink
//!   target, rdev, all xattrs (trusted.* too); optionally mtime, ctime, ino.
//!   `DumpOpts::exact()` for snapshots, `DumpOpts::uppers()` to compare the
//!   kernel's upper with ovl's (drops the kernel's own `overlay.origin`,
//!   `overlay.uuid`, `overlay.impure`), `.skip_xattr(prefix)`, `.with_mtime()`.
//!
//! Debugging: `OVL_TEST_VERBOSE=1` prints both outcomes of every comparison
//! (with `-- --nocapture`); `OVL_TEST_SELF_CHECK=1` runs the ovl side under
//! the kernel too, to check probes and harness; `OVL_TEST_KEEP=1` keeps
//! fixture directories.
//!
//! Cleanup: mounts are undone by guards (also when a test panics); fixture
//! directories (`$OVL_TEST_TMPDIR` or the temp dir, `ovl-test-<pid>-…`) are
//! removed when the last clone is dropped, unless `$OVL_TEST_KEEP` is set;
//! leftovers of killed test processes are swept by the next run.

#![allow(dead_code, unused_imports, unused_macros)]

pub mod changes;
pub mod diff;
pub mod dump;
pub mod fixture;
pub mod mount;
pub mod pair;
pub mod probes;
pub mod random;
pub mod run;
pub mod sha256;

pub use changes::{
    changes_listing, expected_changes, listed_changes, ovl_changes, run_ovl_changes,
};
pub use dump::{tree_dump, DumpOpts};
pub use fixture::{Fixture, Layer, Ns, XwhiteoutMark};
pub use pair::{compare_changes, compare_runs, compare_twins, expect_ovl, Pair};
pub use probes::{CAT_ALL, LIST, LS_LAR, STAT_ALL};
pub use random::{env_number, Rng};
pub use run::{
    compare, overlay_env, ovl_exec, run_kernel, run_ovl, run_ovl_env, shim, Outcome, Side,
};

/// Panics with a diff when a lower layer of `fx` differs from `snapshot`
/// (taken with `fx.snapshot_lowers()`): the lower layers must never change.
pub fn assert_lowers_unchanged(fx: &Fixture, snapshot: &str) {
    fx.assert_lowers_unchanged(snapshot);
}

/// What a test prints when it cannot run without root.
pub const SKIP_NOT_ROOT: &str = "skipped: needs root to mount the kernel's overlayfs as reference";

/// True when the tests run as root (they can mount the kernel's overlayfs
/// and write `trusted.*` xattrs).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// False (after saying so on stderr) when not root: `if !root_or_skip() { return; }`.
pub fn root_or_skip() -> bool {
    if is_root() {
        return true;
    }
    eprintln!("{SKIP_NOT_ROOT}");
    false
}

/// Returns from the calling test, which then passes, when not root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::common::root_or_skip() {
            return;
        }
    };
}
