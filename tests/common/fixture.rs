//! `Fixture`: a temporary directory with lower layers, an upper layer, a work
//! directory and a mount point, and `Layer`, the builder that puts files,
//! directories, links, special files, xattrs, whiteouts and opaque marks
//! into one layer.

use super::dump::{tree_dump, DumpOpts};
use super::mount::{self, KernelMount};
use super::run::{self, Outcome};
use std::fs;
use std::os::unix::fs::{lchown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};

/// Prefix of every fixture directory in the temporary directory; followed by
/// the test process id, so leftovers of killed runs can be recognised.
const DIR_PREFIX: &str = "ovl-test-";

/// Environment variable: keep fixture directories after the test (their path
/// is printed), to look at what a failing test left behind.
pub const KEEP_ENV: &str = "OVL_TEST_KEEP";

/// Environment variable: where fixture directories are made (default: the
/// system temporary directory). Must support `trusted.*` xattrs, mknod and
/// be usable as overlayfs upper (ext4, xfs, btrfs, tmpfs).
pub const TMPDIR_ENV: &str = "OVL_TEST_TMPDIR";

/// The namespace of an overlay xattr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ns {
    /// `trusted.overlay.*`: what the kernel reads by default (root only).
    Trusted,
    /// `user.overlay.*`: what the kernel reads with the `userxattr` option.
    User,
}

impl Ns {
    /// `trusted.overlay.` or `user.overlay.`.
    pub fn prefix(self) -> &'static str {
        match self {
            Ns::Trusted => "trusted.overlay.",
            Ns::User => "user.overlay.",
        }
    }
}

/// How the directory holding xattr whiteouts is marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XwhiteoutMark {
    /// `<ns>.overlay.opaque=x`: what kernels since 6.7.y/6.8 look for (and
    /// honour in lower layers).
    OpaqueX,
    /// `<ns>.overlay.whiteouts` (empty value): the 6.7.0 form, which today's
    /// kernel no longer recognises.
    Whiteouts,
}

/// The temporary directory of a fixture and of all its clones; removed
/// (after unmounting anything left inside) when the last of them is dropped.
struct TempRoot {
    path: PathBuf,
    sets: AtomicUsize,
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        mount::unmount_all_under(&self.path);
        if std::env::var_os(KEEP_ENV).is_some() {
            eprintln!("fixture kept: {}", self.path.display());
        } else if let Err(e) = fs::remove_dir_all(&self.path) {
            eprintln!("could not remove fixture {}: {e}", self.path.display());
        }
    }
}

/// Lower layers `lower1` (topmost) … `lowerN`, optionally `upper` and `work`,
/// all in one directory (a "set"); the mount point `mnt` and a `home`
/// directory (the runs' `$HOME`) are shared by every clone of the fixture,
/// so the kernel run and the ovl run see the same absolute paths.
///
/// ```text
/// /tmp/ovl-test-<pid>-<n>-<test name>/
///     layers/lower1 … lowerN, upper, work     the fixture
///     kernel/…, ovl/…, copy3/…                its clones
///     mnt/                                    where the view appears
///     home/                                   $HOME of the runs
/// ```
pub struct Fixture {
    root: Arc<TempRoot>,
    set: PathBuf,
    lowers: usize,
    upper: bool,
    kernel_opts: Vec<String>,
    ovl_args: Vec<String>,
    /// The mount point as `ovl-exec` is told it, when not by its real path.
    target_spelling: Option<PathBuf>,
    /// Who runs the commands ([`Fixture::run_as`]); root when `None`.
    user: Option<u32>,
    /// The view over the topmost lower layer itself ([`Fixture::in_place`]).
    in_place: bool,
}

impl Fixture {
    /// `lowers` empty lower layers with an empty upper layer and work dir.
    pub fn new(lowers: usize) -> Fixture {
        Fixture::create(lowers, true)
    }

    /// `lowers` empty lower layers and no upper: a read-only overlay. The
    /// kernel mounts such an overlay only over two or more lower layers.
    pub fn read_only(lowers: usize) -> Fixture {
        Fixture::create(lowers, false)
    }

    fn create(lowers: usize, upper: bool) -> Fixture {
        assert!(lowers >= 1, "a fixture needs at least one lower layer");
        let base = temp_base();
        static SWEEP: Once = Once::new();
        SWEEP.call_once(|| mount::sweep_stale(&base, DIR_PREFIX));
        let root = make_temp_root(&base);
        for dir in ["mnt", "home"] {
            make_dir(&root.path.join(dir));
        }
        let fx = Fixture {
            set: root.path.join("layers"),
            root: Arc::new(root),
            lowers,
            upper,
            kernel_opts: Vec::new(),
            ovl_args: Vec::new(),
            target_spelling: None,
            user: None,
            in_place: false,
        };
        fx.make_layer_dirs();
        fx
    }

    fn make_layer_dirs(&self) {
        make_dir(&self.set);
        for n in 1..=self.lowers {
            make_dir(&self.lower_dir(n));
        }
        if self.upper {
            make_dir(&self.set.join("upper"));
            make_dir(&self.set.join("work"));
        }
    }

    /// Adds a mount option for the kernel run (for example `userxattr`, to
    /// make the kernel read `user.overlay.*` instead of `trusted.overlay.*`).
    pub fn kernel_option(mut self, opt: &str) -> Fixture {
        self.kernel_opts.push(opt.to_string());
        self
    }

    /// Runs every command as the user `uid` (group `uid`), who owns the
    /// layers, the mount point and the home of every pair made from here
    /// on; the kernel mounts with `userxattr`, as for such a user (and, run
    /// by root, makes its whiteouts root's).
    pub fn run_as(mut self, uid: u32) -> Fixture {
        self.user = Some(uid);
        self.kernel_option("userxattr")
    }

    /// Who runs the commands: `Some(uid)` after [`Fixture::run_as`].
    pub fn user(&self) -> Option<u32> {
        self.user
    }

    /// Gives the layers of this fixture, its mount point and its home to
    /// the user it runs as (see [`Fixture::run_as`]).
    pub fn give_to_user(&self) {
        let Some(uid) = self.user else { return };
        let owner = format!("{uid}:{uid}");
        let chown = Command::new("chown")
            .args(["-R", &owner])
            .arg(&self.set)
            .arg(self.mnt())
            .arg(self.home())
            .status();
        assert!(
            chown.is_ok_and(|s| s.success()),
            "chown -R {owner} {}",
            self.set.display()
        );
    }

    /// Adds arguments for `ovl-exec` in the ovl run, before `--` (for
    /// example `["--whiteout", "seed"]`).
    pub fn ovl_args(mut self, args: &[&str]) -> Fixture {
        self.ovl_args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Makes `link`, a symbolic link beside the mount point to `to`, and
    /// gives `ovl-exec` the mount point as `<root>/<link>/<rest>` (without
    /// `/<rest>` when `rest` is empty), as a user may name a directory by a
    /// path through symlinks. Returns that spelling.
    pub fn spell_target(mut self, link: &str, to: &str, rest: &str) -> (Fixture, PathBuf) {
        let at = self.root.path.join(link);
        symlink(to, &at).expect("symlink beside the mount point");
        let spelled = if rest.is_empty() { at } else { at.join(rest) };
        self.target_spelling = Some(spelled.clone());
        (self, spelled)
    }

    /// The mount point as `ovl-exec` is told it: [`Fixture::mnt`], or the
    /// spelling [`Fixture::spell_target`] chose.
    pub fn ovl_target(&self) -> PathBuf {
        self.target_spelling.clone().unwrap_or_else(|| self.mnt())
    }

    /// Number of lower layers.
    pub fn lower_count(&self) -> usize {
        self.lowers
    }

    /// True when the fixture has an upper layer (the overlay is writable).
    pub fn has_upper(&self) -> bool {
        self.upper
    }

    /// Lower layer `n`, 1-based, 1 = topmost.
    pub fn lower_dir(&self, n: usize) -> PathBuf {
        assert!(
            (1..=self.lowers).contains(&n),
            "lower layer {n} does not exist: the fixture has lower1..lower{}",
            self.lowers
        );
        self.set.join(format!("lower{n}"))
    }

    /// All lower layers, topmost first.
    pub fn lower_dirs(&self) -> Vec<PathBuf> {
        (1..=self.lowers).map(|n| self.lower_dir(n)).collect()
    }

    /// The upper layer. Panics for a read-only fixture.
    pub fn upper_dir(&self) -> PathBuf {
        assert!(
            self.upper,
            "this fixture is read-only: it has no upper layer"
        );
        self.set.join("upper")
    }

    /// The work directory. Panics for a read-only fixture.
    pub fn work_dir(&self) -> PathBuf {
        assert!(
            self.upper,
            "this fixture is read-only: it has no work directory"
        );
        self.set.join("work")
    }

    /// Makes the view appear over the topmost lower layer itself, as
    /// `ovl-exec` shows it by default: the kernel mounts over that
    /// directory, ovl is given it as its target.
    pub fn in_place(mut self) -> Fixture {
        self.in_place = true;
        self
    }

    /// Where the merged view appears (kernel mount point and ovl target).
    pub fn mnt(&self) -> PathBuf {
        if self.in_place {
            return self.lower_dir(1);
        }
        self.root.path.join("mnt")
    }

    /// `$HOME` of the runs: an empty directory shared by all clones.
    pub fn home(&self) -> PathBuf {
        self.root.path.join("home")
    }

    /// The names beside the mount point (in the directory above it), which
    /// a script reaches through a symbolic link out of the view (`../x`).
    pub fn beside_view(&self) -> Vec<std::ffi::OsString> {
        let mut names: Vec<_> = fs::read_dir(&self.root.path)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.file_name())).collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Removes what was made beside the mount point since `before` (see
    /// [`Fixture::beside_view`]): a run that wrote there through a link out
    /// of the view would otherwise leave it to the next run.
    pub fn forget_beside_view(&self, before: &[std::ffi::OsString]) {
        for name in self.beside_view() {
            if before.binary_search(&name).is_err() {
                let path = self.root.path.join(&name);
                let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
            }
        }
    }

    /// The directory holding this fixture's layers (written as `$LAYERS` in
    /// normalised outputs).
    pub fn layers_dir(&self) -> &Path {
        &self.set
    }

    /// The temporary directory shared with the clones (written as `$ROOT`
    /// in normalised outputs).
    pub fn root_dir(&self) -> &Path {
        &self.root.path
    }

    /// Extra kernel mount options.
    pub fn kernel_opts(&self) -> &[String] {
        &self.kernel_opts
    }

    /// Extra `ovl-exec` arguments.
    pub fn extra_ovl_args(&self) -> &[String] {
        &self.ovl_args
    }

    /// Builder for lower layer `n` (1 = topmost).
    pub fn lower(&self, n: usize) -> Layer {
        Layer {
            dir: self.lower_dir(n),
        }
    }

    /// Builder for the upper layer.
    pub fn upper(&self) -> Layer {
        Layer {
            dir: self.upper_dir(),
        }
    }

    /// Mounts the kernel's overlay over this fixture, runs `script` with
    /// `sh -c` in it (cwd = mount point), and unmounts: whiteouts, opaque
    /// directories and copy-ups land in upper exactly as the kernel writes
    /// them. Panics (with the script's output) when the script fails.
    pub fn kernel_prepare(&self, script: &str) -> Outcome {
        assert!(
            self.upper,
            "kernel_prepare needs an upper layer: use Fixture::new, or prepare before Fixture::stacked"
        );
        let out = run::run_kernel(self, script);
        if out.code != 0 {
            panic!("kernel_prepare: the script failed under the kernel's overlay\n{out}");
        }
        out
    }

    /// The kernel mount options for this fixture.
    pub fn kernel_mount_options(&self) -> String {
        let lowers: Vec<String> = self
            .lower_dirs()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let mut opts = vec![format!("lowerdir={}", lowers.join(":"))];
        if self.upper {
            opts.push(format!("upperdir={}", self.upper_dir().display()));
            opts.push(format!("workdir={}", self.work_dir().display()));
        } else {
            assert!(
                self.lowers >= 2,
                "the kernel mounts an overlay without upper only over two or more lower layers: use Fixture::read_only(2) or more"
            );
        }
        opts.extend(self.kernel_opts.iter().cloned());
        opts.join(",")
    }

    /// Mounts the kernel's overlay at `mnt` until the guard is dropped.
    pub fn mount_kernel(&self) -> KernelMount {
        KernelMount::mount(&self.kernel_mount_options(), &self.mnt())
    }

    /// A second fixture with identical layers (`cp -a`: modes, owners,
    /// times, hard links, special files, all xattrs), a fresh empty work
    /// directory, and the same mount point, options and arguments.
    pub fn clone_layers(&self) -> Fixture {
        let n = self.root.sets.fetch_add(1, Ordering::Relaxed) + 1;
        self.clone_as(&format!("copy{n}"))
    }

    /// `clone_layers` into the set directory `name` (must be unused).
    pub fn clone_as(&self, name: &str) -> Fixture {
        let clone = self.sibling(name, self.lowers, self.upper);
        for n in 1..=self.lowers {
            copy_tree(&self.lower_dir(n), &clone.lower_dir(n));
        }
        if self.upper {
            copy_tree(&self.upper_dir(), &clone.upper_dir());
            make_dir(&clone.work_dir());
        }
        clone
    }

    /// A fixture whose topmost lower layer is a copy of this fixture's
    /// upper, above copies of its lowers: what the kernel wrote into upper
    /// (whiteouts, opaque dirs) becomes a lower layer. With `with_upper`, a
    /// fresh empty upper and work dir; without, a read-only overlay.
    pub fn stacked(&self, with_upper: bool) -> Fixture {
        let n = self.root.sets.fetch_add(1, Ordering::Relaxed) + 1;
        let stack = self.sibling(&format!("stack{n}"), self.lowers + 1, with_upper);
        copy_tree(&self.upper_dir(), &stack.lower_dir(1));
        for k in 1..=self.lowers {
            copy_tree(&self.lower_dir(k), &stack.lower_dir(k + 1));
        }
        if with_upper {
            make_dir(&stack.upper_dir());
            make_dir(&stack.work_dir());
        }
        stack
    }

    /// An empty set `name` next to this one, sharing root, options and args.
    fn sibling(&self, name: &str, lowers: usize, upper: bool) -> Fixture {
        let set = self.root.path.join(name);
        assert!(
            !set.exists(),
            "fixture set {} already exists",
            set.display()
        );
        make_dir(&set);
        Fixture {
            root: Arc::clone(&self.root),
            set,
            lowers,
            upper,
            kernel_opts: self.kernel_opts.clone(),
            ovl_args: self.ovl_args.clone(),
            target_spelling: self.target_spelling.clone(),
            user: self.user,
            in_place: self.in_place,
        }
    }

    /// An exact dump of every lower layer (contents, xattrs, mtimes, ctimes,
    /// inode numbers) to give to `assert_lowers_unchanged` later.
    pub fn snapshot_lowers(&self) -> String {
        let mut out = String::new();
        for (i, dir) in self.lower_dirs().iter().enumerate() {
            out += &format!("== lower{}\n", i + 1);
            out += &tree_dump(dir, &DumpOpts::exact());
        }
        out
    }

    /// Panics with a diff when a lower layer differs from `snapshot` in
    /// anything (a byte, an xattr, a time, an inode): the lower layers must
    /// never change.
    pub fn assert_lowers_unchanged(&self, snapshot: &str) {
        let now = self.snapshot_lowers();
        if now != snapshot {
            panic!(
                "a lower layer changed; lower layers must never change (- before, + after):\n{}",
                super::diff::line_diff(snapshot, &now)
            );
        }
    }
}

/// Builds the contents of one layer directory. Paths are relative to the
/// layer; missing parent directories are made (mode 0755). Every method
/// panics with the path when the change cannot be made, and returns `&Self`
/// so calls chain.
pub struct Layer {
    dir: PathBuf,
}

impl Layer {
    /// The layer's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The real path of `rel` in this layer.
    pub fn at(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// A regular file, mode 0644.
    pub fn file(&self, rel: &str, content: impl AsRef<[u8]>) -> &Self {
        self.file_mode(rel, content, 0o644)
    }

    /// An executable regular file, mode 0755.
    pub fn exe(&self, rel: &str, content: impl AsRef<[u8]>) -> &Self {
        self.file_mode(rel, content, 0o755)
    }

    /// A regular file with the given mode (set exactly, whatever the umask).
    pub fn file_mode(&self, rel: &str, content: impl AsRef<[u8]>, mode: u32) -> &Self {
        let path = self.prepare(rel);
        fs::write(&path, content)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        self.chmod(rel, mode)
    }

    /// A directory (and its parents), mode 0755.
    pub fn dir(&self, rel: &str) -> &Self {
        make_dir(&self.prepare(rel));
        self
    }

    /// A symbolic link `rel` -> `target` (the target is not checked).
    pub fn symlink(&self, rel: &str, target: &str) -> &Self {
        let path = self.prepare(rel);
        symlink(target, &path)
            .unwrap_or_else(|e| panic!("cannot make symlink {}: {e}", path.display()));
        self
    }

    /// A hard link `rel` to the existing `existing` of the same layer.
    pub fn hardlink(&self, rel: &str, existing: &str) -> &Self {
        let path = self.prepare(rel);
        fs::hard_link(self.at(existing), &path)
            .unwrap_or_else(|e| panic!("cannot link {} to {existing}: {e}", path.display()));
        self
    }

    /// A fifo, mode 0644.
    pub fn fifo(&self, rel: &str) -> &Self {
        self.mknod(rel, rustix::fs::FileType::Fifo, 0o644, 0)
    }

    /// A character device (root only), mode 0644.
    pub fn chardev(&self, rel: &str, major: u32, minor: u32) -> &Self {
        let dev = rustix::fs::makedev(major, minor);
        self.mknod(rel, rustix::fs::FileType::CharacterDevice, 0o644, dev)
    }

    fn mknod(&self, rel: &str, ft: rustix::fs::FileType, mode: u32, dev: u64) -> &Self {
        let path = self.prepare(rel);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &path,
            ft,
            rustix::fs::Mode::from_raw_mode(mode),
            dev,
        )
        .unwrap_or_else(|e| panic!("cannot mknod {}: {e}", path.display()));
        self.chmod(rel, mode)
    }

    /// Sets the mode (not through symlinks: symlinks have no mode).
    pub fn chmod(&self, rel: &str, mode: u32) -> &Self {
        let path = self.at(rel);
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
        self
    }

    /// Sets owner and group, not following a final symlink (root only).
    pub fn chown(&self, rel: &str, uid: u32, gid: u32) -> &Self {
        let path = self.at(rel);
        lchown(&path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("cannot chown {}: {e}", path.display()));
        self
    }

    /// Sets access and modification time to `secs`.`nsecs` since the epoch,
    /// not following a final symlink. Set a directory's time after filling it.
    pub fn mtime(&self, rel: &str, secs: i64, nsecs: i64) -> &Self {
        let path = self.at(rel);
        let t = rustix::fs::Timespec {
            tv_sec: secs,
            tv_nsec: nsecs as _,
        };
        let times = rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            &path,
            &times,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap_or_else(|e| panic!("cannot set times of {}: {e}", path.display()));
        self
    }

    /// Sets xattr `name` (full name, for example `user.color` or
    /// `trusted.overlay.opaque`) on `rel`, not following a final symlink.
    /// `user.*` cannot be set on symlinks (the kernel refuses).
    pub fn xattr(&self, rel: &str, name: &str, value: impl AsRef<[u8]>) -> &Self {
        let path = self.at(rel);
        rustix::fs::lsetxattr(&path, name, value.as_ref(), rustix::fs::XattrFlags::empty())
            .unwrap_or_else(|e| panic!("cannot set xattr {name} on {}: {e}", path.display()));
        self
    }

    /// A whiteout as the kernel writes it: a character device 0/0 (mode 0000
    /// as the kernel makes it).
    pub fn whiteout(&self, rel: &str) -> &Self {
        self.mknod(rel, rustix::fs::FileType::CharacterDevice, 0, 0)
    }

    /// An opaque directory: makes `rel` (and parents) and sets
    /// `<ns>.overlay.opaque=y`.
    pub fn opaque(&self, rel: &str, ns: Ns) -> &Self {
        self.dir(rel);
        self.xattr(rel, &format!("{}opaque", ns.prefix()), "y")
    }

    /// The seed's whiteout: a symlink to `(overlay-whiteout)` carrying
    /// `<ns>.overlay.whiteout=y`. The kernel does not read this format.
    /// (`Ns::User` fails: the kernel allows no `user.*` xattr on symlinks.)
    pub fn seed_whiteout(&self, rel: &str, ns: Ns) -> &Self {
        self.symlink(rel, "(overlay-whiteout)");
        self.xattr(rel, &format!("{}whiteout", ns.prefix()), "y")
    }

    /// The kernel's xattr whiteout (Linux 6.7+): an empty regular file with
    /// `<ns>.overlay.whiteout=y`, its parent directory marked as holding
    /// such whiteouts. Today's kernel honours it in lower layers, with
    /// `XwhiteoutMark::OpaqueX`.
    pub fn xattr_whiteout(&self, rel: &str, ns: Ns, mark: XwhiteoutMark) -> &Self {
        self.file_mode(rel, "", 0o644);
        self.xattr(rel, &format!("{}whiteout", ns.prefix()), "y");
        let parent = parent_of(rel);
        match mark {
            XwhiteoutMark::OpaqueX => self.xattr(parent, &format!("{}opaque", ns.prefix()), "x"),
            XwhiteoutMark::Whiteouts => {
                self.xattr(parent, &format!("{}whiteouts", ns.prefix()), "")
            }
        }
    }

    /// Makes the parents of `rel` and returns its real path.
    fn prepare(&self, rel: &str) -> PathBuf {
        let path = self.at(rel);
        if let Some(parent) = path.parent() {
            make_dir(parent);
        }
        path
    }
}

/// The layer-relative parent of `rel` (`.` at the top).
fn parent_of(rel: &str) -> &str {
    match rel.trim_end_matches('/').rsplit_once('/') {
        Some((parent, _)) if !parent.is_empty() => parent,
        _ => ".",
    }
}

/// `mkdir -p`, with every new directory's mode 0755 whatever the umask.
fn make_dir(path: &Path) {
    if path.is_dir() {
        return;
    }
    if let Some(parent) = path.parent() {
        make_dir(parent);
    }
    fs::create_dir(path)
        .unwrap_or_else(|e| panic!("cannot make directory {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
}

/// Copies the contents of `src` into the existing empty `dst` and gives
/// `dst` the mode, owner, times and xattrs of `src` (`cp -a`).
fn copy_tree(src: &Path, dst: &Path) {
    let status = Command::new("cp")
        .args(["-a", "--preserve=all", "-T"])
        .arg(src)
        .arg(dst)
        .status()
        .unwrap_or_else(|e| panic!("cannot run cp: {e}"));
    assert!(
        status.success(),
        "cp -a {} {} failed",
        src.display(),
        dst.display()
    );
}

/// Where fixture directories are made.
fn temp_base() -> PathBuf {
    std::env::var_os(TMPDIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

/// A new directory `<base>/ovl-test-<pid>-<n>-<test name>`.
fn make_temp_root(base: &Path) -> TempRoot {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name: String = std::thread::current()
        .name()
        .unwrap_or("fixture")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(48)
        .collect();
    let path = base.join(format!("{DIR_PREFIX}{}-{n}-{name}", std::process::id()));
    if path.exists() {
        mount::unmount_all_under(&path);
        let _ = fs::remove_dir_all(&path);
    }
    make_dir(&path);
    TempRoot {
        path,
        sets: AtomicUsize::new(0),
    }
}
