//! Kept listings: the merged listing of a big directory is kept in the work
//! directory (`ovl-listings/`) for later readers, used only while its layer
//! directories are unchanged, and never shows a name that is gone or hides
//! one that came: changes through the view, changes behind it between
//! runs, a damaged kept file. Each listing is compared with the kernel's.

mod common;
use common::*;
use std::path::{Path, PathBuf};

/// Sorted names and their count, twice: the second listing of a run may be
/// served from what the first kept.
const LIST: &str = "ls -f d | sort | md5sum; ls -f d | wc -l; ls -f d | sort | md5sum\n";

/// Lower layers of 1,500 and 300 names, an upper of 1,400 more with
/// whiteouts over 100 of each lower's: every kind of name a merge drops.
fn big_fixture() -> Fixture {
    let fx = Fixture::new(2);
    for i in 0..1500 {
        fx.lower(2).file(&format!("d/low{i:04}"), "");
    }
    for i in 0..300 {
        fx.lower(1).file(&format!("d/mid{i:04}"), "");
    }
    fx.kernel_prepare("cd d && seq -f 'up%g' 1000 2399 | xargs touch && rm low00* mid01*");
    fx
}

/// Waits until every layer directory is old enough to be kept (ovl keeps
/// nothing changed within the last 10 ms: a change in the same clock tick
/// could go unseen).
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(60));
}

fn kept_files(work: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(work.join("ovl-listings")) {
        Ok(d) => d.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    }
}

/// The one kept listing of the ovl side's work directory.
fn the_kept_file(pair: &Pair) -> PathBuf {
    let files = kept_files(&pair.ovl.work_dir());
    assert_eq!(
        files.len(),
        1,
        "one listing kept in the work directory: {files:?}"
    );
    files[0].clone()
}

/// A pair of clones of `big_fixture` whose ovl side has listed `d` once
/// and kept the listing; the kept file's path.
fn pair_with_kept_listing() -> (Pair, PathBuf) {
    let pair = big_fixture().pair();
    settle();
    pair.run(LIST);
    let kept = the_kept_file(&pair);
    (pair, kept)
}

fn replace_once(bytes: &mut [u8], from: &[u8], to: &[u8]) -> bool {
    assert_eq!(from.len(), to.len());
    match bytes.windows(from.len()).position(|w| w == from) {
        Some(i) => {
            bytes[i..i + to.len()].copy_from_slice(to);
            true
        }
        None => false,
    }
}

#[test]
fn a_big_listing_is_kept_and_later_readers_use_it() {
    require_root!();
    let (pair, kept) = pair_with_kept_listing();
    // Proof that readers use it: a name changed in the kept file (and only
    // there) shows in the view.
    let mut bytes = std::fs::read(&kept).expect("read the kept listing");
    assert!(
        replace_once(&mut bytes, b"up1234\0", b"XX1234\0"),
        "up1234 is in the kept listing"
    );
    std::fs::write(&kept, &bytes).expect("write the kept listing");
    let out = run_ovl(
        &pair.ovl,
        "ls -f d | grep -c XX1234; ls -f d | grep -c up1234",
    );
    out.assert_stdout("1\n0\n");
    std::fs::remove_file(&kept).expect("remove the kept listing");
    pair.run(LIST);
    pair.assert_lowers_unchanged();
}

#[test]
fn changes_through_the_view_show_at_once_and_are_kept_anew() {
    require_root!();
    let (pair, _) = pair_with_kept_listing();
    // Each change is seen by the next listing, in the same second.
    pair.run(&format!(
        "touch d/new; {LIST} rm d/up1500; {LIST} rm d/low1200; {LIST} mv d/mid0250 d/moved; {LIST}"
    ));
    settle();
    pair.run(LIST);
    pair.run(&format!("{LIST} rm d/up1999 d/low1499; {LIST}"));
}

#[test]
fn changes_behind_the_view_between_runs_are_seen() {
    require_root!();
    let (pair, _) = pair_with_kept_listing();
    for fx in [&pair.kernel, &pair.ovl] {
        std::fs::write(fx.upper_dir().join("d/behind"), "x").expect("add to upper");
        std::fs::remove_file(fx.upper_dir().join("d/up1001")).expect("remove from upper");
    }
    pair.run(LIST);
}

#[test]
fn another_lower_layer_under_the_same_work_directory_is_not_confused() {
    require_root!();
    let (pair, _) = pair_with_kept_listing();
    // Between runs, the lower layer is changed (ovl never does it; a user
    // may, with no overlay running): the kept listing must not be used.
    for fx in [&pair.kernel, &pair.ovl] {
        for i in 1100..1200 {
            std::fs::remove_file(fx.lower_dir(2).join(format!("d/low{i:04}"))).expect("rm");
        }
    }
    let k = run_kernel(&pair.kernel, LIST);
    let o = run_ovl(&pair.ovl, LIST);
    compare(&k, &o);
}

#[test]
fn a_damaged_kept_listing_is_ignored_and_replaced() {
    require_root!();
    let (pair, kept) = pair_with_kept_listing();
    let bytes = std::fs::read(&kept).expect("read the kept listing");
    let good_len = bytes.len();
    std::fs::write(&kept, &bytes[..bytes.len() / 2]).expect("cut the kept listing");
    pair.run(LIST);
    let len = std::fs::metadata(&kept).expect("kept again").len() as usize;
    assert_eq!(
        len, good_len,
        "the damaged listing is replaced by a whole one"
    );
    // Garbage after a valid start: records that do not chain up.
    let mut bad = bytes.clone();
    let n = bad.len();
    bad[n - 600..n - 500].fill(0xff);
    std::fs::write(&kept, &bad).expect("spoil the kept listing");
    pair.run(LIST);
    pair.assert_lowers_unchanged();
}

#[test]
fn small_directories_are_not_kept() {
    require_root!();
    let fx = Fixture::new(1);
    for i in 0..50 {
        fx.lower(1).file(&format!("d/f{i}"), "");
    }
    fx.upper().file("d/u", "");
    let pair = fx.pair();
    settle();
    pair.run("ls -f d | sort | md5sum");
    assert_eq!(kept_files(&pair.ovl.work_dir()), Vec::<PathBuf>::new());
}
