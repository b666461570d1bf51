//! `ovl-exec` itself: its checks refuse bad setups before anything is
//! created, its exit statuses (the command's; 125, 126, 127 for its own
//! errors), the environment it hands down, the trace switch, programs
//! that cannot be preloaded (also when a shell in the view starts them),
//! and `ldd`, whose dynamic loader must run in the view.

mod common;

use common::mount::KernelMount;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch directory with a lower layer holding a file and a script.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("ovl-launcher-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("lower/sub")).unwrap();
        std::fs::write(dir.join("lower/sub/file"), "lower\n").unwrap();
        std::fs::write(dir.join("lower/plain"), "not a program\n").unwrap();
        let s = Scratch { dir };
        s.exe("lower/tool.sh", "#!/bin/sh\necho tool \"$@\"\n");
        s
    }
    /// Writes an executable file.
    fn exe(&self, rel: &str, content: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(self.p(rel), content).unwrap();
        std::fs::set_permissions(self.p(rel), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
    /// Makes these directories (relative to the scratch directory).
    fn dirs(&self, rels: &[&str]) {
        for rel in rels {
            std::fs::create_dir_all(self.p(rel)).unwrap();
        }
    }
    /// `lower_dirs` (under `lower`), and the other layers of a comparison
    /// with the kernel (see `agrees_with_the_kernel_as_nobody`).
    fn compared_layers(&self, lower_dirs: &[&str]) {
        self.dirs(&["lower", "upper", "work", "kupper", "kwork", "mnt"]);
        for rel in lower_dirs {
            self.dirs(&[&format!("lower/{rel}")]);
        }
    }
    /// The kernel's overlayfs over the directories `lower`, `upper` and
    /// `work` (with `extra` options: `,userxattr`, say), mounted at `mnt`;
    /// unmounted when dropped.
    fn kernel_overlay(&self, [lower, upper, work]: [&str; 3], extra: &str) -> KernelMount {
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}{extra}",
            self.p(lower).display(),
            self.p(upper).display(),
            self.p(work).display()
        );
        KernelMount::mount(&opts, &self.p("mnt"))
    }
    /// `sh -c script` run as nobody by `ovl-exec` over the directories
    /// `lower`, `upper` and `work`.
    fn script_as_nobody(&self, script: &str) -> Output {
        ovl_as_nobody(&[
            "-l".as_ref(),
            os(&self.p("lower")),
            "-u".as_ref(),
            os(&self.p("upper")),
            "-w".as_ref(),
            os(&self.p("work")),
            "--".as_ref(),
            "sh".as_ref(),
            "-c".as_ref(),
            script.as_ref(),
        ])
    }
    /// Gives everything below the scratch directory to nobody.
    fn give_to_nobody(&self) {
        let chown = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(&self.dir)
            .status();
        assert!(chown.unwrap().success());
    }
    /// `sh -c script` run as nobody on the kernel's overlayfs over `lower`,
    /// `kupper` and `kwork` with `userxattr` (as for a user's own mount).
    fn kernel_script_as_nobody(&self, script: &str) -> Output {
        use std::os::unix::process::CommandExt;
        let mount = self.kernel_overlay(["lower", "kupper", "kwork"], ",userxattr");
        let out = Command::new("sh")
            .args(["-c", script])
            .uid(65534)
            .gid(65534)
            .output();
        drop(mount);
        out.unwrap()
    }
    /// Panics unless ovl's `upper` and the kernel's `kupper` are the same
    /// but for the owner of whiteouts (the kernel, mounted by root, makes
    /// them root's).
    fn assert_uppers_alike(&self) {
        let opts = common::dump::DumpOpts {
            skip_whiteout_owner: true,
            ..common::dump::DumpOpts::uppers()
        };
        let dump = |rel: &str| common::dump::tree_dump(&self.p(rel), &opts);
        assert_eq!(dump("upper"), dump("kupper"), "the upper layers");
    }
    /// Runs `script(root)` as nobody in ovl's view (`root` the lower
    /// layer) and on the kernel's mount (`root` the mount point); panics
    /// unless both print the same and leave alike upper layers. Returns
    /// ovl's output.
    fn agrees_with_the_kernel_as_nobody(&self, script: impl Fn(&Path) -> String) -> Output {
        let o = self.script_as_nobody(&script(&self.p("lower")));
        let kernel = self.kernel_script_as_nobody(&script(&self.p("mnt")));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&kernel.stdout),
            "ovl's stderr: {}\nthe kernel's: {}",
            stderr(&o),
            stderr(&kernel)
        );
        self.assert_uppers_alike();
        o
    }
    /// Every path below the scratch directory, sorted.
    fn listing(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.dir, &mut out);
        out.sort();
        out
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.clone());
        if p.is_dir() && !p.is_symlink() {
            walk(&p, out);
        }
    }
}

fn ovl(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(ovl_exec())
        .args(args)
        .env("OVL_SHIM", shim())
        .output()
        .unwrap()
}

fn os(s: &Path) -> &std::ffi::OsStr {
    s.as_os_str()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn exit_status_is_the_commands() {
    let s = Scratch::new("status");
    let o = ovl(&["--".as_ref(), "true".as_ref()]);
    // Without -l the setup is refused (125); with it the status passes through.
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let o = ovl(&[
        "-l".as_ref(),
        os(&s.p("lower")),
        "--".as_ref(),
        "sh".as_ref(),
        "-c".as_ref(),
        "exit 7".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
}

/// The command starts with the signal dispositions ovl-exec was given: a
/// `SIGPIPE` left at its default ends `yes` quietly, one ignored stays ignored.
#[test]
fn signal_dispositions_pass_through_to_the_command() {
    let s = Scratch::new("signals");
    let script = "yes | head -1; grep SigIgn /proc/self/status";
    for trap in ["", "trap '' PIPE; "] {
        let inner = format!(
            "{trap}exec {} -l {} -- sh -c '{script}'",
            ovl_exec().display(),
            s.p("lower").display()
        );
        let direct = Command::new("sh")
            .args(["-c", &format!("{trap}sh -c '{script}'")])
            .output()
            .unwrap();
        let wrapped = Command::new("sh")
            .args(["-c", &inner])
            .env("OVL_SHIM", shim())
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&wrapped.stdout),
            String::from_utf8_lossy(&direct.stdout),
            "with {trap:?}: {}",
            stderr(&wrapped)
        );
        assert_eq!(stderr(&wrapped), stderr(&direct), "with {trap:?}");
    }
}

#[test]
fn missing_lower_is_refused_and_nothing_is_created() {
    let s = Scratch::new("missing");
    let before = s.listing();
    let o = ovl(&[
        "-l".as_ref(),
        os(&s.p("nope")),
        "-u".as_ref(),
        os(&s.p("upper-not-made")),
        "--".as_ref(),
        "true".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("nope"),
        "the message names the path: {}",
        stderr(&o)
    );
    assert_eq!(before, s.listing(), "a refused setup created something");
}

#[test]
fn overlapping_layers_are_refused() {
    let s = Scratch::new("overlap");
    std::fs::create_dir_all(s.p("lower/up")).unwrap();
    let before = s.listing();
    let o = ovl(&[
        "-l".as_ref(),
        os(&s.p("lower")),
        "-u".as_ref(),
        os(&s.p("lower/up")),
        "--".as_ref(),
        "true".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("overlap"), "{}", stderr(&o));
    assert_eq!(before, s.listing());
}

#[test]
fn work_on_another_filesystem_is_refused() {
    let s = Scratch::new("xdev");
    std::fs::create_dir_all(s.p("upper")).unwrap();
    let shm = PathBuf::from("/dev/shm");
    use std::os::unix::fs::MetadataExt;
    if !shm.is_dir() || shm.metadata().unwrap().dev() == s.dir.metadata().unwrap().dev() {
        eprintln!("skipped: /dev/shm is not another filesystem here");
        return;
    }
    let work = tempdir_in(&shm);
    let o = ovl(&[
        "-l".as_ref(),
        os(&s.p("lower")),
        "-u".as_ref(),
        os(&s.p("upper")),
        "-w".as_ref(),
        os(&work),
        "--".as_ref(),
        "true".as_ref(),
    ]);
    let _ = std::fs::remove_dir_all(&work);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("filesystem"), "{}", stderr(&o));
}

fn tempdir_in(base: &Path) -> PathBuf {
    let d = base.join(format!("ovl-launcher-work-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn command_not_found_is_127_and_not_runnable_is_126() {
    let s = Scratch::new("codes");
    let lower = s.p("lower");
    let o = ovl(&[
        "-l".as_ref(),
        os(&lower),
        "--".as_ref(),
        "no-such-command-anywhere".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no-such-command-anywhere"),
        "{}",
        stderr(&o)
    );
    let o = ovl(&[
        "-l".as_ref(),
        os(&lower),
        "--".as_ref(),
        os(&s.p("lower/plain")),
    ]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
}

#[test]
fn a_script_in_the_view_runs_through_path() {
    let s = Scratch::new("path");
    let lower = s.p("lower");
    let script = format!("PATH={}:$PATH tool.sh a b", lower.display());
    let o = ovl(&[
        "-l".as_ref(),
        os(&lower),
        "--".as_ref(),
        "sh".as_ref(),
        "-c".as_ref(),
        script.as_ref(),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "tool a b\n",
        "{}",
        stderr(&o)
    );
}

/// A script the launcher runs itself is named after the script, as the
/// kernel names it, not after its interpreter; and the variable that
/// carried the name is gone before the script's first line.
#[test]
fn a_script_run_by_the_launcher_bears_its_own_name() {
    let s = Scratch::new("name");
    let lower = s.p("lower");
    s.exe(
        "lower/named.sh",
        "#!/bin/sh\ncat /proc/$$/comm; env | grep -c OVL_PROCESS_NAME\n",
    );
    let o = ovl(&[
        "-l".as_ref(),
        os(&lower),
        "--".as_ref(),
        os(&lower.join("named.sh")),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "named.sh\n0\n",
        "{}",
        stderr(&o)
    );
}

#[test]
fn statically_linked_programs_are_refused() {
    let Some(prog) = a_static_program() else {
        eprintln!("skipped: no statically linked program found to try");
        return;
    };
    let s = Scratch::new("static");
    let o = ovl(&[
        "-l".as_ref(),
        os(&s.p("lower")),
        "--".as_ref(),
        os(prog),
        "--help".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    assert!(stderr(&o).contains("statically linked"), "{}", stderr(&o));
}

/// Run from its descriptor (`fexecve`, `execveat` with `AT_EMPTY_PATH`),
/// a statically linked program is refused as when run by its path.
#[test]
fn statically_linked_programs_are_refused_when_run_from_a_descriptor() {
    let Some(prog) = a_static_program() else {
        eprintln!("skipped: no statically linked program found to try");
        return;
    };
    let s = Scratch::new("static-fd");
    let script = format!(
        "import ctypes, os\n\
         fd = os.open('{prog}', os.O_RDONLY)\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         argv = (ctypes.c_char_p * 3)(b'ldconfig', b'--help', None)\n\
         libc.execveat(fd, b'', argv, None, 0x1000)\n\
         print('execveat', os.strerror(ctypes.get_errno()), flush=True)\n\
         os.execve(fd, ['ldconfig', '--help'], dict(os.environ))\n",
        prog = prog.display()
    );
    let o = ovl(&[
        "-l".as_ref(),
        os(&s.p("lower")),
        "--".as_ref(),
        "python3".as_ref(),
        "-c".as_ref(),
        script.as_ref(),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("execveat Operation not permitted"),
        "{out}{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("PermissionError"), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).matches("statically linked").count(),
        2,
        "{}",
        stderr(&o)
    );
}

/// A statically linked program of this machine (`ldconfig`), if any.
fn a_static_program() -> Option<&'static Path> {
    ["/sbin/ldconfig", "/usr/sbin/ldconfig"]
        .into_iter()
        .map(Path::new)
        .find(|p| is_static(p))
}

fn is_static(p: &Path) -> bool {
    let Ok(bytes) = std::fs::read(p) else {
        return false;
    };
    matches!(
        ovl::binfmt::classify(&bytes[..bytes.len().min(ovl::binfmt::HEAD_LEN)]),
        ovl::binfmt::Executable::StaticElf
    )
}

#[test]
fn the_environment_carries_the_overlay_and_the_shim() {
    let s = Scratch::new("env");
    std::fs::create_dir_all(s.p("upper")).unwrap();
    let o = ovl(&[
        "-l".as_ref(),
        os(&s.p("lower")),
        "-u".as_ref(),
        os(&s.p("upper")),
        "--".as_ref(),
        "env".as_ref(),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    let shim = shim().canonicalize().unwrap();
    assert!(
        out.lines()
            .any(|l| l.starts_with("LD_PRELOAD=") && l.contains(shim.to_str().unwrap())),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "OVL_LOWER={}",
            s.p("lower").canonicalize().unwrap().display()
        )),
        "{out}"
    );
    assert!(out.contains("OVL_UPPER="), "{out}");
    assert!(out.contains("OVL_WORK="), "{out}");
    assert!(
        s.p("upper.ovl-work").is_dir(),
        "the default work directory is made beside upper"
    );
}

/// Root without `CAP_SYS_ADMIN` (a container's root, as Docker starts it)
/// may neither write nor read `trusted.` xattrs: by default `ovl-exec`
/// then writes the overlay's marks as `user.overlay.*`, as a user who is
/// not root gets them, and the kernel mounted with `userxattr` shows the
/// view the command left. It used to pick `trusted`, and a directory made
/// over a removed lower one failed with `EPERM`.
#[test]
fn root_without_cap_sys_admin_marks_in_the_user_namespace() {
    require_root!();
    let s = Scratch::new("nocap");
    s.dirs(&["upper", "work", "mnt"]);
    let script = format!(
        "echo $OVL_XATTR; cd {} && rm -rf sub && mkdir sub && touch sub/new && ls sub",
        s.p("lower").display()
    );
    let o = Command::new("setpriv")
        .args(["--bounding-set=-sys_admin", "--inh-caps=-sys_admin", "--"])
        .arg(ovl_exec())
        .arg("-l")
        .arg(s.p("lower"))
        .arg("-u")
        .arg(s.p("upper"))
        .arg("-w")
        .arg(s.p("work"))
        .args(["--", "sh", "-c", &script])
        .env("OVL_SHIM", shim())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "user\nnew\n",
        "{}",
        stderr(&o)
    );
    assert_eq!(
        common::dump::list_xattrs(&s.p("upper/sub")),
        ["user.overlay.opaque"],
        "the new directory's marks"
    );
    let mount = s.kernel_overlay(["lower", "upper", "work"], ",userxattr");
    let listed = std::fs::read_dir(s.p("mnt/sub")).map(|d| {
        d.map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect::<Vec<_>>()
    });
    drop(mount);
    assert_eq!(listed.unwrap(), ["new"], "the kernel's view of sub");
}

/// An upper layer on an overlayfs (a container's root file system, say):
/// the kernel's whiteouts cannot be made there (it refuses them, `EPERM`,
/// and would take them for its own), so `ovl-exec` refuses it before
/// anything runs, saying what to do; with `--whiteout seed` it runs, and a
/// removal holds.
#[test]
fn an_upper_layer_on_an_overlayfs_is_refused_unless_whiteouts_are_the_seeds() {
    require_root!();
    let s = Scratch::new("ovlupper");
    s.dirs(&["kl", "ku", "kw", "mnt"]);
    let mount = s.kernel_overlay(["kl", "ku", "kw"], "");
    let (upper, work) = (s.p("mnt/upper"), s.p("mnt/work"));
    std::fs::create_dir_all(&upper).unwrap();
    let run = |extra: &[&str]| {
        let script = format!("cd {} && rm plain && ls", s.p("lower").display());
        Command::new(ovl_exec())
            .args(extra)
            .arg("-l")
            .arg(s.p("lower"))
            .arg("-u")
            .arg(&upper)
            .arg("-w")
            .arg(&work)
            .args(["--", "sh", "-c", &script])
            .env("OVL_SHIM", shim())
            .output()
            .unwrap()
    };
    let refused = run(&[]);
    let work_made = work.exists();
    let with_seed = run(&["--whiteout", "seed"]);
    let again = run(&["--whiteout", "seed"]);
    drop(mount);
    assert_eq!(refused.status.code(), Some(125), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("is on an overlayfs")
            && stderr(&refused).contains("--whiteout seed"),
        "{}",
        stderr(&refused)
    );
    assert!(!work_made, "nothing is made before the checks pass");
    assert_eq!(
        String::from_utf8_lossy(&with_seed.stdout),
        "sub\ntool.sh\n",
        "{}",
        stderr(&with_seed)
    );
    assert_eq!(
        again.status.code(),
        Some(1),
        "plain is gone: {}",
        stderr(&again)
    );
    assert!(
        s.p("lower/plain").is_file(),
        "the lower layer never changes"
    );
}

/// `ovl-exec` run by a user who is not root, on layers of theirs: its
/// marks are `user.overlay.*` and its whiteouts devices it may make; the
/// kernel, mounted with `userxattr` over the layers it left, shows the
/// tree the command saw last (a copy-up, a removal, a directory made over
/// a removed lower one, a directory moved).
#[test]
fn a_user_who_is_not_root_leaves_layers_the_kernel_reads_with_userxattr() {
    require_root!();
    let s = Scratch::new("user");
    s.dirs(&["lower/sub/deeper", "upper", "work", "kwork", "mnt"]);
    let chown = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&s.dir)
        .status()
        .unwrap();
    assert!(chown.success());
    let script = format!(
        "cd {} && echo more >> plain && rm tool.sh && rm -rf sub && mkdir sub && echo n > sub/new \
         && mkdir e && mv e e2 && find . -printf '%p %y %s\\n' | sort",
        s.p("lower").display()
    );
    let o = s.script_as_nobody(&script);
    let seen = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(seen.contains("./sub/new f 2\n"), "{seen}{}", stderr(&o));
    assert_eq!(
        common::dump::list_xattrs(&s.p("upper/sub")),
        ["user.overlay.opaque"],
        "the new directory's marks"
    );
    let mount = s.kernel_overlay(["lower", "upper", "kwork"], ",userxattr");
    let kernel = Command::new("sh")
        .args(["-c", "find . -printf '%p %y %s\\n' | sort"])
        .current_dir(s.p("mnt"))
        .output();
    drop(mount);
    assert_eq!(String::from_utf8_lossy(&kernel.unwrap().stdout), seen);
}

/// A user who is not root changes files of theirs in read-only directories
/// of their lower layer (a tree unpacked or checked out read-only): the
/// kernel copies up with the mounter's credentials, ovl with the user's,
/// who may neither write in the copies of those directories nor mark or
/// move them into place. The same commands, run as nobody on the kernel
/// (mounted with `userxattr`), print the same and leave the same upper
/// layer: modes, marks, and copies of read-only files that keep their
/// origins (their inode numbers). Both failed with `EACCES`: writing a file
/// of a read-only directory, `chmod -R` of a tree, a directory of mode 555
/// made over a removed one.
#[test]
fn a_user_who_is_not_root_changes_files_in_read_only_directories_as_on_the_kernel() {
    use std::os::unix::fs::PermissionsExt;
    require_root!();
    let s = Scratch::new("read-only-dirs");
    s.compared_layers(&["a/b", "x/y", "w1"]);
    for (rel, content) in [
        ("g", "g\n"),
        ("a/b/c", "c\n"),
        ("x/y/z", "z\n"),
        ("w1/f", "f\n"),
    ] {
        std::fs::write(s.p(&format!("lower/{rel}")), content).unwrap();
    }
    for (rel, mode) in [
        ("g", 0o444),
        ("a/b/c", 0o444),
        ("a/b", 0o555),
        ("a", 0o555),
        ("sub", 0o555),
    ] {
        std::fs::set_permissions(
            s.p(&format!("lower/{rel}")),
            std::fs::Permissions::from_mode(mode),
        )
        .unwrap();
    }
    s.give_to_nobody();
    let script = |root: &Path| {
        format!(
            r#"cd {} || exit
ino() {{ ls -i g a/b/c sub/file | sed 's/ .*//'; }}
before=$(ino)
chmod u+w g; echo g=$?; echo more >> g
chmod u+w a/b/c; echo c=$?; echo more >> a/b/c
echo more >> sub/file; echo sub=$?
chmod -R 500 x; echo x=$?
rm -rf w1; echo rm=$?; mkdir -m 555 w1; echo mkdir=$?
[ "$before" = "$(ino)" ] && echo same inode numbers
find . -printf '%p %y %m %s\n' | sort; cat g a/b/c sub/file"#,
            root.display()
        )
    };
    let o = s.agrees_with_the_kernel_as_nobody(script);
    let seen = String::from_utf8_lossy(&o.stdout);
    assert!(seen.contains("same inode numbers"), "{seen}{}", stderr(&o));
}

/// A user who is not root moves a directory of their own over one that is
/// empty in the view but holds a whiteout in upper, and whose mode denies
/// them writing it (`chmod 500`). The whiteout must go before the rename
/// can replace the directory: the kernel removes it with the mounter's
/// credentials; ovl failed (`ENOTEMPTY`) until the directory's owner was
/// let write it for that moment. Found by the random sequences of
/// `write_sequences` (seed 1530 of `not_root`).
#[test]
fn a_user_who_is_not_root_moves_a_directory_over_their_read_only_one_holding_a_whiteout() {
    require_root!();
    let s = Scratch::new("over-read-only");
    s.compared_layers(&["a/d", "a/e"]);
    std::fs::write(s.p("lower/a/d/g"), "g\n").unwrap();
    std::fs::write(s.p("lower/a/e/h"), "h\n").unwrap();
    s.give_to_nobody();
    let script = |root: &Path| {
        format!(
            r#"cd {} || exit
mv a/d/g a/f1; chmod 500 a/d; mkdir -p n/m/q && echo p > n/m/q/p
mv -T n/m a/d; echo over-d=$?
rm a/e/h; chmod 500 a/e; mkdir n/k
mv -T n/k a/e; echo over-e=$?
find . -printf '%p %y %m\n' | sort"#,
            root.display()
        )
    };
    let o = s.agrees_with_the_kernel_as_nobody(script);
    let seen = String::from_utf8_lossy(&o.stdout);
    assert!(
        seen.contains("over-d=0") && seen.contains("over-e=0"),
        "{seen}{}",
        stderr(&o)
    );
}

/// A user who is not root may list a directory they may read but not
/// search, and no more: `.` and `..` in it are names to look up as any
/// other (`ls -la` shows them as `?`), as on the kernel. ovl folded them
/// away and answered for the directory and its parent (found by the random
/// sequences of `write_sequences`, seed 1914 of `not_root`).
#[test]
fn a_user_who_is_not_root_cannot_look_up_dot_or_dot_dot_in_a_directory_they_cannot_search() {
    require_root!();
    let s = Scratch::new("no-search");
    s.compared_layers(&["d/e"]);
    std::fs::write(s.p("lower/d/f"), "f\n").unwrap();
    s.give_to_nobody();
    let script = |root: &Path| {
        format!(
            r#"cd {0} || exit
chmod 600 d; ls d
for p in d/. d/.. d/./f d/../plain d/e/.. {0}/d/. {0}/d/..; do stat -c %n "$p" 2>/dev/null; echo "${{p#{0}/}} $?"; done
cat d/../plain; echo cat=$?; chmod 700 d; stat -c %n d/. d/e/.. && cat d/../plain"#,
            root.display()
        )
    };
    let o = s.agrees_with_the_kernel_as_nobody(script);
    let seen = String::from_utf8_lossy(&o.stdout);
    assert!(
        seen.contains("d/. 1\n") && seen.contains("cat=1") && seen.contains("d/e/..\n"),
        "{seen}{}",
        stderr(&o)
    );
}

/// A leading `..` of a name relative to the current directory, or to a
/// directory's descriptor, is looked up in that directory, which the
/// user must be allowed to search, as on the kernel; ovl folded it away
/// against the directory's path, unchecked.
#[test]
fn a_user_who_is_not_root_cannot_climb_out_of_a_directory_they_cannot_search() {
    require_root!();
    let s = Scratch::new("no-climb");
    s.compared_layers(&["d/e/g"]);
    std::fs::write(s.p("lower/d/f"), "f\n").unwrap();
    s.give_to_nobody();
    let script = |root: &Path| {
        format!(
            r#"cd {0}/d/e/g || exit
look() {{ for p in "$@"; do stat -c %n "$p" >/dev/null 2>&1; echo "$p $?"; done; }}
chmod 600 ..; echo chmod=$?; look .. ../.. ../../f ../g
chmod 700 {0}/d/e; chmod 600 .; echo self=$?; look . .. ../.. ../../f ../../../plain
ls .. >/dev/null 2>&1; echo ls=$?; cat ../../f 2>/dev/null; echo cat=$?
chmod 700 {0}/d/e/g; look .. ../../f
/usr/bin/python3 -c '
import os
fd = os.open("{0}/d/e", os.O_RDONLY)
os.chmod("{0}/d/e", 0o600)
for p in ("..", "../f", "g/.."):
    try:
        os.stat(p, dir_fd=fd)
        print("fd", p, "ok")
    except OSError as e:
        print("fd", p, e.strerror)
os.chmod("{0}/d/e", 0o700)
print("fd ../f", os.stat("../f", dir_fd=fd).st_size)
'"#,
            root.display()
        )
    };
    let o = s.agrees_with_the_kernel_as_nobody(script);
    let seen = String::from_utf8_lossy(&o.stdout);
    assert!(
        seen.contains("self=0\n. 1\n.. 1\n") && seen.contains("fd .. Permission denied"),
        "{seen}{}",
        stderr(&o)
    );
}

/// A path that leaves the view and comes back through a directory beside
/// it that the user may not search (`shut/../view/f`, relative or
/// absolute) is refused (`EACCES`), as on the kernel, which looks the
/// `..` up in that directory; ovl cleaned the path lexically into the view.
#[test]
fn a_user_who_is_not_root_cannot_come_back_into_the_view_through_a_directory_they_cannot_search() {
    require_root!();
    let s = Scratch::new("no-detour");
    s.compared_layers(&["d"]);
    std::fs::write(s.p("lower/d/f"), "f\n").unwrap();
    s.give_to_nobody();
    let script = |root: &Path| {
        format!(
            r#"cd {0}/.. || exit
v=$(basename {0}); up=$(pwd)
mkdir shut open; chmod 0 shut
n=0; for p in shut/../$v/d/f open/../$v/d/f "$up/shut/../$v/d/f" "$up/open/../$v/d/f"; do
  n=$((n + 1)); cat "$p" >/dev/null 2>&1; echo "path $n $?"
done
cd {0}/d && cat ../../shut/../$v/d/f >/dev/null 2>&1; echo "from the view $?"
echo new > ../../shut/../$v/d/n 2>/dev/null; echo "create $?"; ls
chmod 700 {0}/../shut; rmdir {0}/../shut {0}/../open"#,
            root.display()
        )
    };
    let o = s.agrees_with_the_kernel_as_nobody(script);
    let seen = String::from_utf8_lossy(&o.stdout);
    assert!(
        seen.starts_with("path 1 1\npath 2 0\npath 3 1\npath 4 0\n")
            && seen.contains("from the view 1"),
        "{seen}{}",
        stderr(&o)
    );
}

/// A user who is not root moves a lower tree holding a symlink into a
/// lower directory (`mv -T`: across a copy, the symlink renamed into it),
/// then archives it. The symlink's copy cannot record its origin (`user.`
/// xattrs are refused on symlinks), and the kernel, which still knows it,
/// keeps the directory's `impure` mark when `tar` lists it; ovl took the
/// mark off, which moved the directory's change time while `tar` read it
/// ("file changed as we read it"; found by the non-root random sequences,
/// seed 1957).
#[test]
fn a_user_who_is_not_root_archives_a_directory_holding_a_moved_symlink_unchanged() {
    require_root!();
    let s = Scratch::new("moved-symlink");
    s.compared_layers(&["b/c", "a/e"]);
    std::fs::write(s.p("lower/b/c/f"), "f\n").unwrap();
    std::os::unix::fs::symlink("c/f", s.p("lower/b/sl")).unwrap();
    s.give_to_nobody();
    let script = |root: &Path| {
        format!(
            r#"cd {} || exit
mv -T b a/e; echo mv=$?
t=$(mktemp) && tar cf "$t" a/e; echo tar=$?; rm -f "$t"
stat -c '%n %F' a/e/sl a/e/c/f"#,
            root.display()
        )
    };
    let o = s.agrees_with_the_kernel_as_nobody(script);
    let seen = String::from_utf8_lossy(&o.stdout);
    assert!(seen.contains("mv=0\ntar=0\n"), "{seen}{}", stderr(&o));
}

/// A user who is not root renames a directory of theirs whose mode denies
/// them writing (`chmod 500`) to a name a lower directory had: it must be
/// marked opaque, which the kernel does with the mounter's credentials
/// and a `user.` xattr on such a directory is refused to its owner. ovl
/// answered `EXDEV`, and `mv` failed copying it (found by the non-root
/// random sequences, seed 3023).
#[test]
fn a_user_who_is_not_root_renames_their_read_only_directory_over_a_removed_lower_one() {
    require_root!();
    let s = Scratch::new("read-only-renamed");
    s.compared_layers(&["b/c"]);
    std::fs::write(s.p("lower/b/c/f"), "f\n").unwrap();
    s.give_to_nobody();
    let script = |root: &Path| {
        format!(
            r#"cd {} || exit
mkdir -p n/q && echo p > n/q/p; rm -rf b; chmod 500 n
mv -T n b; echo mv=$?
find . -printf '%p %y %m\n' | sort"#,
            root.display()
        )
    };
    let o = s.agrees_with_the_kernel_as_nobody(script);
    let seen = String::from_utf8_lossy(&o.stdout);
    assert!(
        seen.contains("mv=0\n") && seen.contains("./b/q/p f"),
        "{seen}{}",
        stderr(&o)
    );
}

/// A user who is not root removes directories of theirs that are empty
/// in the view but hold whiteouts, and whose modes deny them searching
/// (`444`, `600`), or moves a directory over one: the whiteouts must go
/// first, which needs both writing and searching; the kernel removes them
/// with the mounter's credentials. ovl let the owner write and not search,
/// and failed (found by the non-root random sequences, seed 3070: `find
/// -delete` after a `chmod 444` through a symlink).
#[test]
fn a_user_who_is_not_root_removes_their_unsearchable_directories_holding_whiteouts() {
    require_root!();
    let s = Scratch::new("unsearchable");
    s.compared_layers(&["d", "e", "f"]);
    for rel in ["d/g", "e/h", "f/i"] {
        std::fs::write(s.p(&format!("lower/{rel}")), "x\n").unwrap();
    }
    s.give_to_nobody();
    let script = |root: &Path| {
        format!(
            r#"cd {} || exit
rm d/g e/h f/i; chmod 444 d; chmod 600 e; chmod 444 f; mkdir n
rmdir d; echo d=$?; rmdir e; echo e=$?; mv -T n f; echo f=$?
find . -printf '%p %y %m\n' | sort"#,
            root.display()
        )
    };
    let o = s.agrees_with_the_kernel_as_nobody(script);
    let seen = String::from_utf8_lossy(&o.stdout);
    assert!(seen.contains("d=0\ne=0\nf=0\n"), "{seen}{}", stderr(&o));
}

/// A user who is not root moves (and links) lower objects into another
/// directory. Symlinks and fifos: their copies cannot hold their origins
/// (`user.` xattrs are refused on them) but the kernel, whose dentry still
/// knows the origin, marks the new parent impure; ovl lacked the marks. A
/// file: its copy keeps its inode number, as on the kernel, though its
/// origin cannot be opened by handle (`CAP_DAC_READ_SEARCH`); ovl showed
/// the copy's own, and its listing by `rmdir` took the mark off the
/// directory. The same output and upper layer as the kernel's.
#[test]
fn a_user_who_is_not_root_moves_lower_objects_numbered_and_marked_as_on_the_kernel() {
    require_root!();
    let s = Scratch::new("moved-links");
    s.compared_layers(&["d1", "d2", "d3"]);
    std::os::unix::fs::symlink("plain", s.p("lower/sl")).unwrap();
    std::os::unix::fs::symlink("../plain", s.p("lower/d3/sl3")).unwrap();
    let fifo = Command::new("mkfifo").arg(s.p("lower/ff")).status();
    assert!(fifo.unwrap().success());
    std::fs::write(s.p("lower/d3/file"), "file\n").unwrap();
    s.give_to_nobody();
    let script = |root: &Path| {
        format!(
            "cd {} && stat -c %i d3/file && mv sl d1/ && mv ff d2/ && ln -P d3/sl3 d1/hl \
             && mv d3/file d2/ && stat -c %i d2/file && ls -i d2 | grep file && ! rmdir d2 2>/dev/null \
             && find . -printf '%p %y\n' | sort",
            root.display()
        )
    };
    // The fifo's copy shows its own inode number (it has no origin), as
    // on the kernel once its dentry is gone: not listed.
    let o = s.agrees_with_the_kernel_as_nobody(script);
    assert!(o.status.success(), "{}", stderr(&o));
    let upper = common::dump::tree_dump(&s.p("upper"), &common::dump::DumpOpts::uppers());
    assert!(
        upper.contains("./d2 d mode=0755 uid=65534 gid=65534 xattrs={user.overlay.impure=\"y\"}"),
        "{upper}"
    );
}

/// A user who is not root reads the files of their own lower layer
/// without stamping their access times (the kernel grants `O_NOATIME` to
/// the owner); in a layer of another owner's, where it would be refused,
/// the overlay does not ask for it, and the reads go on as before.
#[test]
fn a_user_who_is_not_root_reads_their_own_lower_layer_unstamped() {
    require_root!();
    let s = Scratch::new("atime");
    s.dirs(&["upper", "work"]);
    let access_times = || {
        ["lower/plain", "lower/sub/file", "lower/sub"].map(|rel| {
            let st = rustix::fs::lstat(s.p(rel)).unwrap();
            (st.st_atime, st.st_atime_nsec)
        })
    };
    for owner in ["65534:65534", "0:0"] {
        let chown = Command::new("chown")
            .args(["-R", owner])
            .arg(&s.dir)
            .status();
        assert!(chown.unwrap().success());
        for d in ["upper", "work"] {
            let chown = Command::new("chown")
                .args(["-R", "65534:65534"])
                .arg(s.p(d))
                .status();
            assert!(chown.unwrap().success());
        }
        let aged = Command::new("find")
            .arg(s.p("lower"))
            .args(["-exec", "touch", "-a", "-h", "-d", "@978307200", "{}", "+"])
            .status();
        assert!(aged.unwrap().success());
        let before = access_times();
        let script = format!(
            "cd {} && cat plain sub/file && ls sub",
            s.p("lower").display()
        );
        let o = s.script_as_nobody(&script);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "not a program\nlower\nfile\n",
            "lower owned by {owner}: {}",
            stderr(&o)
        );
        if owner.starts_with("65534") {
            assert_eq!(
                access_times(),
                before,
                "a read stamped the user's own lower files"
            );
        }
    }
}

#[test]
fn trace_logs_calls_in_the_view() {
    let s = Scratch::new("trace");
    let trace = s.p("trace.log");
    let o = ovl(&[
        "-l".as_ref(),
        os(&s.p("lower")),
        "--trace".as_ref(),
        os(&trace),
        "--".as_ref(),
        "cat".as_ref(),
        os(&s.p("lower/sub/file")),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "lower\n",
        "{}",
        stderr(&o)
    );
    let log = std::fs::read_to_string(&trace).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains("sub/file") && l.contains("open")),
        "the trace names the call and the path: {log}"
    );
}

#[test]
fn mount_style_options_work_too() {
    let s = Scratch::new("mountopts");
    std::fs::create_dir_all(s.p("upper")).unwrap();
    std::fs::create_dir_all(s.p("work")).unwrap();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        s.p("lower").display(),
        s.p("upper").display(),
        s.p("work").display()
    );
    let script = format!(
        "echo new > {}/sub/made && cat {}/sub/made",
        s.p("lower").display(),
        s.p("lower").display()
    );
    let o = ovl(&[
        "-o".as_ref(),
        opts.as_ref(),
        "--".as_ref(),
        "sh".as_ref(),
        "-c".as_ref(),
        script.as_ref(),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "new\n",
        "{}",
        stderr(&o)
    );
    assert!(s.p("upper/sub/made").is_file(), "the new file is in upper");
    assert!(
        !s.p("lower/sub/made").exists(),
        "the lower layer never changes"
    );
}

/// The first word of each line of `ldd` output: the library names, without
/// the load addresses (which differ from run to run).
fn library_names(ldd_out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(ldd_out)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn ldd_runs_the_loader_in_the_view() {
    if Command::new("ldd").arg("/bin/true").output().is_err() {
        eprintln!("skipped: no ldd here");
        return;
    }
    let s = Scratch::new("ldd");
    // In the view (the target is the lower layer, in place) and outside it.
    std::fs::copy("/bin/true", s.p("lower/true")).unwrap();
    let in_view = s.p("lower/true");
    for prog in [Path::new("/bin/true"), in_view.as_path()] {
        let native = Command::new("ldd").arg(prog).output().unwrap();
        let o = ovl(&[
            "-l".as_ref(),
            os(&s.p("lower")),
            "--".as_ref(),
            "ldd".as_ref(),
            os(prog),
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "ldd {}: {}",
            prog.display(),
            stderr(&o)
        );
        assert_eq!(stderr(&o), "", "ldd {}", prog.display());
        // The shim is preloaded into every program in the view; ldd lists it.
        let mut names = library_names(&o.stdout);
        names.retain(|n| !n.ends_with("/libovl_shim.so"));
        assert_eq!(
            names,
            library_names(&native.stdout),
            "ldd {}",
            prog.display()
        );
    }
}

/// Gives `prog` a file capability; false (after saying why) when this
/// system cannot: not root, no setcap, or a filesystem without them.
fn set_capability(prog: &Path) -> bool {
    if !is_root() {
        eprintln!("skipped: needs root to give a program a file capability");
        return false;
    }
    let set = Command::new("setcap")
        .arg("cap_net_raw+ep")
        .arg(prog)
        .output();
    match set {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!("skipped: setcap failed here: {}", stderr(&o));
            false
        }
        Err(e) => {
            eprintln!("skipped: cannot run setcap (package libcap2-bin): {e}");
            false
        }
    }
}

/// True when `dir` is on a `nosuid` mount, where file capabilities do nothing.
fn on_nosuid_mount(dir: &Path) -> bool {
    rustix::fs::statvfs(dir).is_ok_and(|s| s.f_flag.contains(rustix::fs::StatVfsMountFlags::NOSUID))
}

/// ovl-exec run as `nobody`: file capabilities put only an unprivileged
/// user's programs in secure mode (root holds every capability already).
fn ovl_as_nobody(args: &[&std::ffi::OsStr]) -> Output {
    use std::os::unix::process::CommandExt;
    Command::new(ovl_exec())
        .args(args)
        .env("OVL_SHIM", shim())
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap()
}

#[test]
fn programs_with_file_capabilities_are_refused_also_from_inside_the_view() {
    let s = Scratch::new("caps");
    if on_nosuid_mount(&s.dir) {
        eprintln!("skipped: {} is on a nosuid mount", s.dir.display());
        return;
    }
    let prog = s.p("lower/cap-true");
    std::fs::copy("/bin/true", &prog).unwrap();
    if !set_capability(&prog) {
        return;
    }
    let lower = s.p("lower");
    // Started by ovl-exec itself: 126 and one line.
    let o = ovl_as_nobody(&["-l".as_ref(), os(&lower), "--".as_ref(), os(&prog)]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    let expected = format!(
        "ovl-exec: {}: file capabilities: the dynamic loader ignores LD_PRELOAD",
        prog.display()
    );
    assert!(stderr(&o).starts_with(&expected), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    // Started by a shell in the view (the shim's execve): EPERM, one line
    // from the overlay, then the shell's own.
    let script = "\"$0\"; echo status=$?";
    let o = ovl_as_nobody(&[
        "-l".as_ref(),
        os(&lower),
        "--".as_ref(),
        "sh".as_ref(),
        "-c".as_ref(),
        script.as_ref(),
        os(&prog),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "status=126\n",
        "{}",
        stderr(&o)
    );
    let err = stderr(&o);
    let ours: Vec<&str> = err.lines().filter(|l| l.starts_with("ovl: ")).collect();
    let expected = format!(
        "ovl: refusing to run {}: file capabilities:",
        prog.display()
    );
    assert_eq!(ours.len(), 1, "{err}");
    assert!(ours[0].starts_with(&expected), "{err}");
    assert!(
        err.contains("Operation not permitted"),
        "EPERM expected: {err}"
    );
}

/// The shim preloaded by hand (no launcher) with `vars` and nothing else of
/// the overlay's: runs `sh -c script`.
fn with_shim_alone(vars: &[(&str, &Path)], script: &str) -> Output {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]).env("LD_PRELOAD", shim());
    for (k, _) in std::env::vars_os().filter(|(k, _)| k.to_string_lossy().starts_with("OVL_")) {
        cmd.env_remove(k);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// The shim reads its own variables by their exact names (not `XOVL_…`,
/// `OVL_LOWE` or `OVL_…X`), and an incomplete set stops the program with a message
/// naming what is wrong, before it runs.
#[test]
fn the_shim_alone_reads_its_variables_by_name_and_refuses_an_incomplete_set() {
    let s = Scratch::new("shimvars");
    for d in ["upper", "work"] {
        std::fs::create_dir_all(s.p(d)).unwrap();
    }
    let (lower, upper, work) = (s.p("lower"), s.p("upper"), s.p("work"));
    let nowhere = Path::new("/nonexistent/ovl");
    let view = [
        ("OVL_LOWER", lower.as_path()),
        ("OVL_UPPER", upper.as_path()),
        ("OVL_WORK", work.as_path()),
        ("XOVL_LOWER", nowhere),
        ("OVL_LOWE", nowhere),
        ("OVL_LOWERX", nowhere),
        ("OVL_UPPER_", nowhere),
    ];
    let run = with_shim_alone(
        &view,
        &format!(
            "cd {} && cat sub/file && echo new > sub/new && cat sub/new",
            lower.display()
        ),
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "lower\nnew\n",
        "{}",
        stderr(&run)
    );
    assert_eq!(
        std::fs::read_to_string(upper.join("sub/new")).unwrap(),
        "new\n"
    );
    assert!(
        !lower.join("sub/new").exists(),
        "the write reached the lower layer"
    );

    let no_work = with_shim_alone(&view[..2], "echo ran");
    assert_eq!(no_work.status.code(), Some(125), "{}", stderr(&no_work));
    assert_eq!(String::from_utf8_lossy(&no_work.stdout), "");
    assert!(
        stderr(&no_work).contains("OVL_UPPER is set but OVL_WORK is not"),
        "{}",
        stderr(&no_work)
    );

    let empty = with_shim_alone(&[("OVL_LOWER", Path::new(":"))], "echo ran");
    assert_eq!(empty.status.code(), Some(125), "{}", stderr(&empty));
    assert!(
        stderr(&empty).contains("OVL_LOWER names no directory"),
        "{}",
        stderr(&empty)
    );
}

/// A relative lower layer, from a directory the shell entered through a
/// symlink (`PWD` spelled through it): the view answers by the shell's
/// spelling too, so paths the caller built from `$PWD` reach it. A `PWD`
/// that names another directory is not taken.
#[test]
fn a_relative_layer_is_named_as_the_shell_spells_the_directory() {
    let s = Scratch::new("pwd-alias");
    std::os::unix::fs::symlink(s.p("lower"), s.p("link")).unwrap();
    let run = |pwd: &Path| {
        Command::new(ovl_exec())
            .args(["-l", ".", "-u"])
            .arg(s.p("upper"))
            .arg("-w")
            .arg(s.p("work"))
            .args(["--", "sh", "-c"])
            .arg(format!(
                "echo made > new; cat {link}/new {link}/sub/file; ls {link} | tr '\\n' ' '; \
                 rm {link}/new; ls {link}/new 2>&1 | sed 's/.*: //'; env | grep OVL_TARGET_ALIAS",
                link = s.p("link").display()
            ))
            .current_dir(s.p("lower"))
            .env("PWD", pwd)
            .env("OVL_SHIM", shim())
            .output()
            .unwrap()
    };
    for d in ["upper", "work"] {
        std::fs::create_dir(s.p(d)).unwrap();
    }
    let o = run(&s.p("link"));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!(
            "made\nlower\nnew plain sub tool.sh No such file or directory\nOVL_TARGET_ALIAS={}\n",
            s.p("link").display()
        ),
        "stderr: {}",
        stderr(&o)
    );
    // A stale `PWD` (another directory) is no spelling of the layer.
    let o = run(&s.p("upper"));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("OVL_TARGET_ALIAS"), "{out}");
    assert!(!s.p("lower/new").exists(), "the lower layer changed");
}

/// Views do not nest: `ovl-exec` started in a view is refused (a static
/// one by the shim, as every statically linked program; a dynamic one by
/// itself, seeing the view it runs in), and the layers it was given stay
/// as they were. Given the environment of a view by hand, it refuses too.
#[test]
fn ovl_exec_is_refused_inside_a_view() {
    let s = Scratch::new("nest");
    for d in ["upper", "work", "inner", "inner-upper"] {
        std::fs::create_dir(s.p(d)).unwrap();
    }
    let inner = format!(
        "{} -l {} -u {} -- sh -c 'echo new > {}/new'; echo status $?",
        ovl_exec().display(),
        s.p("inner").display(),
        s.p("inner-upper").display(),
        s.p("inner").display()
    );
    let o = ovl(&[
        os(Path::new("-l")),
        os(&s.p("lower")),
        os(Path::new("-u")),
        os(&s.p("upper")),
        os(Path::new("-w")),
        os(&s.p("work")),
        os(Path::new("--")),
        os(Path::new("sh")),
        os(Path::new("-c")),
        std::ffi::OsStr::new(&inner),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("status 126") || out.contains("status 125"),
        "{out}{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("statically linked") || stderr(&o).contains("views do not nest"),
        "{}",
        stderr(&o)
    );
    assert!(
        !s.p("inner/new").exists(),
        "a layer given to the inner ovl-exec changed"
    );
    let o = Command::new(ovl_exec())
        .args(["-l"])
        .arg(s.p("inner"))
        .args(["--", "true"])
        .env("OVL_LOWER", s.p("lower"))
        .env("LD_PRELOAD", shim())
        .env("OVL_SHIM", shim())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "views do not nest: this runs in the view at {} already",
            s.p("lower").display()
        )),
        "{}",
        stderr(&o)
    );
}
