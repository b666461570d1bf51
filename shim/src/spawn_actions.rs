//! `posix_spawn`'s file actions: glibc's child opens their paths with its
//! own internal `open`, which no hook sees. An open that reaches the view
//! (or a lower layer's own tree, for a change) is made now, through the
//! overlay, and the action becomes a `dup2` of that descriptor; the
//! descriptors are closed with the actions object.

use crate::hooks;
use libc::{c_char, c_int, mode_t, posix_spawn_file_actions_t};
use ovl::overlay::Overlay;
use std::sync::Mutex;

/// Descriptors opened for an actions object (its address), until it is
/// destroyed.
static OPENED: Mutex<Vec<(usize, c_int)>> = Mutex::new(Vec::new());

/// Does an open of `path` with `flags` need the overlay: it lies in the
/// view, or it changes a lower layer's file by its real name?
fn needs_overlay(ovl: &Overlay, path: &[u8], flags: c_int) -> bool {
    if !ovl.surely_outside(libc::AT_FDCWD, path) {
        return true;
    }
    let changes = ovl::open::writes(flags) || flags & libc::O_CREAT != 0;
    changes
        && ovl
            .real_in_layers(libc::AT_FDCWD, path, flags & libc::O_NOFOLLOW == 0)
            .is_some_and(|found| found.lower)
}

/// Opens `p` now through the overlay and adds a `dup2` of it to `fd` in
/// place of the open. Returns an error number, as the actions' functions.
///
/// # Safety
/// `fa` is an initialized actions object; `p` a valid C string.
unsafe fn open_now(
    ovl: &Overlay,
    fa: *mut posix_spawn_file_actions_t,
    fd: c_int,
    p: *const c_char,
    flags: c_int,
    mode: mode_t,
) -> c_int {
    // Close-on-exec: the child gets only the `dup2`'s copy.
    // SAFETY: per the contract.
    let ours = unsafe {
        crate::fd::open_in_view(
            ovl,
            libc::AT_FDCWD,
            p,
            flags | libc::O_CLOEXEC,
            mode,
            |d, p, fl, m| libc::openat(d, p, fl, m),
        )
    };
    if ours < 0 {
        return crate::errno();
    }
    // SAFETY: per the contract; `ours` is open.
    let r = unsafe { libc::posix_spawn_file_actions_adddup2(fa, ours, fd) };
    if r != 0 {
        close_ours(ours);
        return r;
    }
    if let Ok(mut opened) = OPENED.lock() {
        opened.push((fa as usize, ours));
    }
    0
}

/// Closes a descriptor this module opened, and the overlay forgets it (a
/// call made inside a hook goes straight to libc's `close`).
fn close_ours(fd: c_int) {
    ovl::locate::forget_fd(fd);
    // SAFETY: a descriptor this module opened and still owns.
    unsafe { libc::close(fd) };
}

hooks! {
    fn posix_spawn_file_actions_addopen(fa: *mut posix_spawn_file_actions_t, fd: c_int, p: *const c_char, fl: c_int, mode: mode_t) -> c_int |real, ovl| {
        match crate::bytes(p) {
            Some(path) if !path.is_empty() && needs_overlay(ovl, path, fl) => open_now(ovl, fa, fd, p, fl, mode),
            _ => real(fa, fd, p, fl, mode),
        }
    }
    fn posix_spawn_file_actions_destroy(fa: *mut posix_spawn_file_actions_t) -> c_int |real, ovl| {
        let _ = ovl;
        let mine: Vec<c_int> = match OPENED.lock() {
            Ok(mut opened) => {
                let (mine, rest) = opened.iter().partition(|(a, _)| *a == fa as usize);
                *opened = rest;
                mine.into_iter().map(|(_, fd)| fd).collect()
            }
            Err(_) => Vec::new(),
        };
        mine.into_iter().for_each(close_ours);
        real(fa)
    }
}
