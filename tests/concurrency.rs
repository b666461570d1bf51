//! Several processes change one view at the same time: seeded random
//! scripts, one per worker, run at once in one `ovl-exec` (so in one view,
//! on the same names: copy-ups, whiteouts, opaque directories, renames and
//! listings race each other). The interleaving is the machine's, so there
//! is no kernel run of the same script to compare with; what must hold
//! whatever the interleaving:
//!
//! - the lower layers are unchanged;
//! - nothing is left half-done: no temporary object in the work directory
//!   or the upper layer;
//! - no write is torn: every line of every file is one a command wrote
//!   whole;
//! - the upper layer is one the kernel reads as ovl does: the kernel's
//!   overlayfs mounted over the same layers afterwards shows the same tree
//!   and contents as a new process of ovl's view, and `ovl-changes` lists
//!   what the kernel's mounts tell changed.
//!
//! `OVL_RANDOM_SCENARIOS` scenarios (default 6) of `OVL_RANDOM_STEPS`
//! commands per worker (default 40), from seed `OVL_RANDOM_SEED` (default
//! 1); a failure names its seed and prints the workers' scripts (the same
//! seed makes the same scripts, not the same interleaving).

mod common;

use common::*;

const WORKERS: u64 = 4;

/// Directories and names the workers pick from: few, so that they collide.
const DIRS: &[&str] = &["d0", "d1", "d2", "d0/s", "d2/s", "n"];
const NAMES: &[&str] = &["f0", "f1", "f2", "s", "x"];

/// What the work directory keeps between processes: the listing cache's
/// generation and entries, the whiteout new whiteouts are linked to. Any
/// other name there (a `#ovl.*` object being built) is work left half-done.
const WORK_KEEPS: &[&str] = &["ovl-generation", "ovl-listings", "ovl-whiteout"];

/// A line a worker or the lower layers wrote, padded with dots to
/// [`LINE_WIDTH`] bytes: anything else in a file is a torn or lost write.
const WHOLE_LINE: &str = "^(lower [a-z0-9/]+|[wW][0-9]+ [0-9]+)\\.*$";

/// Every line's length, without its newline. One length for all: a
/// process that copies a file (`cp`, `mv`'s copy of a directory, `sed
/// -i`) while another empties it and appends reads the old content to
/// its end and then the new one from that offset on, on any file system;
/// with lines of one length that offset falls between two lines of the
/// new content. (Lines of different lengths gave `w2 1` and then the
/// newline alone of `w2 35`.)
const LINE_WIDTH: usize = 19;

/// `text` padded with dots to [`LINE_WIDTH`].
fn padded(text: &str) -> String {
    assert!(text.len() <= LINE_WIDTH, "{text:?} is longer than a line");
    format!("{text:.<LINE_WIDTH$}")
}

/// `text` padded, and a newline: a line of a lower file.
fn line(text: &str) -> String {
    padded(text) + "\n"
}

/// Two lower layers with merged, shadowed and lower-only directories.
fn layers() -> Fixture {
    let fx = Fixture::new(2);
    fx.lower(2)
        .file("d0/f0", line("lower d0/f0"))
        .file("d0/f2", line("lower d0/f2"))
        .file("d0/s/f0", line("lower d0/s/f0"))
        .file("d1/f1", line("lower d1/f1"))
        .file("d2/s/x/f0", line("lower d2/s/x/f0"))
        .file("top", line("lower top"));
    fx.lower(1)
        .file("d0/f1", line("lower d0/f1"))
        .file("d0/f2", line("lower d0/f2/1"))
        .file("d1/x", line("lower d1/x"))
        .file("d2/s/f1", line("lower d2/s/f1"))
        .symlink("d2/l", "../d0/f0");
    fx
}

fn path(r: &mut Rng) -> String {
    format!("{}/{}", r.pick(DIRS), r.pick(NAMES))
}

/// One command of worker `w`, its `i`th. Every line any command writes is
/// whole whatever runs beside it: lines are only appended (`echo` writes
/// its line at once), files emptied (`: >`, an `O_TRUNC`), and `sed -i`
/// and `cp --remove-destination` write new files. (A file rewritten in
/// place while another process copies it can give the copy the start of
/// one content and the end of the other, on any file system; emptied and
/// appended to, the same, which lines of one length make whole lines:
/// [`LINE_WIDTH`].)
fn command(r: &mut Rng, w: u64, i: u64) -> String {
    let (a, b) = (path(r), path(r));
    let (d, e) = (r.pick(DIRS), r.pick(DIRS));
    match r.next() % 16 {
        0 | 1 => format!("echo '{}' >> {a}", padded(&format!("w{w} {i}"))),
        2 => format!(": > {a}"),
        3 => format!("rm -f {a}"),
        4 => format!("mkdir -p {a}"),
        // Rarely: a whole directory gone empties the game.
        5 if r.next().is_multiple_of(4) => format!("rm -rf {d}"),
        5 | 6 => format!("mv -f {a} {b}"),
        7 => format!("chmod {} {a}", r.pick(&["600", "644", "755"])),
        8 => format!("touch {a}"),
        9 => format!("ln -sf {} {a}", r.pick(&["f0", "../f1", "s/f2"])),
        10 => format!("ln -f {a} {b}"),
        11 => format!("cp -f --remove-destination {a} {b}"),
        12 => format!("ls -laR {d} > /dev/null"),
        13 => format!("cat {a} > /dev/null"),
        // A directory moved (a lower one: EXDEV, and `mv` copies it).
        14 => format!("mv {d} {e}/m{w}x{i}"),
        _ => format!("sed -i s/^w/W/ {a}"),
    }
}

/// The script that runs every worker at once and waits for them.
fn script(seed: u64, steps: u64) -> String {
    let mut r = Rng(seed);
    let mut s = String::new();
    for w in 0..WORKERS {
        s.push_str("(\n");
        for i in 0..steps {
            s.push_str(&command(&mut r, w, i));
            s.push('\n');
        }
        s.push_str(") > /dev/null 2>&1 &\n");
    }
    s.push_str("wait\necho all done\n");
    s
}

/// Names under `dir` (recursively, relative) that `bad` picks.
fn names_under(dir: &std::path::Path, bad: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read a layer's directory") {
            let e = e.expect("entry");
            let name = e.file_name().to_string_lossy().into_owned();
            if bad(&name) {
                found.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            }
            if e.file_type().expect("type").is_dir() {
                todo.push(e.path());
            }
        }
    }
    found.sort();
    found
}

/// Runs one scenario on fresh layers and checks what must hold after it.
fn scenario(seed: u64, steps: u64) {
    let fx = layers();
    let before = fx.snapshot_lowers();
    let body = script(seed, steps);
    let ran = run_ovl(&fx, &body);
    assert_eq!(ran.out(), "all done\n", "the workers' run: {}", ran.err());
    fx.assert_lowers_unchanged(&before);

    let work: Vec<String> = std::fs::read_dir(fx.work_dir())
        .expect("read the work directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !WORK_KEEPS.contains(&n.as_str()))
        .collect();
    assert!(work.is_empty(), "left in the work directory: {work:?}");
    let temporary = names_under(&fx.upper_dir(), &|n| n.starts_with("#ovl."));
    assert!(
        temporary.is_empty(),
        "temporary objects in upper: {temporary:?}"
    );

    let torn = run_ovl(
        &fx,
        &format!(
            "find . -type f | sort | while IFS= read -r f; do\n\
             {{ grep -avE '{WHOLE_LINE}' \"$f\"; grep -av '^.\\{{{LINE_WIDTH}\\}}$' \"$f\"; }} | sed \"s|^|$f: |\"\n\
             [ -z \"$(tail -c 1 \"$f\")\" ] || echo \"$f: no newline at the end\"\n\
             done; echo checked"
        ),
    );
    assert_eq!(torn.out(), "checked\n", "lines no command wrote whole");

    let probe = format!("{LIST}{CAT_ALL}");
    let ovl = run_ovl(&fx, &probe);
    let kernel = run_kernel(&fx, &probe);
    compare(&kernel, &ovl);
    assert_eq!(
        listed_changes(&fx),
        expected_changes(&fx),
        "ovl-changes against the kernel's view and its lower layers' own"
    );
    fx.assert_lowers_unchanged(&before);
}

#[test]
fn workers_changing_one_view_at_once_leave_a_tree_the_kernel_reads_alike() {
    require_root!();
    let count = env_number("OVL_RANDOM_SCENARIOS", 6);
    let first = env_number("OVL_RANDOM_SEED", 1);
    let steps = env_number("OVL_RANDOM_STEPS", 40);
    for seed in first..first + count {
        let run = std::panic::catch_unwind(|| scenario(seed, steps));
        if run.is_err() {
            panic!(
                "workers with OVL_RANDOM_SEED={seed} (OVL_RANDOM_STEPS={steps}) left the view inconsistent (see above); their script:\n{}",
                script(seed, steps)
            );
        }
    }
}

/// `ln -f a b` again and again while another process removes `a` and makes
/// it anew: each link links the object its look-up found, or fails
/// (`ENOENT`), as on the kernel. It never links the whiteout the removal
/// left at `a` (`ln -f` links to a temporary name first and renames that
/// over `b`: a whiteout linked there stayed in upper under the temporary
/// name, an entry that hides nothing, which the kernel lists in an opaque
/// directory and cannot open; once in every run of this test, before).
#[test]
fn a_link_racing_the_removal_of_its_source_links_no_whiteout() {
    let fx = Fixture::new(1);
    fx.lower(1).file("a", "lower a\n").file("b", "lower b\n");
    let ran = run_ovl(
        &fx,
        "( for i in $(seq 400); do rm -f a; echo new > a; done ) &\n\
         missing=0\n\
         for i in $(seq 400); do\n\
           ln -f a b 2>/dev/null; [ -e b ] || missing=$((missing + 1))\n\
         done\n\
         wait; echo \"b missing $missing times\"\n",
    );
    assert_eq!(ran.out(), "b missing 0 times\n", "{}", ran.err());
    let stray: Vec<String> = std::fs::read_dir(fx.upper_dir())
        .expect("read the upper layer")
        .map(|e| e.expect("entry"))
        .filter(|e| {
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            let m = e.metadata().expect("lstat an entry of upper");
            m.file_type().is_char_device() && m.rdev() == 0
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "a" && name != "b")
        .collect();
    assert!(stray.is_empty(), "whiteouts that hide nothing: {stray:?}");
}

/// `echo x >> f` on lower files while another process removes them: each
/// append opens the file the look-up found or, removed meanwhile, makes it
/// anew, as the kernel's `open(O_CREAT)` would after that removal; it never
/// fails (it failed now and then before: the copy-up found the removal's
/// whiteout at the name and took it for another process's copy).
#[test]
fn appends_racing_removals_of_lower_files_never_fail() {
    let fx = Fixture::new(1);
    let lower = fx.lower(1);
    for i in 0..600 {
        lower.file(&format!("f{i}"), "lower\n");
    }
    let ran = run_ovl(
        &fx,
        "( for i in $(seq 0 599); do rm -f f$i; done ) &\n\
         failed=0\n\
         for i in $(seq 0 599); do sh -c \"echo x >> f$i\" || failed=$((failed + 1)); done\n\
         wait; echo \"appends failed $failed times\"\n",
    );
    assert_eq!(ran.out(), "appends failed 0 times\n", "{}", ran.err());
}
