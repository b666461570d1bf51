//! Events read ahead by a wait: `poll`, `select` or `epoll_wait` that finds
//! a watching descriptor readable reads and translates its events at once,
//! so that it counts the descriptor ready only when the program has events
//! (not for the overlay's own); the program's next read gets them. An epoll
//! event names its descriptor only by the program's data: the inotify
//! descriptors' registrations are kept (`epoll_ctl`).

use super::events::event_at;
use super::{borrow, translate, ANY, WATCHERS};
use crate::overlay::Overlay;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Hands the events a wait read ahead from `fd` over to the program's `buf`:
/// as many whole events as fit (`EINVAL` when not even the first does, as
/// the kernel's read); `None` when there are none.
pub fn take_ready(fd: i32, buf: &mut [u8]) -> Option<Result<usize, rustix::io::Errno>> {
    if !ANY.load(Ordering::Acquire) {
        return None;
    }
    let mut watchers = WATCHERS.lock().ok()?;
    let ready = &mut watchers.iter_mut().find(|w| w.fd == fd)?.ready;
    if ready.is_empty() {
        return None;
    }
    let mut end = 0;
    while let Some(ev) = event_at(ready, end) {
        if end + ev.len > buf.len() {
            break;
        }
        end += ev.len;
    }
    if end == 0 {
        return Some(Err(rustix::io::Errno::INVAL));
    }
    buf[..end].copy_from_slice(&ready[..end]);
    ready.drain(..end);
    Some(Ok(end))
}

/// Has a wait read events ahead from `fd` for the program?
pub fn has_ready(fd: i32) -> bool {
    ready_len(fd) > 0
}

/// How many bytes of events a wait read ahead from `fd` for the program.
pub fn ready_len(fd: i32) -> usize {
    if !ANY.load(Ordering::Acquire) {
        return 0;
    }
    WATCHERS.lock().map_or(0, |w| {
        w.iter().find(|w| w.fd == fd).map_or(0, |w| w.ready.len())
    })
}

/// A wait found `fd`, a watching descriptor, readable: reads what it holds
/// (it does not block), keeps the program's events for its next read, and
/// tells whether there are any. A descriptor that woke for the overlay's
/// own events only is not ready for the program.
pub fn read_ahead(ovl: &Overlay, fd: i32) -> bool {
    if has_ready(fd) {
        return true;
    }
    let pending = rustix::io::ioctl_fionread(borrow(fd)).unwrap_or(0) as usize;
    if pending == 0 {
        return false;
    }
    // Room for the events made up beside the ones read.
    let mut buf = vec![0u8; pending + 65536];
    let Ok(got) = rustix::io::read(borrow(fd), &mut buf[..pending]) else {
        return false;
    };
    let kept = translate(ovl, fd, &mut buf, got);
    if kept == 0 {
        return false;
    }
    let Ok(mut watchers) = WATCHERS.lock() else {
        return false;
    };
    match watchers.iter_mut().find(|w| w.fd == fd) {
        Some(w) => {
            w.ready.extend_from_slice(&buf[..kept]);
            true
        }
        None => false,
    }
}

/// inotify descriptors made in this process (`inotify_init`), and their
/// epoll registrations: (epoll descriptor, descriptor, the program's data).
struct Epolled {
    inotify: Vec<i32>,
    registered: Vec<(i32, i32, u64)>,
}

static EPOLLED: Mutex<Epolled> = Mutex::new(Epolled {
    inotify: Vec::new(),
    registered: Vec::new(),
});
/// Some inotify descriptor is registered with an epoll descriptor.
static ANY_EPOLLED: AtomicBool = AtomicBool::new(false);
/// Some inotify descriptor was made (a close looks at [`EPOLLED`]).
static ANY_INOTIFY: AtomicBool = AtomicBool::new(false);

/// `fd` is a new inotify descriptor.
pub fn inotify_made(fd: i32) {
    ANY_INOTIFY.store(true, Ordering::Release);
    if let Ok(mut e) = EPOLLED.lock() {
        if !e.inotify.contains(&fd) {
            e.inotify.push(fd);
        }
    }
}

/// `fd` was closed (or is a new descriptor): not an inotify descriptor, nor
/// an epoll descriptor, any more.
#[inline]
pub fn forget_epolled(fd: i32) {
    if ANY_INOTIFY.load(Ordering::Acquire) {
        forget_epolled_now(fd);
    }
}

#[inline(never)]
fn forget_epolled_now(fd: i32) {
    if let Ok(mut e) = EPOLLED.lock() {
        e.inotify.retain(|&i| i != fd);
        e.registered.retain(|&(ep, f, _)| ep != fd && f != fd);
    }
}

/// After a successful `epoll_ctl(epfd, op, fd, data)`: keeps an inotify
/// descriptor's registration.
pub fn note_epoll_ctl(epfd: i32, op: i32, fd: i32, data: Option<u64>) {
    let Ok(mut e) = EPOLLED.lock() else {
        return;
    };
    if !e.inotify.contains(&fd) {
        return;
    }
    e.registered.retain(|&(ep, f, _)| (ep, f) != (epfd, fd));
    if let (libc::EPOLL_CTL_ADD | libc::EPOLL_CTL_MOD, Some(data)) = (op, data) {
        e.registered.push((epfd, fd, data));
        ANY_EPOLLED.store(true, Ordering::Release);
    }
}

/// Was some inotify descriptor made here? (One load: `epoll_ctl`'s quick
/// test.)
#[inline]
pub fn any_inotify() -> bool {
    ANY_INOTIFY.load(Ordering::Relaxed)
}

/// Is some inotify descriptor registered with an epoll descriptor? (One
/// load: `epoll_wait`'s quick test.)
#[inline]
pub fn any_epolled() -> bool {
    ANY_EPOLLED.load(Ordering::Relaxed)
}

/// The watching descriptors registered with `epfd`, with their data.
pub fn epolled_watchers(epfd: i32) -> Vec<(i32, u64)> {
    let registered: Vec<(i32, u64)> = match EPOLLED.lock() {
        Ok(e) => e
            .registered
            .iter()
            .filter(|&&(ep, _, _)| ep == epfd)
            .map(|&(_, fd, data)| (fd, data))
            .collect(),
        Err(_) => return Vec::new(),
    };
    registered
        .into_iter()
        .filter(|&(fd, _)| super::is_watcher(fd))
        .collect()
}
