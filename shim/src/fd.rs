//! Opening files, and the bookkeeping of descriptors that refer to the view:
//! directories (so `*at` calls relative to them stay in the view) and objects
//! of lower layers (so a change through them never reaches a lower layer).

use crate::modify::XattrChange;
use crate::path::checked_copy;
use crate::{bytes, fail, hooks, trace};
use libc::{c_char, c_int, c_long, c_uint, c_void, mode_t, FILE};
use ovl::fd_table::{dup_fd, fd_info, forget_fd, forget_fd_range, register_fd};
use ovl::lookup::Resolved;
use ovl::open::Opened;
use ovl::overlay::Overlay;
use ovl::permission::Change;
use rustix::fd::IntoRawFd;
use rustix::io::Errno;
use std::ffi::CString;

/// Opens `(dirfd, p)` in the view, or calls `real` with the caller's (or a
/// redirected) path when it lies outside.
///
/// # Safety
/// `p` is NULL or a valid C string.
pub(crate) unsafe fn open_in_view(
    ovl: &Overlay,
    dirfd: c_int,
    p: *const c_char,
    flags: c_int,
    mode: mode_t,
    real: impl FnOnce(c_int, *const c_char, c_int, mode_t) -> c_int,
) -> c_int {
    // SAFETY: per the contract.
    let path = match unsafe { bytes(p) } {
        Some(path) if !path.is_empty() => path,
        _ => return settled(real(dirfd, p, flags, mode)),
    };
    if ovl.surely_outside(dirfd, path) {
        return outside_open(ovl, dirfd, p, flags, mode, real);
    }
    if let Some(mut info) = ovl.open_as_given(dirfd, path, flags) {
        // SAFETY: per the contract, `p` is a C string (`path` its bytes).
        let name = unsafe { std::ffi::CStr::from_ptr(p) };
        let fd = match ovl.open_as_given_unstamped(dirfd, name, flags, info.lower) {
            Some(Ok((fd, unstamped))) => {
                info.unstamped = unstamped;
                fd.into_raw_fd()
            }
            Some(Err(e)) => {
                crate::set_errno(e.raw_os_error());
                -1
            }
            None => real(dirfd, p, flags, mode),
        };
        if fd >= 0 {
            register_fd(fd, info);
        } else {
            // A whiteout fails the open (`ENXIO`, `ENOTDIR`, ...): the view
            // has no such name.
            let errno = crate::errno();
            if errno != libc::ENOENT && ovl.whiteout_at(dirfd, path) {
                return fail(Errno::NOENT);
            }
            crate::set_errno(errno);
        }
        return fd;
    }
    let Some(opened) = ovl.open_at(dirfd, path, flags, mode) else {
        return outside_open(ovl, dirfd, p, flags, mode, real);
    };
    match opened {
        Ok(Opened::Fd(fd, info)) => {
            trace::line(
                path,
                &format!(
                    "fd {} {}",
                    rustix::fd::AsRawFd::as_raw_fd(&fd),
                    String::from_utf8_lossy(&info.rel)
                ),
            );
            let fd = fd.into_raw_fd();
            register_fd(fd, *info);
            fd
        }
        Ok(Opened::Outside(real_path)) => {
            let c = ovl::cpath(&real_path);
            outside_open(ovl, libc::AT_FDCWD, c.as_ptr(), flags, mode, real)
        }
        Ok(Opened::Unnamed(fd)) => settled(fd.into_raw_fd()),
        Err(e) => {
            trace::line(path, &format!("error {e}"));
            fail(e)
        }
    }
}

/// An open outside the view; opening a lower layer's own files for writing is refused.
fn outside_open(
    ovl: &Overlay,
    dirfd: c_int,
    p: *const c_char,
    flags: c_int,
    mode: mode_t,
    real: impl FnOnce(c_int, *const c_char, c_int, mode_t) -> c_int,
) -> c_int {
    if ovl::open::writes(flags) || flags & libc::O_CREAT != 0 {
        // SAFETY: p is a valid C string (the caller's or ours).
        let path = unsafe { bytes(p) }.unwrap_or_default();
        let follow = ovl::open::follows_final_link(flags);
        let found = match ovl.real_in_layers(dirfd, path, follow) {
            Ok(found) => found.filter(|f| f.lower),
            Err(e) => return fail(e),
        };
        if let Some(found) = found {
            // A lower layer's file reached from outside: open it in the view
            // (copied up), never in place.
            return match ovl.open(&found.rel, flags, mode) {
                Ok(Opened::Fd(fd, info)) => {
                    let fd = fd.into_raw_fd();
                    register_fd(fd, *info);
                    fd
                }
                Ok(Opened::Outside(_)) => fail(Errno::ROFS),
                Ok(Opened::Unnamed(fd)) => settled(fd.into_raw_fd()),
                Err(e) => fail(e),
            };
        }
    }
    let fd = settled(real(dirfd, p, flags, mode));
    // SAFETY: p is a valid C string (the caller's or ours).
    ovl.note_opened_outside(dirfd, unsafe { bytes(p) }.unwrap_or_default(), fd);
    fd
}

/// Does this `fcntl` command make a new descriptor (the only ones the
/// overlay follows)?
fn duplicates(cmd: c_int) -> bool {
    cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC
}

/// Is `cmd` a read or change of `fd`'s status flags, where the overlay may
/// have added `O_NOATIME` (a descriptor it knows)? Calls nothing.
fn status_flags(cmd: c_int, fd: c_int) -> bool {
    (cmd == libc::F_GETFL || cmd == libc::F_SETFL) && ovl::fd_table::may_know_fd(fd)
}

/// `fcntl` of a duplicate or of the status flags: `O_NOATIME` that the
/// overlay added to a read of a lower object (see `Overlay::open_node`)
/// is not shown, and kept when the program sets the flags.
fn fcntl_in_view(
    fd: c_int,
    cmd: c_int,
    arg: c_long,
    real: impl Fn(c_int, c_long) -> c_int,
) -> c_int {
    let unstamped = || fd_info(fd).is_some_and(|i| i.unstamped);
    match cmd {
        libc::F_GETFL => match real(cmd, arg) {
            flags if flags >= 0 && unstamped() => flags & !libc::O_NOATIME,
            r => r,
        },
        libc::F_SETFL if unstamped() => real(cmd, arg | c_long::from(libc::O_NOATIME)),
        libc::F_SETFL => real(cmd, arg),
        _ => {
            let r = real(cmd, arg);
            if r >= 0 {
                dup_fd(fd, r);
            }
            r
        }
    }
}

/// `dup` or `fcntl(F_DUPFD)` of a descriptor plainly outside the view,
/// made without the re-entry guard or a lock: programs that walk trees
/// duplicate their directories' descriptors by the thousand. `None`: the
/// hook's body decides.
fn quick_dup(fd: c_int, dup: impl FnOnce() -> c_int) -> Option<c_int> {
    if ovl::overlay::peek().is_none() || ovl::fd_table::may_know_fd(fd) || ovl::vfork::in_child() {
        return None;
    }
    let new = dup();
    settle_new(new, |new| dup_fd(fd, new));
    Some(new)
}

/// A read-only open of a path plainly outside the view and none of its
/// ancestors (whose descriptors the body remembers): made as `quick_dup`
/// makes its duplicates.
///
/// # Safety
/// `p` is NULL or a valid C string.
unsafe fn quick_open(
    dirfd: c_int,
    p: *const c_char,
    flags: c_int,
    open: impl FnOnce() -> c_int,
) -> Option<c_int> {
    if p.is_null() || ovl::open::writes(flags) || flags & libc::O_CREAT != 0 {
        return None;
    }
    let ovl = ovl::overlay::peek()?;
    // SAFETY: per the contract, `p` is NUL-terminated.
    if !unsafe { ovl.opens_plainly_outside_c(dirfd, p.cast()) } {
        return None;
    }
    let fd = open();
    settle_new(fd, forget_fd);
    Some(fd)
}

/// Accounts for `new` (or a failure), a descriptor the quick way just made
/// for something outside the view: without a lock when nothing stale is
/// recorded under its number, else by `slow` under the guard (skipped
/// inside another hook, as the hook would have been).
fn settle_new(new: c_int, slow: impl FnOnce(c_int)) {
    if new >= 0 && !ovl::fd_table::settle_plain_new_fd(new) {
        if let Some(_guard) = crate::Guard::enter() {
            slow(new);
        }
    }
}

/// A descriptor opened outside the view: known not to stand for a view object.
fn settled(fd: c_int) -> c_int {
    ovl::fd_table::settle_fd(fd);
    fd
}

/// `open` flags for an `fopen` mode string.
pub(crate) fn fopen_flags(mode: &[u8]) -> c_int {
    let mut flags = match mode.first() {
        Some(b'w') => libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
        Some(b'a') => libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND,
        _ => libc::O_RDONLY,
    };
    for &c in mode.iter().skip(1) {
        match c {
            b'+' => flags = (flags & !libc::O_ACCMODE) | libc::O_RDWR,
            b'x' => flags |= libc::O_EXCL,
            b'e' => flags |= libc::O_CLOEXEC,
            b',' => break,
            _ => {}
        }
    }
    flags
}

/// `fopen` in the view: open the descriptor ourselves, then `fdopen` it.
///
/// # Safety
/// `p` and `mode` are valid C strings.
unsafe fn fopen_in_view(
    ovl: &Overlay,
    p: *const c_char,
    mode: *const c_char,
    real: impl FnOnce(*const c_char, *const c_char) -> *mut FILE,
) -> *mut FILE {
    // SAFETY: per the contract.
    let Some(m) = (unsafe { bytes(mode) }) else {
        return real(p, mode);
    };
    let flags = fopen_flags(m);
    let mut outside: Option<CString> = None;
    // SAFETY: per the contract.
    let fd = unsafe {
        open_in_view(ovl, libc::AT_FDCWD, p, flags, 0o666, |_, rp, _, _| {
            outside = Some(std::ffi::CStr::from_ptr(rp).to_owned());
            -2
        })
    };
    match fd {
        -2 => {
            let path = outside.unwrap_or_default();
            let f = real(path.as_ptr(), mode);
            if !f.is_null() {
                // Accounted for as `outside_open` does an `open`'s: else the
                // first read through the stream looks the descriptor up in
                // /proc as if it had been inherited.
                // SAFETY: a stream libc has just opened.
                let fd = settled(unsafe { libc::fileno(f) });
                ovl.note_opened_outside(libc::AT_FDCWD, path.to_bytes(), fd);
            }
            f
        }
        -1 => std::ptr::null_mut(),
        fd => {
            // SAFETY: fd is ours and open; mode is a valid C string.
            let f = unsafe { libc::fdopen(fd, mode) };
            if f.is_null() {
                let e = crate::errno();
                forget_fd(fd);
                // SAFETY: fd is ours.
                unsafe { libc::close(fd) };
                crate::set_errno(e);
            }
            f
        }
    }
}

/// The upper path of the object behind a descriptor of a lower object,
/// copied up first; `None` when the descriptor needs no care (an `O_PATH`
/// one unless `o_path_too`: most changes refuse it).
fn lower_fd_target(
    ovl: &Overlay,
    fd: c_int,
    o_path_too: bool,
    change: Change<'_>,
) -> Option<Result<CString, Errno>> {
    let info = fd_info(fd)?;
    if !info.lower || (!o_path_too && only_names(fd)) {
        return None;
    }
    Some(match ovl.lower_object_of_fd(fd, &info.rel) {
        Ok(Resolved::Inside(node)) => checked_copy(ovl, &node, change),
        Ok(Resolved::Outside(_)) => Err(Errno::XDEV),
        Err(e) => Err(e),
    })
}

/// `ovl::permission::may_change` for the lower object `fd` is open on.
fn lower_fd_check(fd: c_int, change: Change<'_>) -> Result<(), Errno> {
    // SAFETY: a descriptor number the caller passed; fstat only reads it.
    let st = rustix::fs::fstat(unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) })?;
    let object = ovl::permission::Object::at(&st, format!("/proc/self/fd/{fd}").as_bytes());
    ovl::permission::may_change(&object, change)
}

/// Is `fd` an `O_PATH` descriptor? Changes through one fail with `EBADF`
/// (the kernel says so itself: nothing to copy up for them).
pub(crate) fn only_names(fd: c_int) -> bool {
    // SAFETY: a descriptor number the caller passed; fcntl only reads its flags.
    let fd = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
    rustix::fs::fcntl_getfl(fd).is_ok_and(|f| f.contains(rustix::fs::OFlags::PATH))
}

/// `ioctl` on `fd`, as the kernel's overlayfs answers it when `fd` is a
/// regular file or directory of the view (`ovl::ioctl`); any other
/// descriptor takes every request as given.
///
/// # Safety
/// `arg` is what the request expects, as for the kernel.
unsafe fn ioctl_in_view(
    ovl: &Overlay,
    fd: c_int,
    req: libc::c_ulong,
    arg: *mut c_void,
    real: impl Fn(c_int) -> c_int,
) -> c_int {
    use ovl::ioctl::Plan;
    let Some(info) = fd_info(fd).filter(|_| file_or_dir(fd)) else {
        // Not the view's: a lower file opened by its real name stays as it is.
        if !ovl::ioctl::harmless_anywhere(req) && file_or_dir(fd) && lower_by_real_name(ovl, fd) {
            return fail(Errno::ROFS);
        }
        return real(fd);
    };
    match ovl::ioctl::plan(req) {
        Plan::AsGiven => real(fd),
        Plan::NotTty => fail(Errno::NOTTY),
        // Made on a descriptor of the upper copy: opened read-only, as
        // `chattr` opens the file, without following a symlink put there.
        Plan::OnUpperCopy => fd_change(
            ovl,
            fd,
            Change::Flags,
            |p| {
                use rustix::fs::{Mode, OFlags};
                let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                // SAFETY: `p` is the NUL-terminated path fd_change made.
                let path = unsafe { std::ffi::CStr::from_ptr(p) };
                match rustix::fs::open(path, flags, Mode::empty()) {
                    Ok(copy) => real(std::os::fd::AsRawFd::as_raw_fd(&copy)),
                    Err(e) => fail(e),
                }
            },
            || real(fd),
        ),
        Plan::Dedupe => {
            // SAFETY: the caller's argument for this request (see `ioctl`).
            let dests = unsafe { ovl::ioctl::dedupe_destinations(arg.cast()) };
            let lower = |fd: c_int| fd_info(fd).is_some_and(|i| i.lower);
            if info.lower || dests.into_iter().any(lower) {
                fail(Errno::PERM) // as the kernel: no deduplication with a lower file
            } else {
                real(fd)
            }
        }
    }
}

/// Does `name_to_handle_at(d, p, …, fl)` name an object of the view (by a
/// path, or with `AT_EMPTY_PATH` by a descriptor of the view)?
///
/// # Safety
/// `p` is NULL or a valid C string.
unsafe fn handle_of_view_object(ovl: &Overlay, d: c_int, p: *const c_char, fl: c_int) -> bool {
    // SAFETY: per the contract.
    if unsafe { crate::path::names_the_descriptor(p, fl) } {
        return fd_info(d).is_some();
    }
    let follow = fl & libc::AT_SYMLINK_FOLLOW != 0;
    // SAFETY: per the contract.
    matches!(
        unsafe { crate::path::locate(ovl, d, p, follow) },
        Ok(crate::path::Located::Node(_))
    )
}

/// Is `fd` open on a regular file or a directory?
fn file_or_dir(fd: c_int) -> bool {
    // SAFETY: a descriptor number the caller passed; fstat only reads it.
    let fd = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
    rustix::fs::fstat(fd).is_ok_and(|st| {
        matches!(
            rustix::fs::FileType::from_raw_mode(st.st_mode),
            rustix::fs::FileType::RegularFile | rustix::fs::FileType::Directory
        )
    })
}

/// Is `fd` (not one of the view's, nor `O_PATH`) open on an object of a
/// lower layer's own tree, by its real name outside the view? A change
/// through it is refused (`EROFS`), as through that name.
fn lower_by_real_name(ovl: &Overlay, fd: c_int) -> bool {
    ovl.fd_in_lower_layer(fd) && !only_names(fd)
}

/// Runs a change through a descriptor: on the upper copy when the descriptor
/// refers to a lower object, else on the descriptor itself. An `O_PATH`
/// descriptor is left to the call, which refuses it (`EBADF`).
pub(crate) fn fd_change(
    ovl: &Overlay,
    fd: c_int,
    change: Change<'_>,
    by_path: impl FnOnce(*const c_char) -> c_int,
    by_fd: impl FnOnce() -> c_int,
) -> c_int {
    change_through(ovl, fd, false, change, by_path, by_fd)
}

/// [`fd_change`] for the `*at` calls that change the descriptor's own
/// object (an empty name with `AT_EMPTY_PATH`: `utimensat`, `fchownat`),
/// which the kernel makes through an `O_PATH` descriptor too.
pub(crate) fn empty_path_change(
    ovl: &Overlay,
    fd: c_int,
    change: Change<'_>,
    by_path: impl FnOnce(*const c_char) -> c_int,
    by_fd: impl FnOnce() -> c_int,
) -> c_int {
    change_through(ovl, fd, true, change, by_path, by_fd)
}

fn change_through(
    ovl: &Overlay,
    fd: c_int,
    o_path_too: bool,
    change: Change<'_>,
    by_path: impl FnOnce(*const c_char) -> c_int,
    by_fd: impl FnOnce() -> c_int,
) -> c_int {
    let refused = |fd| ovl.fd_in_lower_layer(fd) && (o_path_too || !only_names(fd));
    match lower_fd_target(ovl, fd, o_path_too, change) {
        None if refused(fd) => fail(Errno::ROFS),
        None => by_fd(),
        Some(Ok(p)) => by_path(p.as_ptr()),
        Some(Err(e)) => fail(e),
    }
}

hooks! {
    quick quick_open(libc::AT_FDCWD, p, fl, || real(p, fl, mode));
    fn open(p: *const c_char, fl: c_int, mode: mode_t) -> c_int |real, ovl| {
        open_in_view(ovl, libc::AT_FDCWD, p, fl, mode, |_, p, fl, m| real(p, fl, m))
    }
    quick quick_open(libc::AT_FDCWD, p, fl, || real(p, fl, mode));
    fn open64(p: *const c_char, fl: c_int, mode: mode_t) -> c_int |real, ovl| {
        open_in_view(ovl, libc::AT_FDCWD, p, fl, mode, |_, p, fl, m| real(p, fl, m))
    }
    // glibc exports these names of `open` too; a program may call them.
    quick quick_open(libc::AT_FDCWD, p, fl, || real(p, fl, mode));
    fn __open(p: *const c_char, fl: c_int, mode: mode_t) -> c_int |real, ovl| {
        open_in_view(ovl, libc::AT_FDCWD, p, fl, mode, |_, p, fl, m| real(p, fl, m))
    }
    quick quick_open(libc::AT_FDCWD, p, fl, || real(p, fl, mode));
    fn __open64(p: *const c_char, fl: c_int, mode: mode_t) -> c_int |real, ovl| {
        open_in_view(ovl, libc::AT_FDCWD, p, fl, mode, |_, p, fl, m| real(p, fl, m))
    }
    quick quick_open(libc::AT_FDCWD, p, fl, || real(p, fl));
    fn __open_2(p: *const c_char, fl: c_int) -> c_int |real, ovl| {
        open_in_view(ovl, libc::AT_FDCWD, p, fl, 0, |_, p, fl, _| real(p, fl))
    }
    quick quick_open(libc::AT_FDCWD, p, fl, || real(p, fl));
    fn __open64_2(p: *const c_char, fl: c_int) -> c_int |real, ovl| {
        open_in_view(ovl, libc::AT_FDCWD, p, fl, 0, |_, p, fl, _| real(p, fl))
    }
    quick quick_open(d, p, fl, || real(d, p, fl, mode));
    fn openat(d: c_int, p: *const c_char, fl: c_int, mode: mode_t) -> c_int |real, ovl| {
        open_in_view(ovl, d, p, fl, mode, |d, p, fl, m| real(d, p, fl, m))
    }
    quick quick_open(d, p, fl, || real(d, p, fl, mode));
    fn openat64(d: c_int, p: *const c_char, fl: c_int, mode: mode_t) -> c_int |real, ovl| {
        open_in_view(ovl, d, p, fl, mode, |d, p, fl, m| real(d, p, fl, m))
    }
    quick quick_open(d, p, fl, || real(d, p, fl));
    fn __openat_2(d: c_int, p: *const c_char, fl: c_int) -> c_int |real, ovl| {
        open_in_view(ovl, d, p, fl, 0, |d, p, fl, _| real(d, p, fl))
    }
    quick quick_open(d, p, fl, || real(d, p, fl));
    fn __openat64_2(d: c_int, p: *const c_char, fl: c_int) -> c_int |real, ovl| {
        open_in_view(ovl, d, p, fl, 0, |d, p, fl, _| real(d, p, fl))
    }
    fn creat(p: *const c_char, mode: mode_t) -> c_int |real, ovl| {
        open_in_view(ovl, libc::AT_FDCWD, p, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, mode, |_, p, _, m| real(p, m))
    }
    fn creat64(p: *const c_char, mode: mode_t) -> c_int |real, ovl| {
        open_in_view(ovl, libc::AT_FDCWD, p, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, mode, |_, p, _, m| real(p, m))
    }
    fn fopen(p: *const c_char, mode: *const c_char) -> *mut FILE |real, ovl| {
        fopen_in_view(ovl, p, mode, |p, m| real(p, m))
    }
    fn fopen64(p: *const c_char, mode: *const c_char) -> *mut FILE |real, ovl| {
        fopen_in_view(ovl, p, mode, |p, m| real(p, m))
    }
    fn _IO_fopen(p: *const c_char, mode: *const c_char) -> *mut FILE |real, ovl| {
        fopen_in_view(ovl, p, mode, |p, m| real(p, m))
    }
    fn freopen(p: *const c_char, mode: *const c_char, f: *mut FILE) -> *mut FILE |real, ovl| {
        freopen_in_view(ovl, p, mode, f, |p, m, f| real(p, m, f))
    }
    fn freopen64(p: *const c_char, mode: *const c_char, f: *mut FILE) -> *mut FILE |real, ovl| {
        freopen_in_view(ovl, p, mode, f, |p, m, f| real(p, m, f))
    }

    unless_needed !ovl::fd_table::may_know_fd(fd) && !ovl::watch::any();
    fn close(fd: c_int) -> c_int |real, ovl| {
        if ovl.is_own_fd(fd) { return fail(Errno::BADF); }
        forget_fd(fd);
        real(fd)
    }
    unless_needed !ovl::fd_table::may_know_fd(fd) && !ovl::watch::any();
    fn __close(fd: c_int) -> c_int |real, ovl| {
        if ovl.is_own_fd(fd) { return fail(Errno::BADF); }
        forget_fd(fd);
        real(fd)
    }
    fn fclose(f: *mut FILE) -> c_int |real, _ovl| {
        if !f.is_null() { forget_fd(libc::fileno(f)); }
        real(f)
    }
    fn close_range(first: c_uint, last: c_uint, fl: c_int) -> c_int |real, ovl| {
        if fl & (libc::CLOSE_RANGE_CLOEXEC as c_int) != 0 { return real(first, last, fl); }
        forget_fd_range(first, last);
        let mut r = 0;
        for (a, b) in ovl.ranges_without_own_fds(first, last) {
            if real(a, b, fl) != 0 && r == 0 { r = -1; }
        }
        r
    }
    fn closefrom(low: c_int) -> () |real, ovl| {
        let low = low.max(0) as u32;
        forget_fd_range(low, u32::MAX);
        for (a, b) in ovl.ranges_without_own_fds(low, u32::MAX) {
            if b == u32::MAX { real(a as c_int) } else { libc::close_range(a, b, 0); }
        }
    }
    quick quick_dup(fd, || real(fd));
    fn dup(fd: c_int) -> c_int |real, _ovl| {
        let r = real(fd);
        if r >= 0 { dup_fd(fd, r); }
        r
    }
    fn dup2(fd: c_int, new: c_int) -> c_int |real, ovl| {
        ovl.vacate_fd(new);
        let r = real(fd, new);
        if r >= 0 && r != fd { dup_fd(fd, r); }
        r
    }
    fn dup3(fd: c_int, new: c_int, fl: c_int) -> c_int |real, ovl| {
        ovl.vacate_fd(new);
        let r = real(fd, new, fl);
        if r >= 0 { dup_fd(fd, r); }
        r
    }
    unless_needed !duplicates(cmd) && !status_flags(cmd, fd);
    quick duplicates(cmd).then(|| quick_dup(fd, || real(fd, cmd, arg))).flatten();
    fn fcntl(fd: c_int, cmd: c_int, arg: c_long) -> c_int |real, _ovl| {
        fcntl_in_view(fd, cmd, arg, |cmd, arg| real(fd, cmd, arg))
    }
    unless_needed !duplicates(cmd) && !status_flags(cmd, fd);
    quick duplicates(cmd).then(|| quick_dup(fd, || real(fd, cmd, arg))).flatten();
    fn fcntl64(fd: c_int, cmd: c_int, arg: c_long) -> c_int |real, _ovl| {
        fcntl_in_view(fd, cmd, arg, |cmd, arg| real(fd, cmd, arg))
    }

    fn fchmod(fd: c_int, mode: mode_t) -> c_int |real, ovl| {
        fd_change(ovl, fd, Change::Mode, |p| libc::chmod(p, mode), || real(fd, mode))
    }
    fn fchown(fd: c_int, u: libc::uid_t, g: libc::gid_t) -> c_int |real, ovl| {
        fd_change(ovl, fd, Change::Owner { uid: u, gid: g }, |p| libc::lchown(p, u, g), || real(fd, u, g))
    }
    fn futimens(fd: c_int, t: *const libc::timespec) -> c_int |real, ovl| {
        if crate::modify::times_change_nothing(t) { return real(fd, t); }
        fd_change(ovl, fd, crate::modify::times_given(crate::modify::now(t)), |p| libc::utimensat(libc::AT_FDCWD, p, t, libc::AT_SYMLINK_NOFOLLOW), || real(fd, t))
    }
    fn futimes(fd: c_int, t: *const libc::timeval) -> c_int |real, ovl| {
        fd_change(ovl, fd, crate::modify::times_given(t.is_null()), |p| libc::lutimes(p, t), || real(fd, t))
    }
    fn fsetxattr(fd: c_int, n: *const c_char, v: *const libc::c_void, s: libc::size_t, fl: c_int) -> c_int |real, ovl| {
        if let Err(e) = (XattrChange::Set { size: s, flags: fl }).check(n) { return fail(e); }
        let given = bytes(n).unwrap_or_default();
        let n = match crate::modify::fd_xattr_name(ovl, fd, n) { Ok(n) => n, Err(e) => return fail(e) };
        fd_change(ovl, fd, Change::Xattr(given), |p| libc::lsetxattr(p, n.as_ptr(), v, s, fl), || real(fd, n.as_ptr(), v, s, fl))
    }
    fn fremovexattr(fd: c_int, n: *const c_char) -> c_int |real, ovl| {
        if let Err(e) = XattrChange::Remove.check(n) { return fail(e); }
        let given = bytes(n).unwrap_or_default();
        let n = match crate::modify::fd_xattr_name(ovl, fd, n) { Ok(n) => n, Err(e) => return fail(e) };
        // Checked first, as the kernel; a name the lower object does not
        // have: nothing to copy up for.
        if fd_info(fd).is_some_and(|i| i.lower) {
            if let Err(e) = lower_fd_check(fd, Change::Xattr(given)) { return fail(e); }
            if libc::fgetxattr(fd, n.as_ptr(), std::ptr::null_mut(), 0) < 0 { return -1; }
        }
        fd_change(ovl, fd, Change::Xattr(given), |p| libc::lremovexattr(p, n.as_ptr()), || real(fd, n.as_ptr()))
    }
    // File handles: overlayfs (without `nfs_export`) makes none for its
    // objects; and a handle of a lower file, got by its real name outside
    // the view, never opens it for a change.
    fn name_to_handle_at(d: c_int, p: *const c_char, h: *mut c_void, mnt: *mut c_int, fl: c_int) -> c_int |real, ovl| {
        if handle_of_view_object(ovl, d, p, fl) { return fail(Errno::OPNOTSUPP); }
        real(d, p, h, mnt, fl)
    }
    fn open_by_handle_at(mnt: c_int, h: *mut c_void, fl: c_int) -> c_int |real, ovl| {
        let fd = real(mnt, h, fl);
        if fd >= 0 && ovl::open::writes(fl) && ovl.fd_in_lower_layer(fd) {
            libc::close(fd);
            return fail(Errno::ROFS);
        }
        fd
    }
    unless_needed !ovl::fd_table::may_know_fd(fd) && ovl::ioctl::harmless_anywhere(req) && !ovl::watch::any();
    fn ioctl(fd: c_int, req: libc::c_ulong, arg: *mut c_void) -> c_int |real, ovl| {
        // An inotify descriptor's events read ahead by a wait (`ovl::watch`)
        // are still there for the program to read.
        if req == libc::FIONREAD && ovl::watch::is_watcher(fd) {
            let r = real(fd, req, arg);
            if r == 0 && !arg.is_null() {
                // SAFETY: FIONREAD's argument is the caller's int, just written.
                *arg.cast::<c_int>() += ovl::watch::ready_len(fd) as c_int;
            }
            return r;
        }
        ioctl_in_view(ovl, fd, req, arg, |fd| real(fd, req, arg))
    }
}

/// `freopen` in the view, as `fopen`: the object is opened (copied up,
/// created, reached by a lower layer's real name) by the overlay; libc then
/// reopens the stream on that same object (by its `/proc/self/fd` link,
/// without `x`: the overlay made the file), and the stream's descriptor is
/// made a duplicate of the overlay's, which holds the flags the overlay
/// chose (`O_NOATIME` for a lower file's read) and is accounted for as one
/// of the view. The descriptor's number, close-on-exec flag and offset stay
/// as libc left them.
///
/// # Safety
/// `p` is NULL or a valid C string; `mode` a valid C string; `f` a stream.
unsafe fn freopen_in_view(
    ovl: &Overlay,
    p: *const c_char,
    mode: *const c_char,
    f: *mut FILE,
    real: impl FnOnce(*const c_char, *const c_char, *mut FILE) -> *mut FILE,
) -> *mut FILE {
    // SAFETY: per the contract.
    let Some(m) = (unsafe { bytes(mode) }) else {
        return real(p, mode, f);
    };
    // SAFETY: per the contract (a stream, possibly closed: -1).
    let old = unsafe { libc::fileno(f) };
    if p.is_null() {
        // The stream's own object, with a new mode.
        return match ovl
            .path_to_reopen(old, fopen_flags(m))
            .map(|p| ovl::cpath(&p))
        {
            // SAFETY: per the contract, with a C string of ours.
            Some(path) => unsafe { freopen_in_view(ovl, path.as_ptr(), mode, f, real) },
            None => real(p, mode, f),
        };
    }
    let mut outside: Option<CString> = None;
    // SAFETY: per the contract.
    let ours = unsafe {
        open_in_view(
            ovl,
            libc::AT_FDCWD,
            p,
            fopen_flags(m),
            0o666,
            |_, rp, _, _| {
                outside = Some(std::ffi::CStr::from_ptr(rp).to_owned());
                -2
            },
        )
    };
    let reopened = match ours {
        -1 => return std::ptr::null_mut(),
        -2 => {
            let path = outside.unwrap_or_default();
            let g = real(path.as_ptr(), mode, f);
            if !g.is_null() {
                // SAFETY: a stream libc has just reopened.
                let fd = unsafe { libc::fileno(g) };
                forget_fd(fd);
                ovl.note_opened_outside(libc::AT_FDCWD, path.to_bytes(), fd);
            }
            g
        }
        // SAFETY: `ours` is the overlay's open descriptor, given up here.
        ours => unsafe { reopen_on(ovl, ours, m, f, real) },
    };
    if !reopened.is_null() && old >= 0 {
        // SAFETY: a stream libc has just reopened.
        if unsafe { libc::fileno(reopened) } != old {
            forget_fd(old); // closed by libc's own call
        }
    }
    reopened
}

/// Reopens the stream `f` on the object of the overlay's descriptor `ours`
/// (see [`freopen_in_view`]), which it closes.
///
/// # Safety
/// `ours` is open and owned by the caller; `m` is the stream's mode; `f` a
/// stream.
unsafe fn reopen_on(
    ovl: &Overlay,
    ours: c_int,
    m: &[u8],
    f: *mut FILE,
    real: impl FnOnce(*const c_char, *const c_char, *mut FILE) -> *mut FILE,
) -> *mut FILE {
    let Some(path) = path_for_libc(ovl, ours) else {
        forget_fd(ours);
        // SAFETY: the caller's descriptor, given up.
        unsafe { libc::close(ours) };
        return fail(Errno::NOENT);
    };
    // The overlay made the file: libc's own open must not ask for that again.
    let mode: Vec<u8> = m
        .iter()
        .copied()
        .filter(|&c| c != b'x')
        .chain([0])
        .collect();
    let g = real(path.as_ptr(), mode.as_ptr().cast(), f);
    let e = crate::errno();
    // SAFETY: `g`, when not NULL, is the stream libc reopened, whose
    // descriptor becomes a duplicate of `ours`; `ours` is the caller's,
    // closed here.
    unsafe {
        if !g.is_null() {
            let fd = libc::fileno(g);
            let at = libc::lseek(fd, 0, libc::SEEK_CUR);
            let cloexec = libc::fcntl(fd, libc::F_GETFD) & libc::FD_CLOEXEC != 0;
            forget_fd(fd);
            if libc::dup3(ours, fd, if cloexec { libc::O_CLOEXEC } else { 0 }) == fd {
                dup_fd(ours, fd);
                if at > 0 {
                    libc::lseek(fd, at, libc::SEEK_SET);
                }
            }
        }
        forget_fd(ours);
        libc::close(ours);
    }
    crate::set_errno(e);
    g
}

/// A path that reaches the object of the descriptor `fd` for libc to open:
/// its `/proc/self/fd` link (no name on the way that another process could
/// switch), else its real path.
fn path_for_libc(ovl: &Overlay, fd: c_int) -> Option<CString> {
    let link = format!("/proc/self/fd/{fd}");
    if rustix::fs::statat(rustix::fs::CWD, link.as_str(), rustix::fs::AtFlags::empty()).is_ok() {
        return CString::new(link).ok();
    }
    match ovl.resolve(&fd_info(fd)?.rel, false) {
        Ok(Resolved::Inside(n)) => Some(ovl::cpath(&ovl.real_path(n.layer, &n.rel))),
        _ => None,
    }
}

/// Fills the `XXXXXX` of a template (before `suffix` bytes) with fresh
/// letters and runs `make` until it does not answer `EEXIST`, as glibc's
/// `mkstemp` and `mkdtemp` do. Our own `open`/`mkdir` run it, so the file
/// lands in the view.
///
/// # Safety
/// `template` is a writable C string.
unsafe fn fill_template(
    template: *mut c_char,
    suffix: usize,
    mut make: impl FnMut(*const c_char) -> c_int,
) -> c_int {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    // SAFETY: per the contract.
    let len = match unsafe { bytes(template) } {
        Some(b) => b.len(),
        None => return fail(Errno::INVAL),
    };
    if len < 6 + suffix {
        return fail(Errno::INVAL);
    }
    let start = len - 6 - suffix;
    // SAFETY: start..start+6 lies inside the caller's string.
    let xs = unsafe { std::slice::from_raw_parts_mut(template.add(start).cast::<u8>(), 6) };
    if xs != b"XXXXXX" {
        return fail(Errno::INVAL);
    }
    let mut seed = {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        (t.tv_nsec as u64)
            ^ ((t.tv_sec as u64) << 20)
            ^ (rustix::process::getpid().as_raw_nonzero().get() as u64) << 40
    };
    for _ in 0..238_328 {
        for x in xs.iter_mut() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *x = LETTERS[((seed >> 33) % LETTERS.len() as u64) as usize];
        }
        let r = make(template);
        if r >= 0 || crate::errno() != libc::EEXIST {
            return r;
        }
    }
    fail(Errno::EXIST)
}

/// `mkostemps` through the hooks (every `mkstemp` variant comes here).
///
/// # Safety
/// `template` is a writable C string.
unsafe fn mkstemp_in_view(
    ovl: &Overlay,
    template: *mut c_char,
    suffix: c_int,
    flags: c_int,
) -> c_int {
    // libc's own `open` would make the file where the hooks do not look:
    // also outside the view, a lower layer's directory reached by its real
    // name is the view's (the file is made in its copy), as for `open`.
    let flags = (flags & !libc::O_ACCMODE) | libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
    // SAFETY: per the contract; open_in_view gets the template as a C string.
    unsafe {
        fill_template(template, suffix.max(0) as usize, |p| {
            open_in_view(ovl, libc::AT_FDCWD, p, flags, 0o600, |d, p, f, m| {
                libc::openat(d, p, f, m)
            })
        })
    }
}

hooks! {
    fn mkstemp(t: *mut c_char) -> c_int |_real, ovl| {
        mkstemp_in_view(ovl, t, 0, 0)
    }
    fn mkstemp64(t: *mut c_char) -> c_int |_real, ovl| {
        mkstemp_in_view(ovl, t, 0, 0)
    }
    fn mkostemp(t: *mut c_char, fl: c_int) -> c_int |_real, ovl| {
        mkstemp_in_view(ovl, t, 0, fl)
    }
    fn mkostemp64(t: *mut c_char, fl: c_int) -> c_int |_real, ovl| {
        mkstemp_in_view(ovl, t, 0, fl)
    }
    fn mkstemps(t: *mut c_char, s: c_int) -> c_int |_real, ovl| {
        mkstemp_in_view(ovl, t, s, 0)
    }
    fn mkstemps64(t: *mut c_char, s: c_int) -> c_int |_real, ovl| {
        mkstemp_in_view(ovl, t, s, 0)
    }
    fn mkostemps(t: *mut c_char, s: c_int, fl: c_int) -> c_int |_real, ovl| {
        mkstemp_in_view(ovl, t, s, fl)
    }
    fn mkostemps64(t: *mut c_char, s: c_int, fl: c_int) -> c_int |_real, ovl| {
        mkstemp_in_view(ovl, t, s, fl)
    }
    // As `mkstemp`: made by the `mkdir` of the hooks, in the view or not
    // (a lower layer's directory by its real name refuses it, `EROFS`).
    fn mkdtemp(t: *mut c_char) -> *mut c_char |_real, ovl| {
        let r = fill_template(t, 0, |p| {
            crate::path::creating(ovl, libc::AT_FDCWD, p, true, |d, n| ovl.mkdir(d, n, 0o700), |d, p| libc::mkdirat(d, p, 0o700))
        });
        if r == 0 { t } else { std::ptr::null_mut() }
    }
}
