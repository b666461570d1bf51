//! Descriptors that follow their objects, as the kernel's do: a reader of a
//! lower file, or a descriptor of a lower directory, moves to the copy once
//! the object is copied up; an object of the upper layer alone moves with a
//! rename; a directory removed from the view is noticed. And what a change
//! through a descriptor whose object has left the view fails with.

use crate::cwd::cwd_is_gone;
use crate::fd_table::{
    fd_info, is_lower_reader, lower_fds_at, store_fd, update_fd_info, with_fd_info, FdInfo,
};
use crate::locate::trim_trailing_slashes;
use crate::lookup::{Node, Resolved};
use crate::overlay::Overlay;
use rustix::io::Errno;
use std::ffi::CStr;
use std::sync::Arc;

/// After a copy-up of the regular file `rel` (its copy at `upper`): this
/// process's descriptors open for reading on the lower file read the copy
/// from now on, at the same offset (duplicates still sharing one), as the
/// kernel's overlayfs switches them. (Other processes' descriptors follow
/// at their next read: [`catch_up_reader`].)
pub(crate) fn repoint_lower_fds(rel: &[u8], upper: &CStr) {
    if crate::vfork::in_child() {
        return; // the parent's table, and the child's descriptors may differ
    }
    let readers = lower_fds_at(rel, false);
    // Duplicates share one open file description (and its offset): they
    // get one of the copy, shared again.
    for group in by_description(readers) {
        let Ok(copy) = reopen_on(group[0].0, upper) else {
            continue;
        };
        for (fd, info) in group {
            if put_under(&copy, fd).is_ok() {
                // The copy is opened without `O_NOATIME` (`reopen_on`).
                let moved = FdInfo {
                    lower: false,
                    rel: info.rel.clone(),
                    node: None,
                    unstamped: false,
                    ..*info
                };
                store_fd(fd, Arc::new(moved));
            }
        }
    }
}

/// After a copy-up of the directory `rel` (its copy at `upper`): this
/// process's descriptors open on the lower directory are put on the copy
/// (at their start, with their access mode and close-on-exec flag;
/// duplicates still sharing one), as the kernel's descriptors of the
/// directory reach its copy from then on: a change through one changes
/// the copy, and `fstat` shows it, also once it is removed. Not one a
/// directory stream reads, nor one read from already (with any duplicate
/// of it): a stream goes on in the directory it started in, and switches
/// to the merged one at its next start (the shim's `dir.rs`).
pub(crate) fn repoint_lower_dirs(ovl: &Overlay, rel: &[u8], upper: &CStr) {
    if crate::vfork::in_child() {
        return; // the parent's table, and the child's descriptors may differ
    }
    let dirs = lower_fds_at(rel, true);
    if dirs.is_empty() {
        return;
    }
    let Ok(Resolved::Inside(copy)) = ovl.resolve(rel, false) else {
        return;
    };
    if copy.layer != crate::overlay::UPPER || !copy.is_dir() {
        return;
    }
    for group in by_description(dirs) {
        if group.iter().any(|(_, info)| info.stream) {
            continue;
        }
        let Ok(new) = reopen_dir_on(group[0].0, upper) else {
            continue;
        };
        for (fd, _) in group {
            if put_under(&new, fd).is_ok() {
                store_fd(fd, Arc::new(ovl.fd_info(&copy)));
            }
        }
    }
}

/// `fds` in groups sharing one open file description each.
fn by_description(fds: Vec<(i32, Arc<FdInfo>)>) -> Vec<Vec<(i32, Arc<FdInfo>)>> {
    let mut groups: Vec<Vec<(i32, Arc<FdInfo>)>> = Vec::new();
    for entry in fds {
        match groups
            .iter_mut()
            .find(|g| same_description(g[0].0, entry.0))
        {
            Some(group) => group.push(entry),
            None => groups.push(vec![entry]),
        }
    }
    groups
}

/// A new open file description of the directory `upper`, as `fd`'s (a
/// descriptor of its lower directory): `O_PATH` or for reading, and only
/// while `fd` is at its start (nothing read through it yet).
fn reopen_dir_on(fd: i32, upper: &CStr) -> Result<rustix::fd::OwnedFd, Errno> {
    use rustix::fs::{Mode, OFlags, SeekFrom};
    // SAFETY: `fd` is open: the table follows closes.
    let old = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
    let flags = rustix::fs::fcntl_getfl(old)?;
    let path = flags.contains(OFlags::PATH);
    if !path && rustix::fs::seek(old, SeekFrom::Current(0))? != 0 {
        return Err(Errno::BUSY);
    }
    let mode = if path { OFlags::PATH } else { OFlags::RDONLY };
    let kept = flags & OFlags::NONBLOCK;
    rustix::fs::open(
        upper,
        mode | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | kept,
        Mode::empty(),
    )
}

/// Before a read through `fd` (or its `fstat`): a descriptor reading a lower
/// file that another process has copied up since reads the copy from now
/// on, at its offset, as on the kernel's overlayfs (which looks at every
/// read). One load of the shared count of copy-ups says whether anything
/// was copied up meanwhile; only then is the file's upper name looked at.
pub fn catch_up_reader(ovl: &Overlay, fd: i32) {
    if crate::vfork::in_child() {
        return; // the parent's table: this child's descriptors may differ
    }
    let now = ovl.copy_ups();
    let stale = with_fd_info(fd, |info| {
        info.filter(|i| is_lower_reader(i))
            .filter(|i| i.copy_ups != now || now == crate::generation::UNCACHEABLE)
            .map(|i| i.rel.clone())
    });
    let Some(rel) = stale else {
        return;
    };
    let upper = ovl.upper_path(&rel);
    match rustix::fs::lstat(upper.as_c_str()) {
        Ok(st)
            if rustix::fs::FileType::from_raw_mode(st.st_mode).is_file()
                && is_copy_of_fd(ovl, fd, st.st_ino) =>
        {
            repoint_lower_fds(&rel, &upper);
        }
        // Still the lower file's: nothing to look at before the next copy-up.
        _ => update_fd_info(fd, &rel, |info| info.copy_ups = now),
    }
}

/// Does `info` describe a descriptor of a directory shown from one lower
/// layer (as it was when last looked at), whose copy-up a stream on it
/// follows at its next start?
pub fn is_lower_only_dir(info: &FdInfo) -> bool {
    info.lower && !info.merged
}

/// For `fd`, a descriptor of a directory, `real` its real device and
/// inode numbers: when it is open on a lower layer's directory that has
/// been copied up since, the directory as the view shows it now (the
/// kernel's `fstat` of such a descriptor reports the upper directory's
/// attributes, and one link). `None`: it has not been, or `fd` is open on
/// no lower directory of the view.
pub fn copied_up_dir(ovl: &Overlay, fd: i32, real: (u64, u64)) -> Option<Node> {
    let (info, now) = lower_dir_copy_up_unseen(ovl, fd)?;
    copy_at_its_name(ovl, fd, &info, now, real)
}

/// [`copied_up_dir`] for a caller without the descriptor's `fstat`: that
/// is made only when a directory has been copied up since `fd` last looked.
pub fn copied_up_dir_of(ovl: &Overlay, fd: i32) -> Option<Node> {
    let (info, now) = lower_dir_copy_up_unseen(ovl, fd)?;
    // SAFETY: `fd` is open: the table follows closes.
    let st = rustix::fs::fstat(unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) }).ok()?;
    copy_at_its_name(ovl, fd, &info, now, (st.st_dev, st.st_ino))
}

/// `fd`'s record and the count of directory copy-ups, when `fd` is open on
/// a lower object and a directory has been copied up since it last looked
/// (one load otherwise).
fn lower_dir_copy_up_unseen(ovl: &Overlay, fd: i32) -> Option<(Arc<FdInfo>, u64)> {
    if crate::vfork::in_child() {
        return None; // the parent's table: this child's descriptors may differ
    }
    let info = fd_info(fd).filter(|i| i.lower)?;
    let now = ovl.dir_copy_ups();
    if info.dir_copy_ups == now && now != crate::generation::UNCACHEABLE {
        return None;
    }
    Some((info, now))
}

/// The copy of the lower directory `fd` (of record `info`, real identity
/// `real`) is open on, as the view shows it now at its name; else `None`,
/// noted while the name still shows the lower directory (at count `now`).
/// Found, it is another process's copy, which this process's descriptors
/// of the lower directory follow from now on.
fn copy_at_its_name(
    ovl: &Overlay,
    fd: i32,
    info: &FdInfo,
    now: u64,
    real: (u64, u64),
) -> Option<Node> {
    match ovl.resolve(&info.rel, false) {
        // The copy of this directory, not another put at its name since.
        Ok(Resolved::Inside(n))
            if n.is_dir() && ovl.layer_identity(n.layer, &n.rel, &n.stat) == Some(real) =>
        {
            ovl.follow_dir_copy(&info.rel, &n);
            Some(n)
        }
        Ok(Resolved::Inside(n)) if n.is_dir() && n.layer != crate::overlay::UPPER => {
            note_dir_not_copied_up(fd, &info.rel, now);
            None
        }
        _ => None,
    }
}

/// The directory `fd` is open on (at `rel`) was found still not copied up
/// when the count of directory copy-ups was `count`: its streams need not
/// look again before the next.
pub fn note_dir_not_copied_up(fd: i32, rel: &[u8], count: u64) {
    if crate::vfork::in_child() {
        return;
    }
    update_fd_info(fd, rel, |info| info.dir_copy_ups = count);
}

/// Is the upper file of inode `copy_ino` a copy of the lower file `fd` is
/// open on (not another file put in its name's place since)?
fn is_copy_of_fd(ovl: &Overlay, fd: i32, copy_ino: u64) -> bool {
    // SAFETY: `fd` is open: the table follows closes.
    let lower = rustix::fs::fstat(unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) });
    lower.is_ok_and(|st| {
        ovl.fd_file_key(fd, &st)
            .is_some_and(|key| ovl.is_copy_of(key, copy_ino))
    })
}

/// Do `a` and `b` share one open file description (`kcmp`)? `false` when
/// the kernel will not say.
fn same_description(a: i32, b: i32) -> bool {
    const KCMP_FILE: libc::c_long = 0;
    let pid = libc::c_long::from(rustix::process::getpid().as_raw_nonzero().get());
    let r = crate::sys::syscall_keeping_errno(|| {
        // SAFETY: kcmp only compares two descriptors of this process.
        unsafe {
            libc::syscall(
                libc::SYS_kcmp,
                pid,
                pid,
                KCMP_FILE,
                libc::c_long::from(a),
                libc::c_long::from(b),
            )
        }
    });
    r == Ok(0)
}

/// A new open file description of `upper` with the status flags and offset
/// of `fd`'s (a reader of the file's lower copy, or an `O_PATH` descriptor
/// of it: that reads nothing, but its `fstat` shows the copy on the kernel).
fn reopen_on(fd: i32, upper: &CStr) -> Result<rustix::fd::OwnedFd, Errno> {
    use rustix::fs::{Mode, OFlags, SeekFrom};
    // SAFETY: `fd` is open: the table follows closes.
    let old = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
    let flags = rustix::fs::fcntl_getfl(old)?;
    if flags.contains(OFlags::PATH) {
        // `NOFOLLOW`: the copy of a symbolic link is the link itself.
        let path = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        return rustix::fs::open(upper, path, Mode::empty());
    }
    if flags.intersects(OFlags::WRONLY | OFlags::RDWR) {
        return Err(Errno::INVAL); // only readers stay on a lower file
    }
    let offset = rustix::fs::seek(old, SeekFrom::Current(0))?;
    let kept = flags & (OFlags::NONBLOCK | OFlags::APPEND);
    let copy = rustix::fs::open(
        upper,
        OFlags::RDONLY | OFlags::CLOEXEC | kept,
        Mode::empty(),
    )?;
    rustix::fs::seek(&copy, SeekFrom::Start(offset))?;
    Ok(copy)
}

/// Puts `copy` under the number `fd`, keeping `fd`'s close-on-exec flag.
/// (Record locks the process held on the lower file go, as with any close;
/// the view no longer shows that file.)
fn put_under(copy: &rustix::fd::OwnedFd, fd: i32) -> Result<(), Errno> {
    use rustix::fd::FromRawFd;
    // SAFETY: `fd` is open (the table follows closes) and is never closed
    // here: the wrapper is not dropped, dup3 only replaces what it refers to.
    let mut old = std::mem::ManuallyDrop::new(unsafe { rustix::fd::OwnedFd::from_raw_fd(fd) });
    let cloexec = rustix::io::fcntl_getfd(&*old)?.contains(rustix::io::FdFlags::CLOEXEC);
    let flags = if cloexec {
        rustix::io::DupFlags::CLOEXEC
    } else {
        rustix::io::DupFlags::empty()
    };
    rustix::io::dup3(copy, &mut old, flags)
}

impl Overlay {
    /// Could the directory `info` describes, one with a lower layer's part,
    /// have been removed (and its name given to another) since it was last
    /// checked? Only when the layers' names changed since.
    pub(crate) fn may_be_gone(&self, info: &FdInfo) -> bool {
        self.has_upper && (info.lower || info.merged) && info.rel_seen != self.generation()
    }

    /// Has the directory the view's descriptor `fd` is open on been removed
    /// from the view? Looked at only when it has a lower layer's part and
    /// the layers' names changed since it was last seen in place (a
    /// directory of the upper layer alone shows its removal itself). A
    /// stream on it lists nothing then, as on the kernel.
    pub fn fd_dir_is_gone(&self, fd: i32) -> bool {
        let seen = with_fd_info(fd, |info| {
            info.filter(|i| self.may_be_gone(i))
                .map(|i| (i.rel.clone(), !i.lower))
        });
        seen.is_some_and(|(rel, on_upper)| self.dir_is_gone(fd, &rel, on_upper))
    }

    /// Has the directory `fd` is open on (with a lower layer's part, once
    /// at `rel`) been removed from the view? Then names relative to it are
    /// in no directory (`ENOENT`), as on the kernel, whatever now has its
    /// name. A descriptor of the upper directory (`on_upper`): by its link
    /// count. One of a lower directory: by what the view shows at `rel`
    /// ([`Overlay::still_shows_lower_dir`]).
    pub(crate) fn dir_is_gone(&self, fd: i32, rel: &[u8], on_upper: bool) -> bool {
        // Before the look: a later change is seen next time.
        let now = self.generation();
        // SAFETY: `fd` is open: the table follows closes.
        let own = rustix::fs::fstat(unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) });
        let Some(own) = own
            .ok()
            .filter(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())
        else {
            return false; // not a directory: the look-up answers
        };
        let gone = if on_upper {
            own.st_nlink == 0
        } else {
            !self.still_shows_lower_dir(rel)
        };
        if !gone && !crate::vfork::in_child() {
            update_fd_info(fd, rel, |info| {
                // (One of the upper layer alone may have moved: `moved_rel` looks.)
                if info.lower || info.merged {
                    info.rel_seen = now;
                }
            });
        }
        gone
    }

    /// Does a call's `(dirfd, path)` fail only at the look-up of its last
    /// name: one name relative to a directory removed from the view (the
    /// current one, or `dirfd`'s), which holds none? The kernel finds the
    /// parents of all a call's paths before it looks a last name up, so
    /// another path's error there (`ENOTDIR`) comes first.
    pub fn fails_at_last_name(&self, dirfd: i32, path: &[u8]) -> bool {
        let name = trim_trailing_slashes(path);
        !name.is_empty()
            && !name.contains(&b'/')
            && if dirfd == libc::AT_FDCWD {
                cwd_is_gone()
            } else {
                self.fd_dir_is_gone(dirfd)
            }
    }

    /// Does the view still show the lower directory once at `rel` there:
    /// from its lower layer, or merged with a copy? A directory made at its
    /// name after a removal is opaque: it merges nothing.
    pub(crate) fn still_shows_lower_dir(&self, rel: &[u8]) -> bool {
        matches!(self.resolve(rel, false), Ok(Resolved::Inside(node))
            if node.is_dir() && (node.layer != crate::overlay::UPPER || node.is_merged()))
    }

    /// Could the object `info` describes have moved since its `rel` was
    /// last checked? Only one of the upper layer alone can (a directory a
    /// lower layer has, and everything in it, cannot: `EXDEV`), and only
    /// when the layers' names changed since.
    pub(crate) fn rel_may_have_moved(&self, info: &FdInfo) -> bool {
        self.has_upper && !info.lower && !info.merged && info.rel_seen != self.generation()
    }

    /// Where the descriptor `fd` (once at `old`) is in the view now, by its
    /// real path; remembered for its next use. `None` when its object has
    /// been removed; `old` when that cannot be told (outside the layers).
    pub(crate) fn moved_rel(&self, fd: i32, old: &[u8]) -> Option<Vec<u8>> {
        let now = self.generation(); // before the look: a later change is seen next time
        let real = crate::sys::real_path_of_fd(fd);
        if real
            .as_ref()
            .is_some_and(|real| real.ends_with(b" (deleted)"))
        {
            return None;
        }
        let Some(rel) = real.and_then(|real| self.real_to_rel(&real).map(<[u8]>::to_vec)) else {
            return Some(old.to_vec());
        };
        if !crate::vfork::in_child() {
            update_fd_info(fd, old, |info| {
                info.rel.clone_from(&rel);
                info.rel_seen = now;
                if let Some(node) = info.node.as_mut() {
                    node.rel.clone_from(&rel);
                }
            });
        }
        Some(rel)
    }

    /// What a change through `fd`, a descriptor open on a lower object once
    /// at `rel`, is made on: the view's object there, while it is that
    /// object (itself, or its copy). When the name shows nothing or another
    /// object now (removed, or replaced, by this process or another), the
    /// kernel's answer when it copies up an object whose name has gone (see
    /// [`Overlay::copy_up_of_gone_fails`]). (It changes a copy made before
    /// the name went, which no name reaches any more.)
    pub fn lower_object_of_fd(&self, fd: i32, rel: &[u8]) -> Result<Resolved, Errno> {
        match self.shown_lower_object_of_fd(fd, rel)? {
            Ok(shown) => {
                if let Resolved::Inside(n) = &shown {
                    self.follow_dir_copy(rel, n);
                }
                Ok(shown)
            }
            Err(st) => {
                let is_dir = rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir();
                Err(self.copy_up_of_gone_fails(rel, is_dir))
            }
        }
    }

    /// `n`, what the view shows at `rel` of a lower directory a descriptor
    /// of this process is open on, is its copy (another process's: this
    /// one's own copy-ups put its descriptors on the copy at once): this
    /// process's descriptors of the lower directory are put on it now, so
    /// that they keep it once it is renamed or removed, as the kernel's do.
    fn follow_dir_copy(&self, rel: &[u8], n: &Node) {
        if n.layer == crate::overlay::UPPER && n.is_dir() {
            let upper = crate::sys::cpath(&self.real_path(n.layer, &n.rel));
            repoint_lower_dirs(self, rel, &upper);
        }
    }

    /// What the view shows of the lower object `fd` is open on, once at
    /// `rel`: `Ok(it)` while that is the object (itself, or its copy);
    /// `Err(its fstat)` when the name shows nothing or another object now.
    /// Only looks (a query such as `readlink` of its link changes nothing).
    pub fn shown_lower_object_of_fd(
        &self,
        fd: i32,
        rel: &[u8],
    ) -> Result<Result<Resolved, rustix::fs::Stat>, Errno> {
        // SAFETY: `fd` is open: the table follows closes.
        let own = || rustix::fs::fstat(unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) });
        Ok(match self.resolve(rel, false) {
            // Lower layers never change: a name one of them shows is the
            // same object still.
            Ok(Resolved::Inside(node)) if node.layer != crate::overlay::UPPER => {
                Ok(Resolved::Inside(node))
            }
            Ok(Resolved::Inside(node)) => {
                let st = own()?;
                match self.is_copy_of_fd_object(rel, fd, &st) {
                    Some(false) => Err(st),
                    _ => Ok(Resolved::Inside(node)),
                }
            }
            Err(Errno::NOENT) => Err(own()?),
            other => Ok(other?),
        })
    }

    /// The kernel's answer to a change of a lower object whose name `rel`
    /// has gone since (removed, or given to another object): its copy-up
    /// fails on what the name holds now. `EEXIST` for a file; for a
    /// directory, whose copy is renamed over that, `ENOTEMPTY` over a
    /// directory with entries and `ENOTDIR` over a whiteout or a file. (Over
    /// an empty directory the kernel's rename succeeds, and the copy of the
    /// removed directory replaces the new one on disk; ovl leaves the new
    /// one alone and fails with `ENOTDIR`.) The upper parent is marked
    /// impure, as the kernel leaves it.
    pub fn copy_up_of_gone_fails(&self, rel: &[u8], is_dir: bool) -> Errno {
        let parent = self.upper_path(crate::lookup::split_last(rel).0);
        if rustix::fs::lstat(parent.as_c_str())
            .is_ok_and(|p| rustix::fs::FileType::from_raw_mode(p.st_mode).is_dir())
        {
            self.mark_impure(&parent);
        }
        if !is_dir {
            return Errno::EXIST;
        }
        // A whiteout or a file has no entries to read.
        if crate::sys::entries(&self.upper_path(rel)).is_empty() {
            Errno::NOTDIR
        } else {
            Errno::NOTEMPTY
        }
    }
}
