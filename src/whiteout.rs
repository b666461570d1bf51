//! The on-disk records of the overlay: whiteouts and opaque directories, in
//! every format the kernel and the seed have used (all are read; the
//! configured one is written).

use crate::config::{WhiteoutFormat, XattrNs};
use crate::lookup::{join, Node, Slot};
use crate::overlay::Overlay;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, Stat, CWD};
use rustix::io::Errno;
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// Target of the seed's symlink whiteout.
pub const SEED_WHITEOUT_TARGET: &[u8] = b"(overlay-whiteout)";

const NAMESPACES: [&str; 2] = ["trusted.overlay.", "user.overlay."];

/// True when the xattr belongs to the overlay itself (never shown, never set
/// through the view).
pub fn is_private_xattr(name: &[u8]) -> bool {
    NAMESPACES.iter().any(|ns| name.starts_with(ns.as_bytes()))
}

/// Does the object carry `<ns>.overlay.<attr>` (in either namespace) whose
/// value starts with one of `values` (any value when empty)?
fn xattr_has(path: &CStr, attr: &str, values: &[u8]) -> bool {
    let mut buf = [0u8; 4];
    for ns in NAMESPACES {
        let full = format!("{ns}{attr}");
        match rustix::fs::lgetxattr(path, full.as_str(), &mut buf[..]) {
            Ok(n) if values.is_empty() || (n >= 1 && values.contains(&buf[0])) => return true,
            Err(Errno::RANGE) if values.is_empty() => return true,
            _ => {}
        }
    }
    false
}

fn xattr_is_y(path: &CStr, attr: &str) -> bool {
    xattr_has(path, attr, b"y")
}

/// The overlay xattr names set on an object (one `llistxattr`).
fn overlay_names(path: &CStr) -> Vec<Vec<u8>> {
    let mut names = [0u8; 1024];
    let n = match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(n) => n,
        Err(Errno::RANGE) => {
            let mut big = vec![0u8; 65536];
            let n = rustix::fs::llistxattr(path, &mut big[..]).unwrap_or(0);
            return big[..n]
                .split(|&b| b == 0)
                .filter(|a| is_private_xattr(a))
                .map(<[u8]>::to_vec)
                .collect();
        }
        Err(_) => 0,
    };
    names[..n]
        .split(|&b| b == 0)
        .filter(|a| is_private_xattr(a))
        .map(<[u8]>::to_vec)
        .collect()
}

/// Is this empty file of a lower layer a whiteout of the kernel's xattr
/// form (6.7+)? It counts only in a directory marked for them
/// (`overlay.opaque=x`, or the older `overlay.whiteouts`).
pub fn is_xattr_whiteout(path: &CStr, st: &Stat, dir_marked: impl FnOnce() -> bool) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
        && st.st_size == 0
        && xattr_has(path, "whiteout", b"")
        && dir_marked()
}

/// Does the directory at `path` hold xattr whiteouts?
pub fn marks_xattr_whiteouts(path: &CStr) -> bool {
    let names = overlay_names(path);
    if names.iter().any(|n| n.ends_with(b".overlay.whiteouts")) {
        return true;
    }
    names.iter().any(|n| n.ends_with(b".overlay.opaque")) && xattr_has(path, "opaque", b"x")
}

/// Is the object at the real `path`, whose `lstat` is `st`, a whiteout (a
/// character device 0/0, or the seed's symlink)? See also `is_xattr_whiteout`.
pub fn is_whiteout(path: &CStr, st: &Stat) -> bool {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::CharacterDevice => st.st_rdev == 0,
        FileType::Symlink => {
            st.st_size as usize == SEED_WHITEOUT_TARGET.len()
                && rustix::fs::readlinkat(CWD, path, Vec::new())
                    .is_ok_and(|t| t.as_bytes() == SEED_WHITEOUT_TARGET)
                && xattr_is_y(path, "whiteout")
        }
        _ => false,
    }
}

/// Is the directory at the real `path` opaque (`overlay.opaque=y`; the
/// value `x` marks a directory holding xattr whiteouts, not an opaque one)?
pub fn is_opaque(path: &CStr) -> bool {
    // One listxattr tells whether there is anything to read at all.
    let names = overlay_names(path);
    names.iter().any(|n| n.ends_with(b".overlay.opaque")) && xattr_is_y(path, "opaque")
}

/// Creates a whiteout at the real `path` (in the upper or work tree).
pub fn make_whiteout(ovl: &Overlay, path: &CStr) -> Result<(), Errno> {
    match ovl.whiteout {
        WhiteoutFormat::CharDev => ovl.chardev_whiteout_at(CWD, path),
        WhiteoutFormat::SeedSymlink => {
            rustix::fs::symlinkat(SEED_WHITEOUT_TARGET, CWD, path)?;
            let attr = format!("{}whiteout", ovl.xattr_ns.prefix());
            let marked =
                rustix::fs::lsetxattr(path, attr.as_str(), b"y", rustix::fs::XattrFlags::empty());
            if marked.is_err() {
                // An unmarked link would show in the view as a symlink.
                let _ = rustix::fs::unlinkat(CWD, path, AtFlags::empty());
            }
            marked
        }
    }
}

/// Marks the directory at the real `path` opaque.
pub fn make_opaque(ns: XattrNs, path: &CStr) -> Result<(), Errno> {
    let attr = format!("{}opaque", ns.prefix());
    rustix::fs::lsetxattr(path, attr.as_str(), b"y", rustix::fs::XattrFlags::empty())
}

/// Was the overlay's mark refused to this process? `trusted.` xattrs need
/// `CAP_SYS_ADMIN` (which a process that gave up root, in a view set up by
/// root, lacks), and some file systems keep none of the namespace (`user.`
/// ones on tmpfs before Linux 6.6).
pub(crate) fn mark_refused(e: Errno) -> bool {
    matches!(e, Errno::PERM | Errno::ACCESS | Errno::OPNOTSUPP)
}

/// Name, in the work directory, of the whiteout that new whiteouts are hard
/// links of: as the kernel, one inode for them all, so removing a name costs
/// a directory entry and no inode allocation.
pub const SHARED_WHITEOUT: &str = "ovl-whiteout";

/// This process's use of the shared whiteout: not yet looked at, in use, or
/// given up (it cannot be made or linked: another owner, another
/// filesystem), then whiteouts are device nodes of their own.
const UNCHECKED: u8 = 0;
const SHARING: u8 = 1;
const NOT_SHARING: u8 = 2;
static SHARED_STATE: AtomicU8 = AtomicU8::new(UNCHECKED);
static SHARED_PATH: OnceLock<Option<CString>> = OnceLock::new();

/// Is this `lstat` the kernel's whiteout, a character device 0/0 (no
/// system call: the one format that hides in the bottom layer too)?
pub(crate) fn is_chardev_whiteout(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
}

impl Overlay {
    /// The upper directory `dir_rel`, open, and whether lower objects may
    /// show in it (it is not opaque): a whiteout belongs in it only then.
    /// Whoever leaves one there after a look-up made earlier asks again
    /// here, and makes it in the directory open: another process may have
    /// removed the directory the look-up saw and made another, opaque, in
    /// its place (a whiteout in an opaque directory is an entry the kernel
    /// lists and cannot open).
    pub(crate) fn upper_dir_for_whiteouts(&self, dir_rel: &[u8]) -> Result<(OwnedFd, bool), Errno> {
        let named: &[u8] = if dir_rel.is_empty() { b"." } else { dir_rel };
        let dir = self.layers[crate::overlay::UPPER].at(named, |at, p| {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            rustix::fs::openat(at, p, flags, Mode::empty())
        })?;
        let mut buf = [0u8; 1];
        let name = format!("{}opaque", self.xattr_ns.prefix());
        let opaque = rustix::fs::fgetxattr(&dir, name.as_str(), &mut buf[..])
            .is_ok_and(|n| n == 1 && buf[0] == b'y');
        Ok((dir, !opaque))
    }

    /// The directory the lower layers alone show at `name` in `parent` (as
    /// the view would without what the upper layer holds there); `None`
    /// when they show none there.
    pub(crate) fn lower_dir_at(&self, parent: &Node, name: &[u8]) -> Result<Option<Node>, Errno> {
        let lowers = parent.dirs & !(1 << crate::overlay::UPPER);
        let rel = CString::new(join(&parent.rel, name)).map_err(|_| Errno::INVAL)?;
        Ok(match self.find_in_layers(lowers, &rel, parent.rel.len())? {
            Slot::Taken(found) if found.dirs != 0 => Some(found.into_node(rel.into_bytes())),
            _ => None,
        })
    }

    /// Makes `dir`, a new directory (in the work directory) that is to take
    /// `name` in `parent`, opaque. Where the mark is refused (see
    /// [`mark_refused`]), a whiteout of each name the lower layers show
    /// there hides them instead: the same view, which the kernel reads
    /// alike.
    pub(crate) fn make_opaque_or_hide_lower(
        &self,
        dir: &CStr,
        parent: &Node,
        name: &[u8],
    ) -> Result<(), Errno> {
        match make_opaque(self.xattr_ns, dir) {
            Err(e) if mark_refused(e) && self.whiteout == WhiteoutFormat::CharDev => {
                let Some(lower) = self.lower_dir_at(parent, name)? else {
                    return Ok(());
                };
                let listing = self.merged_listing(&lower)?;
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let fd = rustix::fs::open(dir, flags, Mode::empty())?;
                for entry in listing.iter().filter(|e| e.name != b"." && e.name != b"..") {
                    self.chardev_whiteout_at(fd.as_fd(), &crate::sys::cpath(entry.name))?;
                }
                Ok(())
            }
            r => r,
        }
    }

    /// Makes a whiteout named `name` in the upper directory `dir_rel`,
    /// open at `dir` (see `upper_dir_for_whiteouts`).
    pub(crate) fn whiteout_in(
        &self,
        dir: BorrowedFd<'_>,
        dir_rel: &[u8],
        name: &[u8],
    ) -> Result<(), Errno> {
        match self.whiteout {
            WhiteoutFormat::CharDev => self.chardev_whiteout_at(dir, &crate::sys::cpath(name)),
            // Its xattr is set by path: no call sets one relative to a
            // directory (nor reaches the one open, by its name).
            WhiteoutFormat::SeedSymlink => {
                make_whiteout(self, &self.upper_path(&crate::lookup::join(dir_rel, name)))
            }
        }
    }

    fn shared_whiteout_path(&self) -> Option<&CStr> {
        SHARED_PATH
            .get_or_init(|| {
                let work = self.work.as_ref()?;
                Some(crate::sys::cpath(
                    &work.real_path(SHARED_WHITEOUT.as_bytes()),
                ))
            })
            .as_deref()
    }

    /// The shared whiteout, made if missing; `None` when not sharing.
    fn shared_whiteout(&self) -> Option<&CStr> {
        let path = self.shared_whiteout_path()?;
        match SHARED_STATE.load(Ordering::Acquire) {
            SHARING => return Some(path),
            NOT_SHARING => return None,
            _ => {}
        }
        let usable = match rustix::fs::lstat(path) {
            Ok(st) => is_chardev_whiteout(&st),
            Err(Errno::NOENT) => self.renew_shared_whiteout(path, RenameFlags::NOREPLACE),
            Err(_) => false,
        };
        let state = if usable { SHARING } else { NOT_SHARING };
        SHARED_STATE.store(state, Ordering::Release);
        usable.then_some(path)
    }

    /// Puts a new whiteout at `path`, built aside and renamed there (with
    /// `flags`), so nobody ever links something half-made; true when a
    /// whiteout is there afterwards.
    fn renew_shared_whiteout(&self, path: &CStr, flags: RenameFlags) -> bool {
        let Ok(tmp) = self.work_temp(crate::copy_up::Temp::Whiteout) else {
            return false;
        };
        let made = rustix::fs::mknodat(CWD, &tmp, FileType::CharacterDevice, Mode::empty(), 0);
        if made.is_err() {
            return false;
        }
        if rustix::fs::renameat_with(CWD, &tmp, CWD, path, flags).is_err() {
            let _ = rustix::fs::unlinkat(CWD, &tmp, AtFlags::empty());
        }
        // Ours or another process's: what is there now decides.
        rustix::fs::lstat(path).is_ok_and(|st| is_chardev_whiteout(&st))
    }

    /// After linking the shared whiteout failed with `e`: a full one
    /// (`EMLINK`) or a missing one is made again, anything else but a bad
    /// directory descriptor (retried by path) ends the sharing here.
    fn shared_whiteout_failed(&self, path: &CStr, e: Errno) {
        let state = match e {
            Errno::BADF => return,
            Errno::MLINK => self.renew_shared_whiteout(path, RenameFlags::empty()),
            // The shared one, or the new name's directory, is missing.
            Errno::NOENT | Errno::NOTDIR => {
                rustix::fs::lstat(path).is_ok_and(|st| is_chardev_whiteout(&st))
                    || self.renew_shared_whiteout(path, RenameFlags::NOREPLACE)
            }
            _ => false,
        };
        let state = if state { SHARING } else { NOT_SHARING };
        SHARED_STATE.store(state, Ordering::Release);
    }

    /// Makes a character-device whiteout at `(dir, path)` (an `*at` pair):
    /// a hard link of the shared whiteout, or a device node of its own.
    pub(crate) fn chardev_whiteout_at(
        &self,
        dir: BorrowedFd<'_>,
        path: &CStr,
    ) -> Result<(), Errno> {
        if let Some(shared) = self.shared_whiteout() {
            match rustix::fs::linkat(CWD, shared, dir, path, AtFlags::empty()) {
                Ok(()) => return Ok(()),
                Err(Errno::EXIST) => return Err(Errno::EXIST),
                Err(e) => self.shared_whiteout_failed(shared, e),
            }
        }
        rustix::fs::mknodat(dir, path, FileType::CharacterDevice, Mode::empty(), 0)
    }
}
