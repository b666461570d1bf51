//! inotify watches of the view follow copy-ups, as a watch on the kernel's
//! overlay stays on the overlay's object across them. Here a watch is on a
//! real object, and a copy-up makes another: a watch on a lower file would
//! never see what is written through the view (to the copy), one on a lower
//! directory what is created in it (in its upper copy). So an inotify
//! descriptor with such watches also watches the work directory, where every
//! copy is built and from which it is renamed into upper; when that wakes a
//! reader, the copy of a watched lower object gets a watch of its own, whose
//! events the program reads under the first watch's number, as the kernel
//! would report them (`file`, `dir`). The work directory's events never
//! reach the program, nor does a copy-up's own read of a lower file (the
//! kernel's copy-up makes no events). What a copy had before its watch was
//! added (a few microseconds after its rename) is told as the kernel would
//! have told it, not event by event.

mod ahead;
mod dir;
mod events;
mod file;
mod translate;

use crate::lookup::Node;
use crate::overlay::Overlay;
pub use ahead::{
    any_epolled, any_inotify, epolled_watchers, has_ready, inotify_made, note_epoll_ctl,
    read_ahead, ready_len, take_ready,
};
use dir::{upper_mask, DirWatch};
use file::Followed;
use rustix::fd::BorrowedFd;
use rustix::fs::inotify::{self, WatchFlags};
use rustix::fs::FileType;
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
pub use translate::translate;

/// An inotify descriptor with watches that follow copy-ups.
struct Watcher {
    fd: i32,
    /// Its watch on the work directory.
    work_wd: i32,
    files: Vec<Followed>,
    dirs: Vec<DirWatch>,
    /// Watches on copies removed with their program's watch: their
    /// `IN_IGNORED` is not the program's.
    retired: Vec<i32>,
    /// Made-up events of watches removed since (watch, name, events).
    unflushed: Vec<(i32, Vec<u8>, Vec<Vec<u8>>)>,
    /// Events read ahead by a wait (`poll`, `select`) that found the
    /// descriptor readable, as the program sees them, for its next read.
    ready: Vec<u8>,
}

static WATCHERS: Mutex<Vec<Watcher>> = Mutex::new(Vec::new());
/// Some descriptor follows a watch: a close looks at [`WATCHERS`].
static ANY: AtomicBool = AtomicBool::new(false);

fn borrow(fd: i32) -> BorrowedFd<'static> {
    // SAFETY: only used for calls on `fd` made while the caller holds it
    // open (the program's inotify descriptor, during a hook on it).
    unsafe { BorrowedFd::borrow_raw(fd) }
}

fn add_watch(fd: i32, path: &CStr, mask: u32) -> Option<i32> {
    let flags = WatchFlags::from_bits_retain(mask & !(libc::IN_MASK_CREATE | libc::IN_MASK_ADD));
    inotify::add_watch(borrow(fd), path, flags).ok()
}

/// The program's mask as it stands after a watch with `mask` is added over
/// one with `old` (`IN_MASK_ADD` adds to it).
fn merged_mask(old: Option<u32>, mask: u32) -> u32 {
    let flags = libc::IN_MASK_ADD | libc::IN_MASK_CREATE;
    match old {
        Some(old) if mask & libc::IN_MASK_ADD != 0 => (old | mask) & !flags,
        _ => mask & !flags,
    }
}

/// `fd`'s entry in `watchers`, made (with its watch on the work directory)
/// when it has none.
fn watcher_of<'a>(
    ovl: &Overlay,
    watchers: &'a mut Vec<Watcher>,
    fd: i32,
) -> Option<&'a mut Watcher> {
    if let Some(at) = watchers.iter().position(|w| w.fd == fd) {
        return Some(&mut watchers[at]);
    }
    let root = crate::sys::cpath(&ovl.work.as_ref()?.root);
    let moves = libc::IN_MOVED_FROM | libc::IN_MOVED_TO | libc::IN_ONLYDIR;
    let work_wd = add_watch(fd, &root, moves)?;
    watchers.push(Watcher {
        fd,
        work_wd,
        files: Vec::new(),
        dirs: Vec::new(),
        retired: Vec::new(),
        unflushed: Vec::new(),
        ready: Vec::new(),
    });
    crate::fd_table::note_watcher(fd, true);
    ANY.store(true, Ordering::Release);
    watchers.last_mut()
}

/// After the program's watch `wd` on `fd` was put on `node`, a lower object
/// of the view: a file or directory is followed to its copy.
pub fn follow(ovl: &Overlay, fd: i32, wd: i32, node: &Node, mask: u32) {
    let kind = node.file_type();
    if !ovl.has_upper
        || crate::vfork::in_child()
        || !matches!(kind, FileType::RegularFile | FileType::Directory)
    {
        return;
    }
    let Ok(mut watchers) = WATCHERS.lock() else {
        return;
    };
    let Some(watcher) = watcher_of(ovl, &mut watchers, fd) else {
        return;
    };
    if kind == FileType::Directory {
        let old = take(&mut watcher.dirs, |d| d.wd == wd).map(|d| d.mask);
        let dir = DirWatch::new(wd, &node.rel, merged_mask(old, mask), None);
        watcher.dirs.push(dir);
    } else {
        let old = take(&mut watcher.files, |f| f.wd == wd).map(|f| f.mask);
        let mut file = Followed::new(wd, &node.rel, &node.stat, merged_mask(old, mask));
        file.watch_parent(ovl, |path, mask| add_watch(fd, path, mask));
        watcher.files.push(file);
    }
}

fn take<T>(list: &mut Vec<T>, pick: impl Fn(&T) -> bool) -> Option<T> {
    let at = list.iter().position(pick)?;
    Some(list.remove(at))
}

/// A watch on `fd` added by `add` to `node`, an upper object of the view,
/// and the number the program knows for it: the first watch's, when `node`
/// is the copy of a watched lower object (one object, one watch, as on the
/// kernel). A merged directory's watch is followed from now on.
pub fn add_upper_watch(
    ovl: &Overlay,
    fd: i32,
    node: &Node,
    mask: u32,
    add: impl FnOnce() -> i32,
) -> i32 {
    let merged_dir = node.is_dir() && node.is_merged();
    if !ANY.load(Ordering::Acquire) && !merged_dir {
        return add();
    }
    let Ok(mut watchers) = WATCHERS.lock() else {
        return add();
    };
    if node.is_dir() {
        return add_upper_dir_watch(ovl, &mut watchers, fd, node, mask, add);
    }
    let Some(f) = watchers
        .iter_mut()
        .find(|w| w.fd == fd)
        .and_then(|w| w.files.iter_mut().find(|f| f.rel == node.rel))
    else {
        return add();
    };
    // Copied up since it was watched, and not read since: the watch added
    // now is the copy's (with the program's mask, as the kernel's would).
    let switching = f.copy_wd.is_none() && f.is_copy(ovl, &node.stat);
    let upper = ovl.upper_path(&node.rel);
    let pending = switching.then(|| f.made_up(&node.stat, || file::has_no_writer(&upper)));
    let wd = add();
    if wd < 0 || !(switching || f.copy_wd == Some(wd)) {
        return wd;
    }
    if switching {
        f.copy_wd = Some(wd);
        f.pending = pending;
    }
    f.mask = merged_mask(Some(f.mask), mask);
    f.wd
}

/// [`add_upper_watch`] for a directory: its watch gets what tells removals
/// and creations apart.
fn add_upper_dir_watch(
    ovl: &Overlay,
    watchers: &mut Vec<Watcher>,
    fd: i32,
    node: &Node,
    mask: u32,
    add: impl FnOnce() -> i32,
) -> i32 {
    let known = watchers
        .iter()
        .find(|w| w.fd == fd)
        .is_some_and(|w| w.dirs.iter().any(|d| d.rel == node.rel));
    if !known {
        // A new watch on a merged directory: the program's number first (the
        // work directory's watch, made next, takes the one after).
        let wd = add();
        if wd < 0 || !node.is_merged() {
            return wd;
        }
        let Some(watcher) = watcher_of(ovl, watchers, fd) else {
            return wd;
        };
        let dir = DirWatch::new(wd, &node.rel, merged_mask(None, mask), Some(wd));
        let _ = add_watch(fd, &ovl.upper_path(&node.rel), upper_mask(dir.mask));
        watcher.dirs.push(dir);
        return wd;
    }
    let Some(dir) = watchers
        .iter_mut()
        .find(|w| w.fd == fd)
        .and_then(|w| w.dirs.iter_mut().find(|d| d.rel == node.rel))
    else {
        return add();
    };
    let wd = if dir.upper_wd.is_none() {
        // Copied up since it was watched, and not read since.
        let mut wd = -1;
        dir.adopt_upper(ovl, || {
            wd = add();
            (wd >= 0).then_some(wd)
        });
        wd
    } else {
        add()
    };
    if wd < 0 || dir.upper_wd != Some(wd) {
        return wd; // failed, or another object under the same name
    }
    dir.mask = merged_mask(Some(dir.mask), mask);
    let _ = add_watch(fd, &ovl.upper_path(&node.rel), upper_mask(dir.mask));
    dir.wd
}

/// `inotify_rm_watch(fd, wd)`: forgets the followed watch `wd`; the watch
/// on its copy, if any, is for the caller to remove too.
pub fn unfollow(fd: i32, wd: i32) -> Option<i32> {
    if !ANY.load(Ordering::Acquire) {
        return None;
    }
    let mut watchers = WATCHERS.lock().ok()?;
    let watcher = watchers.iter_mut().find(|w| w.fd == fd)?;
    let copy_wd = if let Some(f) = take(&mut watcher.files, |f| f.wd == wd) {
        let pending = f.pending.map(|p| (f.wd, Vec::new(), p));
        watcher.unflushed.extend(pending);
        release_parent(watcher, f.parent_wd);
        f.copy_wd
    } else {
        let d = take(&mut watcher.dirs, |d| d.wd == wd)?;
        let pending = d.pending.into_iter().flatten();
        watcher
            .unflushed
            .extend(pending.map(|(name, events)| (d.wd, name, events)));
        d.upper_wd.filter(|&u| u != wd)
    };
    watcher.retired.extend(copy_wd);
    copy_wd
}

/// Removes our watch `parent_wd` on a followed file's directory when no
/// other followed file uses it.
fn release_parent(watcher: &mut Watcher, parent_wd: Option<i32>) {
    let Some(wd) = parent_wd else {
        return;
    };
    if watcher.files.iter().all(|f| f.parent_wd != Some(wd))
        && inotify::remove_watch(borrow(watcher.fd), wd).is_ok()
    {
        watcher.retired.push(wd);
    }
}

/// A followed file is gone from the view before any copy of it: the
/// program's watch reports its deletion and ends, as the kernel's does.
fn end_gone_files(ovl: &Overlay, watcher: &mut Watcher) {
    while let Some(f) = take(&mut watcher.files, |f| f.is_gone(ovl)) {
        watcher.unflushed.push((f.wd, Vec::new(), f.gone_events()));
        // Its real end (`IN_IGNORED`) is not told again.
        if inotify::remove_watch(borrow(watcher.fd), f.wd).is_ok() {
            watcher.retired.push(f.wd);
        }
        release_parent(watcher, f.parent_wd);
    }
}

/// Is `fd` an inotify descriptor whose reads [`translate`] must see?
pub fn is_watcher(fd: i32) -> bool {
    ANY.load(Ordering::Acquire) && WATCHERS.lock().is_ok_and(|w| w.iter().any(|w| w.fd == fd))
}

/// Does any descriptor follow a watch? (One load: a close's quick test.)
#[inline]
pub fn any() -> bool {
    ANY.load(Ordering::Relaxed)
}

/// `fd` was closed, or is a new descriptor: it follows no watch.
#[inline]
pub fn forget(fd: i32) {
    ahead::forget_epolled(fd);
    if ANY.load(Ordering::Acquire) {
        forget_watcher(fd);
    }
}

#[inline(never)]
fn forget_watcher(fd: i32) {
    if let Ok(mut watchers) = WATCHERS.lock() {
        if take(&mut watchers, |w| w.fd == fd).is_some() {
            crate::fd_table::note_watcher(fd, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mask_added_to_is_the_union() {
        assert_eq!(merged_mask(Some(1), 2 | libc::IN_MASK_ADD), 3);
        assert_eq!(merged_mask(Some(1), 2), 2);
        assert_eq!(merged_mask(None, 2 | libc::IN_MASK_CREATE), 2);
    }
}
