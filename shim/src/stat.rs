//! `stat` and friends, `access`, `readlink`, `statfs`, `inotify_add_watch`:
//! read-only calls on a path, answered by the real object the view shows. A
//! merged directory reports one link, as the kernel's overlay does (tree
//! walkers must not take its link count as a count of subdirectories).

use crate::path::{quickly_outside, reading, reading_or_answer, reading_unless, Shown};
use crate::{fail, hooks};
use libc::{c_char, c_int, size_t, ssize_t};
use ovl::lookup::Node;
use ovl::origin::UpperObject;
use ovl::overlay::{Overlay, UPPER};

const FOLLOW: bool = true;
const NOFOLLOW: bool = false;

fn follows(flags: c_int) -> bool {
    flags & libc::AT_SYMLINK_NOFOLLOW == 0
}

/// The real `stat` call's answer, with what the view reports differently
/// from the real object (a look-up's fresh `lstat` was offered to `answer!`
/// first): one link for a merged directory, an upper copy's origin's device
/// and inode numbers.
macro_rules! fix {
    ($ovl:expr, $r:expr, ($d:expr, $p:expr, $node:expr), $buf:expr) => {{
        let node: Option<&Node> = $node;
        let r = $r;
        if r == 0 && !$buf.is_null() {
            // SAFETY: the call succeeded and filled *buf.
            let b = unsafe { &mut *$buf };
            if shows_merged($ovl, ($d, $p, node)) {
                b.st_nlink = 1;
            }
            if let Some((dev, ino)) = node_identity($ovl, node) {
                (b.st_dev, b.st_ino) = (dev as _, ino as _);
            }
        }
        r
    }};
}

/// After a successful `fstat` of `fd` (or `fstatat` naming it) into `buf`:
/// what the view reports differently, as `fix!` for a path.
macro_rules! fix_fd {
    ($ovl:expr, $fd:expr, $buf:expr) => {{
        // SAFETY: the call succeeded and filled *buf.
        let b = unsafe { &mut *$buf };
        let upper = UpperObject {
            mode: b.st_mode,
            dev: b.st_dev as u64,
            ino: b.st_ino as u64,
            ctime: Some((b.st_ctime as i64, b.st_ctime_nsec as i64)),
        };
        let seen = fd_view($ovl, $fd, &upper);
        if let Some(st) = &seen.now {
            fill(st, $buf);
        }
        if seen.one_link {
            b.st_nlink = 1;
        }
        if let Some((dev, ino)) = seen.identity {
            (b.st_dev, b.st_ino) = (dev as _, ino as _);
        }
    }};
}

/// Is the object a `stat` call reached (the caller's `(d, p)` or a real
/// path, and the view's `node` for it) a merged directory? Also the
/// removed current directory named as `.`, which the call reached outside
/// the view.
fn shows_merged(ovl: &Overlay, (d, p, node): (c_int, *const c_char, Option<&Node>)) -> bool {
    match node {
        Some(node) => node.is_merged(),
        // SAFETY: the hook's path, or a real one made for the call: NULL or
        // a C string.
        None => {
            d == libc::AT_FDCWD
                && ovl::cwd::cwd_is_gone()
                && unsafe { crate::bytes(p) }
                    .is_some_and(|path| ovl.names_removed_merged_cwd(d, path))
        }
    }
}

/// The view's device and inode numbers for `node`, where they are not its
/// real ones: an upper copy of a lower object (see `ovl::origin`).
fn node_identity(ovl: &Overlay, node: Option<&Node>) -> Option<(u64, u64)> {
    let node = node?;
    ovl.layer_identity(node.layer, &node.rel, &node.stat)
}

/// What the view reports differently for the object `fd` is open on.
struct FdView {
    /// A merged directory: one link.
    one_link: bool,
    /// An upper copy's origin's device and inode numbers.
    identity: Option<(u64, u64)>,
    /// What the view shows now, where the descriptor's real object no
    /// longer is it: a lower directory copied up since it was opened.
    now: Option<rustix::fs::Stat>,
}

fn fd_view(ovl: &Overlay, fd: c_int, upper: &UpperObject) -> FdView {
    let Some(info) = ovl::fd_table::fd_info(fd) else {
        return FdView {
            one_link: false,
            identity: None,
            now: None,
        };
    };
    if let Some(copy) = ovl::fd_follow::copied_up_dir(ovl, fd, (upper.dev, upper.ino)) {
        return FdView {
            one_link: true,
            identity: node_identity(ovl, Some(&copy)),
            now: Some(copy.stat),
        };
    }
    // Only a directory can be merged.
    let one_link = upper.mode & libc::S_IFMT == libc::S_IFDIR && info.merged;
    FdView {
        one_link,
        identity: ovl.fd_origin_identity(fd, &info, upper),
        now: None,
    }
}

/// Answers a `stat` call from a fresh `lstat` the look-up made, when the
/// buffer has the kernel's layout (else the real call is made).
macro_rules! answer {
    ($buf:expr, $nlink:ident) => {
        |st: &rustix::fs::Stat, merged: bool| {
            (!$buf.is_null() && fill(st, $buf)).then(|| {
                if merged {
                    // SAFETY: fill just wrote the caller's buffer.
                    unsafe { (*$buf).$nlink = 1 };
                }
                0
            })
        }
    };
}

/// Tells from a `stat` answer made as given (an `lstat` of a child of a
/// directory of the bottom layer alone) whether it named a whiteout: a
/// character device 0/0, which the view does not show.
macro_rules! shown {
    ($buf:expr) => {
        |r: &c_int| {
            // SAFETY: a successful call filled *buf.
            if *r == 0
                && !$buf.is_null()
                && unsafe { is_whiteout_mode((*$buf).st_mode as _, (*$buf).st_rdev as _) }
            {
                Shown::Whiteout
            } else {
                Shown::Object
            }
        }
    };
}

/// Are this mode and device number a whiteout's (a character device 0/0)?
fn is_whiteout_mode(mode: libc::mode_t, rdev: u64) -> bool {
    mode & libc::S_IFMT == libc::S_IFCHR && rdev == 0
}

/// Copies the kernel's `stat` into a libc `stat`/`stat64` of the same layout
/// (true), or leaves it for the real call (false).
fn fill<T>(st: &rustix::fs::Stat, buf: *mut T) -> bool {
    if std::mem::size_of::<T>() != std::mem::size_of::<rustix::fs::Stat>()
        || std::mem::size_of::<T>() != std::mem::size_of::<libc::stat64>()
    {
        return false;
    }
    // SAFETY: buf points to a caller's stat buffer of exactly this size; both
    // are the kernel's `struct stat` layout on this target (checked by the
    // sizes above and by the test `stat_layouts_match`).
    unsafe {
        std::ptr::copy_nonoverlapping(
            (st as *const rustix::fs::Stat).cast::<u8>(),
            buf.cast::<u8>(),
            std::mem::size_of::<T>(),
        )
    };
    true
}

/// Puts the attributes of `st` (another object's `stat`) in a `statx`,
/// all but its device and inode numbers.
fn set_statx_attributes(b: &mut libc::statx, st: &rustix::fs::Stat) {
    let set = |t: &mut libc::statx_timestamp, sec: i64, nsec: u64| {
        (t.tv_sec, t.tv_nsec) = (sec, nsec as u32);
    };
    b.stx_mode = st.st_mode as u16;
    b.stx_nlink = st.st_nlink as u32;
    b.stx_uid = st.st_uid;
    b.stx_gid = st.st_gid;
    b.stx_size = st.st_size as u64;
    b.stx_blocks = st.st_blocks as u64;
    set(&mut b.stx_atime, st.st_atime, st.st_atime_nsec);
    set(&mut b.stx_mtime, st.st_mtime, st.st_mtime_nsec);
    set(&mut b.stx_ctime, st.st_ctime, st.st_ctime_nsec);
}

/// Puts the view's device and inode numbers `(dev, ino)` in a `statx`.
fn set_statx_identity(b: &mut libc::statx, (dev, ino): (u64, u64)) {
    b.stx_ino = ino;
    b.stx_dev_major = rustix::fs::major(dev);
    b.stx_dev_minor = rustix::fs::minor(dev);
}

/// Before an `fstat`: a descriptor reading a lower file that another
/// process has copied up since shows the copy (its size), as on the kernel.
fn catch_up(ovl: &ovl::overlay::Overlay, fd: c_int) {
    if ovl::fd_table::read_may_need_catch_up(fd) {
        ovl::fd_follow::catch_up_reader(ovl, fd);
    }
}

/// Is `fd` a descriptor of an object of the view?
fn in_view(fd: c_int) -> bool {
    ovl::fd_table::fd_info(fd).is_some()
}

/// `pathconf`'s limits that glibc derives from the file system's type
/// (`statfs`'s `f_type`), as it answers them for the overlay's, which it
/// does not know: the defaults for an unknown file system. `None`: the
/// real object's answer stands (`in_view` false, or any other limit).
fn overlay_limit(name: c_int, in_view: bool) -> Option<libc::c_long> {
    if !in_view {
        return None;
    }
    match name {
        libc::_PC_LINK_MAX => Some(127),
        libc::_PC_FILESIZEBITS => Some(32),
        libc::_PC_2_SYMLINKS => Some(1),
        _ => None,
    }
}

/// The overlay's filesystem type, as the kernel reports it.
const OVERLAYFS_SUPER_MAGIC: libc::c_long = 0x794c_7630;

/// `statfs` of an object of the view: the file system the kernel's overlay
/// reports, whatever layer holds the object (`ovl::overlay::Overlay::statfs_root`;
/// `call` makes the real call on that directory's path), with the
/// overlay's type, read-only as the view is.
macro_rules! view_statfs {
    ($ovl:expr, $buf:expr, $call:expr) => {{
        let root = $ovl.statfs_root();
        let r = ($call)(root.as_ptr());
        if r == 0 {
            (*$buf).f_type = OVERLAYFS_SUPER_MAGIC as _;
            if $ovl.statfs_read_only() {
                // SAFETY: glibc's `struct statfs` (and `statfs64`) has its
                // `f_flags` word right after `f_frsize` (the libc crate
                // keeps it in unnamed padding); `$buf` was just filled.
                let flags = std::ptr::addr_of_mut!((*$buf).f_frsize).add(1);
                *flags |= libc::ST_RDONLY as libc::__fsword_t;
            }
        }
        r
    }};
}

/// `statvfs` of an object of the view, as [`view_statfs`].
macro_rules! view_statvfs {
    ($ovl:expr, $buf:expr, $call:expr) => {{
        let root = $ovl.statfs_root();
        let r = ($call)(root.as_ptr());
        if r == 0 && $ovl.statfs_read_only() {
            (*$buf).f_flag |= libc::ST_RDONLY as libc::c_ulong;
        }
        r
    }};
}

hooks! {
    unless_outside(libc::AT_FDCWD, p);
    fn stat(p: *const c_char, buf: *mut libc::stat) -> c_int |real, ovl| {
        reading_or_answer(ovl, libc::AT_FDCWD, p, FOLLOW, (answer!(buf, st_nlink), shown!(buf)), |d, rp, n| fix!(ovl, real(rp, buf), (d, rp, n), buf))
    }
    unless_outside(libc::AT_FDCWD, p);
    fn stat64(p: *const c_char, buf: *mut libc::stat64) -> c_int |real, ovl| {
        reading_or_answer(ovl, libc::AT_FDCWD, p, FOLLOW, (answer!(buf, st_nlink), shown!(buf)), |d, rp, n| fix!(ovl, real(rp, buf), (d, rp, n), buf))
    }
    unless_outside(libc::AT_FDCWD, p);
    fn lstat(p: *const c_char, buf: *mut libc::stat) -> c_int |real, ovl| {
        reading_or_answer(ovl, libc::AT_FDCWD, p, NOFOLLOW, (answer!(buf, st_nlink), shown!(buf)), |d, rp, n| fix!(ovl, real(rp, buf), (d, rp, n), buf))
    }
    unless_outside(libc::AT_FDCWD, p);
    fn lstat64(p: *const c_char, buf: *mut libc::stat64) -> c_int |real, ovl| {
        reading_or_answer(ovl, libc::AT_FDCWD, p, NOFOLLOW, (answer!(buf, st_nlink), shown!(buf)), |d, rp, n| fix!(ovl, real(rp, buf), (d, rp, n), buf))
    }
    unless_outside(d, p);
    libc_at crate::HOT_FSTATAT;
    fn fstatat(d: c_int, p: *const c_char, buf: *mut libc::stat, fl: c_int) -> c_int |real, ovl| {
        let r = reading_or_answer(ovl, d, p, follows(fl), (answer!(buf, st_nlink), shown!(buf)), |d, rp, n| fix!(ovl, real(d, rp, buf, fl), (d, rp, n), buf));
        if r == 0 && crate::path::names_the_descriptor(p, fl) { fix_fd!(ovl, d, buf); }
        r
    }
    unless_outside(d, p);
    fn fstatat64(d: c_int, p: *const c_char, buf: *mut libc::stat64, fl: c_int) -> c_int |real, ovl| {
        let r = reading_or_answer(ovl, d, p, follows(fl), (answer!(buf, st_nlink), shown!(buf)), |d, rp, n| fix!(ovl, real(d, rp, buf, fl), (d, rp, n), buf));
        if r == 0 && crate::path::names_the_descriptor(p, fl) { fix_fd!(ovl, d, buf); }
        r
    }
    unless_outside(libc::AT_FDCWD, p);
    fn __xstat(v: c_int, p: *const c_char, buf: *mut libc::stat) -> c_int |real, ovl| {
        reading_or_answer(ovl, libc::AT_FDCWD, p, FOLLOW, (answer!(buf, st_nlink), shown!(buf)), |d, rp, n| fix!(ovl, real(v, rp, buf), (d, rp, n), buf))
    }
    unless_outside(libc::AT_FDCWD, p);
    fn __xstat64(v: c_int, p: *const c_char, buf: *mut libc::stat64) -> c_int |real, ovl| {
        reading_or_answer(ovl, libc::AT_FDCWD, p, FOLLOW, (answer!(buf, st_nlink), shown!(buf)), |d, rp, n| fix!(ovl, real(v, rp, buf), (d, rp, n), buf))
    }
    unless_outside(libc::AT_FDCWD, p);
    fn __lxstat(v: c_int, p: *const c_char, buf: *mut libc::stat) -> c_int |real, ovl| {
        reading_or_answer(ovl, libc::AT_FDCWD, p, NOFOLLOW, (answer!(buf, st_nlink), shown!(buf)), |d, rp, n| fix!(ovl, real(v, rp, buf), (d, rp, n), buf))
    }
    unless_outside(libc::AT_FDCWD, p);
    fn __lxstat64(v: c_int, p: *const c_char, buf: *mut libc::stat64) -> c_int |real, ovl| {
        reading_or_answer(ovl, libc::AT_FDCWD, p, NOFOLLOW, (answer!(buf, st_nlink), shown!(buf)), |d, rp, n| fix!(ovl, real(v, rp, buf), (d, rp, n), buf))
    }
    unless_outside(d, p);
    fn __fxstatat(v: c_int, d: c_int, p: *const c_char, buf: *mut libc::stat, fl: c_int) -> c_int |real, ovl| {
        reading_or_answer(ovl, d, p, follows(fl), (answer!(buf, st_nlink), shown!(buf)), |d, rp, n| fix!(ovl, real(v, d, rp, buf, fl), (d, rp, n), buf))
    }
    unless_outside(d, p);
    fn __fxstatat64(v: c_int, d: c_int, p: *const c_char, buf: *mut libc::stat64, fl: c_int) -> c_int |real, ovl| {
        reading_or_answer(ovl, d, p, follows(fl), (answer!(buf, st_nlink), shown!(buf)), |d, rp, n| fix!(ovl, real(v, d, rp, buf, fl), (d, rp, n), buf))
    }
    unless_outside(d, p);
    fn statx(d: c_int, p: *const c_char, fl: c_int, mask: libc::c_uint, buf: *mut libc::statx) -> c_int |real, ovl| {
        let shown = |r: &c_int| {
            // SAFETY: a successful call filled *buf.
            let whiteout = *r == 0 && !buf.is_null() && unsafe {
                let b = &*buf;
                is_whiteout_mode(libc::mode_t::from(b.stx_mode), rustix::fs::makedev(b.stx_rdev_major, b.stx_rdev_minor))
            };
            if whiteout { Shown::Whiteout } else { Shown::Object }
        };
        let r = reading_unless(ovl, d, p, follows(fl), shown, |d, rp, n| {
            let r = real(d, rp, fl, mask, buf);
            if r == 0 && shows_merged(ovl, (d, rp, n)) { (*buf).stx_nlink = 1; }
            if r == 0 { if let Some(id) = node_identity(ovl, n) { set_statx_identity(&mut *buf, id); } }
            r
        });
        if r == 0 && crate::path::names_the_descriptor(p, fl) {
            let b = &mut *buf;
            let upper = UpperObject {
                mode: libc::mode_t::from(b.stx_mode),
                dev: rustix::fs::makedev(b.stx_dev_major, b.stx_dev_minor),
                ino: b.stx_ino,
                ctime: (b.stx_mask & libc::STATX_CTIME != 0)
                    .then_some((b.stx_ctime.tv_sec, i64::from(b.stx_ctime.tv_nsec))),
            };
            let seen = fd_view(ovl, d, &upper);
            if let Some(st) = &seen.now { set_statx_attributes(b, st); }
            if seen.one_link { b.stx_nlink = 1; }
            if let Some(id) = seen.identity { set_statx_identity(b, id); }
        }
        r
    }
    unless_needed !ovl::fd_table::may_know_fd(fd);
    fn fstat(fd: c_int, buf: *mut libc::stat) -> c_int |real, ovl| {
        catch_up(ovl, fd);
        let r = real(fd, buf);
        if r == 0 { fix_fd!(ovl, fd, buf); }
        r
    }
    unless_needed !ovl::fd_table::may_know_fd(fd);
    fn fstat64(fd: c_int, buf: *mut libc::stat64) -> c_int |real, ovl| {
        catch_up(ovl, fd);
        let r = real(fd, buf);
        if r == 0 { fix_fd!(ovl, fd, buf); }
        r
    }
    fn __fxstat(v: c_int, fd: c_int, buf: *mut libc::stat) -> c_int |real, ovl| {
        catch_up(ovl, fd);
        let r = real(v, fd, buf);
        if r == 0 { fix_fd!(ovl, fd, buf); }
        r
    }
    fn __fxstat64(v: c_int, fd: c_int, buf: *mut libc::stat64) -> c_int |real, ovl| {
        catch_up(ovl, fd);
        let r = real(v, fd, buf);
        if r == 0 { fix_fd!(ovl, fd, buf); }
        r
    }

    unless_outside(libc::AT_FDCWD, p);
    fn access(p: *const c_char, mode: c_int) -> c_int |real, ovl| {
        reading(ovl, libc::AT_FDCWD, p, FOLLOW, |_, rp, n| match ovl.access_left(n, mode) {
            Ok(left) => real(rp, left),
            Err(e) => fail(e),
        })
    }
    unless_outside(libc::AT_FDCWD, p);
    fn euidaccess(p: *const c_char, mode: c_int) -> c_int |real, ovl| {
        reading(ovl, libc::AT_FDCWD, p, FOLLOW, |_, rp, n| match ovl.access_left(n, mode) {
            Ok(left) => real(rp, left),
            Err(e) => fail(e),
        })
    }
    unless_outside(libc::AT_FDCWD, p);
    fn eaccess(p: *const c_char, mode: c_int) -> c_int |real, ovl| {
        reading(ovl, libc::AT_FDCWD, p, FOLLOW, |_, rp, n| match ovl.access_left(n, mode) {
            Ok(left) => real(rp, left),
            Err(e) => fail(e),
        })
    }
    unless_outside(d, p);
    fn faccessat(d: c_int, p: *const c_char, mode: c_int, fl: c_int) -> c_int |real, ovl| {
        reading(ovl, d, p, follows(fl), |d, rp, n| match ovl.access_left(n, mode) {
            Ok(left) => real(d, rp, left, fl),
            Err(e) => fail(e),
        })
    }

    // One of this process's magic links (`/proc/self/exe`...) shows the
    // view's path of its target (`ovl::magic`).
    unless_needed quickly_outside(libc::AT_FDCWD, p) && !may_be_own_link(p);
    fn readlink(p: *const c_char, buf: *mut c_char, len: size_t) -> ssize_t |real, ovl| {
        readlink_in_view(ovl, libc::AT_FDCWD, p, buf, len, |_, rp, b, l| real(rp, b, l))
    }
    unless_needed quickly_outside(d, p) && !may_be_own_link(p);
    fn readlinkat(d: c_int, p: *const c_char, buf: *mut c_char, len: size_t) -> ssize_t |real, ovl| {
        readlink_in_view(ovl, d, p, buf, len, |d, rp, b, l| real(d, rp, b, l))
    }
    unless_needed quickly_outside(libc::AT_FDCWD, p) && !may_be_own_link(p);
    fn __readlink_chk(p: *const c_char, buf: *mut c_char, len: size_t, blen: size_t) -> ssize_t |real, ovl| {
        readlink_in_view(ovl, libc::AT_FDCWD, p, buf, len, |_, rp, b, l| real(rp, b, l, blen.max(l)))
    }
    unless_needed quickly_outside(d, p) && !may_be_own_link(p);
    fn __readlinkat_chk(d: c_int, p: *const c_char, buf: *mut c_char, len: size_t, blen: size_t) -> ssize_t |real, ovl| {
        readlink_in_view(ovl, d, p, buf, len, |d, rp, b, l| real(d, rp, b, l, blen.max(l)))
    }

    fn statfs(p: *const c_char, buf: *mut libc::statfs) -> c_int |real, ovl| {
        reading(ovl, libc::AT_FDCWD, p, FOLLOW, |_, rp, n| match n {
            Some(_) => view_statfs!(ovl, buf, |root| real(root, buf)),
            None => real(rp, buf),
        })
    }
    fn statfs64(p: *const c_char, buf: *mut libc::statfs64) -> c_int |real, ovl| {
        reading(ovl, libc::AT_FDCWD, p, FOLLOW, |_, rp, n| match n {
            Some(_) => view_statfs!(ovl, buf, |root| real(root, buf)),
            None => real(rp, buf),
        })
    }
    // The watch is on the real object the view shows; one on a lower file
    // follows its copy-up (`ovl::watch`; see the README's limitations for
    // what it cannot see).
    fn inotify_add_watch(fd: c_int, p: *const c_char, mask: u32) -> c_int |real, ovl| {
        reading(ovl, libc::AT_FDCWD, p, mask & libc::IN_DONT_FOLLOW == 0, |_, rp, n| match n {
            Some(n) if n.layer == UPPER => {
                ovl::watch::add_upper_watch(ovl, fd, n, mask, || real(fd, rp, mask))
            }
            Some(n) => {
                let wd = real(fd, rp, mask);
                if wd >= 0 { ovl::watch::follow(ovl, fd, wd, n, mask); }
                wd
            }
            None => real(fd, rp, mask),
        })
    }
    fn inotify_rm_watch(fd: c_int, wd: c_int) -> c_int |real, _ovl| {
        if let Some(copy_wd) = ovl::watch::unfollow(fd, wd) { real(fd, copy_wd); }
        real(fd, wd)
    }
    fn inotify_init() -> c_int |real, _ovl| {
        let fd = real();
        ovl::watch::forget(fd);
        if fd >= 0 { ovl::watch::inotify_made(fd); }
        fd
    }
    fn inotify_init1(flags: c_int) -> c_int |real, _ovl| {
        let fd = real(flags);
        ovl::watch::forget(fd);
        if fd >= 0 { ovl::watch::inotify_made(fd); }
        fd
    }

    unless_needed !ovl::fd_table::may_know_fd(fd);
    fn fstatfs(fd: c_int, buf: *mut libc::statfs) -> c_int |real, ovl| {
        if !in_view(fd) { return real(fd, buf); }
        view_statfs!(ovl, buf, |root| libc::statfs(root, buf))
    }
    unless_needed !ovl::fd_table::may_know_fd(fd);
    fn fstatfs64(fd: c_int, buf: *mut libc::statfs64) -> c_int |real, ovl| {
        if !in_view(fd) { return real(fd, buf); }
        view_statfs!(ovl, buf, |root| libc::statfs64(root, buf))
    }
    fn pathconf(p: *const c_char, name: c_int) -> libc::c_long |real, ovl| {
        reading(ovl, libc::AT_FDCWD, p, FOLLOW, |_, rp, n| overlay_limit(name, n.is_some()).unwrap_or_else(|| real(rp, name)))
    }
    unless_needed !ovl::fd_table::may_know_fd(fd);
    fn fpathconf(fd: c_int, name: c_int) -> libc::c_long |real, ovl| {
        let _ = ovl;
        overlay_limit(name, in_view(fd)).unwrap_or_else(|| real(fd, name))
    }
    fn statvfs(p: *const c_char, buf: *mut libc::statvfs) -> c_int |real, ovl| {
        reading(ovl, libc::AT_FDCWD, p, FOLLOW, |_, rp, n| match n {
            Some(_) => view_statvfs!(ovl, buf, |root| real(root, buf)),
            None => real(rp, buf),
        })
    }
    fn statvfs64(p: *const c_char, buf: *mut libc::statvfs64) -> c_int |real, ovl| {
        reading(ovl, libc::AT_FDCWD, p, FOLLOW, |_, rp, n| match n {
            Some(_) => view_statvfs!(ovl, buf, |root| real(root, buf)),
            None => real(rp, buf),
        })
    }
    unless_needed !ovl::fd_table::may_know_fd(fd);
    fn fstatvfs(fd: c_int, buf: *mut libc::statvfs) -> c_int |real, ovl| {
        if !in_view(fd) { return real(fd, buf); }
        view_statvfs!(ovl, buf, |root| libc::statvfs(root, buf))
    }
    unless_needed !ovl::fd_table::may_know_fd(fd);
    fn fstatvfs64(fd: c_int, buf: *mut libc::statvfs64) -> c_int |real, ovl| {
        if !in_view(fd) { return real(fd, buf); }
        view_statvfs!(ovl, buf, |root| libc::statvfs64(root, buf))
    }
}

/// Could `p` name one of this process's magic links (`ovl::magic`)?
///
/// # Safety
/// `p` is NULL or a valid C string.
unsafe fn may_be_own_link(p: *const c_char) -> bool {
    // SAFETY: per the contract.
    unsafe { crate::bytes(p) }.is_some_and(ovl::magic::may_be_own_link)
}

/// `readlink` of `(d, p)` in the view, `read` making the real call (`d`,
/// real path, buffer, length): one of this process's magic links shows the
/// view's path of its target, cut to `len` bytes as `readlink` cuts.
///
/// # Safety
/// `p` is NULL or a valid C string; `buf` is valid for `len` bytes.
unsafe fn readlink_in_view(
    ovl: &Overlay,
    d: c_int,
    p: *const c_char,
    buf: *mut c_char,
    len: size_t,
    read: impl FnOnce(c_int, *const c_char, *mut c_char, size_t) -> ssize_t,
) -> ssize_t {
    // SAFETY: per the contract.
    let own_link = unsafe { crate::bytes(p) }.is_some_and(ovl::magic::is_own_link);
    // SAFETY: per the contract.
    unsafe {
        // Only a symlink can be read: a whiteout fails with `EINVAL`.
        let shown = |r: &ssize_t| {
            if *r < 0 && crate::errno() == libc::EINVAL {
                Shown::Maybe
            } else {
                Shown::Object
            }
        };
        reading_unless(ovl, d, p, NOFOLLOW, shown, |d, rp, n| {
            if n.is_some() || !own_link {
                return read(d, rp, buf, len);
            }
            let mut target = [0u8; libc::PATH_MAX as usize];
            let got = read(d, rp, target.as_mut_ptr().cast(), target.len());
            let Ok(got) = usize::try_from(got) else {
                return got;
            };
            let target = &target[..got];
            let shown = ovl.shown_link_target(crate::bytes(p).unwrap_or_default(), target);
            let shown = shown.as_deref().unwrap_or(target);
            let n = shown.len().min(len);
            // SAFETY: `buf` is valid for `len` bytes, `n` of them written.
            std::ptr::copy_nonoverlapping(shown.as_ptr(), buf.cast::<u8>(), n);
            n as ssize_t
        })
    }
}
