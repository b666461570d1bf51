//! inotify watches on lower files follow the file's copy-up. On the kernel's
//! overlay a watch is on the overlay's object, which stays one object across
//! its copy-up: `tail -f` of a lower file sees what another process appends
//! through the view. Here a watch on a lower file is a watch on the real
//! lower file, which never changes; so the watching descriptor also watches
//! the work directory, where every copy is built and from which it is
//! renamed into upper (`IN_MOVED_FROM`). When that wakes a reader, a copy of
//! a watched lower file (told by its origin record, or the copy-ups' records
//! of `generation.rs`) gets a watch of its own, whose events are handed to
//! the program under the first watch's number; the work directory's events
//! never reach the program, nor do the copy-up's own reads of the lower
//! file (the kernel's copy-up makes no events). A write that landed in the
//! copy before its watch was added shows as `IN_OPEN` and one `IN_MODIFY`
//! (the copy's modification time differs from the lower file's), then
//! `IN_CLOSE_WRITE` when no process has the copy open for writing any more.

use crate::overlay::{Overlay, UPPER};
use rustix::fd::BorrowedFd;
use rustix::fs::inotify::{self, WatchFlags};
use rustix::fs::Stat;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A program's watch on a lower file of the view.
struct Followed {
    /// The watch's number, on the lower file.
    wd: i32,
    rel: Vec<u8>,
    /// The lower file's device and inode numbers, modification time, mode
    /// and owner.
    lower: (u64, u64),
    mtime: (i64, i64),
    owner: (u32, u32, u32),
    mask: u32,
    /// The watch on its copy, once there is one.
    copy_wd: Option<i32>,
    /// Once it has one: the events the copy had before its watch, for the
    /// next read to hand over (after dropping the copy-up's read of the
    /// lower file).
    pending: Option<Vec<u32>>,
}

/// An inotify descriptor with watches on lower files.
struct Watcher {
    fd: i32,
    /// Its watch on the work directory.
    work_wd: i32,
    followed: Vec<Followed>,
    /// Watches on copies removed with their program's watch: their
    /// `IN_IGNORED` is not the program's.
    retired: Vec<i32>,
    /// [`Followed::pending`] of watches removed since.
    unflushed: Vec<(i32, Vec<u32>)>,
}

static WATCHERS: Mutex<Vec<Watcher>> = Mutex::new(Vec::new());
/// Some descriptor has a watch followed: a close looks at [`WATCHERS`].
static ANY: AtomicBool = AtomicBool::new(false);

const EVENT_HEADER: usize = 16;
/// The events of the copy-up's own read of the lower file.
const COPY_UP_READ: u32 = libc::IN_OPEN | libc::IN_ACCESS | libc::IN_CLOSE_NOWRITE;

fn borrow(fd: i32) -> BorrowedFd<'static> {
    // SAFETY: only used for calls on `fd` made while the caller holds it
    // open (the program's inotify descriptor, during a hook on it).
    unsafe { BorrowedFd::borrow_raw(fd) }
}

fn add_watch(fd: i32, path: &std::ffi::CStr, mask: u32) -> Option<i32> {
    let flags = WatchFlags::from_bits_retain(mask & !libc::IN_MASK_CREATE);
    inotify::add_watch(borrow(fd), path, flags).ok()
}

/// After the program's watch `wd` on `fd` was put on the lower file at `rel`
/// (`st`: its `lstat`): follows it to the file's copy, when one appears.
pub fn follow(ovl: &Overlay, fd: i32, wd: i32, rel: &[u8], st: &Stat, mask: u32) {
    if !ovl.has_upper || crate::vfork::in_child() {
        return;
    }
    let Some(work) = ovl.work.as_ref() else {
        return;
    };
    let Ok(mut watchers) = WATCHERS.lock() else {
        return;
    };
    let at = match watchers.iter().position(|w| w.fd == fd) {
        Some(at) => at,
        None => {
            let root = crate::sys::cpath(&work.root);
            let Some(work_wd) = add_watch(fd, &root, libc::IN_MOVED_FROM | libc::IN_ONLYDIR) else {
                return;
            };
            watchers.push(Watcher {
                fd,
                work_wd,
                followed: Vec::new(),
                retired: Vec::new(),
                unflushed: Vec::new(),
            });
            crate::locate::note_watcher(fd, true);
            ANY.store(true, Ordering::Release);
            watchers.len() - 1
        }
    };
    let followed = &mut watchers[at].followed;
    let mask = match followed.iter().position(|f| f.wd == wd) {
        // Watched again: the kernel replaces the mask (or adds to it).
        Some(i) => {
            let old = followed.remove(i);
            if mask & libc::IN_MASK_ADD != 0 {
                old.mask | mask
            } else {
                mask
            }
        }
        None => mask,
    };
    followed.push(Followed {
        wd,
        rel: rel.to_vec(),
        lower: (st.st_dev, st.st_ino),
        mtime: mtime_of(st),
        owner: (st.st_mode, st.st_uid, st.st_gid),
        mask: mask & !(libc::IN_MASK_ADD | libc::IN_MASK_CREATE),
        copy_wd: None,
        pending: None,
    });
}

/// A watch on `fd` added by `add` to the upper file at `rel` (`st`: its
/// `lstat`), and the number the program knows for it: the first watch's,
/// when that file is the copy of a watched lower file (one object, one
/// watch, as on the kernel).
pub fn add_upper_watch(
    ovl: &Overlay,
    fd: i32,
    rel: &[u8],
    st: &Stat,
    mask: u32,
    add: impl FnOnce() -> i32,
) -> i32 {
    if !ANY.load(Ordering::Acquire) {
        return add();
    }
    let Ok(mut watchers) = WATCHERS.lock() else {
        return add();
    };
    let Some(f) = watchers
        .iter_mut()
        .find(|w| w.fd == fd)
        .and_then(|w| w.followed.iter_mut().find(|f| f.rel == rel))
    else {
        return add();
    };
    // Copied up since it was watched, and not read since: the watch added
    // now is the copy's (with the program's mask, as the kernel's would).
    let switching = f.copy_wd.is_none() && is_copy(ovl, f, st);
    let pending = switching.then(|| made_up_events(f, st, || has_no_writer(&ovl.upper_path(rel))));
    let wd = add();
    if wd < 0 || !(switching || f.copy_wd == Some(wd)) {
        return wd;
    }
    if switching {
        f.copy_wd = Some(wd);
        f.pending = pending;
    }
    f.mask = mask & !(libc::IN_MASK_ADD | libc::IN_MASK_CREATE);
    f.wd
}

/// `inotify_rm_watch(fd, wd)`: forgets the followed watch `wd`; the watch
/// on its copy, if any, is for the caller to remove too.
pub fn unfollow(fd: i32, wd: i32) -> Option<i32> {
    if !ANY.load(Ordering::Acquire) {
        return None;
    }
    let mut watchers = WATCHERS.lock().ok()?;
    let watcher = watchers.iter_mut().find(|w| w.fd == fd)?;
    let i = watcher.followed.iter().position(|f| f.wd == wd)?;
    let f = watcher.followed.remove(i);
    watcher.retired.extend(f.copy_wd);
    watcher.unflushed.extend(f.pending.map(|p| (f.wd, p)));
    f.copy_wd
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
pub fn forget(fd: i32) {
    if !ANY.load(Ordering::Acquire) {
        return;
    }
    if let Ok(mut watchers) = WATCHERS.lock() {
        if let Some(i) = watchers.iter().position(|w| w.fd == fd) {
            watchers.remove(i);
            crate::locate::note_watcher(fd, false);
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

/// One event of a buffer read from an inotify descriptor.
#[derive(Clone, Copy)]
struct Event {
    wd: i32,
    mask: u32,
    /// Its whole length (header and name).
    len: usize,
}

fn event_at(buf: &[u8], at: usize) -> Option<Event> {
    let header = buf.get(at..at + EVENT_HEADER)?;
    let word = |i: usize| u32::from_ne_bytes(header[i..i + 4].try_into().unwrap_or_default());
    let len = EVENT_HEADER + word(12) as usize;
    (at + len <= buf.len()).then_some(Event {
        wd: word(0) as i32,
        mask: word(4),
        len,
    })
}

/// Is `buf` a run of whole events, as a read of an inotify descriptor gives?
fn whole_events(buf: &[u8]) -> bool {
    let mut at = 0;
    while let Some(ev) = event_at(buf, at) {
        at += ev.len;
    }
    at == buf.len()
}

fn set_wd(buf: &mut [u8], at: usize, wd: i32) {
    buf[at..at + 4].copy_from_slice(&wd.to_ne_bytes());
}

/// The events read from `fd` into `buf` (`len` bytes of it), as the program
/// sees them: the work directory's events dropped (each one a chance that a
/// watched file was copied up), the copy's watch numbered as the lower
/// file's, the copy-up's own read of the lower file dropped. Returns the
/// length kept (0: nothing for the program).
pub fn translate(ovl: &Overlay, fd: i32, buf: &mut [u8], len: usize) -> usize {
    let Ok(mut watchers) = WATCHERS.lock() else {
        return len;
    };
    let Some(watcher) = watchers.iter_mut().find(|w| w.fd == fd) else {
        return len;
    };
    if !whole_events(&buf[..len]) {
        return len; // not an inotify descriptor's read (a number reused unseen)
    }
    let (mut at, mut kept, mut woke) = (0, 0, false);
    while let Some(ev) = event_at(&buf[..len], at) {
        let from = at;
        at += ev.len;
        if ev.wd == watcher.work_wd {
            woke = true;
            continue;
        }
        if let Some(i) = watcher.retired.iter().position(|&wd| wd == ev.wd) {
            if ev.mask & libc::IN_IGNORED != 0 {
                watcher.retired.remove(i);
            }
            continue;
        }
        buf.copy_within(from..from + ev.len, kept);
        if let Some(f) = watcher.followed.iter().find(|f| f.copy_wd == Some(ev.wd)) {
            set_wd(buf, kept, f.wd);
        }
        kept += ev.len;
    }
    // Looked at once all events are in: a copy made by the last of them is
    // there already for the first.
    if woke || !watcher.unflushed.is_empty() || watcher.followed.iter().any(|f| f.pending.is_some())
    {
        kept = switch_to_copies(ovl, fd, watcher, buf, kept);
    }
    kept
}

/// After events of the work directory: each followed watch whose file has a
/// copy now watches the copy too. Then the events the copies had before
/// their watches are written after the events kept (which end at `kept`),
/// in the rest of the caller's buffer `buf` (as many as fit), the copy-up's
/// read of the lower file dropped. Returns the new end.
fn switch_to_copies(
    ovl: &Overlay,
    fd: i32,
    watcher: &mut Watcher,
    buf: &mut [u8],
    mut kept: usize,
) -> usize {
    for f in watcher.followed.iter_mut().filter(|f| f.copy_wd.is_none()) {
        let upper = ovl.upper_path(&f.rel);
        let Ok(st) = rustix::fs::lstat(upper.as_c_str()) else {
            continue;
        };
        if !is_copy(ovl, f, &st) {
            continue;
        }
        // Asked before the watch is added, which would see the asking.
        let pending = made_up_events(f, &st, || has_no_writer(&upper));
        let Some(copy_wd) = add_watch(fd, &upper, f.mask) else {
            continue;
        };
        f.copy_wd = Some(copy_wd);
        f.pending = Some(pending);
    }
    let pending = watcher
        .followed
        .iter_mut()
        .filter_map(|f| Some((f.wd, f.pending.take()?)));
    for (wd, made_up) in pending
        .collect::<Vec<_>>()
        .into_iter()
        .chain(watcher.unflushed.drain(..))
    {
        kept = replace_copy_up_read(buf, kept, wd, &made_up);
    }
    kept
}

/// The events a copy (`st`) had before its watch, among those `f` asks for:
/// when its modification time is not the lower file's, an open, then a
/// modification (or a change of attributes, for times set as `touch` sets
/// them), and a close if `closed` says no writer has it open any more; a
/// change of attributes when its mode or owner is not the lower file's.
fn made_up_events(f: &Followed, st: &Stat, closed: impl FnOnce() -> bool) -> Vec<u32> {
    let mtime = mtime_of(st);
    let opened = mtime != f.mtime;
    // `touch` sets both times to one instant; a write leaves the access time.
    let touched = opened && mtime == atime_of(st);
    let written = opened && !touched;
    let changed = touched || (st.st_mode, st.st_uid, st.st_gid) != f.owner;
    let closed = opened && f.mask & libc::IN_CLOSE_WRITE != 0 && closed();
    [
        (opened, libc::IN_OPEN),
        (written, libc::IN_MODIFY),
        (changed, libc::IN_ATTRIB),
        (closed, libc::IN_CLOSE_WRITE),
    ]
    .into_iter()
    .filter(|&(happened, mask)| happened && f.mask & mask != 0)
    .map(|(_, mask)| mask)
    .collect()
}

/// Does no process have the file at `path` open for writing? A read lease
/// is refused (`EAGAIN`) while one does; it is let go at once.
fn has_no_writer(path: &std::ffi::CStr) -> bool {
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

/// Is the regular upper file `st` (at the followed watch's name) a copy of
/// its lower file, not another file put in its place?
fn is_copy(ovl: &Overlay, f: &Followed, st: &Stat) -> bool {
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return false;
    }
    ovl.layer_identity(UPPER, &f.rel, st) == Some(f.lower)
        || ovl.is_copy_of(crate::generation::file_key(f.lower.0, f.lower.1), st.st_ino)
}

/// Replaces, in the events kept (`buf[..kept]`), the last read of the lower
/// file by watch `wd` (an `IN_OPEN` followed by nothing but `IN_ACCESS` and
/// `IN_CLOSE_NOWRITE` of that watch: the copy-up's own) by the events
/// `made_up` of that watch, put at the end when there is no such read; as
/// many as fit in `buf`. Returns the new end.
fn replace_copy_up_read(buf: &mut [u8], kept: usize, wd: i32, made_up: &[u32]) -> usize {
    let mut events = Vec::new();
    let mut at = 0;
    while let Some(ev) = event_at(&buf[..kept], at) {
        events.push((at, ev));
        at += ev.len;
    }
    let mut start = events.len();
    for (i, (_, ev)) in events.iter().enumerate().rev() {
        // The watch's removal comes after the events made up, as it did.
        if ev.wd != wd || ev.mask & libc::IN_IGNORED != 0 {
            continue;
        }
        if ev.mask & !COPY_UP_READ != 0 {
            break;
        }
        if ev.mask & libc::IN_OPEN != 0 {
            start = i;
            break;
        }
    }
    let mut tail = Vec::new();
    for &(from, ev) in &events[start..] {
        if ev.wd != wd || ev.mask & libc::IN_IGNORED != 0 {
            tail.extend_from_slice(&buf[from..from + ev.len]);
        }
    }
    let mut end = events.get(start).map_or(kept, |&(from, _)| from);
    let room = buf.len() - end - tail.len();
    for &mask in made_up.iter().take(room / EVENT_HEADER) {
        buf[end..end + EVENT_HEADER].fill(0);
        buf[end..end + 4].copy_from_slice(&wd.to_ne_bytes());
        buf[end + 4..end + 8].copy_from_slice(&mask.to_ne_bytes());
        end += EVENT_HEADER;
    }
    buf[end..end + tail.len()].copy_from_slice(&tail);
    end + tail.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(wd: i32, mask: u32, name: &[u8]) -> Vec<u8> {
        let padded = if name.is_empty() {
            0
        } else {
            (name.len() + 16) & !15
        };
        let mut v = Vec::new();
        v.extend_from_slice(&wd.to_ne_bytes());
        v.extend_from_slice(&mask.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(&(padded as u32).to_ne_bytes());
        v.extend_from_slice(name);
        v.resize(EVENT_HEADER + padded, 0);
        v
    }

    fn events(buf: &[u8]) -> Vec<(i32, u32)> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(ev) = event_at(buf, at) {
            out.push((ev.wd, ev.mask));
            at += ev.len;
        }
        out
    }

    #[test]
    fn the_copy_up_read_gives_way_to_the_events_made_up() {
        let mut buf = [
            event(1, libc::IN_OPEN, b""),
            event(1, libc::IN_CLOSE_NOWRITE, b""),
            event(2, libc::IN_CREATE, b"x"),
            event(1, libc::IN_OPEN, b""),
            event(2, libc::IN_DELETE, b"x"),
            event(1, libc::IN_ACCESS, b""),
            event(1, libc::IN_CLOSE_NOWRITE, b""),
        ]
        .concat();
        let len = buf.len();
        let end = replace_copy_up_read(&mut buf, len, 1, &[libc::IN_MODIFY]);
        assert_eq!(
            events(&buf[..end]),
            vec![
                (1, libc::IN_OPEN),
                (1, libc::IN_CLOSE_NOWRITE),
                (2, libc::IN_CREATE),
                (1, libc::IN_MODIFY),
                (2, libc::IN_DELETE)
            ]
        );
    }

    #[test]
    fn a_read_followed_by_a_write_is_kept_and_the_events_made_up_come_last() {
        let mut buf = [event(1, libc::IN_OPEN, b""), event(1, libc::IN_MODIFY, b"")].concat();
        let len = buf.len();
        buf.resize(len + EVENT_HEADER, 0);
        let end = replace_copy_up_read(&mut buf, len, 1, &[libc::IN_ATTRIB]);
        assert_eq!(
            events(&buf[..end]),
            vec![
                (1, libc::IN_OPEN),
                (1, libc::IN_MODIFY),
                (1, libc::IN_ATTRIB)
            ]
        );
    }
}
