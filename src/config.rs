//! The overlay's configuration: which directories make it up, and how it is
//! handed from `ovl-exec` to the shim (and from the shim to every child) through
//! the environment.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Environment variables that describe an overlay. `ovl-exec` sets them; a
/// user may set them by hand together with `LD_PRELOAD`.
pub mod env {
    /// Lower directories, topmost first, separated by `:`.
    pub const LOWER: &str = "OVL_LOWER";
    /// Upper directory. Absent: the overlay is read-only.
    pub const UPPER: &str = "OVL_UPPER";
    /// Work directory (same filesystem as upper, outside it).
    pub const WORK: &str = "OVL_WORK";
    /// Where the merged view appears. Default: the topmost lower directory.
    pub const TARGET: &str = "OVL_TARGET";
    /// The target as the user spelled it, through symlinks, when that
    /// differs from its real path: names under it reach the view too, as
    /// they would a mount there (the kernel resolves the mount point once).
    pub const TARGET_ALIAS: &str = "OVL_TARGET_ALIAS";
    /// Trace file: every intercepted call is appended to it (`-` or `stderr`: standard error).
    pub const TRACE: &str = "OVL_TRACE";
    /// On-disk format of whiteouts: `kernel` (char device 0/0, default) or `seed`
    /// (symlink to `(overlay-whiteout)` with the `overlay.whiteout` xattr).
    pub const WHITEOUT: &str = "OVL_WHITEOUT";
    /// Namespace of the overlay's own xattrs: `trusted` or `user`. Default:
    /// `trusted` when the process may read and write it (`CAP_SYS_ADMIN` in
    /// the initial user namespace: root, but not root in a container that
    /// lacks it), else `user`.
    pub const XATTR: &str = "OVL_XATTR";
    /// Absolute path of the shim, so it can be put back into children that
    /// were started with a fresh environment.
    pub const SHIM: &str = "OVL_SHIM";
    /// The `LD_LIBRARY_PATH` a child was given, while its loader reads the
    /// real one (see `library_path`); the shim puts it back before `main`.
    pub const LIBRARY_PATH_AS_GIVEN: &str = "OVL_LD_LIBRARY_PATH";
    /// Set when a child was given no `LD_LIBRARY_PATH` but its loader reads
    /// one (directories its own search path names in the view); the shim
    /// removes both before `main`.
    pub const LIBRARY_PATH_UNSET: &str = "OVL_LD_LIBRARY_PATH_UNSET";
    /// Set for a program run under another name than it was called by (an
    /// interpreter in a `#!` script's stead, a link's target: see
    /// `exec::Plan::name`): the name the kernel would have given the
    /// process; the shim names the process so and removes the variable
    /// before `main`.
    pub const PROCESS_NAME: &str = "OVL_PROCESS_NAME";
    /// Set for a child started in a removed directory of the view (whose
    /// path nothing can read back: the kernel's link names the upper
    /// directory's removed copy): `dev:ino:path`, the real directory's
    /// device and inode numbers and its path in the view. The shim takes
    /// it before `main`.
    pub const REMOVED_CWD: &str = "OVL_REMOVED_CWD";
    /// Set for a child started while this process's core dumps are held
    /// off (see `core_dump`): the soft `RLIMIT_CORE` the program set. The
    /// shim takes it before `main`.
    pub const CORE_LIMIT: &str = "OVL_CORE_LIMIT";
    /// Every variable that belongs to the overlay's description.
    pub const ALL: [&str; 9] = [
        LOWER,
        UPPER,
        WORK,
        TARGET,
        TARGET_ALIAS,
        TRACE,
        WHITEOUT,
        XATTR,
        SHIM,
    ];

    /// A variable the shim takes before `main`: its value, and the variable
    /// gone (removed only when set: removing takes the environment's write
    /// lock and scans it, at every start).
    pub fn take(name: &str) -> Option<std::ffi::OsString> {
        let value = std::env::var_os(name)?;
        std::env::remove_var(name);
        Some(value)
    }

    /// Is the environment entry `e` (`NAME=value`) one of `name`?
    pub fn is_entry(e: &[u8], name: &str) -> bool {
        e.strip_prefix(name.as_bytes())
            .is_some_and(|rest| rest.starts_with(b"="))
    }
}

/// How whiteouts are written (all formats are always read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhiteoutFormat {
    /// A character device 0/0, as the kernel writes it today.
    CharDev,
    /// A symlink to `(overlay-whiteout)` with `<ns>.overlay.whiteout=y`, as the seed.
    SeedSymlink,
}

/// Which xattr namespace the overlay's own attributes are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XattrNs {
    Trusted,
    User,
}

impl XattrNs {
    pub fn prefix(self) -> &'static str {
        match self {
            XattrNs::Trusted => "trusted.overlay.",
            XattrNs::User => "user.overlay.",
        }
    }
}

/// A complete, validated description of one overlay.
#[derive(Clone, Debug)]
pub struct Config {
    /// Lower layers, topmost first; absolute and canonical.
    pub lower: Vec<PathBuf>,
    /// Upper layer; `None` for a read-only overlay.
    pub upper: Option<PathBuf>,
    /// Work directory; `Some` exactly when `upper` is.
    pub work: Option<PathBuf>,
    /// Where the merged view appears; absolute and canonical.
    pub target: PathBuf,
    /// The target as given, absolute, when it reaches it through symlinks.
    pub target_alias: Option<PathBuf>,
    pub trace: Option<PathBuf>,
    pub whiteout: WhiteoutFormat,
    pub xattr_ns: XattrNs,
}

/// A configuration that cannot be used, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// The raw settings as a user gave them, before checks.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub lower: Vec<PathBuf>,
    pub upper: Option<PathBuf>,
    pub work: Option<PathBuf>,
    pub target: Option<PathBuf>,
    pub trace: Option<PathBuf>,
    pub whiteout: Option<String>,
    pub xattr_ns: Option<String>,
}

impl Settings {
    /// Reads the settings from the process environment (`OVL_*`).
    pub fn from_env() -> Option<Settings> {
        let lower = std::env::var_os(env::LOWER)?;
        let get = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Some(Settings {
            lower: split_list(&lower),
            upper: get(env::UPPER),
            work: get(env::WORK),
            target: get(env::TARGET),
            trace: get(env::TRACE),
            whiteout: std::env::var(env::WHITEOUT).ok().filter(|v| !v.is_empty()),
            xattr_ns: std::env::var(env::XATTR).ok().filter(|v| !v.is_empty()),
        })
    }
}

impl Settings {
    /// Applies mount-style option lists (`lowerdir=A:B,upperdir=U,workdir=W`
    /// and `userxattr`, as `mount -t overlay -o` takes them) over the
    /// settings the other options gave; `lower_given`: lower directories
    /// came from those options too, which `lowerdir=` may not repeat. A
    /// directory given twice, an option that contradicts another and an
    /// unknown option are errors, each told in one line.
    pub fn apply_mount_options(
        &mut self,
        options: &[String],
        lower_given: bool,
    ) -> Result<(), String> {
        let mut lower_from_o = false;
        for opt in options
            .iter()
            .flat_map(|o| o.split(','))
            .filter(|o| !o.is_empty())
        {
            self.apply_mount_option(opt, &mut lower_from_o)?;
        }
        if lower_from_o && lower_given {
            return Err(
                "lower directories given both with -o lowerdir= and with -l: use one".into(),
            );
        }
        Ok(())
    }

    fn apply_mount_option(&mut self, opt: &str, lower_from_o: &mut bool) -> Result<(), String> {
        let (key, value) = opt.split_once('=').unwrap_or((opt, ""));
        match key {
            "lowerdir" if *lower_from_o => Err("-o lowerdir= given twice: give it once".into()),
            "lowerdir" => {
                *lower_from_o = true;
                self.lower = split_list(std::ffi::OsStr::new(value));
                Ok(())
            }
            "upperdir" => set_once(
                &mut self.upper,
                value,
                "the upper directory (-u, -o upperdir=)",
            ),
            "workdir" => set_once(&mut self.work, value, "the work directory (-w, -o workdir=)"),
            "userxattr" if self.xattr_ns.as_deref() == Some("trusted") => {
                Err("-o userxattr contradicts --xattr trusted: use one".into())
            }
            "userxattr" => {
                self.xattr_ns = Some("user".into());
                Ok(())
            }
            _ => Err(format!(
                "unknown -o option '{opt}': the options are lowerdir=, upperdir=, workdir= and userxattr"
            )),
        }
    }
}

fn set_once(slot: &mut Option<PathBuf>, value: &str, name: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("{name} given twice: give it once"));
    }
    *slot = Some(PathBuf::from(value));
    Ok(())
}

/// Splits a `:`-separated list of directories, dropping empty entries.
pub fn split_list(s: &std::ffi::OsStr) -> Vec<PathBuf> {
    s.as_bytes()
        .split(|&b| b == b':')
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(p)))
        .collect()
}

fn canonical_dir(role: &str, p: &Path) -> Result<PathBuf, ConfigError> {
    let c = match std::fs::canonicalize(p) {
        Ok(c) => c,
        Err(e) => return err(format!("{role} directory {}: {e}", p.display())),
    };
    match std::fs::metadata(&c) {
        Ok(m) if m.is_dir() => Ok(c),
        Ok(_) => err(format!("{role} directory {}: not a directory", p.display())),
        Err(e) => err(format!("{role} directory {}: {e}", p.display())),
    }
}

/// `given`, the spelling of a directory whose real path is `real`, made
/// absolute and freed of `.` and repeated slashes, when it differs from
/// `real`: it passes through symlinks. Not for a spelling with `..`, which
/// the kernel takes after the symlink before it (no prefix test can).
fn alias_of(given: &Path, real: &Path) -> Option<PathBuf> {
    use std::path::Component;
    // The shell's directory is looked at (two `stat`s) for a relative one only.
    let abs = match given.is_relative().then(shell_directory).flatten() {
        Some(pwd) => pwd.join(given),
        None => std::path::absolute(given).ok()?,
    };
    if abs.components().any(|c| c == Component::ParentDir) {
        return None;
    }
    let clean: PathBuf = abs.components().collect();
    (clean != real).then_some(clean)
}

/// The current directory as the shell that started us spells it (`PWD`,
/// through the symlinks it was entered by), when that names the current
/// directory: a relative layer is then named as the user sees it.
fn shell_directory() -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let pwd = PathBuf::from(std::env::var_os("PWD")?);
    let (named, here) = (std::fs::metadata(&pwd).ok()?, std::fs::metadata(".").ok()?);
    (pwd.is_absolute() && named.dev() == here.dev() && named.ino() == here.ino()).then_some(pwd)
}

/// True when `a` and `b` are the same directory or one contains the other.
fn overlapping(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn parse_whiteout(s: Option<&str>) -> Result<WhiteoutFormat, ConfigError> {
    match s {
        None | Some("kernel") | Some("chardev") => Ok(WhiteoutFormat::CharDev),
        Some("seed") | Some("symlink") => Ok(WhiteoutFormat::SeedSymlink),
        Some(o) => err(format!(
            "unknown whiteout format '{o}': use 'kernel' (char device 0/0) or 'seed' (symlink with xattr)"
        )),
    }
}

fn parse_xattr_ns(s: Option<&str>) -> Result<XattrNs, ConfigError> {
    match s {
        None => Ok(if may_use_trusted_xattrs() {
            XattrNs::Trusted
        } else {
            XattrNs::User
        }),
        Some("trusted") => Ok(XattrNs::Trusted),
        Some("user") => Ok(XattrNs::User),
        Some(o) => err(format!(
            "unknown xattr namespace '{o}': use 'trusted' or 'user'"
        )),
    }
}

/// May this process read and write `trusted.` xattrs? The kernel asks for
/// `CAP_SYS_ADMIN` in the initial user namespace: root in a container
/// without it (Docker's default) or in a user namespace of its own writes
/// none (`EPERM`) and reads none (they seem absent).
fn may_use_trusted_xattrs() -> bool {
    /// The initial user namespace's inode number, fixed in the kernel
    /// (`PROC_USER_INIT_INO`).
    const INITIAL_USER_NS: u64 = 0xEFFF_FFFD;
    let admin = rustix::thread::capabilities(None).is_ok_and(|c| {
        c.effective
            .contains(rustix::thread::CapabilitySet::SYS_ADMIN)
    });
    admin
        && rustix::fs::stat("/proc/self/ns/user").map_or(
            // Without /proc, the capability alone tells.
            true,
            |st| st.st_ino == INITIAL_USER_NS,
        )
}

/// Is `dir` on an overlayfs? One refuses to make the kernel's whiteouts
/// (`EPERM`), which it would take for its own.
fn on_overlayfs(dir: &Path) -> bool {
    const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;
    // `f_type`'s type differs between architectures.
    #[allow(clippy::unnecessary_cast)]
    rustix::fs::statfs(dir).is_ok_and(|st| st.f_type as i64 == OVERLAYFS_SUPER_MAGIC)
}

fn same_filesystem(a: &Path, b: &Path) -> Result<bool, ConfigError> {
    use std::os::unix::fs::MetadataExt;
    let da = std::fs::metadata(a).map_err(|e| ConfigError(format!("{}: {e}", a.display())))?;
    let db = std::fs::metadata(b).map_err(|e| ConfigError(format!("{}: {e}", b.display())))?;
    Ok(da.dev() == db.dev())
}

impl Config {
    /// Checks the settings the way the kernel checks mount options, and more:
    /// every layer exists and is a directory, no two overlap, work is on the
    /// same filesystem as upper. Nothing is created here.
    pub fn validate(s: &Settings) -> Result<Config, ConfigError> {
        if s.lower.is_empty() {
            return err("no lower directory given: name at least one with --lower DIR");
        }
        let mut lower = Vec::with_capacity(s.lower.len());
        for l in &s.lower {
            lower.push(canonical_dir("lower", l)?);
        }
        for (i, a) in lower.iter().enumerate() {
            for b in &lower[i + 1..] {
                if overlapping(a, b) {
                    return err(format!(
                        "lower directories {} and {} overlap: layers must be disjoint",
                        a.display(),
                        b.display()
                    ));
                }
            }
        }
        let whiteout = parse_whiteout(s.whiteout.as_deref())?;
        let xattr_ns = parse_xattr_ns(s.xattr_ns.as_deref())?;
        if s.upper.is_some() && whiteout == WhiteoutFormat::SeedSymlink && xattr_ns == XattrNs::User
        {
            return err(
                "--whiteout seed marks its whiteouts (symbolic links) with user.overlay.whiteout, which the kernel allows on no symbolic link: leave --whiteout out (the kernel's whiteouts), or give --xattr trusted where the process has CAP_SYS_ADMIN",
            );
        }
        let (upper, work) = match (&s.upper, &s.work) {
            (None, None) => (None, None),
            (None, Some(w)) => {
                return err(format!(
                    "work directory {} given without an upper directory",
                    w.display()
                ))
            }
            (Some(u), w) => {
                let upper = canonical_dir("upper", u)?;
                for l in &lower {
                    if overlapping(&upper, l) {
                        return err(format!(
                            "upper directory {} overlaps lower directory {}: layers must be disjoint",
                            upper.display(),
                            l.display()
                        ));
                    }
                }
                let work = match w {
                    Some(w) => work_dir(w)?,
                    None => work_dir(&default_work_dir(&upper)?)?,
                };
                if overlapping(&work, &upper) {
                    return err(format!(
                        "work directory {} overlaps upper directory {}: put it beside upper, not inside",
                        work.display(),
                        upper.display()
                    ));
                }
                for l in &lower {
                    if overlapping(&work, l) {
                        return err(format!(
                            "work directory {} overlaps lower directory {}",
                            work.display(),
                            l.display()
                        ));
                    }
                }
                // A work directory still to be made lands in its parent's filesystem.
                let probe = if work.exists() {
                    work.as_path()
                } else {
                    work.parent().unwrap_or(Path::new("/"))
                };
                if whiteout == WhiteoutFormat::CharDev && on_overlayfs(&upper) {
                    let seed = match xattr_ns {
                        XattrNs::Trusted => ", or give --whiteout seed (whiteouts the kernel's overlayfs does not read)",
                        XattrNs::User => "",
                    };
                    return err(format!(
                        "upper directory {} is on an overlayfs (a container's root file system?), where the kernel's whiteouts (character devices 0/0) cannot be made: put the upper and work directories on another file system (a tmpfs or a volume){seed}",
                        upper.display()
                    ));
                }
                if !same_filesystem(probe, &upper)? {
                    return err(format!(
                        "work directory {} is on another filesystem than upper {}: copy-up needs one rename between them",
                        work.display(),
                        upper.display()
                    ));
                }
                (Some(upper), Some(work))
            }
        };
        let target = match &s.target {
            None => lower[0].clone(),
            Some(t) => canonical_dir("target", t)?,
        };
        let target_alias = alias_of(s.target.as_ref().unwrap_or(&s.lower[0]), &target);
        if let Some(u) = &upper {
            if overlapping(&target, u) {
                return err(format!(
                    "target {} overlaps upper directory {}",
                    target.display(),
                    u.display()
                ));
            }
        }
        if let Some(w) = &work {
            if overlapping(&target, w) {
                return err(format!(
                    "target {} overlaps work directory {}",
                    target.display(),
                    w.display()
                ));
            }
        }
        for l in lower.iter().skip(1) {
            if overlapping(&target, l) {
                return err(format!(
                    "target {} overlaps lower directory {}: only the topmost lower may be the target",
                    target.display(),
                    l.display()
                ));
            }
        }
        if target != lower[0] && overlapping(&target, &lower[0]) {
            return err(format!(
                "target {} lies inside or around lower directory {}",
                target.display(),
                lower[0].display()
            ));
        }
        Ok(Config {
            lower,
            upper,
            work,
            target,
            target_alias,
            trace: s.trace.clone(),
            whiteout,
            xattr_ns,
        })
    }

    /// The environment variables that carry this configuration to the shim.
    pub fn to_env(&self) -> Vec<(&'static str, OsString)> {
        let mut lower = OsString::new();
        for (i, l) in self.lower.iter().enumerate() {
            if i > 0 {
                lower.push(":");
            }
            lower.push(l);
        }
        let mut v = vec![
            (env::LOWER, lower),
            (env::TARGET, self.target.clone().into_os_string()),
        ];
        if let Some(a) = &self.target_alias {
            v.push((env::TARGET_ALIAS, a.clone().into_os_string()));
        }
        if let (Some(u), Some(w)) = (&self.upper, &self.work) {
            v.push((env::UPPER, u.clone().into_os_string()));
            v.push((env::WORK, w.clone().into_os_string()));
        }
        if let Some(t) = &self.trace {
            v.push((env::TRACE, t.clone().into_os_string()));
        }
        v.push((
            env::WHITEOUT,
            match self.whiteout {
                WhiteoutFormat::CharDev => "kernel",
                WhiteoutFormat::SeedSymlink => "seed",
            }
            .into(),
        ));
        v.push((
            env::XATTR,
            match self.xattr_ns {
                XattrNs::Trusted => "trusted",
                XattrNs::User => "user",
            }
            .into(),
        ));
        v
    }
}

/// The work directory `w` by its real path: an existing one must be a
/// directory; a missing one, whose own directory exists, is that
/// directory's real path and `w`'s name (ovl-exec makes it after every
/// check, as it does the default).
fn work_dir(w: &Path) -> Result<PathBuf, ConfigError> {
    if std::fs::metadata(w).is_ok_and(|m| !m.is_dir()) {
        return err(format!(
            "work directory {} exists and is not a directory: remove it, or give another with -w",
            w.display()
        ));
    }
    if std::fs::symlink_metadata(w).is_ok() {
        return canonical_dir("work", w);
    }
    let parent = match w.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => Path::new("/"),
    };
    let made_in = std::fs::canonicalize(parent).ok().filter(|p| p.is_dir());
    match (made_in, w.file_name()) {
        (Some(dir), Some(name)) => Ok(dir.join(name)),
        _ => err(format!(
            "work directory {}: {} is not an existing directory: create it first, or leave out -w (the default is <upper>.ovl-work beside upper)",
            w.display(),
            parent.display()
        )),
    }
}

/// The default work directory: `<upper>.ovl-work` beside upper. It is not
/// created here (validation creates nothing); `ovl-exec` creates it.
fn default_work_dir(upper: &Path) -> Result<PathBuf, ConfigError> {
    let name = match upper.file_name() {
        Some(n) => n,
        None => return err("the upper directory cannot be / : give a subdirectory"),
    };
    let mut w = name.to_os_string();
    w.push(".ovl-work");
    Ok(upper.with_file_name(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_list_drops_empty_entries() {
        assert_eq!(
            split_list(std::ffi::OsStr::new("/a::/b:")),
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
    }

    #[test]
    fn an_alias_is_the_given_spelling_through_symlinks() {
        let real = Path::new("/srv/real/proj");
        assert_eq!(
            alias_of(Path::new("/srv/link//./proj/"), real),
            Some(PathBuf::from("/srv/link/proj"))
        );
        assert_eq!(alias_of(Path::new("/srv/real/./proj"), real), None);
        assert_eq!(alias_of(Path::new("/srv/link/../real/proj"), real), None);
    }

    #[test]
    fn overlap_is_prefix_by_component() {
        assert!(overlapping(Path::new("/a/b"), Path::new("/a")));
        assert!(!overlapping(Path::new("/a/bc"), Path::new("/a/b")));
    }
}
