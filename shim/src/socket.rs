//! Unix sockets named by paths of the view: `bind` makes the socket's file
//! in upper (as the kernel's overlay does), `connect` reaches the socket
//! file the view shows. Other addresses go straight to libc.

use crate::path::{creating, reading};
use crate::{errno, fail, hooks, set_errno};
use libc::{c_int, sockaddr, sockaddr_un, socklen_t};
use rustix::fd::BorrowedFd;
use std::ffi::{CStr, CString};
use std::sync::Mutex;

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

/// A socket this process bound in the view: the descriptor, the address
/// the kernel keeps (a real path), and the caller's own address, which
/// `getsockname` gives back, as the kernel gives back what it was given.
type Bound = (c_int, Vec<u8>, Vec<u8>);

static BOUND: Mutex<Vec<Bound>> = Mutex::new(Vec::new());

/// The address of socket `fd`, as the kernel keeps it.
fn kernel_address(fd: c_int) -> Option<Vec<u8>> {
    // SAFETY: a plain C struct of integers; all-zero is a valid value.
    let mut a: sockaddr_un = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<sockaddr_un>() as socklen_t;
    // SAFETY: `a` and `len` are ours and sized; a hook is running, so the
    // call goes to libc.
    let r = unsafe { libc::getsockname(fd, (&mut a as *mut sockaddr_un).cast(), &mut len) };
    // SAFETY: `len` bytes of `a` were written.
    (r == 0).then(|| {
        unsafe { std::slice::from_raw_parts((&a as *const sockaddr_un).cast::<u8>(), len as usize) }
            .to_vec()
    })
}

/// Remembers what socket `fd`, just bound in the view, was bound to.
///
/// # Safety
/// `addr` is valid for `len` bytes.
unsafe fn remember_bound(fd: c_int, addr: *const sockaddr, len: socklen_t) {
    let Some(kept) = kernel_address(fd) else {
        return;
    };
    // The caller's path as the kernel would keep it: family, path, NUL.
    // SAFETY: per the contract.
    let Some(path) = (unsafe { unix_path(addr, len) }) else {
        return;
    };
    let (a, l) = unix_addr(&path);
    // SAFETY: `a` is a whole sockaddr_un, `l` bytes of it meant.
    let given =
        unsafe { std::slice::from_raw_parts((&a as *const sockaddr_un).cast::<u8>(), l as usize) }
            .to_vec();
    if kept == given {
        return; // bound as given: outside the view
    }
    if let Ok(mut b) = BOUND.lock() {
        b.retain(|(f, _, _)| *f != fd);
        b.push((fd, kept, given));
    }
}

/// Writes `bytes` (a whole address) into the caller's `addr` of `given`
/// bytes, truncated, with the full length in `*len`, as the kernel does.
///
/// # Safety
/// `addr` is valid for `given` bytes, `len` valid.
unsafe fn give_address(bytes: &[u8], addr: *mut sockaddr, given: socklen_t, len: *mut socklen_t) {
    let n = bytes.len().min(given as usize);
    // SAFETY: per the contract.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr.cast::<u8>(), n);
        *len = bytes.len() as socklen_t;
    }
}

/// After `getsockname` (`fd`: the socket) or `getpeername` filled `addr`:
/// a Unix socket bound in the view by this process reads as the caller
/// bound it; another whose path lies in a layer reads as the view's path.
///
/// # Safety
/// `addr` is valid for `given` bytes (the caller's), `len` valid.
unsafe fn view_address(
    ovl: &ovl::overlay::Overlay,
    fd: Option<c_int>,
    addr: *mut sockaddr,
    given: socklen_t,
    len: *mut socklen_t,
) {
    // SAFETY: the call succeeded: the kernel wrote up to `given` bytes.
    let written = unsafe { (*len).min(given) };
    // Our own socket (getsockname), or a peer this process bound: the
    // kernel's address, whole, to find it by.
    let kept = match fd {
        Some(fd) => kernel_address(fd),
        // SAFETY: `written` bytes are the kernel's.
        None if written == unsafe { *len } => {
            // SAFETY: as above.
            Some(
                unsafe { std::slice::from_raw_parts(addr.cast::<u8>(), written as usize) }.to_vec(),
            )
        }
        None => None,
    };
    let remembered = kept.and_then(|kept| {
        let b = BOUND.lock().ok()?;
        b.iter()
            .find(|(f, k, _)| *k == kept && fd.is_none_or(|fd| *f == fd))
            .map(|(_, _, g)| g.clone())
    });
    if let Some(given_at_bind) = remembered {
        // SAFETY: per the contract.
        return unsafe { give_address(&given_at_bind, addr, given, len) };
    }
    // SAFETY: `written` bytes are the kernel's.
    let Some(path) = (unsafe { unix_path(addr, written) }) else {
        return;
    };
    let Some(rel) = ovl.real_to_rel(path.to_bytes()) else {
        return;
    };
    let (a, full) = unix_addr(&ovl::cpath(&ovl.virtual_path(rel)));
    // SAFETY: `a` is a whole sockaddr_un, `full` bytes of it meant.
    let bytes = unsafe {
        std::slice::from_raw_parts((&a as *const sockaddr_un).cast::<u8>(), full as usize)
    };
    // SAFETY: per the contract.
    unsafe { give_address(bytes, addr, given, len) }
}

hooks! {
    fn getsockname(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int |real, ovl| {
        let given = if len.is_null() { 0 } else { *len };
        let r = real(fd, addr, len);
        if r == 0 && !addr.is_null() && !len.is_null() { view_address(ovl, Some(fd), addr, given, len); }
        r
    }
    fn getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int |real, ovl| {
        let given = if len.is_null() { 0 } else { *len };
        let r = real(fd, addr, len);
        if r == 0 && !addr.is_null() && !len.is_null() { view_address(ovl, None, addr, given, len); }
        r
    }
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
        if r == 0 { remember_bound(fd, addr, len); }
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
