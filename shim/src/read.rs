//! Reads (seeks, and copies from) descriptors. A descriptor reading a lower
//! file follows a copy-up made by another process since it was opened, as
//! on the kernel's overlayfs: each call first asks the core
//! (`read_may_need_catch_up`: a few loads, no lock, no call), and only when
//! something was copied up since the descriptor last looked does the core
//! look further (`catch_up_reader`).
//! (`fread` and friends read through glibc's own, internal calls: a
//! stream's buffered reads are out of reach; see the README.)

use crate::hooks;
use libc::{c_int, c_uint, c_void, iovec, loff_t, off_t, size_t, ssize_t};
use ovl::locate::{catch_up_reader, read_may_need_catch_up};

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

catching_up! {
    fn read(fd; fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t;
    fn __read_chk(fd; fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t;
    fn pread(fd; fd: c_int, buf: *mut c_void, n: size_t, at: off_t) -> ssize_t;
    fn pread64(fd; fd: c_int, buf: *mut c_void, n: size_t, at: off_t) -> ssize_t;
    fn __pread_chk(fd; fd: c_int, buf: *mut c_void, n: size_t, at: off_t, buflen: size_t) -> ssize_t;
    fn __pread64_chk(fd; fd: c_int, buf: *mut c_void, n: size_t, at: off_t, buflen: size_t) -> ssize_t;
    fn readv(fd; fd: c_int, iov: *const iovec, count: c_int) -> ssize_t;
    fn preadv(fd; fd: c_int, iov: *const iovec, count: c_int, at: off_t) -> ssize_t;
    fn preadv64(fd; fd: c_int, iov: *const iovec, count: c_int, at: off_t) -> ssize_t;
    fn preadv2(fd; fd: c_int, iov: *const iovec, count: c_int, at: off_t, fl: c_int) -> ssize_t;
    fn preadv64v2(fd; fd: c_int, iov: *const iovec, count: c_int, at: off_t, fl: c_int) -> ssize_t;
    // `SEEK_END` finds the copy's end.
    fn lseek(fd; fd: c_int, at: off_t, whence: c_int) -> off_t;
    fn lseek64(fd; fd: c_int, at: off_t, whence: c_int) -> off_t;
    // Copies whose source is a descriptor.
    fn copy_file_range(fd_in; fd_in: c_int, off_in: *mut loff_t, fd_out: c_int, off_out: *mut loff_t, len: size_t, fl: c_uint) -> ssize_t;
    fn splice(fd_in; fd_in: c_int, off_in: *mut loff_t, fd_out: c_int, off_out: *mut loff_t, len: size_t, fl: c_uint) -> ssize_t;
    fn sendfile(fd_in; fd_out: c_int, fd_in: c_int, off: *mut off_t, n: size_t) -> ssize_t;
    fn sendfile64(fd_in; fd_out: c_int, fd_in: c_int, off: *mut off_t, n: size_t) -> ssize_t;
}
