//! Where a path given to a system call lies: outside the view (the call goes
//! through untouched: one prefix test) or inside it (then as a path relative
//! to the view's root, still to be resolved). Relative paths are taken
//! against the virtual current directory or the virtual path of a directory
//! descriptor, never against the real ones.

use crate::cwd::{cwd, cwd_is_gone, in_removed_cwd, MAIN_CWD};
use crate::fd_table::{may_know_fd, settled, with_fd_info, FdInfo, FDS_LEN};
use crate::lookup::{Node, ParentOf, Resolved};
use crate::overlay::{clean_abs, Overlay};
use rustix::io::Errno;
use std::ffi::CStr;
use std::sync::atomic::Ordering;

/// Where a path leads, before resolution.
pub enum Where {
    /// Not in the view: use the caller's arguments as they are.
    Outside,
    /// In the view: this path, relative to the view's root.
    Inside(Vec<u8>),
    /// Relative to a descriptor of the view that cannot hold the name: the
    /// call fails with this error, wherever the object's name is now
    /// (`ENOTDIR`: not a directory; `ENOENT`: a directory removed since).
    Fails(Errno),
}

/// Can a call that only reads a path be made with the caller's own
/// arguments?
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AsGiven {
    /// No: the path is to be looked up in the view.
    No,
    /// Yes: it reaches what the view shows (it lies outside the view).
    Yes,
    /// Yes, unless it names a whiteout: a plain name in a directory of the
    /// bottom layer alone, open as the caller's descriptor. The kernel hides
    /// the name then (`ENOENT`); the caller's answer tells when to look
    /// (an `lstat` answer of a character device 0/0 is one).
    UnlessWhiteout,
}

/// How a call that only reads a path is made.
pub enum ReadAt {
    /// Outside the view: the caller's arguments stand.
    Outside,
    /// Resolved in the view.
    Found(Result<Resolved, Errno>),
}

fn dir_generation(node: &Option<Node>, ovl: &Overlay) -> u64 {
    if node.is_some() {
        ovl.generation()
    } else {
        0
    }
}

/// `base/path` (just `path` when `base` is the root, `base` when `path` is
/// empty). `base` is a directory of the view by its real, symlink-free
/// path (the current directory's, a descriptor's), so a leading `..` climbs
/// it by name: the same parent the walk would find, and still there once
/// `base` itself was removed (the kernel walks `..` from a removed current
/// directory too).
fn joined(base: &[u8], path: &[u8]) -> Vec<u8> {
    let (base, path) = climbed(base, path, |_| Ok(())).unwrap_or((base, path));
    if path.is_empty() {
        base.to_vec()
    } else {
        crate::lookup::join(base, path)
    }
}

/// `base` and `path` once `path`'s leading `..` components have climbed
/// `base` (down to the view's root), `climb_from` asked first about each
/// directory climbed from.
fn climbed<'a>(
    base: &'a [u8],
    path: &'a [u8],
    mut climb_from: impl FnMut(&[u8]) -> Result<(), Errno>,
) -> Result<(&'a [u8], &'a [u8]), Errno> {
    let (mut base, mut path) = (base, path);
    while !base.is_empty() {
        let (first, rest) = match path.iter().position(|&b| b == b'/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => (path, &b""[..]),
        };
        if first != b".." {
            break;
        }
        climb_from(base)?;
        base = crate::lookup::split_last(base).0;
        path = trim_leading_slashes(rest);
    }
    Ok((base, path))
}

/// Does `path` start with a `..` component?
fn starts_by_climbing(path: &[u8]) -> bool {
    path.starts_with(b"..") && matches!(path.get(2), None | Some(b'/'))
}

/// A single name, resolvable in one step from a directory.
fn plain_name(p: &[u8]) -> bool {
    !p.is_empty() && p != b"." && p != b".." && !p.contains(&b'/')
}

fn has_dotdot(p: &[u8]) -> bool {
    // Most names hold no dot at all: one quick scan for the first.
    p.iter()
        .position(|&b| b == b'.')
        .is_some_and(|i| p[i..].windows(2).any(|w| w == b".."))
}

/// Does `p` climb (a `..` component)? Exact, unlike the quick [`has_dotdot`].
fn has_dotdot_component(p: &[u8]) -> bool {
    has_dotdot(p) && p.split(|&b| b == b'/').any(|c| c == b"..")
}

/// Does the NUL-terminated `p` hold a `..` component? [`has_dotdot_component`]
/// without measuring the string first: a name with no two dots in a row is
/// settled sixteen bytes at a time, the others component by component.
///
/// # Safety
/// `p` points to a NUL-terminated string.
#[inline]
unsafe fn climbs_c(p: *const u8) -> bool {
    // SAFETY: per the contract.
    unsafe { crate::scan::has_dot_pair_c(p) && climbs_c_exactly(p) }
}

/// [`climbs_c`] component by component (libc's `strchr` finds each `/`),
/// for the few names with two dots in a row.
///
/// # Safety
/// `p` points to a NUL-terminated string.
#[cold]
#[inline(never)]
unsafe fn climbs_c_exactly(mut p: *const u8) -> bool {
    loop {
        // SAFETY: `p` starts a component within the string; each byte is
        // read only after a non-NUL one, so never past the terminator.
        unsafe {
            if *p == b'.' && *p.add(1) == b'.' && matches!(*p.add(2), 0 | b'/') {
                return true;
            }
            p = libc::strchr(p.cast(), b'/'.into()).cast();
            if p.is_null() {
                return false;
            }
            p = p.add(1);
        }
    }
}

/// Is a relative name from `dirfd` plainly outside the view, as far as the
/// base goes (the name must not climb either)? No lock, no allocation.
#[inline(always)]
fn base_plainly_outside(dirfd: i32) -> bool {
    if dirfd == libc::AT_FDCWD {
        return cwd().plainly_outside();
    }
    !may_know_fd(dirfd) && !crate::vfork::in_child()
}

/// [`base_plainly_outside`] for the usual case, in a few straight-line
/// loads and tests with no call; `false` means "look closer". A hook makes
/// this test before every call relative to a descriptor or the current
/// directory, right after a system call has evicted the hook's code and
/// data from the first-level caches, so each cache line it touches costs
/// more than its instructions do: what it reads sits on the hot line
/// (`hot.rs`), and a directory above the view (with the same number modulo
/// 64), a `vfork` child, or a descriptor not yet accounted for are left to
/// the closer look.
#[inline(always)]
fn base_quickly_outside(dirfd: i32) -> bool {
    if crate::vfork::may_be_child() {
        return false;
    }
    if dirfd == libc::AT_FDCWD {
        return MAIN_CWD.plainly_outside();
    }
    dirfd >= FDS_LEN.load(Ordering::Acquire) && settled(dirfd) && !crate::above::may_be_above(dirfd)
}

/// Could the absolute path `p` differ from its lexically cleaned form: a
/// `//`, or a component starting with `.` (`.`, `..`, or a hidden name,
/// which the exact look then settles)?
fn unclean_abs(p: &[u8]) -> bool {
    crate::scan::slash_before_slash_or_dot(p)
}

/// Does a relative `path` under `dirfd`, a descriptor of no directory of
/// the view, stay outside it: `dirfd` is no directory above the view, and
/// the path does not climb?
fn stays_outside(dirfd: i32, path: &[u8]) -> bool {
    !crate::above::is_above(dirfd) && !has_dotdot_component(path)
}

/// `p` without the slashes it starts with.
#[inline]
pub(crate) fn trim_leading_slashes(p: &[u8]) -> &[u8] {
    &p[p.iter().take_while(|&&b| b == b'/').count()..]
}

pub(crate) fn trim_trailing_slashes(p: &[u8]) -> &[u8] {
    let end = p.iter().rposition(|&b| b != b'/').map_or(1, |i| i + 1);
    &p[..end]
}

/// Does the real path `walked` (as written, `..` and all) lead, by the
/// kernel's walk, to the directory `clean`? Its error where the walk fails.
fn same_directory(walked: &[u8], clean: &[u8]) -> Result<bool, Errno> {
    let walked = rustix::fs::stat(crate::sys::cpath(walked).as_c_str())?;
    let clean = rustix::fs::stat(crate::sys::cpath(clean).as_c_str())?;
    Ok(walked.st_dev == clean.st_dev && walked.st_ino == clean.st_ino)
}

/// Lexical normalization of an absolute path (`..` pops a component). Only
/// used to recognise descriptors of the view's ancestors, opened by a path
/// the kernel has just walked.
pub(crate) fn lexical(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = Vec::new();
    for p in parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    clean_abs(&out)
}

impl Overlay {
    /// A quick test that `(dirfd, path)` lies outside the view: one prefix
    /// comparison or one load, no allocation. `false` means "look closer".
    #[inline]
    pub fn surely_outside(&self, dirfd: i32, path: &[u8]) -> bool {
        self.plainly_outside(dirfd, path) || self.outside_on_closer_look(dirfd, path)
    }

    /// [`Overlay::surely_outside`], once `plainly_outside` said no.
    #[inline]
    fn outside_on_closer_look(&self, dirfd: i32, path: &[u8]) -> bool {
        if path.first() == Some(&b'/') {
            return false; // an absolute path is decided by the prefix test
        }
        if dirfd == libc::AT_FDCWD {
            if cwd().is_known() {
                return false;
            }
            self.init_cwd();
            return self.plainly_outside(dirfd, path);
        }
        self.fd_outside(dirfd, path)
    }

    /// Is a relative `path` under `dirfd`, a descriptor of no directory of
    /// the view, outside the view?
    fn fd_outside(&self, dirfd: i32, path: &[u8]) -> bool {
        with_fd_info(dirfd, |info| info.is_none()) && stays_outside(dirfd, path)
    }

    /// Does a call that only reads `(dirfd, path)` reach what the view shows
    /// when made as the caller made it? So when the path surely lies outside
    /// the view ([`AsGiven::Yes`]), and when it names, without following it,
    /// a child of a directory of the bottom layer alone that the caller
    /// opened (its descriptor is that real directory, and only a whiteout,
    /// the kernel's character device 0/0, can hide its children: told by
    /// the answer, [`AsGiven::UnlessWhiteout`]): `find`'s `fstatat` of
    /// every name. One look at the descriptor answers both.
    #[inline]
    pub fn reads_as_given(&self, dirfd: i32, path: &[u8], follow: bool) -> AsGiven {
        let yes = |outside: bool| if outside { AsGiven::Yes } else { AsGiven::No };
        if path.is_empty() || self.plainly_outside(dirfd, path) {
            return AsGiven::Yes;
        }
        if dirfd == libc::AT_FDCWD || path.first() == Some(&b'/') {
            return yes(self.outside_on_closer_look(dirfd, path));
        }
        let plain = !follow && plain_name(path);
        with_fd_info(dirfd, |info| match info {
            None => yes(stays_outside(dirfd, path)),
            Some(info) => {
                let bottom_child = plain
                    && info.node.as_ref().is_some_and(|dir| {
                        dir.dirs == 1 << dir.layer
                            && self.is_bottom(dir.layer)
                            && info.generation == self.generation()
                            && info.generation != crate::generation::UNCACHEABLE
                    });
                if bottom_child {
                    AsGiven::UnlessWhiteout
                } else {
                    AsGiven::No
                }
            }
        })
    }

    /// After a call made as given ([`AsGiven::UnlessWhiteout`], or
    /// [`Overlay::open_as_given`]) gave an answer that a whiteout could
    /// have given: is `name` in the real directory `dirfd` a whiteout (the
    /// view has no such name)? One `fstatat`.
    pub fn whiteout_at(&self, dirfd: i32, name: &[u8]) -> bool {
        // SAFETY: the caller's open descriptor, for this call only.
        let base = unsafe { rustix::fd::BorrowedFd::borrow_raw(dirfd) };
        rustix::fs::statat(base, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| crate::whiteout::is_chardev_whiteout(&st))
    }

    /// [`Overlay::surely_outside`] where it takes no lock and allocates
    /// nothing (its one possible system call, `getpid`, only while a
    /// `vfork` child runs), so that a hook may ask it before anything else
    /// (even in a signal handler that interrupted another hook). `false`
    /// means "look closer": a descriptor not accounted for yet or above the
    /// view, a current directory not known yet, a path that climbs.
    ///
    /// Not `#[inline]`: that made the optimizer keep several copies, each
    /// under a numbered name that changes with any edit, which the shim's
    /// start-up layout (shim/hot-symbols.txt) cannot name for long.
    pub fn plainly_outside(&self, dirfd: i32, path: &[u8]) -> bool {
        if path.first() == Some(&b'/') {
            return self.inside(path).is_none()
                && !(unclean_abs(path) && self.may_lexically_reach_view(path));
        }
        base_plainly_outside(dirfd) && !has_dotdot_component(path)
    }

    /// [`Overlay::plainly_outside`] of a NUL-terminated path, which is only
    /// measured when absolute: the hooks' fast path, for the calls a program
    /// makes by the thousand on names relative to its directories.
    ///
    /// # Safety
    /// `p` points to a NUL-terminated string.
    #[inline(always)]
    pub unsafe fn plainly_outside_c(&self, dirfd: i32, p: *const u8) -> bool {
        // SAFETY: per the contract: the first byte is readable, and the
        // string is NUL-terminated for `CStr` and `climbs_c`.
        unsafe {
            match *p {
                0 => false,
                b'/' => self.plainly_outside(dirfd, CStr::from_ptr(p.cast()).to_bytes()),
                _ => base_plainly_outside(dirfd) && !climbs_c(p),
            }
        }
    }

    /// [`Overlay::plainly_outside_c`] where it takes no call: a relative
    /// name with no two dots in a row, from a base plainly outside. `false`
    /// means "look closer" (as for every absolute path).
    ///
    /// # Safety
    /// `p` points to a NUL-terminated string.
    #[inline(always)]
    pub unsafe fn quickly_outside_c(&self, dirfd: i32, p: *const u8) -> bool {
        // SAFETY: per the contract.
        unsafe {
            match *p {
                0 | b'/' => false,
                _ => base_quickly_outside(dirfd) && !crate::scan::has_dot_pair_c(p),
            }
        }
    }

    /// Is the NUL-terminated `p` plainly outside the view and none of its
    /// ancestors (whose descriptors [`Overlay::note_opened_outside`] must
    /// remember)? Then an open of it that does not write goes to libc
    /// without the overlay's locks.
    ///
    /// # Safety
    /// `p` points to a NUL-terminated string.
    #[inline]
    pub unsafe fn opens_plainly_outside_c(&self, dirfd: i32, p: *const u8) -> bool {
        // SAFETY: per the contract.
        if unsafe { *p } != b'/' {
            // A name below a directory neither in nor above the view, which
            // does not climb, names neither either.
            return unsafe { self.plainly_outside_c(dirfd, p) };
        }
        // SAFETY: per the contract.
        let path = unsafe { CStr::from_ptr(p.cast()) }.to_bytes();
        self.inside(path).is_none() && !unclean_abs(path) && !self.spells_view_or_ancestor(path)
    }

    /// The kernel looks a `..` up in the directory it climbs from, which
    /// must be searchable: the leading ones that [`joined`] folds away
    /// against the directory `base` are checked here.
    fn may_climb(&self, base: &[u8], path: &[u8]) -> Result<(), Errno> {
        climbed(base, path, |dir| self.may_climb_from(dir)).map(drop)
    }

    pub fn locate(&self, dirfd: i32, path: &[u8]) -> Where {
        if path.first() == Some(&b'/') {
            return self.locate_abs(path);
        }
        if dirfd == libc::AT_FDCWD {
            let climbs = starts_by_climbing(path);
            let cwd_and_rel =
                self.with_cwd_rel(|cwd| cwd.map(|c| (climbs.then(|| c.to_vec()), joined(c, path))));
            if let Some((Some(cwd), _)) = &cwd_and_rel {
                if let Err(e) = self.may_climb(cwd, path) {
                    return Where::Fails(e);
                }
            }
            return match cwd_and_rel {
                Some((_, rel)) if cwd_is_gone() => in_removed_cwd(path, rel),
                Some((_, rel)) => Where::Inside(rel),
                None if has_dotdot(path) || cwd().is_above() => self.locate_via_real_cwd(path),
                None => Where::Outside,
            };
        }
        // What the descriptor's record says, read in place.
        enum Base {
            Joined(Vec<u8>),
            MayHaveMoved(Vec<u8>),
            MayBeGone(Vec<u8>, bool),
            NotDir,
        }
        let base = with_fd_info(dirfd, |info| {
            info.map(|info| {
                if info.not_dir && !path.is_empty() {
                    Base::NotDir
                } else if self.rel_may_have_moved(info) {
                    Base::MayHaveMoved(info.rel.clone())
                } else if !path.is_empty() && self.may_be_gone(info) {
                    Base::MayBeGone(info.rel.clone(), !info.lower)
                } else {
                    Base::Joined(joined(&info.rel, path))
                }
            })
        });
        if starts_by_climbing(path) && matches!(base, Some(Base::Joined(_) | Base::MayBeGone(..))) {
            let dir = with_fd_info(dirfd, |info| info.map(|info| info.rel.clone()));
            if let Some(Err(e)) = dir.map(|dir| self.may_climb(&dir, path)) {
                return Where::Fails(e);
            }
        }
        match base {
            Some(Base::Joined(rel)) => Where::Inside(rel),
            Some(Base::MayHaveMoved(old)) => match self.moved_rel(dirfd, &old) {
                Some(rel) => Where::Inside(joined(&rel, path)),
                None if path.is_empty() => Where::Inside(old),
                None => Where::Fails(Errno::NOENT),
            },
            Some(Base::MayBeGone(rel, on_upper)) if self.dir_is_gone(dirfd, &rel, on_upper) => {
                Where::Fails(Errno::NOENT)
            }
            Some(Base::MayBeGone(rel, _)) => Where::Inside(joined(&rel, path)),
            Some(Base::NotDir) => Where::Fails(Errno::NOTDIR),
            None => self.locate_from_outside_dir(dirfd, path),
        }
    }

    /// `path` relative to a directory descriptor outside the view: it leads
    /// in from a directory above the view, or by `..`.
    fn locate_from_outside_dir(&self, dirfd: i32, path: &[u8]) -> Where {
        let base = match crate::above::path_of(dirfd) {
            Some(base) => base,
            None if has_dotdot_component(path) => match crate::sys::real_path_of_fd(dirfd) {
                Some(base) => base,
                None => return Where::Outside,
            },
            None => return Where::Outside,
        };
        self.locate_abs(&crate::lookup::join(&base, path))
    }

    /// After an open outside the view succeeded with `fd`: when it opened
    /// one of the view's ancestors, remember it (names relative to it may
    /// lead into the view). Costs nothing more than a prefix test unless
    /// the path starts at an ancestor or climbs with `..`.
    pub fn note_opened_outside(&self, dirfd: i32, path: &[u8], fd: i32) {
        if fd < 0 || crate::vfork::in_child() {
            return;
        }
        let abs = if path.first() == Some(&b'/') {
            (unclean_abs(path) || self.spells_view_or_ancestor(path)).then(|| path.to_vec())
        } else if dirfd == libc::AT_FDCWD {
            let cwd = cwd();
            (cwd.is_above() || has_dotdot(path))
                .then(|| cwd.with_real_path(|c| crate::lookup::join(c, path)))
                .flatten()
        } else {
            crate::above::path_of(dirfd)
                .or_else(|| {
                    has_dotdot_component(path)
                        .then(|| crate::sys::real_path_of_fd(dirfd))
                        .flatten()
                })
                .map(|base| crate::lookup::join(&base, path))
        };
        match abs.map(|a| lexical(&a)) {
            Some(abs) if self.is_above_view(&abs) => crate::above::note(fd, abs),
            _ => crate::above::forget(fd),
        }
    }

    /// Could the absolute `path`, its `.`, `..` and empty components taken
    /// lexically, lead into the view? Each component of the cleaned path is
    /// one of `path`'s, so the view's last one must appear in it: compilers
    /// look up `/usr/lib/gcc/x86_64-linux-gnu/12/../../../../include` by the
    /// hundred, and this answers for them without cleaning the path.
    fn may_lexically_reach_view(&self, path: &[u8]) -> bool {
        self.any_target_spelling(|target| {
            let last = target.rsplit(|&b| b == b'/').next().unwrap_or_default();
            // SAFETY: both ranges are live slices; memmem only reads them.
            last.is_empty()
                || !unsafe {
                    libc::memmem(
                        path.as_ptr().cast(),
                        path.len(),
                        last.as_ptr().cast(),
                        last.len(),
                    )
                }
                .is_null()
        })
    }

    /// Is `name` the last component of the view's path (by any spelling)?
    fn names_the_view(&self, name: &[u8]) -> bool {
        self.any_target_spelling(|target| target.rsplit(|&b| b == b'/').next() == Some(name))
    }

    /// Is the clean absolute path `abs` a proper ancestor of the view (by
    /// any of its spellings)?
    pub(crate) fn is_above_view(&self, abs: &[u8]) -> bool {
        self.any_target_spelling(|target| {
            abs != target && crate::overlay::strip_dir(target, abs).is_some()
        })
    }

    /// Does the absolute `path`, trailing slashes aside, spell the view or
    /// one of its ancestors as a prefix of one of the target's spellings?
    fn spells_view_or_ancestor(&self, path: &[u8]) -> bool {
        let path = trim_trailing_slashes(path);
        self.any_target_spelling(|target| target.starts_with(path))
    }

    pub(crate) fn locate_abs(&self, path: &[u8]) -> Where {
        if let Some(rest) = self.inside(path) {
            return Where::Inside(rest.to_vec());
        }
        // `/a/../view/x` or `//view` reach the view too (only looked at when
        // the cleaned path could differ and reach it).
        if unclean_abs(path) && self.may_lexically_reach_view(path) {
            return self.locate_by_detour(path);
        }
        Where::Outside
    }

    /// The absolute `path`, not below the view as written, where it reaches
    /// the view by a detour (`/a/../view/x`, `//view`): the rest of it, from
    /// where it enters, is the view's to walk. Before that the kernel walks
    /// real directories, looking each `..` up in the directory it climbs
    /// from: that part must lead, by the kernel's own walk, to the directory
    /// that cleaning it says, which a missing or unsearchable directory
    /// fails, and a symlink does not (its `..` is physical: `Outside`).
    fn locate_by_detour(&self, path: &[u8]) -> Where {
        let mut clean: Vec<&[u8]> = Vec::new();
        let mut climbed = false;
        let mut at = 0;
        while at < path.len() {
            let end = path[at..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(path.len(), |i| at + i);
            match &path[at..end] {
                b"" | b"." => {}
                b".." => {
                    clean.pop();
                    climbed = true;
                }
                name if !self.names_the_view(name) => clean.push(name),
                name => {
                    let parent = [b"/".as_slice(), &clean.join(&b'/')].concat();
                    clean.push(name);
                    // All before was outside the view: the first name that
                    // reaches it can only be its root.
                    if self
                        .inside(&[b"/".as_slice(), &clean.join(&b'/')].concat())
                        .is_some()
                    {
                        if climbed {
                            match same_directory(&path[..at], &parent) {
                                Ok(true) => {}
                                Ok(false) => return Where::Outside,
                                Err(e) => return Where::Fails(e),
                            }
                        }
                        return Where::Inside(trim_leading_slashes(&path[end..]).to_vec());
                    }
                }
            }
            at = end + 1;
        }
        Where::Outside
    }

    fn locate_via_real_cwd(&self, path: &[u8]) -> Where {
        let abs = cwd().with_real_path(|c| (!c.is_empty()).then(|| [c, b"/", path].concat()));
        match abs.flatten() {
            Some(abs) => self.locate_abs(&abs),
            None => Where::Outside,
        }
    }
}

impl Overlay {
    /// The directory behind `dirfd` when `path` is one plain name in it and
    /// what we know of the directory is still valid.
    fn known_dir(&self, dirfd: i32, path: &[u8]) -> Option<Node> {
        self.with_known_dir(dirfd, path, Node::clone)
    }

    /// Runs `f` on the directory behind `dirfd`, as [`Overlay::known_dir`].
    fn with_known_dir<R>(&self, dirfd: i32, path: &[u8], f: impl FnOnce(&Node) -> R) -> Option<R> {
        if dirfd == libc::AT_FDCWD || !plain_name(path) {
            return None;
        }
        with_fd_info(dirfd, |info| {
            let info = info?;
            let node = info.node.as_ref()?;
            let valid = info.generation == self.generation()
                && info.generation != crate::generation::UNCACHEABLE;
            valid.then(|| f(node))
        })
    }

    /// How a call that only reads `(dirfd, path)` is to be made, once
    /// [`Overlay::reads_as_given`] said it could not be made as given.
    pub fn read_inside_at(&self, dirfd: i32, path: &[u8], follow: bool) -> ReadAt {
        let one_layer = self.with_known_dir(dirfd, path, |dir| dir.dirs == 1 << dir.layer);
        if one_layer == Some(true) {
            // A directory of one layer: its children are in that layer, and
            // the caller's descriptor is that layer's real directory.
            if let Some(dir) = self.known_dir(dirfd, path) {
                match self.child_of_single(&dir, dirfd, path) {
                    Ok(Some(n)) if follow && n.file_type() == rustix::fs::FileType::Symlink => {}
                    Ok(Some(n)) => return ReadAt::Found(Ok(Resolved::Inside(n))),
                    Ok(None) => return ReadAt::Found(Err(Errno::NOENT)),
                    Err(e) => return ReadAt::Found(Err(e)),
                }
            }
        }
        match self.resolve_at(dirfd, path, follow) {
            None => ReadAt::Outside,
            Some(r) => ReadAt::Found(r),
        }
    }

    /// `name` in the one-layer directory `dir`, open as `dirfd`.
    fn child_of_single(&self, dir: &Node, dirfd: i32, name: &[u8]) -> Result<Option<Node>, Errno> {
        // SAFETY: dirfd is the caller's open directory descriptor, used for this call only.
        let base = unsafe { rustix::fd::BorrowedFd::borrow_raw(dirfd) };
        let st = match rustix::fs::statat(base, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(None),
            Err(e) => return Err(e),
        };
        let rel = crate::lookup::join(&dir.rel, name);
        let hidden = if self.is_bottom(dir.layer) {
            crate::whiteout::is_chardev_whiteout(&st)
        } else {
            let real = crate::sys::cpath(&self.real_path(dir.layer, &rel));
            self.hides(dir.layer, &real, &st, &dir.rel)
        };
        if hidden {
            return Ok(None);
        }
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        Ok(Some(Node {
            rel,
            layer: dir.layer,
            stat: st,
            dirs: if is_dir { 1 << dir.layer } else { 0 },
            fresh: true,
        }))
    }

    /// For an open of `(dirfd, path)` that only reads, without following a
    /// final symlink: when the caller's own call reaches the right object,
    /// what to remember of the descriptor it returns. It names a child of a
    /// directory of the bottom layer alone, which a whiteout may hide: a
    /// failed open is to be checked with [`Overlay::whiteout_at`] (a
    /// whiteout fails every open but `O_PATH`'s, which is not made so).
    pub fn open_as_given(&self, dirfd: i32, path: &[u8], flags: i32) -> Option<FdInfo> {
        if crate::open::writes(flags)
            || flags & (libc::O_CREAT | libc::O_NOFOLLOW) != libc::O_NOFOLLOW
            || flags & (libc::O_PATH | libc::O_DIRECTORY) == libc::O_PATH
        {
            return None;
        }
        // Read before the caller's open: a copy-up after it is seen at the first read.
        let copy_ups = self.copy_ups();
        let dir_copy_ups = self.dir_copy_ups();
        let dir = self.known_dir(dirfd, path)?;
        if dir.dirs != 1 << dir.layer || !self.is_bottom(dir.layer) {
            return None;
        }
        let rel = crate::lookup::join(&dir.rel, path);
        let node = (flags & libc::O_DIRECTORY != 0).then(|| Node {
            rel: rel.clone(),
            layer: dir.layer,
            stat: crate::sys::zeroed_stat(),
            dirs: 1 << dir.layer,
            fresh: false,
        });
        Some(FdInfo {
            rel,
            merged: false,
            lower: self.is_lower(&dir),
            generation: dir_generation(&node, self),
            node,
            copy_ups,
            dir_copy_ups,
            not_dir: false, // not known: opened as given
            rel_seen: self.generation(),
            stream: false,
            unstamped: false,
        })
    }

    /// Resolves `(dirfd, path)`; `None` when it lies outside the view.
    pub fn resolve_at(
        &self,
        dirfd: i32,
        path: &[u8],
        follow: bool,
    ) -> Option<Result<Resolved, Errno>> {
        if self.surely_outside(dirfd, path) {
            return None;
        }
        if let Some(dir) = self.known_dir(dirfd, path) {
            match self.lookup_child(&dir, path) {
                Ok(Some(n)) if !(follow && n.file_type() == rustix::fs::FileType::Symlink) => {
                    return Some(Ok(Resolved::Inside(n)))
                }
                Ok(None) => return Some(Err(Errno::NOENT)),
                Err(e) => return Some(Err(e)),
                Ok(Some(_)) => {}
            }
        }
        match self.locate(dirfd, path) {
            Where::Outside => None,
            Where::Inside(rel)
                if rel.is_empty() && !follow && self.not_a_dir_by_name(dirfd, path) =>
            {
                None
            }
            Where::Inside(rel) => Some(self.resolve(&rel, follow)),
            Where::Fails(e) => Some(Err(e)),
        }
    }

    /// Does `(dirfd, path)`, which leads to the view's root, name something
    /// else than a directory when its last component is not followed (the
    /// target's alias, as the user spelled it, may end in a symlink)? Then
    /// a call that does not follow it is about the link (or fails), outside
    /// the view, as on the kernel's mount. One `lstat`, for the root only.
    fn not_a_dir_by_name(&self, dirfd: i32, path: &[u8]) -> bool {
        if path.is_empty() || self.target_alias.is_none() {
            return false;
        }
        let base = match dirfd {
            libc::AT_FDCWD => rustix::fs::CWD,
            // SAFETY: the caller's open descriptor, for this call only.
            fd => unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) },
        };
        rustix::fs::statat(base, path, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .map_or(true, |st| st.st_mode & libc::S_IFMT != libc::S_IFDIR)
    }

    /// Resolves the parent of `(dirfd, path)`; `None` when it lies outside the view.
    pub fn resolve_parent_at(&self, dirfd: i32, path: &[u8]) -> Option<Result<ParentOf, Errno>> {
        if self.surely_outside(dirfd, path) {
            return None;
        }
        // A directory remembered without its stat (opened as given) is looked
        // up again: creating in it may copy it up, which needs its metadata.
        if let Some(dir) = self.known_dir(dirfd, path).filter(|d| d.stat.st_mode != 0) {
            return Some(Ok(ParentOf::Inside(dir, path.to_vec())));
        }
        match self.locate(dirfd, path) {
            Where::Outside => None,
            Where::Inside(rel) if rel.is_empty() && self.not_a_dir_by_name(dirfd, path) => None,
            Where::Inside(rel) => Some(self.resolve_parent_as(&rel, crate::lookup::no_name(path))),
            Where::Fails(e) => Some(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn climbing_components_and_trailing_slashes() {
        assert!(has_dotdot_component(b"../x"));
        assert!(has_dotdot_component(b"a/.."));
        assert!(!has_dotdot_component(b"a..b/c"));
        assert!(!has_dotdot_component(b"..."));
        assert!(!has_dotdot_component(b"name") && !has_dotdot(b"a.b"));
        assert!(has_dotdot(b"a.b/..") && has_dotdot(b"x..y"));
        for (p, climbs) in [
            (&b"..\0"[..], true),
            (b"../x\0", true),
            (b"a/..\0", true),
            (b"a//../b\0", true),
            (b"a..b/c\0", false),
            (b"...\0", false),
            (b"..x/y\0", false),
            (b"a/.b\0", false),
            (b"f000.txt\0", false),
            (b"a/\0", false),
        ] {
            // SAFETY: each is NUL-terminated.
            assert_eq!(unsafe { climbs_c(p.as_ptr()) }, climbs, "{p:?}");
            assert_eq!(has_dotdot_component(&p[..p.len() - 1]), climbs, "{p:?}");
        }
        assert_eq!(trim_trailing_slashes(b"/tmp/o//"), b"/tmp/o");
        assert_eq!(trim_trailing_slashes(b"/"), b"/");
    }

    #[test]
    fn leading_climbs_are_folded_and_each_directory_climbed_from_is_asked() {
        for (p, climbs) in [
            (&b".."[..], true),
            (b"../x", true),
            (b"..x", false),
            (b"x/..", false),
        ] {
            assert_eq!(starts_by_climbing(p), climbs, "{p:?}");
        }
        assert_eq!(joined(b"a/b/c", b"../../x"), b"a/x");
        assert_eq!(joined(b"a", b"../../x"), b"../x");
        assert_eq!(joined(b"a/b", b"..//"), b"a");
        let mut asked = Vec::new();
        let r = climbed(b"a/b/c", b"../../x", |d| {
            asked.push(d.to_vec());
            Ok(())
        });
        assert_eq!(r, Ok((&b"a"[..], &b"x"[..])));
        assert_eq!(asked, [b"a/b/c".to_vec(), b"a/b".to_vec()]);
        let refused = climbed(b"a/b", b"../../x", |d| {
            if d == b"a" {
                Err(Errno::ACCESS)
            } else {
                Ok(())
            }
        });
        assert_eq!(refused, Err(Errno::ACCESS));
    }

    /// The eight-bytes-at-a-time test never misses a `//` or `/.` (it may
    /// report one that is not there), whatever the bytes around them.
    #[test]
    fn unclean_paths_are_all_found() {
        let exact = |p: &[u8]| p.windows(2).any(|w| w == b"//" || w == b"/.");
        let alphabet = b"/.a-\x2e\x2f\x01";
        let mut seed = 12345u64;
        for len in 0..40 {
            for _ in 0..400 {
                let p: Vec<u8> = (0..len)
                    .map(|_| {
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        alphabet[(seed >> 33) as usize % alphabet.len()]
                    })
                    .collect();
                if exact(&p) {
                    assert!(unclean_abs(&p), "{:?}", String::from_utf8_lossy(&p));
                }
            }
        }
        let long = b"/usr/lib/gcc/x86_64-linux-gnu/12/include/stddef.h";
        assert!(!unclean_abs(long));
        for at in [1, 7, 8, 13, 40, long.len() - 1] {
            for pair in [b"//", b"/."] {
                let mut p = long.to_vec();
                p.splice(at..at, pair.iter().copied());
                assert!(unclean_abs(&p), "{pair:?} at {at}");
            }
        }
        assert!(unclean_abs(
            b"/usr/lib/gcc/x86_64-linux-gnu/12/../../../../include"
        ));
    }
}
