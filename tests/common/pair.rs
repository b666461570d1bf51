//! `Pair`: two identical clones of a fixture, one for the kernel run and one
//! for the ovl run, with the lower layers of both snapshotted so every run
//! can check that nothing below upper changed.

use super::diff::line_diff;
use super::dump::{tree_dump, DumpOpts};
use super::fixture::Fixture;
use super::run::{compare, run_kernel, run_ovl, run_ovl_env, Outcome};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Two clones of one fixture: `kernel` for the kernel's overlayfs, `ovl`
/// for ovl. Both start from identical layers and share the mount point.
pub struct Pair {
    pub kernel: Fixture,
    pub ovl: Fixture,
    kernel_lowers: String,
    ovl_lowers: String,
}

impl Fixture {
    /// Clones the layers twice (`kernel<n>/`, `ovl<n>/`) and snapshots both
    /// clones' lower layers.
    pub fn pair(&self) -> Pair {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let kernel = self.clone_as(&format!("kernel{n}"));
        let ovl = self.clone_as(&format!("ovl{n}"));
        kernel.give_to_user();
        ovl.give_to_user();
        Pair {
            kernel_lowers: kernel.snapshot_lowers(),
            ovl_lowers: ovl.snapshot_lowers(),
            kernel,
            ovl,
        }
    }
}

impl Pair {
    /// Runs `script` under the kernel (on `kernel`) and under `ovl-exec`
    /// (on `ovl`), panics with a diff unless both exit alike and print the
    /// same, and checks that no lower layer changed. Returns both outcomes
    /// (kernel, ovl). Can be called again: each run continues from the
    /// state the previous one left in its clone.
    pub fn run(&self, script: &str) -> (Outcome, Outcome) {
        let k = self.apart(|| run_kernel(&self.kernel, script));
        let o = self.apart(|| run_ovl(&self.ovl, script));
        self.check(&k, &o);
        (k, o)
    }

    /// As `run`, with the shim preloaded by hand (`LD_PRELOAD` + `OVL_*`)
    /// instead of `ovl-exec`.
    pub fn run_env(&self, script: &str) -> (Outcome, Outcome) {
        let k = self.apart(|| run_kernel(&self.kernel, script));
        let o = self.apart(|| run_ovl_env(&self.ovl, script));
        self.check(&k, &o);
        (k, o)
    }

    /// One side's run, and then whatever it made beside the mount point
    /// (through a symbolic link out of the view) removed: each run starts
    /// from the same surroundings, not from the other side's files.
    fn apart(&self, run: impl FnOnce() -> Outcome) -> Outcome {
        let before = self.kernel.beside_view();
        let out = run();
        self.kernel.forget_beside_view(&before);
        out
    }

    fn check(&self, k: &Outcome, o: &Outcome) {
        self.kernel.assert_lowers_unchanged(&self.kernel_lowers);
        compare(k, o);
        self.assert_lowers_unchanged();
    }

    /// Panics unless the lower layers of the ovl clone are exactly as they
    /// were when the pair was made.
    pub fn assert_lowers_unchanged(&self) {
        self.ovl.assert_lowers_unchanged(&self.ovl_lowers);
    }

    /// Panics with a diff unless the two upper layers are the same as
    /// `tree_dump` with `opts` shows them (for example
    /// `DumpOpts::uppers()`).
    pub fn assert_uppers_equal(&self, opts: &DumpOpts) {
        let k = tree_dump(&self.kernel.upper_dir(), opts);
        let o = tree_dump(&self.ovl.upper_dir(), opts);
        if k != o {
            panic!(
                "the upper layers differ (- kernel's, + ovl's):\n{}",
                line_diff(&k, &o)
            );
        }
    }
}

/// `fx.pair().run(script)`: the one-call comparison of a read-only probe.
pub fn compare_runs(fx: &Fixture, script: &str) -> (Outcome, Outcome) {
    fx.pair().run(script)
}

/// `fx.pair().run(script)` for a script that changes the view: checks that
/// it ran as meant (ovl's output holds each of `ran`, so the two sides did
/// not just fail alike) and, with an upper layer, that both upper layers
/// came out the same (`DumpOpts::uppers()`). Returns ovl's outcome.
pub fn compare_changes(fx: &Fixture, script: &str, ran: &[&str]) -> Outcome {
    let pair = fx.pair();
    let (_, ovl) = pair.run(script);
    for marker in ran {
        assert!(
            ovl.out().contains(marker),
            "expected {marker:?} in:\n{}",
            ovl.out()
        );
    }
    if fx.has_upper() {
        pair.assert_uppers_equal(&DumpOpts::uppers());
    }
    ovl
}

/// For behaviour the kernel cannot show (formats it does not read): runs
/// `script` under `ovl-exec` on a clone of `fx`, panics with a diff unless
/// its standard output (normalised) is `expected`, and checks that no lower
/// layer changed. Print errors to stdout (`2>&1`) to check them too.
pub fn expect_ovl(fx: &Fixture, script: &str, expected: &str) -> Outcome {
    let clone = fx.clone_layers();
    let before = clone.snapshot_lowers();
    let out = run_ovl(&clone, script);
    out.assert_stdout(expected);
    clone.assert_lowers_unchanged(&before);
    out
}

/// Runs `script` under the kernel on a clone of `kernel_fx` and under
/// `ovl-exec` on a clone of `ovl_fx` (two fixtures built to mean the same,
/// for example with char-device whiteouts for the kernel and the seed's
/// symlink whiteouts for ovl), compares, and checks both clones' lowers.
/// Outputs that show directory times of the mount point's parent differ
/// between two fixtures: leave them out of `script`.
pub fn compare_twins(kernel_fx: &Fixture, ovl_fx: &Fixture, script: &str) -> (Outcome, Outcome) {
    let k_fx = kernel_fx.clone_layers();
    let o_fx = ovl_fx.clone_layers();
    let (k_snap, o_snap) = (k_fx.snapshot_lowers(), o_fx.snapshot_lowers());
    let k = run_kernel(&k_fx, script);
    let o = run_ovl(&o_fx, script);
    k_fx.assert_lowers_unchanged(&k_snap);
    compare(&k, &o);
    o_fx.assert_lowers_unchanged(&o_snap);
    (k, o)
}
