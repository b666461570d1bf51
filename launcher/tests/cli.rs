//! `ovl-exec` from the outside: setups it refuses before creating anything
//! (125), commands it cannot run (126) or find (127), programs the overlay
//! cannot be preloaded into, the exit status passed through, and the
//! environment the command gets.
//!
//! The shim must have been built (`cargo build` builds it beside ovl-exec).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The ovl-exec under test: `$OVL_EXEC`, else the release build
/// (scripts/test.sh builds it first; the test programs themselves are built
/// in another profile), else the one cargo built for this test.
fn exe() -> PathBuf {
    if let Some(p) = std::env::var_os("OVL_EXEC") {
        return PathBuf::from(p);
    }
    let release = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/ovl-exec");
    if release.is_file() {
        return release;
    }
    PathBuf::from(env!("CARGO_BIN_EXE_ovl-exec"))
}

fn shim() -> PathBuf {
    let shim = exe().with_file_name("libovl_shim.so");
    assert!(
        shim.is_file(),
        "{} is missing: build the workspace first (cargo build)",
        shim.display()
    );
    shim
}

/// A scratch directory holding `lower/` with a file, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("ovl-exec-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("lower")).unwrap();
        std::fs::write(dir.join("lower/plain"), "not a program\n").unwrap();
        Scratch(dir)
    }

    /// The path of `rel` inside the scratch directory, as a string.
    fn p(&self, rel: &str) -> String {
        self.0.join(rel).to_str().unwrap().to_owned()
    }

    fn mkdir(&self, rel: &str) -> String {
        std::fs::create_dir_all(self.0.join(rel)).unwrap();
        self.p(rel)
    }

    /// `ovl-exec -l lower -u upper -w WORK -- true` here (upper made first).
    fn run_with_work(&self, work: &str) -> Output {
        let upper = self.mkdir("upper");
        run(&[
            "-l",
            &self.p("lower"),
            "-u",
            &upper,
            "-w",
            work,
            "--",
            "true",
        ])
    }

    /// Every path below the scratch directory, sorted.
    fn listing(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                out.push(p.clone());
                if p.is_dir() && !p.is_symlink() {
                    walk(&p, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.0, &mut out);
        out.sort();
        out
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A tmpfs mounted for one test, unmounted when dropped (before the
/// scratch directory holding it is removed, also when the test fails).
struct Tmpfs(String);

impl Tmpfs {
    /// `None`: it could not be mounted (not root).
    fn mount(at: &str) -> Option<Tmpfs> {
        Command::new("mount")
            .args(["-t", "tmpfs", "ovl-exec-test", at])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|st| st.success())
            .then(|| Tmpfs(at.to_string()))
    }
}

impl Drop for Tmpfs {
    /// Retried while busy (a command of the test may still be exiting), then
    /// detached.
    fn drop(&mut self) {
        for _ in 0..20 {
            if Command::new("umount")
                .arg(&self.0)
                .status()
                .is_ok_and(|st| st.success())
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn ovl_exec(args: &[&str]) -> Command {
    let mut c = Command::new(exe());
    c.args(args).env("OVL_SHIM", shim());
    c
}

fn run(args: &[&str]) -> Output {
    ovl_exec(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts the exit status and that stderr is one line holding `needle`.
fn assert_fails(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(needle), "{needle:?} not in: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(err.starts_with("ovl-exec: "), "{err}");
}

#[test]
fn missing_lower_is_refused_and_nothing_is_created() {
    let s = Scratch::new("missing");
    let before = s.listing();
    let o = run(&["-l", &s.p("nope"), "-u", &s.p("up"), "--", "true"]);
    assert_fails(&o, 125, &s.p("nope"));
    assert_eq!(before, s.listing(), "a refused setup created something");
}

/// Seed whiteouts are symbolic links marked by an xattr; the kernel allows
/// `user.` xattrs on no symbolic link, so with `--xattr user` (the default
/// for a user who is not root) every removal of a lower name would fail:
/// refused before anything is made, saying what to use instead. Without an
/// upper layer nothing is written, and the pair is taken.
#[test]
fn seed_whiteouts_in_the_user_namespace_are_refused() {
    let s = Scratch::new("seeduser");
    let upper = s.mkdir("upper");
    let before = s.listing();
    let o = run(&[
        "-l",
        &s.p("lower"),
        "-u",
        &upper,
        "--whiteout",
        "seed",
        "--xattr",
        "user",
        "--",
        "true",
    ]);
    assert_fails(&o, 125, "--whiteout seed");
    assert_eq!(before, s.listing(), "a refused setup created something");
    let o = run(&[
        "-l",
        &s.p("lower"),
        "--whiteout",
        "seed",
        "--xattr",
        "user",
        "--",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn upper_inside_lower_is_refused() {
    let s = Scratch::new("nested");
    let upper = s.mkdir("lower/up");
    let before = s.listing();
    let o = run(&["-l", &s.p("lower"), "-u", &upper, "--", "true"]);
    assert_fails(&o, 125, "overlap");
    assert_eq!(before, s.listing());
}

fn same_device(a: &Path, b: &Path) -> bool {
    a.metadata().unwrap().dev() == b.metadata().unwrap().dev()
}

#[test]
fn work_on_another_filesystem_is_refused() {
    let s = Scratch::new("xdev");
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() || same_device(shm, &s.0) {
        eprintln!(
            "skipped: /dev/shm is not another filesystem than {}",
            s.0.display()
        );
        return;
    }
    let work = shm.join(format!("ovl-exec-cli-work-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let o = s.run_with_work(work.to_str().unwrap());
    let _ = std::fs::remove_dir_all(&work);
    assert_fails(&o, 125, "another filesystem");
}

#[test]
fn default_work_beside_a_mounted_upper_is_refused_before_it_is_made() {
    let s = Scratch::new("mounted-upper");
    let upper = s.mkdir("upper");
    let Some(_tmpfs) = Tmpfs::mount(&upper) else {
        eprintln!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    };
    let o = run(&["-l", &s.p("lower"), "-u", &upper, "--", "true"]);
    assert_fails(&o, 125, "another filesystem");
    assert!(!Path::new(&s.p("upper.ovl-work")).exists());
}

#[test]
fn default_work_is_made_beside_upper_with_mode_0700() {
    let s = Scratch::new("work");
    let upper = s.mkdir("upper");
    let o = run(&["-l", &s.p("lower"), "-u", &upper, "--", "true"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let work = std::fs::metadata(s.p("upper.ovl-work")).unwrap();
    assert!(work.is_dir());
    assert_eq!(work.mode() & 0o077, 0, "mode {:o}", work.mode());
}

#[test]
fn missing_given_work_is_made_with_mode_0700() {
    let s = Scratch::new("given-work");
    let o = s.run_with_work(&s.p("w"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let work = std::fs::metadata(s.p("w")).unwrap();
    assert!(work.is_dir());
    assert_eq!(work.mode() & 0o077, 0, "mode {:o}", work.mode());
    assert!(!Path::new(&s.p("upper.ovl-work")).exists());
}

#[test]
fn work_that_is_a_file_is_refused() {
    let s = Scratch::new("work-file");
    std::fs::write(s.0.join("w"), "").unwrap();
    let o = s.run_with_work(&s.p("w"));
    assert_fails(
        &o,
        125,
        "exists and is not a directory: remove it, or give another with -w",
    );
}

#[test]
fn work_in_a_missing_directory_is_refused_and_nothing_is_created() {
    let s = Scratch::new("work-parent");
    s.mkdir("upper"); // before the listing: the run makes it otherwise
    let before = s.listing();
    let o = s.run_with_work(&s.p("no-dir/w"));
    assert_fails(
        &o,
        125,
        "no-dir is not an existing directory: create it first",
    );
    assert_eq!(s.listing(), before);
}

#[test]
fn missing_relative_target_is_refused() {
    let s = Scratch::new("target");
    let o = ovl_exec(&["-l", "lower", "-t", "no-such-target", "--", "true"])
        .current_dir(&s.0)
        .output()
        .unwrap();
    assert_fails(&o, 125, "no-such-target");
}

#[test]
fn trace_in_a_missing_directory_is_refused_before_work_is_made() {
    let s = Scratch::new("trace");
    let upper = s.mkdir("upper");
    let trace = s.p("no-dir/trace.log");
    let o = run(&[
        "-l",
        &s.p("lower"),
        "-u",
        &upper,
        "--trace",
        &trace,
        "--",
        "true",
    ]);
    assert_fails(&o, 125, "no-dir");
    assert!(!Path::new(&s.p("upper.ovl-work")).exists());
}

#[test]
fn usage_errors_are_125_and_help_is_0() {
    let s = Scratch::new("usage");
    assert_eq!(run(&["-l", &s.p("lower")]).status.code(), Some(125));
    let o = run(&["-l", &s.p("lower"), "--bogus", "--", "true"]);
    assert_eq!(o.status.code(), Some(125));
    let o = run(&[
        "-l",
        &s.p("lower"),
        "-o",
        &format!("lowerdir={}", s.p("lower")),
        "true",
    ]);
    assert_fails(&o, 125, "lowerdir");
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("Usage: ovl-exec"), "{}", stdout(&o));
}

#[test]
fn shim_not_found_is_125_and_says_where_it_looked() {
    let s = Scratch::new("noshim");
    let o = ovl_exec(&["-l", &s.p("lower"), "--", "true"])
        .env("OVL_SHIM", s.p("nowhere.so"))
        .output()
        .unwrap();
    assert_fails(&o, 125, "OVL_SHIM");
    let bin = s.mkdir("bin");
    let exe = Path::new(&bin).join("ovl-exec");
    // Copied by another process: a copy written here could still be open
    // for writing in a child another test is forking (ETXTBSY on exec).
    let copied = Command::new("cp")
        .arg(self::exe())
        .arg(&exe)
        .status()
        .unwrap();
    assert!(
        copied.success(),
        "cp {} {}",
        self::exe().display(),
        exe.display()
    );
    let o = Command::new(&exe)
        .args(["-l", &s.p("lower"), "--", "true"])
        .env_remove("OVL_SHIM")
        .output()
        .unwrap();
    assert_fails(&o, 125, &bin);
    assert!(stderr(&o).contains("lib/ovl"), "{}", stderr(&o));
}

#[test]
fn command_not_found_is_127() {
    let s = Scratch::new("notfound");
    let o = run(&["-l", &s.p("lower"), "--", "no-such-command-anywhere"]);
    assert_fails(&o, 127, "no-such-command-anywhere: command not found");
    let o = run(&["-l", &s.p("lower"), "--", &s.p("lower/nope")]);
    assert_fails(&o, 127, "No such file or directory");
}

#[test]
fn a_file_that_is_not_executable_is_126() {
    let s = Scratch::new("noexec");
    let o = run(&["-l", &s.p("lower"), "--", &s.p("lower/plain")]);
    assert_fails(&o, 126, "Permission denied");
    let o = run(&["-l", &s.p("lower"), "--", &s.p("lower")]);
    assert_eq!(o.status.code(), Some(126), "a directory: {}", stderr(&o));
}

#[test]
fn exit_status_is_the_commands() {
    let s = Scratch::new("status");
    let o = run(&["-l", &s.p("lower"), "--", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
}

/// A statically linked program of this system, by our own classifier.
fn static_program() -> Option<&'static str> {
    ["/sbin/ldconfig", "/usr/sbin/ldconfig"]
        .into_iter()
        .find(|p| {
            let Ok(bytes) = std::fs::read(p) else {
                return false;
            };
            let head = &bytes[..bytes.len().min(ovl::binfmt::HEAD_LEN)];
            ovl::binfmt::classify(head) == ovl::binfmt::Executable::StaticElf
        })
}

fn make_executable(path: &str, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn static_programs_are_refused_outside_and_inside_the_view() {
    let Some(prog) = static_program() else {
        eprintln!("skipped: no statically linked program found");
        return;
    };
    let s = Scratch::new("static");
    let lower = s.p("lower");
    let o = run(&["-l", &lower, "--", prog, "--help"]);
    assert_fails(&o, 126, &format!("{prog}: statically linked"));
    std::fs::copy(prog, s.p("lower/prog")).unwrap();
    let o = run(&["-l", &lower, "--", &s.p("lower/prog")]);
    assert_fails(&o, 126, "statically linked");
    let script = s.p("script");
    make_executable(&script, &format!("#!{prog} -p\n"));
    let o = run(&["-l", &lower, "--", &script]);
    assert_fails(
        &o,
        126,
        &format!("its interpreter {prog}: statically linked"),
    );
}

#[test]
fn set_user_id_programs_of_another_user_are_refused() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to give a program to another user");
        return;
    }
    let s = Scratch::new("setuid");
    let prog = s.p("suid-true");
    std::fs::copy("/bin/true", &prog).unwrap();
    std::os::unix::fs::chown(&prog, Some(65534), None).unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let o = run(&["-l", &s.p("lower"), "--", &prog]);
    assert_fails(&o, 126, "setuid: the dynamic loader ignores LD_PRELOAD");
}

#[test]
fn a_command_only_in_the_upper_layer_runs_through_the_view() {
    let s = Scratch::new("upper-only");
    let upper = s.mkdir("upper");
    make_executable(&format!("{upper}/tool"), "#!/bin/sh\necho tool \"$@\"\n");
    let path = format!("{}:/usr/bin:/bin", s.p("lower"));
    let o = ovl_exec(&["-l", &s.p("lower"), "-u", &upper, "--", "tool", "a"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "tool a\n");
}

/// The child's environment, one `KEY=value` per entry.
fn child_env(cmd: &mut Command) -> Vec<String> {
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    stdout(&o).lines().map(str::to_owned).collect()
}

fn value<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter().find_map(|l| l.strip_prefix(&format!("{key}=")))
}

#[test]
fn the_environment_carries_the_overlay_and_the_shim() {
    let s = Scratch::new("env");
    let upper = s.mkdir("upper");
    let real = |p: &str| {
        std::fs::canonicalize(p)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    let shim = real(shim().to_str().unwrap());
    let mut cmd = ovl_exec(&[
        "-l",
        &s.p("lower"),
        "-u",
        &upper,
        "--xattr",
        "user",
        "--",
        "env",
    ]);
    cmd.env("OVL_TRACE", s.p("outer-trace"))
        .env_remove("LD_PRELOAD");
    let env = child_env(&mut cmd);
    assert_eq!(value(&env, "OVL_LOWER"), Some(real(&s.p("lower")).as_str()));
    assert_eq!(
        value(&env, "OVL_TARGET"),
        Some(real(&s.p("lower")).as_str())
    );
    assert_eq!(value(&env, "OVL_UPPER"), Some(real(&upper).as_str()));
    assert_eq!(
        value(&env, "OVL_WORK"),
        Some(real(&s.p("upper.ovl-work")).as_str())
    );
    assert_eq!(value(&env, "OVL_XATTR"), Some("user"));
    assert_eq!(value(&env, "OVL_WHITEOUT"), Some("kernel"));
    assert_eq!(value(&env, "OVL_SHIM"), Some(shim.as_str()));
    assert_eq!(value(&env, "LD_PRELOAD"), Some(shim.as_str()));
    assert_eq!(
        value(&env, "OVL_TRACE"),
        None,
        "an outer OVL_TRACE leaked in"
    );
}

#[test]
fn the_shim_is_put_first_in_ld_preload_once() {
    let Some(other) = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
    ]
    .into_iter()
    .find(|p| Path::new(p).is_file()) else {
        eprintln!("skipped: no libm.so.6 to preload beside the shim");
        return;
    };
    let s = Scratch::new("preload");
    let shim = std::fs::canonicalize(shim()).unwrap();
    let shim = shim.to_str().unwrap();
    let mut cmd = ovl_exec(&["-l", &s.p("lower"), "--", "env"]);
    cmd.env("LD_PRELOAD", format!("{other}:{shim}"));
    let env = child_env(&mut cmd);
    assert_eq!(
        value(&env, "LD_PRELOAD"),
        Some(format!("{shim}:{other}").as_str())
    );
}
