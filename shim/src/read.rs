//! Reads (seeks, and copies from) descriptors. A descriptor reading a lower
//! file follows a copy-up made by another process since it was opened, as
//! on the kernel's overlayfs: each call first asks the core
//! (`read_may_need_catch_up`: a few loads, no lock, no call), and only when
//! something was copied up since the descriptor last looked does the core
//! look further (`catch_up_reader`).
//! A stream (`FILE`) refills its buffer through glibc's own, internal
//! calls, which no hook sees: its block and line readers (`fread`, `fgets`,
//! `getline`) catch its descriptor up on entry instead. The one-character
//! readers (`getc`) do not: a hook there doubled the time of a loop of
//! `getc`, which mostly reads the buffer.

use crate::hooks;
use libc::{c_char, c_int, c_uint, c_void, iovec, loff_t, off_t, size_t, ssize_t, FILE};
use ovl::fd_follow::catch_up_reader;
use ovl::fd_table::read_may_need_catch_up;

/// Hooks that read from the descriptor named before the `;` (among the
/// arguments after it): the descriptor is caught up, then libc called.
macro_rules! catching_up {
    ($( fn $name:ident($src:ident; $($arg:ident: $ty:ty),*) -> $ret:ty; )*) => {
        hooks! {$(
            unless_needed !read_may_need_catch_up($src);
            fn $name($($arg: $ty),*) -> $ret |real, ovl| {
                catch_up_reader(ovl, $src);
                real($($arg),*)
            }
        )*}
    };
}

hooks! {
    unless_needed !read_may_need_catch_up(fd);
    fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t |real, ovl| {
        catch_up_reader(ovl, fd);
        watched_read(ovl, fd, buf, n, || real(fd, buf, n))
    }
    unless_needed !read_may_need_catch_up(fd);
    fn __read_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t |real, ovl| {
        catch_up_reader(ovl, fd);
        watched_read(ovl, fd, buf, n, || real(fd, buf, n, buflen))
    }
}

// `SEEK_END` finds the copy's end; a descriptor read through its merged
// listing (`ovl::getdents`) seeks in that.
hooks! {
    unless_needed !read_may_need_catch_up(fd) && !ovl::getdents::any_listed();
    fn lseek(fd: c_int, at: off_t, whence: c_int) -> off_t |real, ovl| {
        seek(ovl, fd, at, whence, || real(fd, at, whence))
    }
    unless_needed !read_may_need_catch_up(fd) && !ovl::getdents::any_listed();
    fn lseek64(fd: c_int, at: off_t, whence: c_int) -> off_t |real, ovl| {
        seek(ovl, fd, at, whence, || real(fd, at, whence))
    }
}

/// `lseek` of `fd`: in its merged listing when it reads one by
/// `getdents64`, else on the real descriptor, caught up first.
fn seek(
    ovl: &ovl::overlay::Overlay,
    fd: c_int,
    at: off_t,
    whence: c_int,
    real: impl FnOnce() -> off_t,
) -> off_t {
    match ovl::getdents::seek(fd, at, whence) {
        Some(Ok(to)) => to,
        Some(Err(e)) => crate::fail(e),
        None => {
            catch_up_reader(ovl, fd);
            real()
        }
    }
}

/// A read of `fd`, which may be an inotify descriptor watching lower files
/// (`ovl::watch`): its events are handed over as the program would see
/// them on the kernel's overlay; a read that brought only the overlay's
/// own events is made again (or fails with `EAGAIN`, non-blocking).
///
/// # Safety
/// `buf` is valid for `n` bytes, as `read` requires.
unsafe fn watched_read(
    ovl: &ovl::overlay::Overlay,
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    mut read: impl FnMut() -> ssize_t,
) -> ssize_t {
    if !ovl::watch::is_watcher(fd) {
        return read();
    }
    // SAFETY: per the contract.
    let whole = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), n) };
    match ovl::watch::take_ready(fd, whole) {
        Some(Ok(given)) => return given as ssize_t,
        Some(Err(e)) => return crate::fail(e),
        None => {}
    }
    loop {
        let got = read();
        if got <= 0 {
            return got;
        }
        // SAFETY: per the contract; the read filled its first `got` bytes.
        let events = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), n) };
        let kept = ovl::watch::translate(ovl, fd, events, got as usize);
        if kept > 0 {
            return kept as ssize_t;
        }
        // SAFETY: `fd` is the caller's open descriptor, for this call only.
        let borrowed = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
        let flags = rustix::fs::fcntl_getfl(borrowed).unwrap_or(rustix::fs::OFlags::empty());
        if flags.contains(rustix::fs::OFlags::NONBLOCK) {
            return crate::fail(rustix::io::Errno::AGAIN);
        }
    }
}

catching_up! {
    fn pread(fd; fd: c_int, buf: *mut c_void, n: size_t, at: off_t) -> ssize_t;
    fn pread64(fd; fd: c_int, buf: *mut c_void, n: size_t, at: off_t) -> ssize_t;
    fn __pread_chk(fd; fd: c_int, buf: *mut c_void, n: size_t, at: off_t, buflen: size_t) -> ssize_t;
    fn __pread64_chk(fd; fd: c_int, buf: *mut c_void, n: size_t, at: off_t, buflen: size_t) -> ssize_t;
    fn readv(fd; fd: c_int, iov: *const iovec, count: c_int) -> ssize_t;
    fn preadv(fd; fd: c_int, iov: *const iovec, count: c_int, at: off_t) -> ssize_t;
    fn preadv64(fd; fd: c_int, iov: *const iovec, count: c_int, at: off_t) -> ssize_t;
    fn preadv2(fd; fd: c_int, iov: *const iovec, count: c_int, at: off_t, fl: c_int) -> ssize_t;
    fn preadv64v2(fd; fd: c_int, iov: *const iovec, count: c_int, at: off_t, fl: c_int) -> ssize_t;
    // Copies whose source is a descriptor.
    fn copy_file_range(fd_in; fd_in: c_int, off_in: *mut loff_t, fd_out: c_int, off_out: *mut loff_t, len: size_t, fl: c_uint) -> ssize_t;
    fn splice(fd_in; fd_in: c_int, off_in: *mut loff_t, fd_out: c_int, off_out: *mut loff_t, len: size_t, fl: c_uint) -> ssize_t;
    fn sendfile(fd_in; fd_out: c_int, fd_in: c_int, off: *mut off_t, n: size_t) -> ssize_t;
    fn sendfile64(fd_in; fd_out: c_int, fd_in: c_int, off: *mut off_t, n: size_t) -> ssize_t;
}

/// Where glibc's `FILE` keeps its descriptor (`_fileno`): after the
/// flags and thirteen pointers.
#[cfg(target_pointer_width = "64")]
const FILENO_OFFSET: usize = 112;
#[cfg(target_pointer_width = "32")]
const FILENO_OFFSET: usize = 56;

/// The descriptor under a stream (-1 for a null one, which libc will
/// refuse in its own way).
fn stream_fd(fp: *mut FILE) -> c_int {
    if fp.is_null() {
        return -1;
    }
    // SAFETY: a live stream (the caller passes it to a reading function);
    // glibc's `struct _IO_FILE` keeps its descriptor at this offset on
    // 64-bit targets, part of its ABI since 2.1 (`fileno` would be one more
    // call on every read).
    unsafe { fp.cast::<u8>().add(FILENO_OFFSET).cast::<c_int>().read() }
}

/// Hooks that read from the stream named before the `;`: its descriptor is
/// caught up, then libc called (which refills from the copy if needed).
macro_rules! stream_catching_up {
    ($( fn $name:ident($fp:ident; $($arg:ident: $ty:ty),*) -> $ret:ty; )*) => {
        hooks! {$(
            unless_needed !read_may_need_catch_up(stream_fd($fp));
            fn $name($($arg: $ty),*) -> $ret |real, ovl| {
                catch_up_reader(ovl, stream_fd($fp));
                real($($arg),*)
            }
        )*}
    };
}

stream_catching_up! {
    fn fread(fp; buf: *mut c_void, size: size_t, n: size_t, fp: *mut FILE) -> size_t;
    fn fread_unlocked(fp; buf: *mut c_void, size: size_t, n: size_t, fp: *mut FILE) -> size_t;
    fn __fread_chk(fp; buf: *mut c_void, buflen: size_t, size: size_t, n: size_t, fp: *mut FILE) -> size_t;
    fn __fread_unlocked_chk(fp; buf: *mut c_void, buflen: size_t, size: size_t, n: size_t, fp: *mut FILE) -> size_t;
    fn fgets(fp; s: *mut c_char, n: c_int, fp: *mut FILE) -> *mut c_char;
    fn fgets_unlocked(fp; s: *mut c_char, n: c_int, fp: *mut FILE) -> *mut c_char;
    fn __fgets_chk(fp; s: *mut c_char, size: size_t, n: c_int, fp: *mut FILE) -> *mut c_char;
    fn __fgets_unlocked_chk(fp; s: *mut c_char, size: size_t, n: c_int, fp: *mut FILE) -> *mut c_char;
    fn getline(fp; line: *mut *mut c_char, n: *mut size_t, fp: *mut FILE) -> ssize_t;
    fn getdelim(fp; line: *mut *mut c_char, n: *mut size_t, delim: c_int, fp: *mut FILE) -> ssize_t;
    fn __getdelim(fp; line: *mut *mut c_char, n: *mut size_t, delim: c_int, fp: *mut FILE) -> ssize_t;
}
