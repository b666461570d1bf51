//! The shim's directory walkers (`scandir`, `glob`, `ftw`/`nftw`, `fts_*`)
//! against libc's own. A C probe (`walk_probe.c`) calls them on a test tree
//! and prints everything they report; it runs once on plain libc and once
//! with the shim preloaded (and an overlay elsewhere, so that the shim's own
//! walkers are used), and the two outputs must be identical.
//!
//! As root, the walkers are also run on a merged view and compared with the
//! kernel's overlayfs mounted at the same place.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Builds the shim (a cdylib, which `cargo test` does not build) and
/// returns the path of the library.
fn shim_library() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let out = Command::new(cargo)
            .args([
                "build",
                "-p",
                "ovl-shim",
                "--message-format=json",
                "--manifest-path",
            ])
            .arg(&manifest)
            .output()
            .expect("running cargo to build the shim");
        assert!(
            out.status.success(),
            "building the shim failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .find(|l| l.contains("\"crate_types\":[\"cdylib\"]"))
            .expect("cargo reported no cdylib for ovl-shim");
        let key = "\"filenames\":[\"";
        let start = line.find(key).expect("cargo's report names no file") + key.len();
        let end = start + line[start..].find('"').expect("unterminated file name");
        PathBuf::from(&line[start..end])
    })
}

/// A scratch directory, removed (permissions restored first) when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("ovl-walk-{name}-{}", std::process::id()));
        if dir.exists() {
            Scratch(dir.clone()).remove();
        }
        fs::create_dir_all(&dir).expect("creating a scratch directory");
        // Traversable by the unprivileged user the probe becomes.
        set_mode(&dir, 0o755);
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn remove(&self) {
        for d in ["tree/t/noread", "tree/t/nosearch"] {
            let p = self.0.join(d);
            if p.exists() {
                set_mode(&p, 0o755);
            }
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.remove();
    }
}

fn set_mode(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

fn write(p: &Path, text: &str) {
    fs::write(p, text).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
}

fn mkdirs(base: &Path, dirs: &[&str]) {
    for d in dirs {
        let p = base.join(d);
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    }
}

fn link(target: &str, at: &Path) {
    symlink(target, at).unwrap_or_else(|e| panic!("symlink {}: {e}", at.display()));
}

fn c_path(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

/// Compiles the probe into `dir`.
fn build_probe(dir: &Path) -> PathBuf {
    let exe = dir.join("walk_probe");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/walk_probe.c");
    let status = Command::new("cc")
        .args(["-O1", "-Wall", "-o"])
        .arg(&exe)
        .arg(&src)
        .arg("-ldl")
        .status()
        .expect("running cc to build the walk probe");
    assert!(status.success(), "cc could not build {}", src.display());
    exe
}

/// The test tree: t/ (files, sub-directories, symlinks of every kind, a
/// fifo, an unreadable and an unsearchable directory), x/ (a symlink to
/// another file system), l/ (a symlink loop), p/ (deeper than PATH_MAX).
fn make_tree(base: &Path) {
    mkdirs(
        base,
        &[
            "t/sub/deep/d1/d2",
            "t/empty",
            "t/noread",
            "t/nosearch",
            "x/s",
            "l",
        ],
    );
    for (f, text) in [
        ("t/a.txt", "hello\n"),
        ("t/b.txt", "b\n"),
        ("t/.hidden", "h\n"),
        ("t/file10", "10\n"),
        ("t/file9", "9\n"),
        ("t/sub/x.c", "c\n"),
        ("t/sub/deep/d1/d2/f", "f\n"),
        ("t/nosearch/hidden_f", ""),
        ("t/noread/secret", ""),
        ("x/f", "\n"),
        ("x/s/g", "\n"),
        ("l/a", "\n"),
        ("l/z", "\n"),
    ] {
        write(&base.join(f), text);
    }
    link("..", &base.join("t/sub/link_up"));
    link("a.txt", &base.join("t/ln_file"));
    link("sub", &base.join("t/ln_dir"));
    link("nowhere", &base.join("t/ln_dangle"));
    link("/sys", &base.join("x/sys"));
    link("me", &base.join("l/me"));
    let fifo = c_path(&base.join("t/fifo"));
    // SAFETY: a valid C string.
    assert_eq!(
        unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) },
        0,
        "mkfifo t/fifo"
    );
    for d in [
        "t",
        "t/sub",
        "t/sub/deep",
        "t/sub/deep/d1",
        "t/sub/deep/d1/d2",
        "t/empty",
        "x",
        "x/s",
        "l",
    ] {
        set_mode(&base.join(d), 0o755);
    }
    // Unreadable and unsearchable, for the owner as for anyone else.
    set_mode(&base.join("t/noread"), 0o311);
    set_mode(&base.join("t/nosearch"), 0o644);
    make_deep_chain(base);
}

/// p/: twenty nested directories with 250-byte names, deeper than PATH_MAX
/// (so made relative to descriptors), a few files along the way.
fn make_deep_chain(base: &Path) {
    use rustix::fd::{AsFd, OwnedFd};
    use rustix::fs::{mkdirat, openat, Mode, OFlags, CWD};
    fn open(at: impl AsFd, name: &str) -> OwnedFd {
        openat(at, name, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
            .unwrap_or_else(|e| panic!("opening {name} in the deep chain: {e}"))
    }
    let mode = Mode::from_raw_mode(0o755);
    let mut dir = open(CWD, base.to_str().expect("a UTF-8 scratch path"));
    mkdirat(&dir, "p", mode).expect("mkdir p");
    dir = open(&dir, "p");
    for i in 0..20 {
        let name = format!("{i:02}{}", "n".repeat(248));
        mkdirat(&dir, name.as_str(), mode).expect("mkdir in the deep chain");
        if i % 5 == 0 {
            let flags = OFlags::CREATE | OFlags::WRONLY;
            openat(
                &dir,
                format!("file{i}").as_str(),
                flags,
                Mode::from_raw_mode(0o644),
            )
            .expect("creating a file in the deep chain");
        }
        dir = open(&dir, &name);
    }
    let flags = OFlags::CREATE | OFlags::WRONLY;
    openat(&dir, "leaf", flags, Mode::from_raw_mode(0o644)).expect("creating the deep leaf");
}

/// Runs the probe in `cwd`; with `overlay`, preloads the shim with these
/// OVL_* variables.
fn run_probe(probe: &Path, cwd: &Path, args: &[&str], overlay: Option<&[(&str, &Path)]>) -> String {
    let mut cmd = Command::new(probe);
    cmd.args(args).current_dir(cwd).env_remove("LD_PRELOAD");
    for (k, _) in std::env::vars() {
        if k.starts_with("OVL_") {
            cmd.env_remove(k);
        }
    }
    if let Some(vars) = overlay {
        cmd.env("LD_PRELOAD", shim_library())
            .env("WALK_PROBE_SHIM", "1");
        for (k, v) in vars {
            cmd.env(k, v);
        }
    }
    let out = cmd.output().expect("running the walk probe");
    assert!(
        out.status.success(),
        "walk probe {args:?} (shim: {}) failed with {}:\n{}",
        overlay.is_some(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts two outputs are equal, showing the first lines that differ.
fn assert_same_output(libc: &str, ours: &str, what: &str) {
    if libc == ours {
        return;
    }
    let (a, b): (Vec<&str>, Vec<&str>) = (libc.lines().collect(), ours.lines().collect());
    let first = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let from = first.saturating_sub(3);
    let show = |v: &[&str]| v[from.min(v.len())..(first + 4).min(v.len())].join("\n");
    panic!(
        "{what}: outputs differ from line {} ({} lines vs {}).\n--- reference:\n{}\n--- with the shim:\n{}",
        first + 1,
        a.len(),
        b.len(),
        show(&a),
        show(&b)
    );
}

#[test]
fn walkers_behave_as_libc_outside_the_view() {
    let scratch = Scratch::new("libc");
    let tree = scratch.path().join("tree");
    let elsewhere = scratch.path().join("elsewhere");
    mkdirs(scratch.path(), &["tree", "elsewhere"]);
    set_mode(&tree, 0o755);
    make_tree(&tree);
    let probe = build_probe(scratch.path());
    let libc = run_probe(&probe, &tree, &["all"], None);
    let ours = run_probe(&probe, &tree, &["all"], Some(&[("OVL_LOWER", &elsewhere)]));
    assert!(
        libc.lines().count() > 1000,
        "the probe printed too little:\n{libc}"
    );
    assert_same_output(&libc, &ours, "walkers outside the view");
}

/// Layers with what a merged view can show: files from either layer, a
/// merged directory, a whiteout, an opaque directory, a directory only in
/// upper, a symlink to a merged directory.
fn make_layers(base: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (lower, upper, work) = (base.join("L"), base.join("U"), base.join("W"));
    mkdirs(
        base,
        &[
            "L/d/sub",
            "L/keep",
            "L/opq/old",
            "U/d",
            "U/opq",
            "U/newdir",
            "W",
        ],
    );
    for (f, text) in [
        ("L/f1", "l\n"),
        ("L/gone", "l\n"),
        ("L/d/lower_only", "l\n"),
        ("L/d/sub/s", "l\n"),
        ("L/opq/old/x", "l\n"),
        ("L/keep/k", "l\n"),
        ("U/d/upper_only", "u\n"),
        ("U/f2", "u\n"),
        ("U/newdir/n", "u\n"),
        ("U/opq/new", "u\n"),
    ] {
        write(&base.join(f), text);
    }
    link("d", &lower.join("dl"));
    let gone = c_path(&upper.join("gone"));
    let opq = c_path(&upper.join("opq"));
    // SAFETY: valid C strings and buffers.
    unsafe {
        assert_eq!(
            libc::mknod(gone.as_ptr(), libc::S_IFCHR, libc::makedev(0, 0)),
            0,
            "whiteout"
        );
        let name = c"trusted.overlay.opaque";
        assert_eq!(
            libc::setxattr(opq.as_ptr(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0),
            0
        );
    }
    (lower, upper, work)
}

/// An overlayfs mounted for a test, unmounted when dropped.
struct Mount(CString);

impl Mount {
    fn overlay(at: &Path, options: &str) -> Option<Mount> {
        let target = c_path(at);
        let options = CString::new(options).expect("options without NUL");
        let fs = c"overlay".as_ptr();
        // SAFETY: valid C strings.
        let r = unsafe { libc::mount(fs, target.as_ptr(), fs, 0, options.as_ptr().cast()) };
        (r == 0).then_some(Mount(target))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // SAFETY: a valid C string; the mount is ours.
        unsafe { libc::umount2(self.0.as_ptr(), 0) };
    }
}

/// The probe's `view` output on a merged view: once through the kernel's
/// overlayfs mounted over the lower directory, once through the shim with
/// the view in the same place. `None` when the kernel mount is not possible.
fn kernel_and_shim_views(
    name: &str,
) -> Option<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    // SAFETY: plain call.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: comparing with the kernel's overlayfs needs root");
        return None;
    }
    let scratch = Scratch::new(name);
    let (lower, upper, work) = make_layers(scratch.path());
    let probe = build_probe(scratch.path());
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    let Some(mount) = Mount::overlay(&lower, &options) else {
        eprintln!(
            "skipped: cannot mount an overlayfs here: {}",
            std::io::Error::last_os_error()
        );
        return None;
    };
    let dir = lower.to_str().expect("a UTF-8 scratch path");
    let kernel = run_probe(&probe, scratch.path(), &["view", dir], None);
    drop(mount);
    let vars: &[(&str, &Path)] = &[
        ("OVL_LOWER", &lower),
        ("OVL_UPPER", &upper),
        ("OVL_WORK", &work),
    ];
    let ours = run_probe(&probe, scratch.path(), &["view", dir], Some(vars));
    let sections = |out: &str| {
        out.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    Some((sections(&kernel), sections(&ours)))
}

#[test]
fn walkers_show_the_view_as_the_kernel_does() {
    let Some((mut kernel, mut ours)) = kernel_and_shim_views("view") else {
        return;
    };
    // Checked by the next test.
    kernel.remove("nftw-chdir");
    ours.remove("nftw-chdir");
    assert!(
        kernel.len() >= 6,
        "the probe printed too little: {kernel:?}"
    );
    for (walker, expected) in &kernel {
        assert_same_output(
            expected,
            ours.get(walker).map_or("", String::as_str),
            walker,
        );
    }
}

/// With FTW_CHDIR and one descriptor, nftw moves to the parent of the view
/// and enters it by a relative name, and later reads entries by their names.
#[test]
fn walk_entering_the_view_by_a_relative_name() {
    let Some((kernel, ours)) = kernel_and_shim_views("relative") else {
        return;
    };
    let expected = kernel
        .get("nftw-chdir")
        .expect("the probe printed no nftw-chdir walk");
    let got = ours.get("nftw-chdir").map_or("", String::as_str);
    assert_same_output(expected, got, "nftw with FTW_CHDIR");
}
