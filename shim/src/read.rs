//! Reads (seeks, and copies from) descriptors. A descriptor reading a lower
//! file follows a copy-up made by another process since it was opened, as
//! on the kernel's overlayfs: each read first asks the core
//! (`read_may_need_catch_up`: a few loads, no lock, no call), and only when
//! something was copied up since the descriptor last looked does the core
//! look further (`catch_up_reader`).
//! (`fread` and friends read through glibc's own, internal calls: a
//! stream's buffered reads are out of reach; see the README.)

use crate::hooks;
use libc::{c_int, c_uint, c_void, iovec, loff_t, off_t, size_t, ssize_t};
use ovl::locate::{catch_up_reader, read_may_need_catch_up};

hooks! {
    unless_needed !read_may_need_catch_up(fd);
    fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t |real, ovl| {
        catch_up_reader(ovl, fd);
        real(fd, buf, n)
    }
    unless_needed !read_may_need_catch_up(fd);
    fn __read_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t |real, ovl| {
        catch_up_reader(ovl, fd);
        real(fd, buf, n, buflen)
    }
    unless_needed !read_may_need_catch_up(fd);
    fn pread(fd: c_int, buf: *mut c_void, n: size_t, at: off_t) -> ssize_t |real, ovl| {
        catch_up_reader(ovl, fd);
        real(fd, buf, n, at)
    }
    unless_needed !read_may_need_catch_up(fd);
    fn pread64(fd: c_int, buf: *mut c_void, n: size_t, at: off_t) -> ssize_t |real, ovl| {
        catch_up_reader(ovl, fd);
        real(fd, buf, n, at)
    }
    unless_needed !read_may_need_catch_up(fd);
    fn __pread_chk(fd: c_int, buf: *mut c_void, n: size_t, at: off_t, buflen: size_t) -> ssize_t |real, ovl| {
        catch_up_reader(ovl, fd);
        real(fd, buf, n, at, buflen)
    }
    unless_needed !read_may_need_catch_up(fd);
    fn __pread64_chk(fd: c_int, buf: *mut c_void, n: size_t, at: off_t, buflen: size_t) -> ssize_t |real, ovl| {
        catch_up_reader(ovl, fd);
        real(fd, buf, n, at, buflen)
    }
    unless_needed !read_may_need_catch_up(fd);
    fn readv(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t |real, ovl| {
        catch_up_reader(ovl, fd);
        real(fd, iov, count)
    }
    unless_needed !read_may_need_catch_up(fd);
    fn preadv(fd: c_int, iov: *const iovec, count: c_int, at: off_t) -> ssize_t |real, ovl| {
        catch_up_reader(ovl, fd);
        real(fd, iov, count, at)
    }
    unless_needed !read_may_need_catch_up(fd);
    fn preadv64(fd: c_int, iov: *const iovec, count: c_int, at: off_t) -> ssize_t |real, ovl| {
        catch_up_reader(ovl, fd);
        real(fd, iov, count, at)
    }
    unless_needed !read_may_need_catch_up(fd);
    fn preadv2(fd: c_int, iov: *const iovec, count: c_int, at: off_t, fl: c_int) -> ssize_t |real, ovl| {
        catch_up_reader(ovl, fd);
        real(fd, iov, count, at, fl)
    }
    unless_needed !read_may_need_catch_up(fd);
    fn preadv64v2(fd: c_int, iov: *const iovec, count: c_int, at: off_t, fl: c_int) -> ssize_t |real, ovl| {
        catch_up_reader(ovl, fd);
        real(fd, iov, count, at, fl)
    }
    // `SEEK_END` finds the copy's end.
    unless_needed !read_may_need_catch_up(fd);
    fn lseek(fd: c_int, at: off_t, whence: c_int) -> off_t |real, ovl| {
        catch_up_reader(ovl, fd);
        real(fd, at, whence)
    }
    unless_needed !read_may_need_catch_up(fd);
    fn lseek64(fd: c_int, at: off_t, whence: c_int) -> off_t |real, ovl| {
        catch_up_reader(ovl, fd);
        real(fd, at, whence)
    }
    // Copies whose source is a descriptor.
    unless_needed !read_may_need_catch_up(fd_in);
    fn copy_file_range(fd_in: c_int, off_in: *mut loff_t, fd_out: c_int, off_out: *mut loff_t, len: size_t, fl: c_uint) -> ssize_t |real, ovl| {
        catch_up_reader(ovl, fd_in);
        real(fd_in, off_in, fd_out, off_out, len, fl)
    }
    unless_needed !read_may_need_catch_up(fd_in);
    fn splice(fd_in: c_int, off_in: *mut loff_t, fd_out: c_int, off_out: *mut loff_t, len: size_t, fl: c_uint) -> ssize_t |real, ovl| {
        catch_up_reader(ovl, fd_in);
        real(fd_in, off_in, fd_out, off_out, len, fl)
    }
    unless_needed !read_may_need_catch_up(fd_in);
    fn sendfile(fd_out: c_int, fd_in: c_int, off: *mut off_t, n: size_t) -> ssize_t |real, ovl| {
        catch_up_reader(ovl, fd_in);
        real(fd_out, fd_in, off, n)
    }
    unless_needed !read_may_need_catch_up(fd_in);
    fn sendfile64(fd_out: c_int, fd_in: c_int, off: *mut off_t, n: size_t) -> ssize_t |real, ovl| {
        catch_up_reader(ovl, fd_in);
        real(fd_out, fd_in, off, n)
    }
}
