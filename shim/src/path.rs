//! Translating path arguments: each helper asks the core where a path lies
//! and hands the real function either the caller's own arguments (outside the
//! view) or the real path the core chose.

use crate::{bytes, fail, trace, Failure};
use ovl::locate::{AsGiven, ReadAt};
use ovl::lookup::{NoName, Node, ParentOf, Resolved};
use ovl::overlay::Overlay;
use ovl::permission::Change;
use rustix::fs::Stat;
use rustix::io::Errno;
use std::ffi::{c_char, c_int, CStr, CString};

/// Where a path argument inside the view leads.
pub(crate) enum Located {
    /// Outside the view: the caller's arguments stand.
    Outside,
    /// Resolved, through a symlink, to this path outside the view.
    Redirect(CString),
    /// An object of the view.
    Node(Node),
}

/// Does a `*at` call with these flags and this name act on the descriptor's
/// own object (`AT_EMPTY_PATH` with an empty name)?
///
/// # Safety
/// `p` is NULL or a valid C string.
pub(crate) unsafe fn names_the_descriptor(p: *const c_char, flags: c_int) -> bool {
    // SAFETY: per the contract.
    flags & libc::AT_EMPTY_PATH != 0 && unsafe { bytes(p) }.is_some_and(<[u8]>::is_empty)
}

/// Resolves `(dirfd, p)`; `follow` says whether a final symlink is followed.
///
/// # Safety
/// `p` is NULL or a valid C string.
pub(crate) unsafe fn locate(
    ovl: &Overlay,
    dirfd: c_int,
    p: *const c_char,
    follow: bool,
) -> Result<Located, Errno> {
    // SAFETY: per the contract.
    let Some(path) = (unsafe { bytes(p) }) else {
        return Ok(Located::Outside);
    };
    if path.is_empty() {
        // `AT_EMPTY_PATH` or an error the real call reports: the descriptor is real.
        return Ok(Located::Outside);
    }
    let Some(r) = ovl.resolve_at(dirfd, path, follow) else {
        return Ok(Located::Outside);
    };
    trace::resolved(ovl, path, &r);
    match r? {
        Resolved::Inside(node) => Ok(Located::Node(node)),
        Resolved::Outside(p) => Ok(Located::Redirect(ovl::cpath(&p))),
    }
}

/// The first thing a hook asks: is `(dirfd, p)` a relative name that
/// plainly lies outside an overlay already set up, and cannot climb (or
/// any name, in a process known to have no overlay)? Calls nothing, so
/// that the way to libc saves no registers. `false`: look closer
/// ([`plainly_outside`]).
///
/// # Safety
/// `p` is NULL or a valid C string.
#[inline(always)]
pub(crate) unsafe fn quickly_outside(dirfd: c_int, p: *const c_char) -> bool {
    match ovl::overlay::peek() {
        // SAFETY: per the contract, a non-NULL `p` is NUL-terminated.
        Some(ovl) if !p.is_null() => unsafe { ovl.quickly_outside_c(dirfd, p.cast()) },
        Some(_) => false,
        // No overlay at all: nothing is inside.
        None => ovl::overlay::known_absent(),
    }
}

/// Before a hook does anything else: does `(dirfd, p)` plainly lie outside
/// an overlay already set up (see `Overlay::plainly_outside`: no lock, no
/// allocation)? The call then goes straight to libc.
///
/// # Safety
/// `p` is NULL or a valid C string.
#[inline(always)]
pub(crate) unsafe fn plainly_outside(dirfd: c_int, p: *const c_char) -> bool {
    match ovl::overlay::peek() {
        // SAFETY: per the contract, a non-NULL `p` is NUL-terminated.
        Some(ovl) if !p.is_null() => unsafe { ovl.plainly_outside_c(dirfd, p.cast()) },
        _ => false,
    }
}

/// Runs `f` on the real object behind a path that is only read: the caller's
/// arguments outside the view, else `(AT_FDCWD, real path, node)`.
///
/// # Safety
/// `p` is NULL or a valid C string.
pub(crate) unsafe fn reading<R: Failure>(
    ovl: &Overlay,
    dirfd: c_int,
    p: *const c_char,
    follow: bool,
    f: impl FnOnce(c_int, *const c_char, Option<&Node>) -> R,
) -> R {
    // SAFETY: per the contract.
    unsafe { reading_unless(ovl, dirfd, p, follow, |_: &R| Shown::Maybe, f) }
}

/// What the answer of a call made as given in a directory of the bottom
/// layer alone tells of the object it named (see `AsGiven::UnlessWhiteout`).
pub(crate) enum Shown {
    /// Not a whiteout (the common case: no more is asked).
    Object,
    /// A whiteout (an `lstat` of a character device 0/0): `ENOENT`.
    Whiteout,
    /// It may be one: one `fstatat` tells (what a look-up in the view
    /// would have cost).
    Maybe,
}

/// `reading`, where `shown` tells from the answer of a call made as given
/// whether it named a whiteout (which the view does not show).
///
/// # Safety
/// `p` is NULL or a valid C string.
pub(crate) unsafe fn reading_unless<R: Failure>(
    ovl: &Overlay,
    dirfd: c_int,
    p: *const c_char,
    follow: bool,
    shown: impl FnOnce(&R) -> Shown,
    f: impl FnOnce(c_int, *const c_char, Option<&Node>) -> R,
) -> R {
    // SAFETY: per the contract.
    let Some(path) = (unsafe { bytes(p) }) else {
        return f(dirfd, p, None);
    };
    let f = match as_given(ovl, dirfd, (p, path), follow, shown, f) {
        Ok(r) => return r,
        Err(f) => f,
    };
    // SAFETY: per the contract.
    unsafe {
        read_through(
            ovl,
            dirfd,
            (p, path),
            follow,
            None::<fn(&Stat, bool) -> Option<R>>,
            f,
        )
    }
}

/// The call made with the caller's arguments (`p`, whose bytes are
/// `path`) when that reaches what the view shows (its answer checked by
/// `shown` for a whiteout where one may hide the name), else `f` back for
/// the look-up in the view.
fn as_given<R: Failure, F: FnOnce(c_int, *const c_char, Option<&Node>) -> R>(
    ovl: &Overlay,
    dirfd: c_int,
    (p, path): (*const c_char, &[u8]),
    follow: bool,
    shown: impl FnOnce(&R) -> Shown,
    f: F,
) -> Result<R, F> {
    match ovl.reads_as_given(dirfd, path, follow) {
        AsGiven::No => Err(f),
        AsGiven::Yes => Ok(f(dirfd, p, None)),
        AsGiven::UnlessWhiteout => {
            let r = f(dirfd, p, None);
            Ok(match shown(&r) {
                Shown::Object => r,
                Shown::Whiteout => fail(Errno::NOENT),
                Shown::Maybe => {
                    let errno = crate::errno();
                    if ovl.whiteout_at(dirfd, path) {
                        fail(Errno::NOENT)
                    } else {
                        crate::set_errno(errno);
                        r
                    }
                }
            })
        }
    }
}

/// `reading`, where `answer` may answer from a fresh `lstat` the look-up
/// made (with whether the object is a merged directory), before any real
/// path is made or a second system call is needed: the `stat` family. A
/// path whose directory is known is answered by the core's quick path.
///
/// # Safety
/// `p` is NULL or a valid C string.
pub(crate) unsafe fn reading_or_answer<R: Failure>(
    ovl: &Overlay,
    dirfd: c_int,
    p: *const c_char,
    follow: bool,
    (answer, shown): (impl Fn(&Stat, bool) -> Option<R>, impl FnOnce(&R) -> Shown),
    f: impl FnOnce(c_int, *const c_char, Option<&Node>) -> R,
) -> R {
    // SAFETY: per the contract.
    let path = unsafe { bytes(p) }.unwrap_or_default();
    let f = match as_given(ovl, dirfd, (p, path), follow, shown, f) {
        Ok(r) => return r,
        Err(f) => f,
    };
    // The trace names the real path of every look-up: the full one gives it.
    if !trace::enabled() {
        // SAFETY: `bytes` found the NUL right after `path`.
        let c_path = unsafe {
            CStr::from_bytes_with_nul_unchecked(std::slice::from_raw_parts(
                p.cast(),
                path.len() + 1,
            ))
        };
        let mut stat = std::mem::MaybeUninit::uninit();
        match ovl.quick_stat(dirfd, c_path, follow, &mut stat) {
            Some(Ok((stat, merged))) => {
                if let Some(r) = answer(stat, merged) {
                    return r;
                }
            }
            Some(Err(e)) => return fail(e),
            None => {}
        }
    }
    // SAFETY: per the contract.
    unsafe { read_through(ovl, dirfd, (p, path), follow, Some(answer), f) }
}

/// The look-up behind `reading` and `reading_or_answer`, of the caller's
/// C string `p`, whose bytes (not empty) are `path`.
///
/// # Safety
/// `p` is a valid C string.
unsafe fn read_through<R: Failure>(
    ovl: &Overlay,
    dirfd: c_int,
    (p, path): (*const c_char, &[u8]),
    follow: bool,
    answer: Option<impl Fn(&Stat, bool) -> Option<R>>,
    f: impl FnOnce(c_int, *const c_char, Option<&Node>) -> R,
) -> R {
    let r = match ovl.read_inside_at(dirfd, path, follow) {
        ReadAt::Outside => return f(dirfd, p, None),
        ReadAt::Found(r) => r,
    };
    trace::resolved(ovl, path, &r);
    match r {
        Ok(Resolved::Outside(real)) => {
            let real = ovl::cpath(&real);
            f(libc::AT_FDCWD, real.as_ptr(), None)
        }
        Ok(Resolved::Inside(node)) => {
            let answered = answer.filter(|_| node.fresh).and_then(|a| {
                let mut stat = node.stat;
                ovl.report_identity(node.layer, &node.rel, &mut stat);
                a(&stat, node.is_merged())
            });
            if let Some(r) = answered {
                return r;
            }
            let real = ovl::cpath(&ovl.real_path(node.layer, &node.rel));
            f(libc::AT_FDCWD, real.as_ptr(), Some(&node))
        }
        Err(e) => fail(e),
    }
}

/// Runs `f` on the upper copy of the object behind a path whose metadata or
/// size is about to change (checked as the kernel checks `change`, then
/// copied up; a truncate copies only the data kept).
///
/// # Safety
/// `p` is NULL or a valid C string.
pub(crate) unsafe fn changing<R: Failure>(
    ovl: &Overlay,
    dirfd: c_int,
    p: *const c_char,
    follow: bool,
    change: Change<'_>,
    f: impl FnOnce(c_int, *const c_char) -> R,
) -> R {
    // SAFETY: per the contract.
    match unsafe { locate(ovl, dirfd, p, follow) } {
        Ok(Located::Outside) => match follow.then(|| through_fd_link(ovl, p)).flatten() {
            // SAFETY: a valid C string.
            Some(view) => unsafe {
                changing(ovl, libc::AT_FDCWD, view.as_ptr(), follow, change, f)
            },
            None => outside_change(ovl, dirfd, p, follow, f),
        },
        Ok(Located::Redirect(real)) => {
            outside_change(ovl, libc::AT_FDCWD, real.as_ptr(), follow, f)
        }
        Ok(Located::Node(node)) => match checked_copy(ovl, &node, change) {
            Ok(real) => f(libc::AT_FDCWD, real.as_ptr()),
            Err(e) => fail(e),
        },
        Err(e) => fail(e),
    }
}

/// The real path of the upper copy of `node` for `change`: refused first
/// as the kernel refuses it (a truncate of what is not a regular file, any
/// change in a read-only view, or one this process may not make to the
/// lower object, see `ovl::permission`), then copied up when needed.
pub(crate) fn checked_copy(
    ovl: &Overlay,
    node: &Node,
    change: Change<'_>,
) -> Result<CString, Errno> {
    if change.keep().is_some() {
        // A truncate: as the kernel, only of a regular file.
        match node.file_type() {
            rustix::fs::FileType::RegularFile => {}
            rustix::fs::FileType::Directory => return Err(Errno::ISDIR),
            _ => return Err(Errno::INVAL),
        }
    }
    if !ovl.has_upper {
        return Err(Errno::ROFS);
    }
    ovl.may_change(node, change)?;
    upper_copy(ovl, node, change.keep())
}

/// The real path of the upper copy of `node`, copying it up when needed
/// (the change already checked); `keep`: a truncate's length (only so many
/// bytes are copied).
pub(crate) fn upper_copy(ovl: &Overlay, node: &Node, keep: Option<u64>) -> Result<CString, Errno> {
    if !ovl.has_upper {
        return Err(Errno::ROFS);
    }
    let node = if ovl.is_lower(node) {
        ovl.copy_up(node, keep)?
    } else {
        node.clone()
    };
    Ok(ovl::cpath(&ovl.real_path(node.layer, &node.rel)))
}

/// The view's path behind `p`, a path through this process's link to a
/// descriptor of the view (see `ovl::magic`).
pub(crate) fn through_fd_link(ovl: &Overlay, p: *const c_char) -> Option<CString> {
    // SAFETY: p is NULL or a valid C string (the caller's).
    let path = unsafe { bytes(p) }?;
    if !ovl::magic::may_be_own_link(path) {
        return None;
    }
    ovl.view_path_of_fd_link(path).map(|v| ovl::cpath(&v))
}

/// A change to a path outside the view: refused when it reaches a lower
/// layer's tree (the lower layers never change), else done as asked.
pub(crate) fn outside_change<R: Failure>(
    ovl: &Overlay,
    dirfd: c_int,
    p: *const c_char,
    follow: bool,
    f: impl FnOnce(c_int, *const c_char) -> R,
) -> R {
    // SAFETY: p is NULL or a valid C string (the caller's or ours).
    let path = unsafe { bytes(p) }.unwrap_or_default();
    match ovl.outside_change(dirfd, path, follow, || f(dirfd, p)) {
        Ok(r) => r,
        Err(e) => fail(e),
    }
}

/// The parent directory of a name to create or remove.
// Made and matched once per call, never stored: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Parent {
    Outside,
    Redirect(CString),
    /// The directory and the last name; `slash`: the path ends in `/`.
    Name {
        dir: Node,
        name: Vec<u8>,
        slash: bool,
    },
    /// The path names an existing directory with no last name (`x/.`,
    /// `x/..`, the view's root), ending as said.
    Special(NoName),
}

/// Resolves the directory part of `(dirfd, p)`.
///
/// # Safety
/// `p` is NULL or a valid C string.
pub(crate) unsafe fn parent(
    ovl: &Overlay,
    dirfd: c_int,
    p: *const c_char,
) -> Result<Parent, Errno> {
    // SAFETY: per the contract.
    let Some(path) = (unsafe { bytes(p) }) else {
        return Ok(Parent::Outside);
    };
    if path.is_empty() {
        return Err(Errno::NOENT);
    }
    let Some(r) = ovl.resolve_parent_at(dirfd, path) else {
        return Ok(Parent::Outside);
    };
    let r = r?;
    trace::parent(ovl, path, &r);
    Ok(match r {
        ParentOf::Inside(dir, name) => Parent::Name {
            dir,
            name,
            slash: ovl::lookup::ends_in_slash(path),
        },
        ParentOf::Special(_, kind) => Parent::Special(kind),
        ParentOf::Outside(p) => Parent::Redirect(ovl::cpath(&p)),
    })
}

/// Runs a name-creating call: `op` in the view (with the name known absent),
/// or `f` with the caller's (or redirected) arguments outside it. `makes_dir`:
/// `mkdir`, the one such call a path ending in `/` may name.
///
/// # Safety
/// `p` is NULL or a valid C string.
pub(crate) unsafe fn creating(
    ovl: &Overlay,
    dirfd: c_int,
    p: *const c_char,
    makes_dir: bool,
    op: impl FnOnce(&Node, &[u8]) -> Result<(), Errno>,
    f: impl FnOnce(c_int, *const c_char) -> c_int,
) -> c_int {
    // SAFETY: per the contract.
    match unsafe { parent(ovl, dirfd, p) } {
        Ok(Parent::Outside) => outside_change(ovl, dirfd, p, false, f),
        Ok(Parent::Redirect(real)) => outside_change(ovl, libc::AT_FDCWD, real.as_ptr(), false, f),
        Ok(Parent::Special(_)) => fail(Errno::EXIST),
        Ok(Parent::Name { dir, name, slash }) => match ovl.lookup_child(&dir, &name) {
            Ok(Some(_)) => fail(Errno::EXIST),
            // `x/` asks for a directory: only mkdir makes one.
            Ok(None) if slash && !makes_dir => fail(Errno::NOENT),
            Ok(None) if !ovl.has_upper => fail(Errno::ROFS),
            Ok(None) => done(op(&dir, &name)),
            Err(e) => fail(e),
        },
        Err(e) => fail(e),
    }
}

/// `0`, or `-1` with `errno`.
pub(crate) fn done(r: Result<(), Errno>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}
