//! A watch on a lower file follows the file's copy-up: the copy gets a watch
//! of its own, whose events are the program's watch's.

use super::events::{encode, COPY_UP_READ};
use crate::overlay::{Overlay, UPPER};
use rustix::fs::{FileType, Stat};
use std::ffi::CStr;

/// A program's watch on a lower file of the view.
pub(super) struct Followed {
    /// The watch's number, on the lower file.
    pub wd: i32,
    pub rel: Vec<u8>,
    /// The lower file's device and inode numbers.
    pub lower: (u64, u64),
    /// What the lower file showed, to tell what its copy had since.
    pub before: Before,
    pub mask: u32,
    /// The watch on its copy, once there is one.
    pub copy_wd: Option<i32>,
    /// A watch of ours on the upper copy of its directory, which hears its
    /// name taken (a whiteout, another file renamed over it).
    pub parent_wd: Option<i32>,
    /// Once it has one: the events the copy had before its watch, for the
    /// next read to hand over (after dropping the copy-up's read of the
    /// lower file).
    pub pending: Option<Vec<Vec<u8>>>,
}

/// A lower file's modification time, mode and owner.
#[derive(Clone, Copy, PartialEq)]
pub(super) struct Before {
    mtime: (i64, i64),
    owner: (u32, u32, u32),
}

impl Before {
    pub fn of(st: &Stat) -> Before {
        Before {
            mtime: mtime_of(st),
            owner: (st.st_mode, st.st_uid, st.st_gid),
        }
    }
}

// The fields are i64 on 64-bit targets, narrower on others.
#[allow(clippy::unnecessary_cast)]
fn mtime_of(st: &Stat) -> (i64, i64) {
    (st.st_mtime as i64, st.st_mtime_nsec as i64)
}

#[allow(clippy::unnecessary_cast)]
fn atime_of(st: &Stat) -> (i64, i64) {
    (st.st_atime as i64, st.st_atime_nsec as i64)
}

impl Followed {
    pub fn new(wd: i32, rel: &[u8], st: &Stat, mask: u32) -> Followed {
        Followed {
            wd,
            rel: rel.to_vec(),
            lower: (st.st_dev, st.st_ino),
            before: Before::of(st),
            mask,
            copy_wd: None,
            parent_wd: None,
            pending: None,
        }
    }

    /// Is the regular upper file `st` (at this watch's name) a copy of its
    /// lower file, not another file put in its place?
    pub fn is_copy(&self, ovl: &Overlay, st: &Stat) -> bool {
        FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
            && (ovl.layer_identity(UPPER, &self.rel, st) == Some(self.lower)
                || ovl.is_copy_of(
                    crate::generation::file_key(self.lower.0, self.lower.1, &self.rel),
                    st.st_ino,
                ))
    }

    /// The events its copy (`st`) had before its watch, for this watch.
    pub fn made_up(&self, st: &Stat, closed: impl FnOnce() -> bool) -> Vec<Vec<u8>> {
        copy_events(&self.before, st, self.mask, closed)
            .into_iter()
            .map(|mask| encode(self.wd, mask, b""))
            .collect()
    }
}

/// The events a copy (`st`) of a lower file (`before`) had before a watch
/// saw it, among those of `mask`: when its modification time is not the
/// lower file's, an open, then a modification (or a change of attributes,
/// for times set as `touch` sets them), and a close if `closed` says no
/// writer has it open any more; a change of attributes when its mode or
/// owner is not the lower file's.
pub(super) fn copy_events(
    before: &Before,
    st: &Stat,
    mask: u32,
    closed: impl FnOnce() -> bool,
) -> Vec<u32> {
    let mtime = mtime_of(st);
    let opened = mtime != before.mtime;
    // `touch` sets both times to one instant; a write leaves the access time.
    let touched = opened && mtime == atime_of(st);
    let written = opened && !touched;
    let changed = touched || (st.st_mode, st.st_uid, st.st_gid) != before.owner;
    let closed = opened && mask & libc::IN_CLOSE_WRITE != 0 && closed();
    [
        (opened, libc::IN_OPEN),
        (written, libc::IN_MODIFY),
        (changed, libc::IN_ATTRIB),
        (closed, libc::IN_CLOSE_WRITE),
    ]
    .into_iter()
    .filter(|&(happened, m)| happened && mask & m != 0)
    .map(|(_, m)| m)
    .collect()
}

/// Does no process have the file at `path` open for writing? A read lease
/// is refused (`EAGAIN`) while one does; it is let go at once.
pub(super) fn has_no_writer(path: &CStr) -> bool {
    use rustix::fd::AsRawFd;
    let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC;
    let Ok(file) = rustix::fs::open(path, flags, rustix::fs::Mode::empty()) else {
        return false;
    };
    let lease = |kind: libc::c_int| {
        crate::sys::syscall_keeping_errno(|| {
            // SAFETY: sets or lets go a lease on a descriptor owned here.
            unsafe {
                libc::syscall(
                    libc::SYS_fcntl,
                    file.as_raw_fd(),
                    libc::F_SETLEASE,
                    libc::c_long::from(kind),
                )
            }
        })
    };
    let free = lease(libc::F_RDLCK).is_ok();
    if free {
        let _ = lease(libc::F_UNLCK);
    }
    free
}

/// After events of the work directory: each followed watch whose file has a
/// copy now watches the copy too (added by `add_watch`), and keeps the
/// events the copy had before.
pub(super) fn switch_to_copies(
    ovl: &Overlay,
    followed: &mut [Followed],
    add_watch: impl Fn(&CStr, u32) -> Option<i32>,
) {
    for f in followed.iter_mut().filter(|f| f.copy_wd.is_none()) {
        let upper = ovl.upper_path(&f.rel);
        let Ok(st) = rustix::fs::lstat(upper.as_c_str()) else {
            continue;
        };
        if !f.is_copy(ovl, &st) {
            continue;
        }
        // Looked at once the watch is on (a change made meanwhile is told
        // twice rather than never), with a mask that does not see the
        // looking; then the full mask.
        let Some(copy_wd) = add_watch(&upper, f.mask & !COPY_UP_READ) else {
            continue;
        };
        let st = rustix::fs::lstat(upper.as_c_str()).unwrap_or(st);
        let pending = f.made_up(&st, || has_no_writer(&upper));
        let _ = add_watch(&upper, f.mask);
        f.copy_wd = Some(copy_wd);
        f.pending = Some(pending);
    }
}

/// What hears a followed file's name taken in its directory's upper copy.
const NAME_TAKEN: u32 = libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_ONLYDIR;

impl Followed {
    /// Watches the upper copy of its directory, once there is one, unless
    /// something watches it already (`IN_MASK_CREATE`: the program's watch
    /// there keeps its own mask).
    pub fn watch_parent(&mut self, ovl: &Overlay, add_watch: impl Fn(&CStr, u32) -> Option<i32>) {
        if self.parent_wd.is_some() || self.copy_wd.is_some() {
            return;
        }
        let (dir, _) = crate::lookup::split_last(&self.rel);
        let upper = ovl.upper_path(dir);
        if rustix::fs::lstat(upper.as_c_str())
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
        {
            self.parent_wd = add_watch(&upper, NAME_TAKEN | libc::IN_MASK_CREATE);
        }
    }

    /// Is the lower file gone from the view, before any copy of it: its
    /// name whited out, or another file's? (Its copy's own watch tells
    /// what happens to the copy.)
    pub fn is_gone(&self, ovl: &Overlay) -> bool {
        if self.copy_wd.is_some() {
            return false;
        }
        let upper = ovl.upper_path(&self.rel);
        let Ok(st) = rustix::fs::lstat(upper.as_c_str()) else {
            return false;
        };
        if crate::whiteout::is_whiteout(&upper, &st) {
            return true;
        }
        if self.is_copy(ovl, &st) {
            return false;
        }
        // A copy records its origin before it appears (where the lower layer
        // makes file handles): one without is another file.
        match ovl.layer_identity(UPPER, &self.rel, &st) {
            Some(origin) => origin != self.lower,
            None => !ovl.has_origin(&upper) && ovl.makes_handles(&self.lower_path(ovl)),
        }
    }

    /// The real path of its lower file.
    fn lower_path(&self, ovl: &Overlay) -> std::ffi::CString {
        let layer = (0..ovl.layers.len())
            .filter(|&l| ovl.is_lower_layer(l))
            .find(|&l| {
                let path = crate::sys::cpath(&ovl.real_path(l, &self.rel));
                rustix::fs::lstat(path.as_c_str())
                    .is_ok_and(|st| (st.st_dev, st.st_ino) == self.lower)
            })
            .unwrap_or(UPPER);
        crate::sys::cpath(&ovl.real_path(layer, &self.rel))
    }

    /// What the program's watch reports when its file goes: its link count
    /// changed, it was deleted, and the watch is gone.
    pub fn gone_events(&self) -> Vec<Vec<u8>> {
        [libc::IN_ATTRIB, libc::IN_DELETE_SELF, libc::IN_IGNORED]
            .into_iter()
            .filter(|&m| m == libc::IN_IGNORED || self.mask & m != 0)
            .map(|m| encode(self.wd, m, b""))
            .collect()
    }
}
