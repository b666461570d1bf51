//! Running a shell script in the merged view: under the kernel's overlayfs
//! (`run_kernel`), under `ovl-exec` (`run_ovl`), or with the shim preloaded
//! by hand (`run_ovl_env`); and comparing the outcomes.

use super::diff::line_diff;
use super::fixture::Fixture;
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Environment variable: seconds a run may take before its process group is
/// killed (default 150), so a hang fails the test instead of blocking it.
/// Above 60: rsync 3.5.0 (Debian 12's security update) sleeps 60 s at its
/// end, then ends well, when the generator's wrap-up signal (SIGUSR2) lands
/// between the receiver's check of its flag and its `poll`; rare, on either
/// side, and not a hang.
pub const TIMEOUT_ENV: &str = "OVL_TEST_TIMEOUT";

/// Environment variable: the `ovl-exec` binary to test.
pub const OVL_EXEC_ENV: &str = "OVL_EXEC";

/// Environment variable: the shim (`libovl_shim.so`) for `run_ovl_env`.
pub const OVL_SHIM_ENV: &str = "OVL_SHIM";

/// Environment variable: when set, the "ovl" side runs under the kernel's
/// overlayfs too. A check of the harness and of the probes (two clones must
/// print the same), not of ovl. Tests of formats the kernel does not read
/// (`expect_ovl`, `compare_twins`) fail in this mode, as they should.
pub const SELF_CHECK_ENV: &str = "OVL_TEST_SELF_CHECK";

/// Environment variable: when set, `compare` prints both outcomes to
/// stderr even when they agree (see them with `--nocapture`).
pub const VERBOSE_ENV: &str = "OVL_TEST_VERBOSE";

/// The `PATH` of every run.
pub const RUN_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

/// Which way a script was run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Under the kernel's overlayfs mounted at the mount point.
    Kernel,
    /// Under `ovl-exec --target <mount point>`.
    Ovl,
    /// With `LD_PRELOAD=<shim>` and `OVL_*` set by hand.
    OvlEnv,
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub side: Side,
    /// Exit status; 128 + signal number when killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub script: String,
    /// True when the run was killed for taking longer than the timeout.
    pub timed_out: bool,
    layers: PathBuf,
    root: PathBuf,
}

impl Outcome {
    /// `text` with the fixture's own directories written as `$LAYERS`
    /// (this clone's set of layers) and `$ROOT` (the shared temporary
    /// directory), so outputs of two clones compare equal.
    pub fn normalize(&self, text: &str) -> String {
        text.replace(&*self.layers.to_string_lossy(), "$LAYERS")
            .replace(&*self.root.to_string_lossy(), "$ROOT")
    }

    /// Normalised standard output.
    pub fn out(&self) -> String {
        self.normalize(&self.stdout)
    }

    /// Normalised standard error.
    pub fn err(&self) -> String {
        self.normalize(&self.stderr)
    }

    /// Panics with the whole outcome unless the script exited 0.
    pub fn assert_success(&self) -> &Self {
        if self.code != 0 || self.timed_out {
            panic!("the script failed\n{self}");
        }
        self
    }

    /// Panics with a diff unless the (normalised) standard output is `expected`.
    pub fn assert_stdout(&self, expected: &str) -> &Self {
        let got = self.out();
        if got != expected {
            panic!(
                "unexpected output (- expected, + got):\n{}\n{self}",
                line_diff(expected, &got)
            );
        }
        self
    }

    /// A hint when the failure is ovl-exec's own (bad setup, cannot run).
    fn launcher_hint(&self) -> Option<String> {
        if self.side == Side::Kernel || !(125..=127).contains(&self.code) {
            return None;
        }
        let first = self.stderr.lines().next().unwrap_or("");
        Some(format!(
            "hint: exit {} usually means ovl-exec or the shim could not run the command: {first}",
            self.code
        ))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "--- {:?} run", self.side)?;
        writeln!(f, "script:\n{}", indent(&self.script))?;
        if self.timed_out {
            writeln!(f, "TIMED OUT (killed)")?;
        }
        writeln!(f, "exit status: {}", self.code)?;
        writeln!(f, "stdout:\n{}", indent(&self.out()))?;
        writeln!(f, "stderr:\n{}", indent(&self.err()))?;
        if let Some(hint) = self.launcher_hint() {
            writeln!(f, "{hint}")?;
        }
        Ok(())
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The workspace root (the directory of the root `Cargo.toml`).
pub fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `ovl-exec` under test: `$OVL_EXEC`, else `target/release/ovl-exec`,
/// else `target/debug/ovl-exec`. Panics with what to do when none exists.
pub fn ovl_exec() -> PathBuf {
    built_artifact(OVL_EXEC_ENV, "ovl-exec")
}

/// The shim: `$OVL_SHIM`, else `libovl_shim.so` in `target/release`, else
/// in `target/debug`.
pub fn shim() -> PathBuf {
    built_artifact(OVL_SHIM_ENV, "libovl_shim.so")
}

fn built_artifact(env: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "${env} names {}, which does not exist",
            p.display()
        );
        return p;
    }
    let target = workspace_dir().join("target");
    for profile in ["release", "debug"] {
        let p = target.join(profile).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "{name} not found in {}/release or /debug: build the workspace first: cargo build --release --workspace (or set ${env})",
        target.display()
    );
}

/// The environment every run starts from (nothing is inherited from the
/// test process): a fixed `PATH`, `HOME` in the fixture, C locale, UTC, and
/// `MNT` = the mount point, for scripts that need absolute paths.
fn base_env(fx: &Fixture) -> Vec<(String, OsString)> {
    vec![
        ("PATH".into(), RUN_PATH.into()),
        ("HOME".into(), fx.home().into_os_string()),
        ("LC_ALL".into(), "C".into()),
        ("TZ".into(), "UTC".into()),
        ("MNT".into(), fx.mnt().into_os_string()),
    ]
}

/// A `Command` for `prog args…` in the mount point with the base environment.
fn command(fx: &Fixture, prog: &Path, args: &[OsString]) -> Command {
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .current_dir(fx.mnt())
        .env_clear()
        .envs(base_env(fx));
    if let Some(uid) = fx.user() {
        use std::os::unix::process::CommandExt;
        cmd.uid(uid).gid(uid);
    }
    cmd
}

fn sh_args(script: &str) -> Vec<OsString> {
    vec!["-c".into(), script.into()]
}

/// Runs `sh -c script` under the kernel's overlay mounted at the mount
/// point (unmounted afterwards, also when this panics).
pub fn run_kernel(fx: &Fixture, script: &str) -> Outcome {
    let _mount = fx.mount_kernel();
    let cmd = command(fx, Path::new("sh"), &sh_args(script));
    execute(cmd, Side::Kernel, fx, script)
}

/// Runs `ovl-exec -l L1 … [-u U -w W] -t MNT -- sh -c script` in the mount point.
pub fn run_ovl(fx: &Fixture, script: &str) -> Outcome {
    if let Some(out) = self_check(fx, script, Side::Ovl) {
        return out;
    }
    let cmd = command(fx, &ovl_exec(), &ovl_exec_args(fx, &["sh", "-c", script]));
    execute(cmd, Side::Ovl, fx, script)
}

/// Under `$OVL_TEST_SELF_CHECK`: the kernel run, labelled as `side`.
fn self_check(fx: &Fixture, script: &str, side: Side) -> Option<Outcome> {
    std::env::var_os(SELF_CHECK_ENV)?;
    let mut out = run_kernel(fx, script);
    out.side = side;
    Some(out)
}

/// `ovl-exec`'s arguments for this fixture, then `--` and `command`.
pub fn ovl_exec_args(fx: &Fixture, command: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    for dir in fx.lower_dirs() {
        args.push("-l".into());
        args.push(dir.into_os_string());
    }
    if fx.has_upper() {
        args.extend(["-u".into(), fx.upper_dir().into_os_string()]);
        args.extend(["-w".into(), fx.work_dir().into_os_string()]);
    }
    args.extend(["-t".into(), fx.ovl_target().into_os_string()]);
    args.extend(fx.extra_ovl_args().iter().map(OsString::from));
    args.push("--".into());
    args.extend(command.iter().map(OsString::from));
    args
}

/// Runs `sh -c script` with the shim in `LD_PRELOAD` and the overlay in
/// `OVL_LOWER`, `OVL_UPPER`, `OVL_WORK`, `OVL_TARGET`, `OVL_SHIM`: the form
/// without the launcher.
pub fn run_ovl_env(fx: &Fixture, script: &str) -> Outcome {
    if let Some(out) = self_check(fx, script, Side::OvlEnv) {
        return out;
    }
    let mut cmd = command(fx, Path::new("sh"), &sh_args(script));
    cmd.envs(overlay_env(fx));
    execute(cmd, Side::OvlEnv, fx, script)
}

/// The variables that make a process (with the shim preloaded) see this
/// fixture's overlay at the mount point.
pub fn overlay_env(fx: &Fixture) -> Vec<(&'static str, OsString)> {
    let shim = shim().into_os_string();
    let lowers: Vec<String> = fx
        .lower_dirs()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut env = vec![
        ("LD_PRELOAD", shim.clone()),
        ("OVL_SHIM", shim),
        ("OVL_LOWER", lowers.join(":").into()),
        ("OVL_TARGET", fx.mnt().into_os_string()),
    ];
    if fx.has_upper() {
        env.push(("OVL_UPPER", fx.upper_dir().into_os_string()));
        env.push(("OVL_WORK", fx.work_dir().into_os_string()));
    }
    env
}

/// See [`TIMEOUT_ENV`].
const DEFAULT_TIMEOUT_SECS: u64 = 150;

fn timeout() -> Duration {
    let secs = std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_TIMEOUT_SECS);
    Duration::from_secs(secs)
}

/// Runs `cmd` in its own process group with stdin from /dev/null, collects
/// its output, and kills the whole group if it outlives the timeout.
pub fn execute(mut cmd: Command, side: Side, fx: &Fixture, script: &str) -> Outcome {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
    let pid = child.id();
    let stdout = reader(child.stdout.take().expect("piped stdout"));
    let stderr = reader(child.stderr.take().expect("piped stderr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let (status, timed_out) = match rx.recv_timeout(timeout()) {
        Ok(status) => (status, false),
        Err(_) => {
            kill_group(pid);
            (rx.recv().expect("waiter thread"), true)
        }
    };
    let status = status.unwrap_or_else(|e| panic!("cannot wait for {pid}: {e}"));
    // Whatever the script left running in the background must not keep the
    // mount busy or the pipes open.
    kill_group(pid);
    Outcome {
        side,
        code: status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
        script: script.to_string(),
        timed_out,
        layers: fx.layers_dir().to_path_buf(),
        root: fx.root_dir().to_path_buf(),
    }
}

fn reader(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn kill_group(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// Panics, with a diff of each part that differs, unless the two runs
/// exited alike and printed the same (normalised) stdout and stderr.
pub fn compare(kernel: &Outcome, ovl: &Outcome) {
    if std::env::var_os(VERBOSE_ENV).is_some() {
        eprintln!("{kernel}\n{ovl}");
    }
    let mut report = String::new();
    if kernel.code != ovl.code || kernel.timed_out || ovl.timed_out {
        report += &format!(
            "exit status: kernel {}{}, ovl {}{}\n",
            kernel.code,
            if kernel.timed_out { " (timed out)" } else { "" },
            ovl.code,
            if ovl.timed_out { " (timed out)" } else { "" },
        );
    }
    for (what, k, o) in [
        ("stdout", kernel.out(), ovl.out()),
        ("stderr", kernel.err(), ovl.err()),
    ] {
        if k != o {
            report += &format!("{what} (- kernel, + ovl):\n{}", line_diff(&k, &o));
        }
    }
    if report.is_empty() {
        return;
    }
    if let Some(hint) = ovl.launcher_hint() {
        report += &hint;
        report.push('\n');
    }
    if ovl.stdout.is_empty() && ovl.stderr.is_empty() && !kernel.stdout.is_empty() {
        report += "hint: the ovl run printed nothing at all: did it run the command?\n";
    }
    panic!(
        "the view under {:?} differs from the kernel's overlayfs\nscript:\n{}\n{report}",
        ovl.side,
        indent(&kernel.script)
    );
}
