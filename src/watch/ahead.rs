//! Events read ahead by a wait: `poll` or `select` that finds a watching
//! descriptor readable reads and translates its events at once, so that it
//! counts the descriptor ready only when the program has events (not for
//! the overlay's own); the program's next read gets them.

use super::events::event_at;
use super::{borrow, translate, ANY, WATCHERS};
use crate::overlay::Overlay;
use std::sync::atomic::Ordering;

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
