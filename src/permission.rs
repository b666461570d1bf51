//! The kernel checks a change against the overlay's object, which has the
//! lower object's owner and mode, before it copies anything up. A process
//! that is not root makes copies of its own (it cannot give them the lower
//! owner), so the real call on the copy (or in the copied-up directory)
//! would no longer refuse: the check is made here first, on the lower
//! object's `stat`, one function per rule of the kernel's VFS.
//!
//! Capabilities are approximated by an effective user id of 0 (root passes
//! every check, after one `geteuid` and nothing else). For another user,
//! what the access bits grant is asked of the kernel for the real object
//! (which has the overlay object's owner, mode and access control list):
//! an access control list can grant what the bits refuse, and the reverse.

use crate::lookup::Node;
use crate::overlay::Overlay;
use rustix::fs::{Access, AtFlags, Stat, CWD};
use rustix::io::Errno;
use std::ffi::{CStr, CString};

const MAY_EXEC: u32 = 1;
const MAY_WRITE: u32 = 2;
const MAY_READ: u32 = 4;

/// A change of an existing object, as the hooks ask for it.
#[derive(Clone, Copy)]
pub enum Change<'a> {
    /// `truncate` to this length: write access.
    Size(u64),
    /// `chmod`: the owner.
    Mode,
    /// `chown(uid, gid)`, `u32::MAX` leaving one as it is.
    Owner { uid: u32, gid: u32 },
    /// `utimes`: explicit times by the owner; the current time (`now`: no
    /// times, or both `UTIME_NOW`) by the owner or a writer.
    Times { now: bool },
    /// Setting or removing the xattr of this name.
    Xattr(&'a [u8]),
    /// Attribute flags (`chattr`): the owner.
    Flags,
}

impl Change<'_> {
    /// A truncate's length: only so many bytes are copied up.
    pub fn keep(self) -> Option<u64> {
        match self {
            Change::Size(len) => Some(len),
            _ => None,
        }
    }
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// An object the checks are made on: its `lstat`, and its real path, by
/// which the kernel is asked what its access control list grants (`None`:
/// the mode's bits alone decide).
pub struct Object<'a> {
    pub stat: &'a Stat,
    pub real: Option<CString>,
}

impl<'a> Object<'a> {
    /// The object `stat` describes, at the real path `real`.
    pub fn at(stat: &'a Stat, real: &[u8]) -> Object<'a> {
        Object {
            stat,
            real: CString::new(real).ok(),
        }
    }
}

/// `generic_permission`: are the access bits `mask` granted on the
/// object? The owner's bits for its owner, the group's for a member, else
/// the others' (or what its access control list says). Root may read and
/// write anything, and execute what has an `x` bit (search any directory).
fn permission(obj: &Object<'_>, mask: u32) -> Result<(), Errno> {
    let st = obj.stat;
    let euid = euid();
    if euid == 0 {
        let dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        let exec_ok = mask & MAY_EXEC == 0 || dir || st.st_mode & 0o111 != 0;
        return if exec_ok { Ok(()) } else { Err(Errno::ACCESS) };
    }
    if let Some(answer) = obj
        .real
        .as_deref()
        .and_then(|r| kernel_permission(r, st, mask))
    {
        return answer;
    }
    let bits = if st.st_uid == euid {
        st.st_mode >> 6
    } else if in_group(st.st_gid) {
        st.st_mode >> 3
    } else {
        st.st_mode
    };
    if mask & !bits & 7 == 0 {
        Ok(())
    } else {
        Err(Errno::ACCESS)
    }
}

/// The kernel's answer for the real object at `real` (`faccessat` with the
/// effective ids: its owner, mode and access control list, which the
/// overlay's object shows too). `None` where the answer would be of the
/// real object alone (a read-only file system, an immutable file), or the
/// kernel cannot be asked: the bits decide.
fn kernel_permission(real: &CStr, st: &Stat, mask: u32) -> Option<Result<(), Errno>> {
    if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        return None; // a symlink's own bits are never checked
    }
    let mut access = Access::empty();
    for (bit, a) in [
        (MAY_READ, Access::READ_OK),
        (MAY_WRITE, Access::WRITE_OK),
        (MAY_EXEC, Access::EXEC_OK),
    ] {
        if mask & bit != 0 {
            access |= a;
        }
    }
    match rustix::fs::accessat(CWD, real, access, AtFlags::EACCESS) {
        Ok(()) => Some(Ok(())),
        Err(Errno::ACCESS) => Some(Err(Errno::ACCESS)),
        Err(_) => None,
    }
}

/// May this process search the directory `dir`: look a name up in it,
/// `.` and `..` included?
pub fn may_search(dir: &Object<'_>) -> Result<(), Errno> {
    permission(dir, MAY_EXEC)
}

/// May this process write to the object (`EACCES` if not)?
pub fn may_write(obj: &Object<'_>) -> Result<(), Errno> {
    permission(obj, MAY_WRITE)
}

/// `inode_owner_or_capable`: is this process the owner of `st` (or root)?
fn is_owner(st: &Stat) -> bool {
    let euid = euid();
    euid == 0 || euid == st.st_uid
}

/// `EPERM` unless this process owns `st`: `chmod`, explicit times, flags.
fn owner_only(st: &Stat) -> Result<(), Errno> {
    if is_owner(st) {
        Ok(())
    } else {
        Err(Errno::PERM)
    }
}

/// `chown_ok` and `chgrp_ok` of `setattr_prepare`: only root gives a file
/// away (its owner may "change" it to themselves); the owner may change
/// its group to one they belong to.
fn may_chown(st: &Stat, uid: u32, gid: u32) -> Result<(), Errno> {
    let euid = euid();
    if euid == 0 {
        return Ok(());
    }
    let owner = st.st_uid == euid;
    let uid_ok = uid == u32::MAX || (owner && uid == st.st_uid);
    let gid_ok = gid == u32::MAX || (owner && (gid == st.st_gid || in_group(gid)));
    if uid_ok && gid_ok {
        Ok(())
    } else {
        Err(Errno::PERM)
    }
}

/// `utimes`: explicit times by the owner only (`EPERM`); the current time
/// by the owner or one who may write (`EACCES`).
fn may_set_times(obj: &Object<'_>, now: bool) -> Result<(), Errno> {
    if is_owner(obj.stat) {
        Ok(())
    } else if now {
        may_write(obj)
    } else {
        Err(Errno::PERM)
    }
}

/// `xattr_permission` for a change: `trusted.` names are root's; a
/// `user.` name of a sticky directory may be changed by its owner only;
/// `user.` names need write access. `security.` and `system.` names are
/// left to the real call (the VFS does not check them).
fn may_change_xattr(obj: &Object<'_>, name: &[u8]) -> Result<(), Errno> {
    let st = obj.stat;
    if name.starts_with(b"trusted.") {
        return if euid() == 0 {
            Ok(())
        } else {
            Err(Errno::PERM)
        };
    }
    if !name.starts_with(b"user.") {
        return Ok(());
    }
    let sticky_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR && st.st_mode & libc::S_ISVTX != 0;
    if sticky_dir && !is_owner(st) {
        return Err(Errno::PERM);
    }
    may_write(obj)
}

/// May this process make `change` to the object?
pub fn may_change(obj: &Object<'_>, change: Change<'_>) -> Result<(), Errno> {
    match change {
        Change::Size(_) => may_write(obj),
        Change::Mode | Change::Flags => owner_only(obj.stat),
        Change::Owner { uid, gid } => may_chown(obj.stat, uid, gid),
        Change::Times { now } => may_set_times(obj, now),
        Change::Xattr(name) => may_change_xattr(obj, name),
    }
}

/// `may_create`: a name is made in the directory `dir` by one who may
/// write and search it (`EACCES`).
pub fn may_create(dir: &Object<'_>) -> Result<(), Errno> {
    permission(dir, MAY_WRITE | MAY_EXEC)
}

/// `may_delete`: the name of `victim` is removed from (or replaced in)
/// `dir` by one who may write and search it (`EACCES`); in a sticky
/// directory, only by the owner of the victim or of the directory
/// (`EPERM`).
pub fn may_delete(dir: &Object<'_>, victim: &Stat) -> Result<(), Errno> {
    may_create(dir)?;
    let euid = euid();
    let sticky = dir.stat.st_mode & libc::S_ISVTX != 0;
    if sticky && euid != 0 && victim.st_uid != euid && dir.stat.st_uid != euid {
        return Err(Errno::PERM);
    }
    Ok(())
}

/// `may_linkat` with `fs.protected_hardlinks` set: only the owner links a
/// file that is not a plain one it may read and write (`EPERM`).
pub fn may_link(obj: &Object<'_>) -> Result<(), Errno> {
    let st = obj.stat;
    if is_owner(st) || !protected_hardlinks() {
        return Ok(());
    }
    let regular = st.st_mode & libc::S_IFMT == libc::S_IFREG;
    let setuid = st.st_mode & libc::S_ISUID != 0;
    let setgid_exec = st.st_mode & (libc::S_ISGID | libc::S_IXGRP) == libc::S_ISGID | libc::S_IXGRP;
    if regular && !setuid && !setgid_exec && permission(obj, MAY_READ | MAY_WRITE).is_ok() {
        Ok(())
    } else {
        Err(Errno::PERM)
    }
}

/// Is `fs.protected_hardlinks` set (as most systems set it)?
fn protected_hardlinks() -> bool {
    std::fs::read("/proc/sys/fs/protected_hardlinks").map_or(true, |v| v.first() != Some(&b'0'))
}

/// Is `gid` this process's effective group or one of its supplementary ones?
fn in_group(gid: u32) -> bool {
    if rustix::process::getegid().as_raw() == gid {
        return true;
    }
    // SAFETY: a count query writes nothing.
    let count = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    if count <= 0 {
        return false;
    }
    let mut groups = vec![0 as libc::gid_t; count as usize];
    // SAFETY: the buffer holds `count` entries, as the call is told.
    let n = unsafe { libc::getgroups(count, groups.as_mut_ptr()) };
    n > 0 && groups[..n as usize].contains(&gid)
}

impl Overlay {
    /// `node` as the checks see it, at its real path.
    pub fn object<'a>(&self, node: &'a Node) -> Object<'a> {
        Object::at(&node.stat, &self.real_path(node.layer, &node.rel))
    }

    /// The checks above, made only where they matter: on an object shown
    /// from a lower layer (an upper one is checked by the real call).
    fn lower_only(
        &self,
        node: &Node,
        check: impl FnOnce() -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        if self.is_lower(node) {
            check()
        } else {
            Ok(())
        }
    }

    /// May `change` be made to `node` (before it is copied up)?
    pub fn may_change(&self, node: &Node, change: Change<'_>) -> Result<(), Errno> {
        self.lower_only(node, || may_change(&self.object(node), change))
    }

    /// May `.` or `..` be looked up in the directory `dir`? The real calls
    /// check every other name (its layer's directories are searched for
    /// it); these two are folded away by the walk, which asks here.
    pub fn may_search_in(&self, dir: &Node) -> Result<(), Errno> {
        if euid() == 0 {
            return Ok(()); // root searches any directory: no real path needed
        }
        may_search(&self.object(dir))
    }

    /// May `..` be looked up in the directory at `rel`, a path in the view
    /// whose climb the caller folds away? Not found, it is not refused
    /// here: the walk that follows finds what there is.
    pub fn may_climb_from(&self, rel: &[u8]) -> Result<(), Errno> {
        if euid() == 0 {
            return Ok(());
        }
        match self.resolve(rel, false) {
            Ok(crate::lookup::Resolved::Inside(dir)) => may_search(&self.object(&dir)),
            _ => Ok(()),
        }
    }

    /// May a name be made in the directory `dir` (before it is copied up)?
    pub fn may_create_in(&self, dir: &Node) -> Result<(), Errno> {
        if self.checked_before_the_call(dir) {
            may_create(&self.object(dir))
        } else {
            Ok(())
        }
    }

    /// Is the directory `dir` checked here, not only by the real call? A
    /// lower one, and an upper one whose mode denies its owner writing: a
    /// copy-up into it is made all the same, as the kernel's
    /// (`copy_up::writing_in_dir`), and would come before the real call.
    fn checked_before_the_call(&self, dir: &Node) -> bool {
        self.is_lower(dir) || dir.stat.st_mode & libc::S_IWUSR == 0
    }

    /// `access` of `node` (`None`: not in the view) for `mode`: the bits
    /// left for the real object to answer, or the overlay's own answer.
    /// Write access is the overlay's: refused in a read-only overlay
    /// (`EROFS`) but to special files; for a file or directory still of a
    /// lower layer, granted by its owner, mode and access control list as
    /// the kernel's overlay grants it, whether or not the lower file system
    /// is itself writable (the copy is what would be written). The check is
    /// made with the effective ids, as `faccessat` with `AT_EACCESS` makes
    /// it.
    pub fn access_left(&self, node: Option<&Node>, mode: i32) -> Result<i32, Errno> {
        let Some(node) = node.filter(|_| mode & libc::W_OK != 0) else {
            return Ok(mode);
        };
        let copied_when_written = matches!(
            node.file_type(),
            rustix::fs::FileType::RegularFile | rustix::fs::FileType::Directory
        );
        // A special file is written in place, also in a read-only overlay
        // (as on a read-only mount): the real object answers.
        let special = !copied_when_written && node.file_type() != rustix::fs::FileType::Symlink;
        if !self.has_upper && !special {
            return Err(Errno::ROFS);
        }
        if !copied_when_written || !self.is_lower(node) {
            return Ok(mode);
        }
        may_write(&self.object(node))?;
        Ok(mode & !libc::W_OK)
    }

    /// May the name of `victim` be removed from `dir` (or replaced)?
    pub fn may_delete_from(&self, dir: &Node, victim: &Node) -> Result<(), Errno> {
        // The sticky rule reads the victim's owner, which its copy would lose.
        let sticky = dir.stat.st_mode & libc::S_ISVTX != 0;
        if self.checked_before_the_call(dir) || (self.is_lower(victim) && sticky) {
            may_delete(&self.object(dir), &victim.stat)
        } else {
            Ok(())
        }
    }
}
