//! `posix_spawn`'s file actions: glibc's child opens and changes directory
//! with its own internal calls, which no hook sees. An open that reaches the
//! view (or a lower layer's own tree, for a change) is made now, through the
//! overlay, and the action becomes a `dup2` of that descriptor (closed with
//! the actions object); a change into a directory of the view goes to the
//! directory's topmost real copy, whose name the child's overlay gives back.
//! Relative paths are taken from the directory the child will be in.

use crate::hooks;
use libc::{c_char, c_int, mode_t, posix_spawn_file_actions_t};
use ovl::locate::Where;
use ovl::lookup::Resolved;
use ovl::overlay::Overlay;
use std::sync::Mutex;

/// What the actions objects (by address) added so far hold, until each is
/// destroyed.
struct Added {
    /// Descriptors opened for an object.
    opened: Vec<(usize, c_int)>,
    /// The directory its child will be in, after its last `chdir` action
    /// (the view's name for a directory of the view).
    dirs: Vec<(usize, Vec<u8>)>,
}

static ADDED: Mutex<Added> = Mutex::new(Added {
    opened: Vec::new(),
    dirs: Vec::new(),
});

/// The directory a relative path of `fa`'s next action starts from, when a
/// `chdir` action set it.
fn dir_of(fa: *mut posix_spawn_file_actions_t) -> Option<Vec<u8>> {
    let added = ADDED.lock().ok()?;
    let found = added.dirs.iter().rev().find(|(a, _)| *a == fa as usize);
    found.map(|(_, d)| d.clone())
}

fn set_dir(fa: *mut posix_spawn_file_actions_t, dir: Vec<u8>) {
    if let Ok(mut added) = ADDED.lock() {
        added.dirs.retain(|(a, _)| *a != fa as usize);
        added.dirs.push((fa as usize, dir));
    }
}

/// This process's current directory, as the view names it.
fn current_dir(ovl: &Overlay) -> Vec<u8> {
    match ovl.cwd_rel() {
        Some(rel) => ovl.virtual_path(&rel),
        None => rustix::process::getcwd(Vec::new()).map_or_else(|_| Vec::new(), |c| c.into_bytes()),
    }
}

/// `path` from the directory `fa`'s child will be in: as given when no
/// `chdir` action set one (the child starts where this process is).
fn from_child_dir(fa: *mut posix_spawn_file_actions_t, path: &[u8]) -> Vec<u8> {
    match dir_of(fa) {
        Some(dir) if path.first() != Some(&b'/') => [&dir[..], b"/", path].concat(),
        _ => path.to_vec(),
    }
}

/// Does an open of `path` with `flags` need the overlay: it lies in the
/// view, or it changes a lower layer's file by its real name?
fn needs_overlay(ovl: &Overlay, path: &[u8], flags: c_int) -> bool {
    if !ovl.surely_outside(libc::AT_FDCWD, path) {
        return true;
    }
    let changes = ovl::open::writes(flags) || flags & libc::O_CREAT != 0;
    changes
        && ovl
            .real_in_layers(libc::AT_FDCWD, path, ovl::open::follows_final_link(flags))
            .map_or(true, |found| found.is_some_and(|found| found.lower))
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
    if let Ok(mut added) = ADDED.lock() {
        added.opened.push((fa as usize, ours));
    }
    0
}

/// The real directory a child changes into for `dir` (absolute): the
/// topmost real copy of a directory of the view, else `dir` itself.
fn real_dir(ovl: &Overlay, dir: &[u8]) -> Vec<u8> {
    let Where::Inside(rel) = ovl.locate(libc::AT_FDCWD, dir) else {
        return dir.to_vec();
    };
    match ovl.resolve(&rel, true) {
        Ok(Resolved::Inside(node)) => ovl.real_path(node.layer, &node.rel),
        Ok(Resolved::Outside(real)) => real,
        Err(_) => dir.to_vec(), // the child's change fails, as the view's would
    }
}

/// Closes a descriptor this module opened, and the overlay forgets it (a
/// call made inside a hook goes straight to libc's `close`).
fn close_ours(fd: c_int) {
    ovl::fd_table::forget_fd(fd);
    // SAFETY: a descriptor this module opened and still owns.
    unsafe { libc::close(fd) };
}

hooks! {
    fn posix_spawn_file_actions_addopen(fa: *mut posix_spawn_file_actions_t, fd: c_int, p: *const c_char, fl: c_int, mode: mode_t) -> c_int |real, ovl| {
        let path = match crate::bytes(p) {
            Some(path) if !path.is_empty() => from_child_dir(fa, path),
            _ => return real(fa, fd, p, fl, mode),
        };
        if !needs_overlay(ovl, &path, fl) {
            return real(fa, fd, p, fl, mode);
        }
        let path = ovl::cpath(&path);
        open_now(ovl, fa, fd, path.as_ptr(), fl, mode)
    }
    fn posix_spawn_file_actions_addchdir_np(fa: *mut posix_spawn_file_actions_t, p: *const c_char) -> c_int |real, ovl| {
        let Some(path) = crate::bytes(p).filter(|p| !p.is_empty()) else { return real(fa, p) };
        let dir = match dir_of(fa) {
            None if path[0] != b'/' => [&current_dir(ovl)[..], b"/", path].concat(),
            _ => from_child_dir(fa, path),
        };
        let real_dir = ovl::cpath(&real_dir(ovl, &dir));
        let r = real(fa, real_dir.as_ptr());
        if r == 0 {
            set_dir(fa, dir);
        }
        r
    }
    fn posix_spawn_file_actions_addfchdir_np(fa: *mut posix_spawn_file_actions_t, fd: c_int) -> c_int |real, ovl| {
        let r = real(fa, fd);
        let dir = match ovl::fd_table::fd_info(fd) {
            Some(info) => Some(ovl.virtual_path(&info.rel)),
            None => rustix::fs::readlink(format!("/proc/self/fd/{fd}"), Vec::new()).ok().map(|d| d.into_bytes()),
        };
        if let (0, Some(dir)) = (r, dir) {
            set_dir(fa, dir);
        }
        r
    }
    fn posix_spawn_file_actions_destroy(fa: *mut posix_spawn_file_actions_t) -> c_int |real, ovl| {
        let _ = ovl;
        let mine: Vec<c_int> = match ADDED.lock() {
            Ok(mut added) => {
                added.dirs.retain(|(a, _)| *a != fa as usize);
                let (mine, rest) = added.opened.iter().partition(|(a, _)| *a == fa as usize);
                added.opened = rest;
                mine.into_iter().map(|(_, fd)| fd).collect()
            }
            Err(_) => Vec::new(),
        };
        mine.into_iter().for_each(close_ours);
        real(fa)
    }
}
