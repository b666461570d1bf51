//! Calls that change the view: names created, removed, renamed, linked, and
//! metadata changed. The overlay decides (copy-up, whiteouts, opaque
//! directories); these wrappers only decode arguments and report.

use crate::path::{
    changing, creating, done, locate, names_the_descriptor, parent, reading, Located, Parent,
};
use crate::{bytes, fail, hooks};
use libc::{c_char, c_int, c_uint, c_void, dev_t, gid_t, mode_t, size_t, ssize_t, uid_t};
use ovl::lookup::{NoName, Node};
use ovl::overlay::Overlay;
use ovl::permission::Change;
use ovl::rename::RenameEnd;
use ovl::tmpfile::{made_unnamed, magic_link_fd, LinkFrom};
use rustix::fd::{AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::ffi::CString;

const FOLLOW: bool = true;
const NOFOLLOW: bool = false;

/// An xattr name as the call passes it to the real object.
pub(crate) enum XattrName {
    /// The caller's (outside the view, or NULL).
    Given(*const c_char),
    /// Escaped in the overlay's namespace (see `ovl::xattr::real_name`).
    Escaped(CString),
}

impl XattrName {
    pub(crate) fn as_ptr(&self) -> *const c_char {
        match self {
            XattrName::Given(p) => *p,
            XattrName::Escaped(c) => c.as_ptr(),
        }
    }
}

/// The real name of the view's xattr `name`; `EPERM` for the names ovl
/// keeps as its records in the other namespace.
pub(crate) fn real_xattr_name(ovl: &Overlay, name: *const c_char) -> Result<XattrName, Errno> {
    // SAFETY: name is a C string argument (or NULL).
    let Some(n) = (unsafe { bytes(name) }) else {
        return Ok(XattrName::Given(name));
    };
    Ok(match ovl::xattr::real_name(ovl.xattr_ns, n)? {
        std::borrow::Cow::Borrowed(_) => XattrName::Given(name),
        std::borrow::Cow::Owned(v) => {
            XattrName::Escaped(CString::new(v).map_err(|_| Errno::INVAL)?)
        }
    })
}

/// The name for an `*xattr` call through the descriptor `fd`: escaped when
/// `fd` is of the view.
pub(crate) fn fd_xattr_name(
    ovl: &Overlay,
    fd: c_int,
    name: *const c_char,
) -> Result<XattrName, Errno> {
    if ovl::fd_table::fd_info(fd).is_some() {
        real_xattr_name(ovl, name)
    } else {
        Ok(XattrName::Given(name))
    }
}

/// An xattr change: a value set (its size and flags) or a removal.
#[derive(Clone, Copy)]
pub(crate) enum XattrChange {
    Set { size: size_t, flags: c_int },
    Remove,
}

impl XattrChange {
    /// What the kernel checks before it looks anything up (see
    /// `ovl::xattr::check_change`).
    ///
    /// # Safety
    /// `name` is NULL or a valid C string.
    pub(crate) unsafe fn check(self, name: *const c_char) -> Result<(), Errno> {
        // SAFETY: per the contract.
        let Some(name) = (unsafe { bytes(name) }) else {
            return Err(Errno::FAULT);
        };
        match self {
            XattrChange::Set { size, flags } => {
                ovl::xattr::check_change(name, Some(size), Some(flags))
            }
            XattrChange::Remove => ovl::xattr::check_change(name, None, None),
        }
    }
}

/// Runs an xattr change `f(real path, real name)` on the object behind
/// `p`: in the view, on its upper copy under the escaped name (nothing is
/// copied up for a call refused, nor to remove a name a lower object does
/// not have, as on the kernel); outside, as given.
///
/// # Safety
/// `p` and `name` are NULL or valid C strings.
unsafe fn xattr_change(
    ovl: &Overlay,
    p: *const c_char,
    follow: bool,
    name: *const c_char,
    change: XattrChange,
    f: impl FnOnce(*const c_char, *const c_char) -> c_int,
) -> c_int {
    // SAFETY: per the contract.
    if let Err(e) = unsafe { change.check(name) } {
        return fail(e);
    }
    // SAFETY: per the contract.
    match unsafe { locate(ovl, libc::AT_FDCWD, p, follow) } {
        Ok(Located::Outside) => match follow
            .then(|| crate::path::through_fd_link(ovl, p))
            .flatten()
        {
            // SAFETY: a valid C string, and the caller's name.
            Some(view) => unsafe { xattr_change(ovl, view.as_ptr(), follow, name, change, f) },
            None => crate::path::outside_change(ovl, libc::AT_FDCWD, p, follow, |_, p| f(p, name)),
        },
        Ok(Located::Redirect(r)) => {
            crate::path::outside_change(ovl, libc::AT_FDCWD, r.as_ptr(), follow, |_, p| f(p, name))
        }
        Ok(Located::Node(node)) => {
            // SAFETY: per the contract (and `check` found the name valid).
            let given = unsafe { bytes(name) }.unwrap_or_default();
            if let Some(e) = ovl::xattr::change_refused(given, node.file_type()) {
                return fail(e);
            }
            let name = match real_xattr_name(ovl, name) {
                Ok(n) => n,
                Err(e) => return fail(e),
            };
            if ovl.has_upper {
                if let Err(e) = ovl.may_change(&node, Change::Xattr(given)) {
                    return fail(e);
                }
            }
            if matches!(change, XattrChange::Remove) && ovl.has_upper && ovl.is_lower(&node) {
                let lower = ovl::cpath(&ovl.real_path(node.layer, &node.rel));
                // SAFETY: a valid path and name; a size query writes nothing.
                if unsafe {
                    libc::lgetxattr(lower.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0)
                } < 0
                {
                    return -1;
                }
            }
            match crate::path::upper_copy(ovl, &node, None) {
                Ok(real) => f(real.as_ptr(), name.as_ptr()),
                Err(e) => fail(e),
            }
        }
        Err(e) => fail(e),
    }
}

/// A read of the xattr `name` of an object of the view (`Some(real)`), or
/// of an outside one: the view's names are escaped; a name ovl keeps as
/// its record is not there (`ENODATA`).
fn xattr_read(
    ovl: &Overlay,
    in_view: bool,
    name: *const c_char,
    f: impl FnOnce(*const c_char) -> ssize_t,
) -> ssize_t {
    if !in_view {
        return f(name);
    }
    match real_xattr_name(ovl, name) {
        Ok(n) => f(n.as_ptr()),
        Err(_) => fail(Errno::NODATA),
    }
}

/// Removes a name: `want_dir` for `rmdir`, else `unlink`.
///
/// # Safety
/// `p` is NULL or a valid C string.
unsafe fn remove_in_view(
    ovl: &Overlay,
    dirfd: c_int,
    p: *const c_char,
    want_dir: bool,
    real: impl FnOnce(c_int, *const c_char) -> c_int,
) -> c_int {
    // SAFETY: per the contract.
    match unsafe { parent(ovl, dirfd, p) } {
        Ok(Parent::Outside) => crate::path::outside_change(ovl, dirfd, p, false, real),
        Ok(Parent::Redirect(r)) => {
            crate::path::outside_change(ovl, libc::AT_FDCWD, r.as_ptr(), false, real)
        }
        Ok(Parent::Special(ending)) => fail(match ending {
            _ if !want_dir => Errno::ISDIR,
            NoName::Dot => Errno::INVAL,
            NoName::DotDot => Errno::NOTEMPTY,
            NoName::Root => Errno::BUSY,
        }),
        // A read-only view says so before it looks the name up, as the
        // kernel asks for write access to the mount first.
        Ok(Parent::Name { .. }) if !ovl.has_upper => fail(Errno::ROFS),
        Ok(Parent::Name { dir, name, slash }) => match ovl.lookup_child(&dir, &name) {
            Ok(None) => fail(Errno::NOENT),
            Ok(Some(node)) => done(remove_found(ovl, &dir, &name, &node, want_dir, slash)),
            Err(e) => fail(e),
        },
        Err(e) => fail(e),
    }
}

/// Removes the name `name` of `node` from `dir`, in the kernel's order: a
/// path ending in `/` names a directory, then `may_delete` (the
/// directory's access, its sticky bit), then the object's type.
fn remove_found(
    ovl: &Overlay,
    dir: &Node,
    name: &[u8],
    node: &Node,
    want_dir: bool,
    slash: bool,
) -> Result<(), Errno> {
    let wrong_type = match (want_dir, node.is_dir()) {
        (_, false) if want_dir || slash => Some(Errno::NOTDIR),
        (false, true) => Some(Errno::ISDIR),
        _ => None,
    };
    if let Some(e) = wrong_type.filter(|_| slash) {
        return Err(e);
    }
    ovl.may_delete_from(dir, node)?;
    match wrong_type {
        Some(e) => Err(e),
        None if want_dir => ovl.rmdir(dir, name, node),
        None => ovl.unlink(dir, name, node),
    }
}

/// A rename's or link's end.
enum End {
    Outside(c_int, *const c_char),
    InView(Box<EndInView>),
}

/// An end in the view: its directory and name, the object there, and
/// whether the path ends in `/`.
struct EndInView {
    dir: Node,
    name: Vec<u8>,
    node: Option<Node>,
    slash: bool,
}

/// The end `(dirfd, p)`; `no_name`: the error when the path has no last
/// name (`x/.`, `x/..`, the view's root).
///
/// # Safety
/// `p` is NULL or a valid C string.
unsafe fn end(
    ovl: &Overlay,
    dirfd: c_int,
    p: *const c_char,
    no_name: Errno,
    holder: &mut Option<std::ffi::CString>,
) -> Result<End, Errno> {
    // SAFETY: per the contract.
    Ok(match unsafe { parent(ovl, dirfd, p) }? {
        Parent::Outside => End::Outside(dirfd, p),
        Parent::Redirect(r) => {
            let ptr = r.as_ptr();
            *holder = Some(r);
            End::Outside(libc::AT_FDCWD, ptr)
        }
        Parent::Special(_) => return Err(no_name),
        Parent::Name { dir, name, slash } => {
            let node = ovl.lookup_child(&dir, &name)?;
            End::InView(Box::new(EndInView {
                dir,
                name,
                node,
                slash,
            }))
        }
    })
}

/// `renameat2` in the view. A rename between the view and the outside is a
/// move across filesystems: `EXDEV`.
///
/// # Safety
/// `a` and `b` are NULL or valid C strings.
unsafe fn rename_in_view(
    ovl: &Overlay,
    da: c_int,
    a: *const c_char,
    db: c_int,
    b: *const c_char,
    flags: c_uint,
    real: impl FnOnce(c_int, *const c_char, c_int, *const c_char) -> c_int,
) -> c_int {
    let (mut ha, mut hb) = (None, None);
    // SAFETY: per the contract.
    let ends = unsafe {
        (
            end(ovl, da, a, Errno::BUSY, &mut ha),
            end(ovl, db, b, Errno::BUSY, &mut hb),
        )
    };
    match ends {
        (Ok(End::Outside(da, a)), Ok(End::Outside(db, b))) => {
            // SAFETY: a is NULL or a valid C string (the caller's or ours).
            let old = unsafe { bytes(a) }.unwrap_or_default();
            if let Err(e) = ovl.check_outside_rename(da, old) {
                return fail(e);
            }
            if flags & libc::RENAME_EXCHANGE != 0 {
                // SAFETY: as for `a`.
                let new = unsafe { bytes(b) }.unwrap_or_default();
                if let Err(e) = ovl.check_outside_rename(db, new) {
                    return fail(e);
                }
            }
            crate::path::outside_change(ovl, db, b, false, |db, b| real(da, a, db, b))
        }
        (Ok(End::InView(a)), Ok(End::InView(b))) => {
            // Before the names are looked at, as the kernel asks for write
            // access to the mount first.
            if !ovl.has_upper {
                return fail(Errno::ROFS);
            }
            let Some(old) = &a.node else {
                return fail(Errno::NOENT);
            };
            // Only a directory may be named with a trailing `/`, at either end.
            if (a.slash || b.slash) && !old.is_dir() {
                return fail(Errno::NOTDIR);
            }
            done(ovl.rename(
                RenameEnd {
                    parent: &a.dir,
                    name: &a.name,
                    node: Some(old),
                },
                RenameEnd {
                    parent: &b.dir,
                    name: &b.name,
                    node: b.node.as_ref(),
                },
                flags,
            ))
        }
        // SAFETY: `a` as given.
        (Err(_), Err(eb)) if unsafe { fails_at_last_name(ovl, da, a) } => fail(eb),
        (Err(e), _) | (_, Err(e)) => fail(e),
        _ => fail(Errno::XDEV),
    }
}

/// `Overlay::fails_at_last_name` of the caller's C string `p`.
///
/// # Safety
/// `p` is NULL or a valid C string.
unsafe fn fails_at_last_name(ovl: &Overlay, dirfd: c_int, p: *const c_char) -> bool {
    // SAFETY: per the contract.
    unsafe { bytes(p) }.is_some_and(|path| ovl.fails_at_last_name(dirfd, path))
}

/// With `AT_EMPTY_PATH` and an empty name, `linkat` links the object of
/// the descriptor `da` itself: when that is an object of the view, the
/// view's node (linked in the view, or refused elsewhere, as across two
/// mounts); a real link to it would give a lower file a name outside the
/// view, and a way to change it. A descriptor opened by a lower file's real
/// name is refused (`EROFS`). `None`: not that case.
///
/// # Safety
/// `a` is NULL or a valid C string.
unsafe fn descriptors_own_object(
    ovl: &Overlay,
    da: c_int,
    a: *const c_char,
    flags: c_int,
) -> Option<Result<Node, Errno>> {
    // SAFETY: per the contract.
    if !unsafe { crate::path::names_the_descriptor(a, flags) } {
        return None;
    }
    let Some(info) = ovl::fd_table::fd_info(da) else {
        // Opened by a lower file's real name: no new name for it, as by that name.
        return ovl.fd_in_lower_layer(da).then_some(Err(Errno::ROFS));
    };
    Some(match ovl.resolve(&info.rel, false) {
        Ok(ovl::lookup::Resolved::Inside(node)) => Ok(node),
        Ok(ovl::lookup::Resolved::Outside(_)) => Err(Errno::XDEV),
        Err(e) => Err(e),
    })
}

/// `linkat`'s source when it is an unnamed file made in the view
/// (`O_TMPFILE`, see `ovl::tmpfile`): the descriptor itself, or its magic
/// link followed. `None`: any other source.
///
/// # Safety
/// `a` is NULL or a valid C string.
unsafe fn unnamed_source<'a>(da: c_int, a: *const c_char, flags: c_int) -> Option<LinkFrom<'a>> {
    // SAFETY: per the contract.
    if unsafe { names_the_descriptor(a, flags) } {
        // SAFETY: the caller's descriptor, for this call only.
        return made_unnamed(da)
            .then(|| LinkFrom::Descriptor(unsafe { BorrowedFd::borrow_raw(da) }));
    }
    if flags & libc::AT_SYMLINK_FOLLOW == 0 {
        return None;
    }
    // SAFETY: per the contract.
    let path = unsafe { bytes(a) }?;
    let fd = magic_link_fd(path)?;
    // SAFETY: `a` is a valid C string, alive for the call.
    made_unnamed(fd).then(|| LinkFrom::MagicLink(unsafe { std::ffi::CStr::from_ptr(a) }))
}

/// `linkat` in the view.
///
/// # Safety
/// `a` and `b` are NULL or valid C strings.
unsafe fn link_in_view(
    ovl: &Overlay,
    da: c_int,
    a: *const c_char,
    db: c_int,
    b: *const c_char,
    flags: c_int,
    real: impl FnOnce(c_int, *const c_char, c_int, *const c_char, c_int) -> c_int,
) -> c_int {
    let follow = flags & libc::AT_SYMLINK_FOLLOW != 0;
    let mut hb = None;
    // SAFETY: per the contract.
    if let Some(from) = unsafe { unnamed_source(da, a, flags) } {
        // SAFETY: per the contract.
        return match unsafe { end(ovl, db, b, Errno::EXIST, &mut hb) } {
            Ok(End::InView(b)) if b.node.is_some() => fail(Errno::EXIST),
            Ok(End::InView(b)) if b.slash => fail(Errno::NOENT),
            Ok(End::InView(b)) => done(ovl.link_unnamed(from, &b.dir, &b.name)),
            // Another mount, for the kernel's overlay.
            Ok(End::Outside(..)) => fail(Errno::XDEV),
            Err(e) => fail(e),
        };
    }
    // SAFETY: per the contract.
    let old = match unsafe { descriptors_own_object(ovl, da, a, flags) } {
        Some(node) => node.map(Located::Node),
        // SAFETY: per the contract.
        None => unsafe { locate(ovl, da, a, follow) },
    };
    // SAFETY: per the contract.
    // A new name that is none (`x/.`) is taken, as the kernel's link says.
    let new = unsafe { end(ovl, db, b, Errno::EXIST, &mut hb) };
    match (old, new) {
        (Ok(Located::Outside), Ok(End::Outside(db, b))) => {
            crate::path::outside_change(ovl, da, a, follow, |da, a| {
                crate::path::outside_change(ovl, db, b, false, |db, b| real(da, a, db, b, flags))
            })
        }
        (Ok(Located::Node(old)), Ok(End::InView(b))) => {
            if b.node.is_some() {
                return fail(Errno::EXIST);
            }
            if b.slash {
                return fail(Errno::NOENT); // `new/` asks for a directory
            }
            if !ovl.has_upper {
                return fail(Errno::ROFS);
            }
            done(ovl.link(&old, &b.dir, &b.name))
        }
        (Err(e), _) | (_, Err(e)) => fail(e),
        _ => fail(Errno::XDEV),
    }
}

/// A mode change that does not follow a final symlink (`lchmod`,
/// `fchmodat` with `AT_SYMLINK_NOFOLLOW`): Linux cannot change a symlink's
/// mode, so glibc refuses one with `EOPNOTSUPP` before any change, and so
/// nothing is copied up for it.
///
/// # Safety
/// `p` is NULL or a valid C string.
unsafe fn chmod_nofollow(
    ovl: &Overlay,
    dirfd: c_int,
    p: *const c_char,
    f: impl FnOnce(c_int, *const c_char) -> c_int,
) -> c_int {
    // SAFETY: per the contract.
    let symlink = unsafe {
        // A whiteout is no symlink: the answer stands.
        let shown = |_: &c_int| crate::path::Shown::Object;
        crate::path::reading_unless(ovl, dirfd, p, NOFOLLOW, shown, |_, _, n| {
            n.map_or(0, |n| {
                (n.file_type() == rustix::fs::FileType::Symlink) as c_int
            })
        })
    };
    if symlink == 1 {
        return fail(Errno::OPNOTSUPP);
    }
    // SAFETY: per the contract.
    unsafe { changing(ovl, dirfd, p, NOFOLLOW, Change::Mode, f) }
}

/// Does `flags` hold a flag outside `known`? The kernel (or glibc) then
/// fails with `EINVAL` before it looks at any path: such a call goes as
/// given, and nothing is copied up for it.
fn unknown_flags(flags: c_int, known: c_int) -> bool {
    flags & !known != 0
}

/// Would `utimensat`/`futimens` with these times change nothing? Two
/// `UTIME_OMIT` make the kernel return at once; an invalid nanosecond
/// count makes it fail with `EINVAL` before any change. Such a call is
/// made on the real object as it stands: nothing is copied up for it.
///
/// # Safety
/// `t` is NULL or points to two `timespec`s.
pub(crate) unsafe fn times_change_nothing(t: *const libc::timespec) -> bool {
    if t.is_null() {
        return false;
    }
    // SAFETY: per the contract.
    let [a, m] = unsafe { [*t, *t.add(1)] };
    let valid = |n: libc::c_long| {
        (0..1_000_000_000).contains(&n) || n == libc::UTIME_NOW || n == libc::UTIME_OMIT
    };
    (a.tv_nsec == libc::UTIME_OMIT && m.tv_nsec == libc::UTIME_OMIT)
        || !valid(a.tv_nsec)
        || !valid(m.tv_nsec)
}

/// A `chown(u, g)`.
fn owner(u: uid_t, g: gid_t) -> Change<'static> {
    Change::Owner { uid: u, gid: g }
}

/// A change of times: to the current time (`now`), or to times given.
pub(crate) fn times_given(now: bool) -> Change<'static> {
    Change::Times { now }
}

/// Do these `utimensat` times ask for the current time (no times, or
/// both `UTIME_NOW`), which one who may write the file may set?
///
/// # Safety
/// `t` is NULL or points to two `timespec`s.
pub(crate) unsafe fn now(t: *const libc::timespec) -> bool {
    // SAFETY: per the contract.
    t.is_null()
        || unsafe { (*t).tv_nsec == libc::UTIME_NOW && (*t.add(1)).tv_nsec == libc::UTIME_NOW }
}

/// The copy of the lower directory `fd` is open on, opened for one call,
/// when it has been copied up since (by this process or another): its
/// extended attributes are the view's, as the kernel reads the upper
/// directory's through such a descriptor. Not for an `O_PATH` descriptor,
/// through which none can be read (`EBADF`).
fn copy_of_lower_dir(ovl: &Overlay, fd: c_int) -> Option<OwnedFd> {
    let copy = ovl::fd_follow::copied_up_dir_of(ovl, fd)?;
    if crate::fd::only_names(fd) {
        return None;
    }
    let path = ovl::cpath(&ovl.real_path(copy.layer, &copy.rel));
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::open(path.as_c_str(), flags, Mode::empty()).ok()
}

/// `listxattr` of an object of the view (see `ovl::xattr::filter_list`);
/// `call` makes the real call into a buffer. As on the kernel's overlay, a
/// length query answers the real list's length (the overlay's records
/// included: room enough for the view's list), a buffer too small for the
/// real list fails with `ERANGE`, and only the view's list is written to
/// the caller's buffer (nothing of the records, even past its end).
fn list_in_view(
    ovl: &Overlay,
    list: *mut c_char,
    size: size_t,
    call: impl Fn(*mut c_char, size_t) -> ssize_t,
) -> ssize_t {
    if size == 0 || list.is_null() {
        return call(list, size);
    }
    let mut buf = vec![0u8; size];
    let r = call(buf.as_mut_ptr().cast(), size);
    if r <= 0 {
        return r;
    }
    let len = ovl::xattr::filter_list(ovl.xattr_ns, &mut buf, r as usize);
    // SAFETY: the caller's buffer holds `size` bytes, `len` <= r <= size.
    unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), list.cast::<u8>(), len) };
    len as ssize_t
}

hooks! {
    fn mkdir(p: *const c_char, mode: mode_t) -> c_int |real, ovl| {
        creating(ovl, libc::AT_FDCWD, p, true, |d, n| ovl.mkdir(d, n, mode), |_, p| real(p, mode))
    }
    fn mkdirat(fd: c_int, p: *const c_char, mode: mode_t) -> c_int |real, ovl| {
        creating(ovl, fd, p, true, |d, n| ovl.mkdir(d, n, mode), |fd, p| real(fd, p, mode))
    }
    fn mknod(p: *const c_char, mode: mode_t, dev: dev_t) -> c_int |real, ovl| {
        creating(ovl, libc::AT_FDCWD, p, false, |d, n| ovl.mknod(d, n, mode, dev), |_, p| real(p, mode, dev))
    }
    fn mknodat(fd: c_int, p: *const c_char, mode: mode_t, dev: dev_t) -> c_int |real, ovl| {
        creating(ovl, fd, p, false, |d, n| ovl.mknod(d, n, mode, dev), |fd, p| real(fd, p, mode, dev))
    }
    fn __xmknod(v: c_int, p: *const c_char, mode: mode_t, dev: *mut dev_t) -> c_int |real, ovl| {
        creating(ovl, libc::AT_FDCWD, p, false, |d, n| ovl.mknod(d, n, mode, *dev), |_, p| real(v, p, mode, dev))
    }
    fn __xmknodat(v: c_int, fd: c_int, p: *const c_char, mode: mode_t, dev: *mut dev_t) -> c_int |real, ovl| {
        creating(ovl, fd, p, false, |d, n| ovl.mknod(d, n, mode, *dev), |fd, p| real(v, fd, p, mode, dev))
    }
    fn mkfifo(p: *const c_char, mode: mode_t) -> c_int |real, ovl| {
        creating(ovl, libc::AT_FDCWD, p, false, |d, n| ovl.mknod(d, n, mode | libc::S_IFIFO, 0), |_, p| real(p, mode))
    }
    fn mkfifoat(fd: c_int, p: *const c_char, mode: mode_t) -> c_int |real, ovl| {
        creating(ovl, fd, p, false, |d, n| ovl.mknod(d, n, mode | libc::S_IFIFO, 0), |fd, p| real(fd, p, mode))
    }
    fn symlink(t: *const c_char, p: *const c_char) -> c_int |real, ovl| {
        let target = bytes(t).unwrap_or_default();
        creating(ovl, libc::AT_FDCWD, p, false, |d, n| ovl.symlink(target, d, n), |_, p| real(t, p))
    }
    fn symlinkat(t: *const c_char, fd: c_int, p: *const c_char) -> c_int |real, ovl| {
        let target = bytes(t).unwrap_or_default();
        creating(ovl, fd, p, false, |d, n| ovl.symlink(target, d, n), |fd, p| real(t, fd, p))
    }
    fn link(a: *const c_char, b: *const c_char) -> c_int |real, ovl| {
        link_in_view(ovl, libc::AT_FDCWD, a, libc::AT_FDCWD, b, 0, |_, a, _, b, _| real(a, b))
    }
    fn linkat(da: c_int, a: *const c_char, db: c_int, b: *const c_char, fl: c_int) -> c_int |real, ovl| {
        if unknown_flags(fl, libc::AT_SYMLINK_FOLLOW | libc::AT_EMPTY_PATH) { return real(da, a, db, b, fl); }
        link_in_view(ovl, da, a, db, b, fl, |da, a, db, b, fl| real(da, a, db, b, fl))
    }
    fn unlink(p: *const c_char) -> c_int |real, ovl| {
        remove_in_view(ovl, libc::AT_FDCWD, p, false, |_, p| real(p))
    }
    fn rmdir(p: *const c_char) -> c_int |real, ovl| {
        remove_in_view(ovl, libc::AT_FDCWD, p, true, |_, p| real(p))
    }
    fn unlinkat(fd: c_int, p: *const c_char, fl: c_int) -> c_int |real, ovl| {
        if unknown_flags(fl, libc::AT_REMOVEDIR) { return real(fd, p, fl); }
        remove_in_view(ovl, fd, p, fl & libc::AT_REMOVEDIR != 0, |fd, p| real(fd, p, fl))
    }
    fn remove(p: *const c_char) -> c_int |real, ovl| {
        let is_dir = reading(ovl, libc::AT_FDCWD, p, NOFOLLOW, |_, _, n| n.map_or(-1, |n| n.is_dir() as c_int));
        match is_dir {
            -1 => real(p),
            d => remove_in_view(ovl, libc::AT_FDCWD, p, d == 1, |_, p| real(p)),
        }
    }
    fn rename(a: *const c_char, b: *const c_char) -> c_int |real, ovl| {
        rename_in_view(ovl, libc::AT_FDCWD, a, libc::AT_FDCWD, b, 0, |_, a, _, b| real(a, b))
    }
    fn renameat(da: c_int, a: *const c_char, db: c_int, b: *const c_char) -> c_int |real, ovl| {
        rename_in_view(ovl, da, a, db, b, 0, |da, a, db, b| real(da, a, db, b))
    }
    fn renameat2(da: c_int, a: *const c_char, db: c_int, b: *const c_char, fl: c_uint) -> c_int |real, ovl| {
        let known = libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE | libc::RENAME_WHITEOUT;
        let exchange = fl & libc::RENAME_EXCHANGE != 0 && fl & (libc::RENAME_NOREPLACE | libc::RENAME_WHITEOUT) != 0;
        if unknown_flags(fl as c_int, known as c_int) || exchange { return real(da, a, db, b, fl); }
        rename_in_view(ovl, da, a, db, b, fl, |da, a, db, b| real(da, a, db, b, fl))
    }

    fn chmod(p: *const c_char, mode: mode_t) -> c_int |real, ovl| {
        changing(ovl, libc::AT_FDCWD, p, FOLLOW, Change::Mode, |_, p| real(p, mode))
    }
    fn fchmodat(fd: c_int, p: *const c_char, mode: mode_t, fl: c_int) -> c_int |real, ovl| {
        if unknown_flags(fl, libc::AT_SYMLINK_NOFOLLOW) { return real(fd, p, mode, fl); }
        if fl & libc::AT_SYMLINK_NOFOLLOW != 0 { return chmod_nofollow(ovl, fd, p, |fd, p| real(fd, p, mode, fl)); }
        changing(ovl, fd, p, FOLLOW, Change::Mode, |fd, p| real(fd, p, mode, fl))
    }
    // glibc's `lchmod` calls its own `fchmodat` inside, which no hook sees.
    fn lchmod(p: *const c_char, mode: mode_t) -> c_int |real, ovl| {
        chmod_nofollow(ovl, libc::AT_FDCWD, p, |_, p| real(p, mode))
    }
    fn chown(p: *const c_char, u: uid_t, g: gid_t) -> c_int |real, ovl| {
        changing(ovl, libc::AT_FDCWD, p, FOLLOW, owner(u, g), |_, p| real(p, u, g))
    }
    fn lchown(p: *const c_char, u: uid_t, g: gid_t) -> c_int |real, ovl| {
        changing(ovl, libc::AT_FDCWD, p, NOFOLLOW, owner(u, g), |_, p| real(p, u, g))
    }
    fn fchownat(fd: c_int, p: *const c_char, u: uid_t, g: gid_t, fl: c_int) -> c_int |real, ovl| {
        if unknown_flags(fl, libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) { return real(fd, p, u, g, fl); }
        if names_the_descriptor(p, fl) { return crate::fd::empty_path_change(ovl, fd, owner(u, g), |p| libc::lchown(p, u, g), || real(fd, p, u, g, fl)); }
        changing(ovl, fd, p, fl & libc::AT_SYMLINK_NOFOLLOW == 0, owner(u, g), |fd, p| real(fd, p, u, g, fl))
    }
    fn utime(p: *const c_char, t: *const libc::utimbuf) -> c_int |real, ovl| {
        changing(ovl, libc::AT_FDCWD, p, FOLLOW, times_given(t.is_null()), |_, p| real(p, t))
    }
    fn utimes(p: *const c_char, t: *const libc::timeval) -> c_int |real, ovl| {
        changing(ovl, libc::AT_FDCWD, p, FOLLOW, times_given(t.is_null()), |_, p| real(p, t))
    }
    fn lutimes(p: *const c_char, t: *const libc::timeval) -> c_int |real, ovl| {
        changing(ovl, libc::AT_FDCWD, p, NOFOLLOW, times_given(t.is_null()), |_, p| real(p, t))
    }
    // A NULL name changes the descriptor's own object, as `futimes`.
    fn futimesat(fd: c_int, p: *const c_char, t: *const libc::timeval) -> c_int |real, ovl| {
        if p.is_null() { return crate::fd::fd_change(ovl, fd, times_given(t.is_null()), |p| libc::lutimes(p, t), || real(fd, p, t)); }
        changing(ovl, fd, p, FOLLOW, times_given(t.is_null()), |fd, p| real(fd, p, t))
    }
    // glibc refuses a NULL name (`EINVAL`); `futimens` is its own hook.
    fn utimensat(fd: c_int, p: *const c_char, t: *const libc::timespec, fl: c_int) -> c_int |real, ovl| {
        if p.is_null() || unknown_flags(fl, libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) { return real(fd, p, t, fl); }
        if times_change_nothing(t) { return reading(ovl, fd, p, fl & libc::AT_SYMLINK_NOFOLLOW == 0, |d, rp, _| real(d, rp, t, fl)); }
        if names_the_descriptor(p, fl) { return crate::fd::empty_path_change(ovl, fd, times_given(now(t)), |p| libc::utimensat(libc::AT_FDCWD, p, t, libc::AT_SYMLINK_NOFOLLOW), || real(fd, p, t, fl)); }
        changing(ovl, fd, p, fl & libc::AT_SYMLINK_NOFOLLOW == 0, times_given(now(t)), |fd, p| real(fd, p, t, fl))
    }
    // A negative length fails before the look-up, as the kernel checks it.
    fn truncate(p: *const c_char, len: libc::off_t) -> c_int |real, ovl| {
        if len < 0 { return fail(Errno::INVAL); }
        changing(ovl, libc::AT_FDCWD, p, FOLLOW, Change::Size(len as u64), |_, p| real(p, len))
    }
    fn truncate64(p: *const c_char, len: libc::off64_t) -> c_int |real, ovl| {
        if len < 0 { return fail(Errno::INVAL); }
        changing(ovl, libc::AT_FDCWD, p, FOLLOW, Change::Size(len as u64), |_, p| real(p, len))
    }

    fn setxattr(p: *const c_char, n: *const c_char, v: *const c_void, s: size_t, fl: c_int) -> c_int |real, ovl| {
        xattr_change(ovl, p, FOLLOW, n, XattrChange::Set { size: s, flags: fl }, |p, n| real(p, n, v, s, fl))
    }
    fn lsetxattr(p: *const c_char, n: *const c_char, v: *const c_void, s: size_t, fl: c_int) -> c_int |real, ovl| {
        xattr_change(ovl, p, NOFOLLOW, n, XattrChange::Set { size: s, flags: fl }, |p, n| real(p, n, v, s, fl))
    }
    fn removexattr(p: *const c_char, n: *const c_char) -> c_int |real, ovl| {
        xattr_change(ovl, p, FOLLOW, n, XattrChange::Remove, |p, n| real(p, n))
    }
    fn lremovexattr(p: *const c_char, n: *const c_char) -> c_int |real, ovl| {
        xattr_change(ovl, p, NOFOLLOW, n, XattrChange::Remove, |p, n| real(p, n))
    }
    fn getxattr(p: *const c_char, n: *const c_char, v: *mut c_void, s: size_t) -> ssize_t |real, ovl| {
        reading(ovl, libc::AT_FDCWD, p, FOLLOW, |_, rp, node| {
            xattr_read(ovl, node.is_some(), n, |n| real(rp, n, v, s))
        })
    }
    fn lgetxattr(p: *const c_char, n: *const c_char, v: *mut c_void, s: size_t) -> ssize_t |real, ovl| {
        reading(ovl, libc::AT_FDCWD, p, NOFOLLOW, |_, rp, node| {
            xattr_read(ovl, node.is_some(), n, |n| real(rp, n, v, s))
        })
    }
    fn fgetxattr(fd: c_int, n: *const c_char, v: *mut c_void, s: size_t) -> ssize_t |real, ovl| {
        let copy = copy_of_lower_dir(ovl, fd);
        let on = copy.as_ref().map_or(fd, |c| c.as_raw_fd());
        xattr_read(ovl, ovl::fd_table::fd_info(fd).is_some(), n, |n| real(on, n, v, s))
    }
    fn listxattr(p: *const c_char, l: *mut c_char, s: size_t) -> ssize_t |real, ovl| {
        reading(ovl, libc::AT_FDCWD, p, FOLLOW, |_, rp, node| match node {
            Some(_) => list_in_view(ovl, l, s, |b, n| real(rp, b, n)),
            None => real(rp, l, s),
        })
    }
    fn llistxattr(p: *const c_char, l: *mut c_char, s: size_t) -> ssize_t |real, ovl| {
        reading(ovl, libc::AT_FDCWD, p, NOFOLLOW, |_, rp, node| match node {
            Some(_) => list_in_view(ovl, l, s, |b, n| real(rp, b, n)),
            None => real(rp, l, s),
        })
    }
    fn flistxattr(fd: c_int, l: *mut c_char, s: size_t) -> ssize_t |real, ovl| {
        match ovl::fd_table::fd_info(fd) {
            Some(_) => {
                let copy = copy_of_lower_dir(ovl, fd);
                let on = copy.as_ref().map_or(fd, |c| c.as_raw_fd());
                list_in_view(ovl, l, s, |b, n| real(on, b, n))
            }
            None => real(fd, l, s),
        }
    }
}
