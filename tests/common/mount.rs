//! Mounting the kernel's overlayfs as the reference, and making sure no
//! mount outlives its test: a guard unmounts on drop (also while a failing
//! test unwinds), and mounts left behind by test processes that were killed
//! are swept away when the next fixture is made.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::Duration;

/// A kernel overlay mounted at a directory; unmounted when dropped.
pub struct KernelMount {
    mnt: PathBuf,
}

impl KernelMount {
    /// `mount -t overlay overlay -o <options> <mnt>`. Panics with mount's
    /// own message when the kernel refuses.
    pub fn mount(options: &str, mnt: &Path) -> KernelMount {
        if let Err(e) = mount(&["-t", "overlay", "overlay", "-o", options], mnt) {
            panic!(
                "the kernel refused to mount the reference overlay at {}\n  options: {options}\n  mount: {e}",
                mnt.display()
            );
        }
        KernelMount {
            mnt: mnt.to_path_buf(),
        }
    }
}

impl Drop for KernelMount {
    fn drop(&mut self) {
        unmount(&self.mnt);
    }
}

/// A tmpfs mounted on a directory for one test, unmounted when dropped.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(at: PathBuf) -> Tmpfs {
        Tmpfs::mount_sized(at, "64m")
    }

    /// A tmpfs of `size` (as `mount -o size=` reads it) at `at`.
    pub fn mount_sized(at: PathBuf, size: &str) -> Tmpfs {
        mount(
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
            &at,
        )
        .unwrap_or_else(|e| panic!("mount tmpfs on {}: {e}", at.display()));
        Tmpfs(at)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        unmount(&self.0);
    }
}

/// Runs `mount ARGS AT`. `Err`: mount's own message (or why it could not
/// be run).
pub fn mount<S: AsRef<OsStr>>(args: &[S], at: &Path) -> Result<(), String> {
    let out = Command::new("mount")
        .args(args)
        .arg(at)
        .output()
        .map_err(|e| format!("cannot run mount(8): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Unmounts `mnt`, retrying while it is busy (a child may still be exiting),
/// then detaching it lazily. Never panics: it runs in destructors.
pub fn unmount(mnt: &Path) {
    for _ in 0..20 {
        match Command::new("umount").arg(mnt).output() {
            Ok(out) if out.status.success() => return,
            Ok(_) => sleep(Duration::from_millis(50)),
            Err(e) => {
                eprintln!("cannot run umount(8) on {}: {e}", mnt.display());
                return;
            }
        }
    }
    let lazy = Command::new("umount").arg("-l").arg(mnt).output();
    if !matches!(lazy, Ok(ref out) if out.status.success()) {
        eprintln!(
            "could not unmount {}: unmount it by hand (umount -l {})",
            mnt.display(),
            mnt.display()
        );
    }
}

/// Mount points at or below `dir`, deepest first (the order to unmount them).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

/// Unmounts everything at or below `dir`.
pub fn unmount_all_under(dir: &Path) {
    for mnt in mounts_under(dir) {
        unmount(&mnt);
    }
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes the fixture directories (`<prefix><pid>-…` in `base`) of test
/// processes that no longer run, unmounting what they left mounted first.
pub fn sweep_stale(base: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        unmount_all_under(&dir);
        if mounts_under(&dir).is_empty() {
            let _ = fs::remove_dir_all(&dir);
        }
    }
}

/// A file system of type `fstype` (as `mkfs.<fstype>` makes it) in a loop
/// image of `bytes` under `dir`, mounted at `dir/<fstype>`; unmounted when
/// dropped (also while a failing test unwinds).
pub struct LoopFs {
    pub mnt: PathBuf,
}

impl LoopFs {
    /// `None`, after saying on stderr why, where one cannot be made here
    /// (no `mkfs.<fstype>`, no loop devices).
    pub fn new(dir: &Path, fstype: &str, bytes: u64) -> Option<LoopFs> {
        let mkfs = format!("mkfs.{fstype}");
        let found = |cmd: &str| {
            std::env::var_os("PATH")
                .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(cmd).is_file()))
                || Path::new("/sbin").join(cmd).is_file()
        };
        if !found(&mkfs) || !found("losetup") {
            eprintln!("skipped: needs {mkfs} and losetup to make a {fstype} file system");
            return None;
        }
        let image = dir.join(format!("{fstype}.img"));
        let mnt = dir.join(fstype);
        fs::create_dir_all(&mnt).unwrap();
        fs::File::create(&image)
            .and_then(|f| f.set_len(bytes))
            .unwrap();
        // Quiet and forced (the image is a new file), as each mkfs spells it.
        let quiet: &[&str] = if fstype.starts_with("ext") {
            &["-q", "-F"]
        } else {
            &["-q", "-f"]
        };
        let made = Command::new(&mkfs)
            .args(quiet)
            .arg(&image)
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{mkfs} {} failed: {}",
            image.display(),
            String::from_utf8_lossy(&made.stderr).trim()
        );
        let loop_args = [OsStr::new("-o"), OsStr::new("loop"), image.as_os_str()];
        if let Err(e) = mount(&loop_args, &mnt) {
            eprintln!("skipped: cannot mount a {fstype} image with a loop device here: {e}");
            return None;
        }
        Some(LoopFs { mnt })
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        unmount_all_under(&self.mnt);
    }
}
