//! Unix sockets named by paths of the view: `bind` makes the socket's file
//! in upper (as the kernel's overlay does), `connect` reaches the socket
//! file the view shows. Other addresses go straight to libc.

use crate::path::{creating, reading};
use crate::{errno, fail, hooks, set_errno};
use libc::{c_int, sockaddr, sockaddr_un, socklen_t};
use rustix::fd::BorrowedFd;
use std::ffi::{CStr, CString};

/// The path of a Unix socket address (`None`: another family, an abstract
/// or unnamed address).
///
/// # Safety
/// `addr` is NULL or valid for `len` bytes.
unsafe fn unix_path(addr: *const sockaddr, len: socklen_t) -> Option<CString> {
    let header = std::mem::size_of::<libc::sa_family_t>();
    let len = (len as usize).min(std::mem::size_of::<sockaddr_un>());
    // SAFETY: per the contract; the family is the address's first field.
    if addr.is_null() || len <= header || c_int::from(unsafe { (*addr).sa_family }) != libc::AF_UNIX
    {
        return None;
    }
    // SAFETY: `len` bytes of the address are readable; the path follows the family.
    let raw = unsafe { std::slice::from_raw_parts(addr.cast::<u8>().add(header), len - header) };
    let path = raw.split(|&b| b == 0).next().unwrap_or_default();
    (!path.is_empty()).then(|| ovl::cpath(path))
}

/// Runs `f` on a Unix socket address for the real path `path` (through
/// `/proc/self/fd` when it is too long for one: `ovl::socket_path_at`).
fn with_unix_addr(path: &CStr, f: impl FnOnce(*const sockaddr, socklen_t) -> c_int) -> c_int {
    match ovl::socket_path_at(rustix::fs::CWD, path) {
        Ok((short, _dir_kept_open)) => {
            let (a, l) = unix_addr(&short);
            f((&a as *const sockaddr_un).cast(), l)
        }
        Err(e) => fail(e),
    }
}

/// A `sockaddr_un` for `path` (which fits: see `ovl::socket_path_at`).
fn unix_addr(path: &CStr) -> (sockaddr_un, socklen_t) {
    // SAFETY: a plain C struct of integers; all-zero is a valid value.
    let mut a: sockaddr_un = unsafe { std::mem::zeroed() };
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.to_bytes();
    let n = bytes.len().min(a.sun_path.len() - 1);
    for (dst, &b) in a.sun_path.iter_mut().zip(&bytes[..n]) {
        *dst = b as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + n + 1;
    (a, len as socklen_t)
}

hooks! {
    fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int |real, ovl| {
        let Some(path) = unix_path(addr, len) else { return real(fd, addr, len) };
        // SAFETY: fd is the caller's socket, used for this call only.
        let sock = BorrowedFd::borrow_raw(fd);
        let r = creating(ovl, libc::AT_FDCWD, path.as_ptr(), false, |d, n| ovl.bind_unix(d, n, sock), |_, p| {
            if p == path.as_ptr() { return real(fd, addr, len); }
            // Led out of the view by a symlink: bind where it leads.
            with_unix_addr(CStr::from_ptr(p), |a, l| real(fd, a, l))
        });
        // A name the view already has: the kernel's bind says EADDRINUSE.
        if r != 0 && errno() == libc::EEXIST { set_errno(libc::EADDRINUSE); }
        r
    }
    fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int |real, ovl| {
        let Some(path) = unix_path(addr, len) else { return real(fd, addr, len) };
        reading(ovl, libc::AT_FDCWD, path.as_ptr(), true, |_, rp, _| {
            if rp == path.as_ptr() {
                return real(fd, addr, len); // outside the view: as given
            }
            // SAFETY: `reading` hands over a valid C string.
            with_unix_addr(CStr::from_ptr(rp), |a, l| real(fd, a, l))
        })
    }
}
