//! Where a path given to a system call lies: outside the view (the call goes
//! through untouched: one prefix test) or inside it (then as a path relative
//! to the view's root, still to be resolved). Relative paths are taken
//! against the virtual current directory or the virtual path of a directory
//! descriptor, never against the real ones.

use crate::lookup::{Node, ParentOf, Resolved};
use crate::overlay::{clean_abs, Overlay};
use crate::padded::Padded;
use rustix::io::Errno;
use std::cell::RefCell;
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

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

/// What the overlay knows of the current directory.
struct CwdState {
    /// Virtual current directory: `Some(rel)` when inside the view.
    rel: Padded<RwLock<Option<Vec<u8>>>>,
    /// Bumped by every change of `rel`; a thread's copy of it is good while
    /// this has not moved.
    version: AtomicU64,
    /// Fast check: is the current directory inside the view?
    inside: AtomicBool,
    known: AtomicBool,
    /// The current directory is outside the view but above it: relative
    /// paths may lead in (`view/x` from the view's parent).
    above: AtomicBool,
    /// The real current directory, when outside the view.
    real: Padded<RwLock<Vec<u8>>>,
    /// The overlay's generation when `rel` was last worked out from the
    /// real current directory: a directory of the upper layer alone moves
    /// with a rename (of it or of a parent), by this process or another.
    rel_seen: AtomicU64,
    /// The current directory has been removed from the view (looked at
    /// when the layers' names changed): only `.` and `..` lead anywhere.
    gone: AtomicBool,
}

impl CwdState {
    const fn new(first_version: u64) -> CwdState {
        CwdState {
            rel: Padded(RwLock::new(None)),
            version: AtomicU64::new(first_version),
            inside: AtomicBool::new(false),
            known: AtomicBool::new(false),
            above: AtomicBool::new(false),
            real: Padded(RwLock::new(Vec::new())),
            rel_seen: AtomicU64::new(0),
            gone: AtomicBool::new(false),
        }
    }
}

/// The process's current directory.
static MAIN_CWD: CwdState = CwdState::new(0);
/// A `vfork` child's, once it moved (see `vfork`); its versions never meet
/// the main ones, so a thread's copy taken in the child is not reused after.
static VFORK_CWD: CwdState = CwdState::new(1 << 63);

/// Has the current directory been removed from the view (as last looked at
/// when the layers' names changed; see [`CwdState::gone`])?
pub fn cwd_is_gone() -> bool {
    cwd().gone.load(Ordering::Acquire)
}

/// The current directory's state, as this process (or `vfork` child) has it.
#[inline]
fn cwd() -> &'static CwdState {
    if crate::vfork::child_moved() {
        &VFORK_CWD
    } else {
        &MAIN_CWD
    }
}

thread_local! {
    /// This thread's copy of the current directory and the version it was
    /// taken at (taking the lock on every call would bounce its line between
    /// cores).
    static CWD_COPY: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
}

/// Open descriptors that refer to objects of the view: fd -> path in the view.
static FDS: Padded<RwLock<Vec<Option<Arc<FdInfo>>>>> = Padded(RwLock::new(Vec::new()));
/// Highest fd ever registered + 1 (fast check for "not ours").
const FDS_LEN: &AtomicI32 = &crate::hot::HOT.fds_len;
/// Bumped at every change of [`FDS`], under its write lock.
static FDS_VERSION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The last descriptor this thread looked up in [`FDS`], the table's
    /// version then, and what it said: while the version stands, asking
    /// about the same descriptor again takes no lock and clones nothing
    /// (`find` asks about its directory's descriptor for every name in it).
    static LAST_FD: RefCell<(i32, u64, Option<Arc<FdInfo>>)> =
        const { RefCell::new((-1, u64::MAX, None)) };
}

/// What the overlay remembers of an open descriptor.
#[derive(Clone)]
pub struct FdInfo {
    /// Path in the view, relative to its root (normalized, symlink-free).
    pub rel: Vec<u8>,
    /// The descriptor is a directory built from several layers.
    pub merged: bool,
    /// The descriptor refers to an object of a lower layer.
    pub lower: bool,
    /// For a directory: what the look-up found, valid while the overlay's
    /// generation is `generation`.
    pub node: Option<Node>,
    pub generation: u64,
    /// For a reader of a lower file: the overlay's count of copy-ups when
    /// the file was last seen not copied up (see [`catch_up_reader`]).
    pub copy_ups: u64,
    /// For a directory of one lower layer: the overlay's count of directory
    /// copy-ups when it was last seen not copied up (a stream on it lists
    /// the merged directory from its next start once it has been: see
    /// [`note_dir_not_copied_up`]).
    pub dir_copy_ups: u64,
    /// The object is known not to be a directory (a descriptor given as
    /// one fails with `ENOTDIR`, also once its name shows another object).
    pub not_dir: bool,
    /// The overlay's generation when `rel` was last known to name the
    /// descriptor's object: an object of the upper layer alone moves with a
    /// rename, by this process or another (see [`Overlay::locate`]).
    pub rel_seen: u64,
    /// A directory stream reads through the descriptor (it stays on the
    /// directory it was opened on: see [`repoint_lower_dirs`]).
    pub stream: bool,
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
    let (mut base, mut path) = (base, path);
    while !base.is_empty() {
        let (first, rest) = match path.iter().position(|&b| b == b'/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => (path, &b""[..]),
        };
        if first != b".." {
            break;
        }
        base = crate::lookup::split_last(base).0;
        path = &rest[rest.iter().take_while(|&&b| b == b'/').count()..];
    }
    if path.is_empty() {
        base.to_vec()
    } else {
        crate::lookup::join(base, path)
    }
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
        let cwd = cwd();
        return cwd.known.load(Ordering::Acquire)
            && !cwd.inside.load(Ordering::Acquire)
            && !cwd.above.load(Ordering::Acquire);
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
        return MAIN_CWD.known.load(Ordering::Acquire)
            && !MAIN_CWD.inside.load(Ordering::Acquire)
            && !MAIN_CWD.above.load(Ordering::Acquire);
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

fn trim_trailing_slashes(p: &[u8]) -> &[u8] {
    let end = p.iter().rposition(|&b| b != b'/').map_or(1, |i| i + 1);
    &p[..end]
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
            if cwd().known.load(Ordering::Acquire) {
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
        self.inside(path).is_none()
            && !unclean_abs(path)
            && !self.target.starts_with(trim_trailing_slashes(path))
    }

    pub fn locate(&self, dirfd: i32, path: &[u8]) -> Where {
        if path.first() == Some(&b'/') {
            return self.locate_abs(path);
        }
        if dirfd == libc::AT_FDCWD {
            return match self.with_cwd_rel(|cwd| cwd.map(|c| joined(c, path))) {
                Some(rel) if cwd().gone.load(Ordering::Acquire) => in_removed_cwd(path, rel),
                Some(rel) => Where::Inside(rel),
                None if has_dotdot(path) || cwd().above.load(Ordering::Acquire) => {
                    self.locate_via_real_cwd(path)
                }
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

    /// Could the directory `info` describes, one with a lower layer's part,
    /// have been removed (and its name given to another) since it was last
    /// checked? Only when the layers' names changed since.
    fn may_be_gone(&self, info: &FdInfo) -> bool {
        self.has_upper && (info.lower || info.merged) && info.rel_seen != self.generation()
    }

    /// Has the directory the view's descriptor `fd` is open on been removed
    /// from the view? Looked at only when it has a lower layer's part and
    /// the layers' names changed since it was last seen in place (a
    /// directory of the upper layer alone shows its removal itself). A
    /// stream on it lists nothing then, as on the kernel.
    pub fn fd_dir_is_gone(&self, fd: i32) -> bool {
        let seen = with_fd_info(fd, |info| {
            info.filter(|i| self.may_be_gone(i))
                .map(|i| (i.rel.clone(), !i.lower))
        });
        seen.is_some_and(|(rel, on_upper)| self.dir_is_gone(fd, &rel, on_upper))
    }

    /// Has the directory `fd` is open on (with a lower layer's part, once
    /// at `rel`) been removed from the view? Then names relative to it are
    /// in no directory (`ENOENT`), as on the kernel, whatever now has its
    /// name. A descriptor of the upper directory (`on_upper`): by its link
    /// count. One of a lower directory: by what the view shows at `rel`
    /// ([`Overlay::still_shows_lower_dir`]).
    fn dir_is_gone(&self, fd: i32, rel: &[u8], on_upper: bool) -> bool {
        // Before the look: a later change is seen next time.
        let now = self.generation();
        // SAFETY: `fd` is open: the table follows closes.
        let own = rustix::fs::fstat(unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) });
        let Some(own) = own
            .ok()
            .filter(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())
        else {
            return false; // not a directory: the look-up answers
        };
        let gone = if on_upper {
            own.st_nlink == 0
        } else {
            !self.still_shows_lower_dir(rel)
        };
        if !gone && !crate::vfork::in_child() {
            update_fd_info(fd, rel, |info| {
                // (One of the upper layer alone may have moved: `moved_rel` looks.)
                if info.lower || info.merged {
                    info.rel_seen = now;
                }
            });
        }
        gone
    }

    /// Does a call's `(dirfd, path)` fail only at the look-up of its last
    /// name: one name relative to a directory removed from the view (the
    /// current one, or `dirfd`'s), which holds none? The kernel finds the
    /// parents of all a call's paths before it looks a last name up, so
    /// another path's error there (`ENOTDIR`) comes first.
    pub fn fails_at_last_name(&self, dirfd: i32, path: &[u8]) -> bool {
        let name = trim_trailing_slashes(path);
        !name.is_empty()
            && !name.contains(&b'/')
            && if dirfd == libc::AT_FDCWD {
                cwd_is_gone()
            } else {
                self.fd_dir_is_gone(dirfd)
            }
    }

    /// Does `(dirfd, path)` name the removed current directory itself (`.`,
    /// `./.`, or the empty path), a directory that merged several layers'?
    /// The kernel shows such a directory one link, removed or not, as any
    /// merged one; the real directory shows its own count (none once removed).
    pub fn names_removed_merged_cwd(&self, dirfd: i32, path: &[u8]) -> bool {
        dirfd == libc::AT_FDCWD
            && cwd_is_gone()
            && past_dots(path).is_empty()
            && path.first() != Some(&b'/')
            && self.removed_cwd_merged()
    }

    /// Did the removed current directory merge several layers' directories?
    /// Its name shows something else now (or nothing), so the layers below
    /// the upper one tell, as its look-up saw them: the process stands in
    /// the removed upper directory (merged with what is below it unless it
    /// is opaque) or in a lower one (merged with the lower layers' below
    /// it). `false` when its parent is gone too.
    fn removed_cwd_merged(&self) -> bool {
        let Some(rel) = self.with_known_cwd_rel(|c| c.map(<[u8]>::to_vec)) else {
            return false;
        };
        let (parent_rel, name) = crate::lookup::split_last(&rel);
        if name.is_empty() {
            return false;
        }
        let Ok(Resolved::Inside(parent)) = self.resolve(parent_rel, false) else {
            return false;
        };
        let below = Node {
            dirs: parent.dirs & !(1 << crate::overlay::UPPER),
            ..parent
        };
        let lower_dirs = match self.lookup_child(&below, name) {
            Ok(Some(n)) if n.is_dir() => n.dirs.count_ones(),
            _ => 0,
        };
        let on_upper = matches!(rustix::process::getcwd(Vec::new()), Err(Errno::NOENT));
        if on_upper {
            lower_dirs >= 1 && !crate::whiteout::is_opaque(c".")
        } else {
            lower_dirs >= 2
        }
    }

    /// After the directory `rel` was copied up to the real `copy`: a process
    /// standing in its lower directory moves to the copy, as a `chdir` there
    /// now would (the kernel's current directory is the overlay's own, which
    /// gains the copy: once removed it still shows the copy's attributes).
    pub(crate) fn cwd_follows_copy_up(&self, rel: &[u8], copy: &std::ffi::CStr) {
        let Ok(real) = rustix::process::getcwd(Vec::new()) else {
            return;
        };
        let real = real.as_bytes();
        if !self.is_upper_path(real) && self.real_to_rel(real) == Some(rel) {
            // Failing leaves the process where it was: the copy is shown all the same.
            let _ = rustix::process::chdir(copy);
        }
    }

    /// Does the view still show the lower directory once at `rel` there:
    /// from its lower layer, or merged with a copy? A directory made at its
    /// name after a removal is opaque: it merges nothing.
    fn still_shows_lower_dir(&self, rel: &[u8]) -> bool {
        matches!(self.resolve(rel, false), Ok(Resolved::Inside(node))
            if node.is_dir() && (node.layer != crate::overlay::UPPER || node.is_merged()))
    }

    /// Could the object `info` describes have moved since its `rel` was
    /// last checked? Only one of the upper layer alone can (a directory a
    /// lower layer has, and everything in it, cannot: `EXDEV`), and only
    /// when the layers' names changed since.
    fn rel_may_have_moved(&self, info: &FdInfo) -> bool {
        self.has_upper && !info.lower && !info.merged && info.rel_seen != self.generation()
    }

    /// Where the descriptor `fd` (once at `old`) is in the view now, by its
    /// real path; remembered for its next use. `None` when its object has
    /// been removed; `old` when that cannot be told (outside the layers).
    fn moved_rel(&self, fd: i32, old: &[u8]) -> Option<Vec<u8>> {
        let now = self.generation(); // before the look: a later change is seen next time
        let real = crate::sys::real_path_of_fd(fd);
        if real
            .as_ref()
            .is_some_and(|real| real.ends_with(b" (deleted)"))
        {
            return None;
        }
        let Some(rel) = real.and_then(|real| self.real_to_rel(&real).map(<[u8]>::to_vec)) else {
            return Some(old.to_vec());
        };
        if !crate::vfork::in_child() {
            update_fd_info(fd, old, |info| {
                info.rel.clone_from(&rel);
                info.rel_seen = now;
                if let Some(node) = info.node.as_mut() {
                    node.rel.clone_from(&rel);
                }
            });
        }
        Some(rel)
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
        self.locate_abs(&lexical(&crate::lookup::join(&base, path)))
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
            (unclean_abs(path) || self.target.starts_with(trim_trailing_slashes(path)))
                .then(|| path.to_vec())
        } else if dirfd == libc::AT_FDCWD {
            let cwd = cwd();
            (cwd.above.load(Ordering::Acquire) || has_dotdot(path))
                .then(|| cwd.real.read().ok().map(|c| crate::lookup::join(&c, path)))
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
        let last = self
            .target
            .rsplit(|&b| b == b'/')
            .next()
            .unwrap_or_default();
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
    }

    /// Is the clean absolute path `abs` a proper ancestor of the view?
    fn is_above_view(&self, abs: &[u8]) -> bool {
        abs != self.target.as_slice() && crate::overlay::strip_dir(&self.target, abs).is_some()
    }

    fn locate_abs(&self, path: &[u8]) -> Where {
        if let Some(rest) = self.inside(path) {
            return Where::Inside(rest.to_vec());
        }
        // `/a/../view/x` or `//view` reach the view too: look again at the
        // lexically cleaned path (only when it could differ and reach it).
        if unclean_abs(path) && self.may_lexically_reach_view(path) {
            let clean = lexical(path);
            if let Some(rest) = self.inside(&clean) {
                return Where::Inside(rest.to_vec());
            }
        }
        Where::Outside
    }

    fn locate_via_real_cwd(&self, path: &[u8]) -> Where {
        let mut abs = match cwd().real.read() {
            Ok(c) if !c.is_empty() => c.clone(),
            _ => return Where::Outside,
        };
        abs.push(b'/');
        abs.extend_from_slice(path);
        self.locate_abs(&abs)
    }

    /// The virtual current directory, when inside the view.
    pub fn cwd_rel(&self) -> Option<Vec<u8>> {
        self.with_cwd_rel(|c| c.map(<[u8]>::to_vec))
    }

    /// Runs `f` on the virtual current directory (`None`: outside the view),
    /// from this thread's copy while no thread has changed it.
    pub fn with_cwd_rel<R>(&self, f: impl FnOnce(Option<&[u8]>) -> R) -> R {
        let mut cwd = cwd();
        if !cwd.known.load(Ordering::Acquire) {
            self.init_cwd();
            cwd = self::cwd();
        }
        if !cwd.inside.load(Ordering::Acquire) {
            return f(None);
        }
        if self.has_upper
            && cwd.rel_seen.load(Ordering::Acquire) != self.generation()
            && !crate::vfork::in_child()
        {
            self.recheck_cwd();
        }
        // Read before the copy is made: a copy is never newer than its version.
        let version = cwd.version.load(Ordering::Acquire);
        let mut f = Some(f);
        let from_copy = CWD_COPY
            .try_with(|copy| {
                let mut copy = copy.try_borrow_mut().ok()?;
                if copy.0 != version {
                    let current = cwd.rel.read().ok()?.clone()?;
                    *copy = (version, current);
                }
                f.take().map(|f| f(Some(&copy.1)))
            })
            .ok()
            .flatten();
        match (from_copy, f) {
            (Some(r), _) => r,
            (None, Some(f)) => f(cwd.rel.read().ok().and_then(|g| g.clone()).as_deref()),
            (None, None) => unreachable!("the closure ran and gave its result"),
        }
    }

    /// After the layers' names changed: the current directory, if of the
    /// upper layer alone, may have moved with a rename; where its real
    /// directory is now says where. A removed one keeps its path (`..`
    /// still leads to its parent, as on the kernel).
    fn recheck_cwd(&self) {
        let seen = self.generation(); // before the look: a later change is seen next time
        let real = rustix::process::getcwd(Vec::new());
        let now = real
            .as_ref()
            .ok()
            .and_then(|c| self.view_rel_of_real_dir(c.as_bytes()));
        if let Some(rel) = &now {
            if self.with_known_cwd_rel(|cur| cur != Some(rel.as_slice())) {
                self.set_cwd(Some(rel.clone()));
            }
        }
        let gone = self.cwd_is_removed(&real, now.as_deref(), seen);
        let cwd = self.cwd_for_change();
        cwd.gone.store(gone, Ordering::Release);
        cwd.rel_seen.store(seen, Ordering::Release);
    }

    /// Has the current directory (the real one, `real`, and its path in
    /// the view, `rel`) been removed from the view? A removed upper
    /// directory has no path; a lower one is gone once the view no longer
    /// shows it (or merges it) at its name, which only a change of the
    /// layers' names can have done (`generation` 0: none since the overlay
    /// began).
    fn cwd_is_removed(
        &self,
        real: &Result<std::ffi::CString, Errno>,
        rel: Option<&[u8]>,
        generation: u64,
    ) -> bool {
        match (real, rel) {
            (Err(Errno::NOENT), _) => true,
            // (The view's root cannot be removed.)
            (Ok(c), Some(rel)) if !rel.is_empty() && !self.is_upper_path(c.as_bytes()) => {
                generation != 0 && !self.still_shows_lower_dir(rel)
            }
            _ => false,
        }
    }

    /// The view's path of a removed upper directory the process stands in
    /// (inherited from a parent that stood in it: `getcwd` fails; the
    /// kernel's link still names it).
    fn removed_upper_cwd_rel(&self) -> Option<Vec<u8>> {
        let link = rustix::fs::readlinkat(rustix::fs::CWD, "/proc/self/cwd", Vec::new()).ok()?;
        let real = link.as_bytes().strip_suffix(b" (deleted)")?;
        self.is_upper_path(real)
            .then(|| self.real_to_rel(real).map(<[u8]>::to_vec))
            .flatten()
    }

    /// The environment entry that tells a child the removed directory of
    /// the view it starts in ([`crate::config::env::REMOVED_CWD`]): `None`
    /// while the current directory is not such a one (most of the time: one
    /// look at the recorded state).
    pub(crate) fn removed_cwd_entry(&self) -> Option<Vec<u8>> {
        // Not known: the process never looked at it (nor was started in a
        // removed one); it is not worked out for a child (a `vfork` child
        // would record it as its own).
        let state = cwd();
        if !state.known.load(Ordering::Acquire) || !state.inside.load(Ordering::Acquire) {
            return None;
        }
        let rel = self.with_cwd_rel(|c| c.map(<[u8]>::to_vec))?;
        // A `vfork` child does not recheck (the state is its parent's):
        // it looks without recording.
        let now = self.generation();
        let gone = if state.rel_seen.load(Ordering::Acquire) != now {
            self.cwd_is_removed(&rustix::process::getcwd(Vec::new()), Some(&rel), now)
        } else {
            cwd_is_gone()
        };
        if !gone {
            return None;
        }
        let st = rustix::fs::stat(".").ok()?;
        let head = format!(
            "{}={}:{}:",
            crate::config::env::REMOVED_CWD,
            st.st_dev,
            st.st_ino
        );
        Some([head.as_bytes(), &rel].concat())
    }

    /// Takes `rel`, a removed directory of the view, as the current
    /// directory this process was started in (see
    /// [`crate::exec::take_removed_cwd`]).
    pub fn adopt_removed_cwd(&self, rel: Vec<u8>) {
        let seen = self.generation();
        self.set_cwd(Some(rel));
        let cwd = self.cwd_for_change();
        cwd.gone.store(true, Ordering::Release);
        cwd.rel_seen.store(seen, Ordering::Release);
    }

    /// Is the real path `real` in the upper layer?
    fn is_upper_path(&self, real: &[u8]) -> bool {
        self.has_upper
            && crate::overlay::strip_dir(real, &self.layers[crate::overlay::UPPER].root).is_some()
    }

    /// The virtual current directory as recorded, without looking again.
    fn with_known_cwd_rel<R>(&self, f: impl FnOnce(Option<&[u8]>) -> R) -> R {
        f(cwd().rel.read().ok().and_then(|g| g.clone()).as_deref())
    }

    /// The path in the view a real directory stands for: a path under the
    /// view itself, or a layer's directory (the same path in the view).
    fn view_rel_of_real_dir(&self, real: &[u8]) -> Option<Vec<u8>> {
        self.inside(real)
            .or_else(|| self.real_to_rel(real))
            .map(<[u8]>::to_vec)
    }

    /// Works the virtual current directory out from the real one: a real
    /// directory of a layer stands for the same path in the view.
    fn init_cwd(&self) {
        // Before the look: a change after it is seen at the next use.
        let seen = self.generation();
        let real = rustix::process::getcwd(Vec::new());
        let rel = match &real {
            Ok(c) => {
                let real = c.as_bytes();
                let above = real == b"/" || crate::overlay::strip_dir(&self.target, real).is_some();
                self.cwd_for_change().above.store(above, Ordering::Release);
                if let Ok(mut c) = self.cwd_for_change().real.write() {
                    c.clear();
                    c.extend_from_slice(real);
                }
                self.view_rel_of_real_dir(real)
            }
            Err(Errno::NOENT) => self.removed_upper_cwd_rel(),
            Err(_) => None,
        };
        // A directory removed before this process looked (by its parent, say).
        let gone = rel.is_some() && self.cwd_is_removed(&real, rel.as_deref(), seen);
        self.set_cwd(rel);
        let cwd = self.cwd_for_change();
        cwd.gone.store(gone, Ordering::Release);
        cwd.rel_seen.store(seen, Ordering::Release);
    }

    /// After `fchdir(fd)` to the view's directory `rel`: the current
    /// directory, marked removed when it has been (then only `.` and `..`
    /// lead anywhere from it, as on the kernel).
    pub fn set_cwd_to_fd(&self, fd: i32, rel: Vec<u8>) {
        let unseen = with_fd_info(fd, |i| {
            i.map(|i| (i.rel_seen != self.generation(), i.lower))
        });
        let gone = match unseen {
            Some((true, lower)) => self.dir_is_gone(fd, &rel, !lower),
            _ => false,
        };
        self.set_cwd(Some(rel));
        if gone {
            self.cwd_for_change().gone.store(true, Ordering::Release);
        }
    }

    /// Records the virtual current directory (`None`: outside the view).
    pub fn set_cwd(&self, rel: Option<Vec<u8>>) {
        let cwd = self.cwd_for_change();
        cwd.gone.store(false, Ordering::Release);
        let inside = rel.is_some();
        if let Ok(mut g) = cwd.rel.write() {
            *g = rel;
        }
        cwd.version.fetch_add(1, Ordering::AcqRel);
        cwd.inside.store(inside, Ordering::Release);
        cwd.known.store(true, Ordering::Release);
    }

    /// Where a change of the current directory is recorded: a `vfork` child
    /// records its own apart, from then on.
    fn cwd_for_change(&self) -> &'static CwdState {
        if crate::vfork::in_child() {
            crate::vfork::set_moved();
            &VFORK_CWD
        } else {
            &MAIN_CWD
        }
    }

    /// Looks once at a descriptor this process did not open through the
    /// overlay (inherited across `exec`): when its real path lies in a layer
    /// it stands for that object of the view, as before the `exec`.
    fn adopt_inherited(&self, fd: i32) -> Option<Arc<FdInfo>> {
        settle_fd(fd);
        let real = crate::sys::real_path_of_fd(fd)?;
        if self.is_above_view(&real) {
            crate::above::note(fd, real);
            return None;
        }
        let rel = self.real_to_rel(&real)?;
        let lower = self.in_lower_tree(&real);
        // A directory may be merged: look it up again to know.
        let (merged, not_dir) = match self.resolve(rel, false) {
            Ok(crate::lookup::Resolved::Inside(n)) => (n.is_merged(), !n.is_dir()),
            _ => (false, false),
        };
        let info = FdInfo {
            rel: rel.to_vec(),
            merged,
            lower,
            node: None,
            generation: 0,
            copy_ups: 0,     // not known: looked at before its first read
            dir_copy_ups: 0, // as `copy_ups`
            not_dir,
            rel_seen: self.generation(),
            stream: false,
        };
        register_fd(fd, info);
        fd_info(fd)
    }
}

/// Descriptors below this number are tracked by [`SETTLED`]; higher ones are
/// looked at every time they are not known.
use crate::hot::SETTLED_LIMIT;

/// One bit per descriptor: set once the overlay has accounted for it (opened,
/// duplicated or closed through a hook, or looked at once). A descriptor not
/// yet settled may have been inherited across `exec`; it is looked at the
/// first time it matters, so a process start costs no `/proc` scan.
const SETTLED: &[AtomicU64] = &crate::hot::HOT.settled;

#[inline]
fn settled(fd: i32) -> bool {
    (0..SETTLED_LIMIT).contains(&fd)
        && SETTLED[(fd / 64) as usize].load(Ordering::Relaxed) & (1 << (fd % 64)) != 0
}

/// Records that `fd` is accounted for: what [`FDS`] says of it is the truth.
#[inline]
pub fn settle_fd(fd: i32) {
    if crate::vfork::in_child() {
        return; // the parent's table: a child's descriptors are not in it
    }
    if (0..SETTLED_LIMIT).contains(&fd) {
        let word = &SETTLED[(fd / 64) as usize];
        let bit = 1 << (fd % 64);
        // Mostly set already (numbers are reused): a load, not an exchange.
        if word.load(Ordering::Relaxed) & bit == 0 {
            word.fetch_or(bit, Ordering::Relaxed);
        }
    }
}

/// Settles every descriptor from `first` on (`closefrom`, `close_range`).
fn settle_from(first: u32, last: u32) {
    if crate::vfork::in_child() {
        return;
    }
    let last = last.min(SETTLED_LIMIT as u32 - 1);
    for fd in first..=last {
        if fd % 64 == 0 && fd + 63 <= last {
            SETTLED[(fd / 64) as usize].store(u64::MAX, Ordering::Relaxed);
        } else {
            settle_fd(fd as i32);
        }
    }
}

/// Lexical normalization of an absolute path (`..` pops a component). Only
/// used to recognise paths that reach the view by a detour.
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

/// Remembers that `fd` refers to an object of the view.
pub fn register_fd(fd: i32, info: FdInfo) {
    if crate::vfork::in_child() {
        return crate::vfork::touch_fds(fd, fd);
    }
    if fd < 0 {
        return;
    }
    store_fd(fd, Arc::new(info));
    settle_fd(fd);
}

/// Puts `info` in [`FDS`] for `fd` (not negative).
fn store_fd(fd: i32, info: Arc<FdInfo>) {
    crate::above::forget(fd);
    if let Ok(mut t) = FDS.write() {
        let i = fd as usize;
        if t.len() <= i {
            t.resize(i + 1, None);
        }
        note_reader(i, Some(&info));
        t[i] = Some(info);
        FDS_LEN.fetch_max(fd + 1, Ordering::Release);
        FDS_VERSION.fetch_add(1, Ordering::AcqRel);
    }
}

/// Could `fd` be one the overlay knows (a quick test, no lock)?
#[inline]
pub fn may_know_fd(fd: i32) -> bool {
    fd >= 0
        && (fd < FDS_LEN.load(Ordering::Acquire)
            || !settled(fd)
            || crate::above::quick_is_above(fd) != Some(false))
}

/// What the overlay knows of `fd`, if it refers to the view.
#[inline]
pub fn fd_info(fd: i32) -> Option<Arc<FdInfo>> {
    if fd < 0 {
        return None;
    }
    if crate::vfork::in_child() && crate::vfork::touched_fd(fd) {
        return None; // changed by a vfork child: taken as it is
    }
    match in_table(fd) {
        Some(found) => found,
        None => crate::overlay::get()?.adopt_inherited(fd),
    }
}

/// Runs `f` on what the overlay knows of `fd` (`None`: it does not refer
/// to the view), from this thread's last look-up while the table is
/// unchanged: as [`fd_info`], without a lock or a clone.
pub fn with_fd_info<R>(fd: i32, f: impl FnOnce(Option<&FdInfo>) -> R) -> R {
    if fd < 0 || (crate::vfork::in_child() && crate::vfork::touched_fd(fd)) {
        return f(None);
    }
    if fd >= FDS_LEN.load(Ordering::Acquire) && settled(fd) {
        return f(None);
    }
    // Read before the table: a copy is never newer than its version.
    let version = FDS_VERSION.load(Ordering::Acquire);
    let mut f = Some(f);
    let from_copy = LAST_FD
        .try_with(|last| {
            let mut last = last.try_borrow_mut().ok()?;
            if last.0 != fd || last.1 != version {
                *last = (fd, version, in_table(fd)?);
            }
            f.take().map(|f| f(last.2.as_deref()))
        })
        .ok()
        .flatten();
    match (from_copy, f) {
        (Some(r), _) => r,
        (None, Some(f)) => f(fd_info(fd).as_deref()),
        (None, None) => unreachable!("the closure ran and gave its result"),
    }
}

/// What [`FDS`] says of `fd`, when that is the whole truth (`None`: an
/// inherited descriptor not looked at yet).
fn in_table(fd: i32) -> Option<Option<Arc<FdInfo>>> {
    let found = if fd < FDS_LEN.load(Ordering::Acquire) {
        FDS.read().ok()?.get(fd as usize).cloned().flatten()
    } else {
        None
    };
    (found.is_some() || settled(fd)).then_some(found)
}

/// Forgets `fd` (it was closed). (Not `#[inline]`: as `plainly_outside`.)
pub fn forget_fd(fd: i32) {
    if crate::vfork::in_child() {
        return crate::vfork::touch_fds(fd, fd);
    }
    settle_fd(fd);
    crate::watch::forget(fd);
    crate::above::forget(fd);
    if fd < 0 || fd >= FDS_LEN.load(Ordering::Acquire) {
        return;
    }
    let known = FDS
        .read()
        .is_ok_and(|t| t.get(fd as usize).is_some_and(Option::is_some));
    if !known {
        return;
    }
    if let Ok(mut t) = FDS.write() {
        if let Some(slot) = t.get_mut(fd as usize) {
            *slot = None;
            note_reader(fd as usize, None);
        }
        FDS_VERSION.fetch_add(1, Ordering::AcqRel);
    }
}

/// Forgets every fd in `[first, last]` (close_range).
pub fn forget_fd_range(first: u32, last: u32) {
    if crate::vfork::in_child() {
        return crate::vfork::touch_fds(
            first.min(i32::MAX as u32) as i32,
            last.min(i32::MAX as u32) as i32,
        );
    }
    settle_from(first, last);
    crate::above::forget_range(
        first.min(i32::MAX as u32) as i32,
        last.min(i32::MAX as u32) as i32,
    );
    let len = FDS_LEN.load(Ordering::Acquire).max(0) as u32;
    for fd in first..=last.min(len) {
        forget_fd(fd as i32);
    }
}

/// Settles `fd`, just made for something outside the view, when that needs
/// no lock: no stale entry of the view's table or of the list of directories
/// above the view to forget. `false`: call [`forget_fd`] (or [`dup_fd`]).
/// Safe without the re-entry guard (in a process whose inotify descriptor
/// follows watches, `watch::forget` takes its list's lock).
#[inline]
pub fn settle_plain_new_fd(fd: i32) -> bool {
    let plain = fd >= FDS_LEN.load(Ordering::Acquire)
        && crate::above::quick_is_above(fd) == Some(false)
        && !crate::vfork::in_child();
    if plain {
        settle_fd(fd);
        crate::watch::forget(fd);
    }
    plain
}

/// After a copy-up of the regular file `rel` (its copy at `upper`): this
/// process's descriptors open for reading on the lower file read the copy
/// from now on, at the same offset (duplicates still sharing one), as the
/// kernel's overlayfs switches them. (Other processes' descriptors follow
/// at their next read: [`catch_up_reader`].)
pub(crate) fn repoint_lower_fds(rel: &[u8], upper: &CStr) {
    if crate::vfork::in_child() {
        return; // the parent's table, and the child's descriptors may differ
    }
    let readers = lower_fds_at(rel, false);
    // Duplicates share one open file description (and its offset): they
    // get one of the copy, shared again.
    for group in by_description(readers) {
        let Ok(copy) = reopen_on(group[0].0, upper) else {
            continue;
        };
        for (fd, info) in group {
            if put_under(&copy, fd).is_ok() {
                let moved = FdInfo {
                    lower: false,
                    rel: info.rel.clone(),
                    node: None,
                    ..*info
                };
                store_fd(fd, Arc::new(moved));
            }
        }
    }
}

/// After a copy-up of the directory `rel` (its copy at `upper`): this
/// process's descriptors open on the lower directory are put on the copy
/// (at their start, with their access mode and close-on-exec flag;
/// duplicates still sharing one), as the kernel's descriptors of the
/// directory reach its copy from then on: a change through one changes
/// the copy, and `fstat` shows it, also once it is removed. Not one a
/// directory stream reads, nor one read from already (with any duplicate
/// of it): a stream goes on in the directory it started in, and switches
/// to the merged one at its next start (the shim's `dir.rs`).
pub(crate) fn repoint_lower_dirs(ovl: &Overlay, rel: &[u8], upper: &CStr) {
    if crate::vfork::in_child() {
        return; // the parent's table, and the child's descriptors may differ
    }
    let dirs = lower_fds_at(rel, true);
    if dirs.is_empty() {
        return;
    }
    let Ok(Resolved::Inside(copy)) = ovl.resolve(rel, false) else {
        return;
    };
    if copy.layer != crate::overlay::UPPER || !copy.is_dir() {
        return;
    }
    for group in by_description(dirs) {
        if group.iter().any(|(_, info)| info.stream) {
            continue;
        }
        let Ok(new) = reopen_dir_on(group[0].0, upper) else {
            continue;
        };
        for (fd, _) in group {
            if put_under(&new, fd).is_ok() {
                store_fd(fd, Arc::new(ovl.fd_info(&copy)));
            }
        }
    }
}

/// This process's descriptors of the lower object at `rel`: of its
/// directory (`dirs`), or of its file.
fn lower_fds_at(rel: &[u8], dirs: bool) -> Vec<(i32, Arc<FdInfo>)> {
    match FDS.read() {
        Ok(t) => t
            .iter()
            .enumerate()
            .filter_map(|(fd, info)| Some((fd as i32, info.clone()?)))
            .filter(|(_, info)| info.lower && info.node.is_some() == dirs && info.rel == rel)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// `fds` in groups sharing one open file description each.
fn by_description(fds: Vec<(i32, Arc<FdInfo>)>) -> Vec<Vec<(i32, Arc<FdInfo>)>> {
    let mut groups: Vec<Vec<(i32, Arc<FdInfo>)>> = Vec::new();
    for entry in fds {
        match groups
            .iter_mut()
            .find(|g| same_description(g[0].0, entry.0))
        {
            Some(group) => group.push(entry),
            None => groups.push(vec![entry]),
        }
    }
    groups
}

/// A new open file description of the directory `upper`, as `fd`'s (a
/// descriptor of its lower directory): `O_PATH` or for reading, and only
/// while `fd` is at its start (nothing read through it yet).
fn reopen_dir_on(fd: i32, upper: &CStr) -> Result<rustix::fd::OwnedFd, Errno> {
    use rustix::fs::{Mode, OFlags, SeekFrom};
    // SAFETY: `fd` is open: the table follows closes.
    let old = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
    let flags = rustix::fs::fcntl_getfl(old)?;
    let path = flags.contains(OFlags::PATH);
    if !path && rustix::fs::seek(old, SeekFrom::Current(0))? != 0 {
        return Err(Errno::BUSY);
    }
    let mode = if path { OFlags::PATH } else { OFlags::RDONLY };
    let kept = flags & OFlags::NONBLOCK;
    rustix::fs::open(
        upper,
        mode | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | kept,
        Mode::empty(),
    )
}

/// Marks `fd` as read by a directory stream (`opendir`, `fdopendir`).
pub fn note_stream(fd: i32) {
    if crate::vfork::in_child() {
        return;
    }
    if let Some(info) = fd_info(fd).filter(|i| !i.stream) {
        let mut changed = (*info).clone();
        changed.stream = true;
        store_fd(fd, Arc::new(changed));
    }
}

/// Where `path`, relative to a current directory removed from the view
/// (`rel`: `path` joined to its old path), leads, as on the kernel: `.`
/// is the removed directory itself (the real one the process is in), a
/// path through `..` climbs from where it was, any other name is in no
/// directory (`ENOENT`), whatever has the directory's name now.
fn in_removed_cwd(path: &[u8], rel: Vec<u8>) -> Where {
    let rest = past_dots(path);
    if rest.is_empty() {
        Where::Outside
    } else if rest == b".." || rest.starts_with(b"../") {
        Where::Inside(rel)
    } else {
        Where::Fails(Errno::NOENT)
    }
}

/// `path` past its leading `.` components and slashes (empty: it names
/// the directory it is taken from).
fn past_dots(path: &[u8]) -> &[u8] {
    let mut rest = path;
    loop {
        rest = &rest[rest.iter().take_while(|&&b| b == b'/').count()..];
        match rest.strip_prefix(b".") {
            Some(after) if after.is_empty() || after[0] == b'/' => rest = after,
            _ => return rest,
        }
    }
}

/// Could a read through `fd` need [`catch_up_reader`] first? `false` when
/// it surely reaches the right file as it is: it reads no lower file, or
/// nothing was copied up since it last looked. Loads only: no lock, no
/// call (a hook's quick test, made before every `read`).
#[inline(always)]
pub fn read_may_need_catch_up(fd: i32) -> bool {
    if fd < 0 || crate::hot::HOT.overlay.load(Ordering::Relaxed).is_null() {
        return false;
    }
    match READERS.get(fd as usize) {
        Some(slot) => match slot.load(Ordering::Acquire) {
            0 => !settled(fd), // an inherited descriptor is looked at once
            mark => mark - 1 != crate::generation::copy_ups_now(),
        },
        None => true,
    }
}

/// Does `info` describe a descriptor on a lower file (not a directory)?
fn is_lower_reader(info: &FdInfo) -> bool {
    info.lower && info.node.is_none()
}

/// The low descriptors' [`FdInfo::copy_ups`], for [`read_may_need_catch_up`] to read
/// without a lock: 0 for a descriptor that reads no lower file, else one
/// more than the count (`u64::MAX`: never current). Kept by [`store_fd`]
/// and [`forget_fd`], under the table's write lock.
static READERS: [AtomicU64; READERS_LEN] = [const { AtomicU64::new(0) }; READERS_LEN];
const READERS_LEN: usize = 4096;

fn note_reader(fd: usize, info: Option<&FdInfo>) {
    if let Some(slot) = READERS.get(fd) {
        let mark = match info.filter(|i| is_lower_reader(i)) {
            None => 0,
            Some(i) => i.copy_ups.saturating_add(1),
        };
        slot.store(mark, Ordering::Release);
    }
}

/// Marks the inotify descriptor `fd` as one whose reads go past the quick
/// test (`watch.rs` translates its events), or no longer.
pub(crate) fn note_watcher(fd: i32, watching: bool) {
    if let Some(slot) = usize::try_from(fd).ok().and_then(|fd| READERS.get(fd)) {
        slot.store(if watching { u64::MAX } else { 0 }, Ordering::Release);
    }
}

/// Before a read through `fd` (or its `fstat`): a descriptor reading a lower
/// file that another process has copied up since reads the copy from now
/// on, at its offset, as on the kernel's overlayfs (which looks at every
/// read). One load of the shared count of copy-ups says whether anything
/// was copied up meanwhile; only then is the file's upper name looked at.
pub fn catch_up_reader(ovl: &Overlay, fd: i32) {
    if crate::vfork::in_child() {
        return; // the parent's table: this child's descriptors may differ
    }
    let now = ovl.copy_ups();
    let stale = with_fd_info(fd, |info| {
        info.filter(|i| is_lower_reader(i))
            .filter(|i| i.copy_ups != now || now == crate::generation::UNCACHEABLE)
            .map(|i| i.rel.clone())
    });
    let Some(rel) = stale else {
        return;
    };
    let upper = ovl.upper_path(&rel);
    match rustix::fs::lstat(upper.as_c_str()) {
        Ok(st)
            if rustix::fs::FileType::from_raw_mode(st.st_mode).is_file()
                && is_copy_of_fd(ovl, fd, st.st_ino) =>
        {
            repoint_lower_fds(&rel, &upper);
        }
        // Still the lower file's: nothing to look at before the next copy-up.
        _ => update_fd_info(fd, &rel, |info| info.copy_ups = now),
    }
}

/// Does `info` describe a descriptor of a directory shown from one lower
/// layer (as it was when last looked at), whose copy-up a stream on it
/// follows at its next start?
pub fn is_lower_only_dir(info: &FdInfo) -> bool {
    info.lower && !info.merged
}

impl Overlay {
    /// What a change through `fd`, a descriptor open on a lower object once
    /// at `rel`, is made on: the view's object there, while it is that
    /// object (itself, or its copy). When the name shows nothing or another
    /// object now (removed, or replaced, by this process or another), the
    /// kernel's answer when it copies up an object whose name has gone (see
    /// [`Overlay::copy_up_of_gone_fails`]). (It changes a copy made before
    /// the name went, which no name reaches any more.)
    pub fn lower_object_of_fd(&self, fd: i32, rel: &[u8]) -> Result<Resolved, Errno> {
        match self.shown_lower_object_of_fd(fd, rel)? {
            Ok(shown) => Ok(shown),
            Err(st) => {
                let is_dir = rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir();
                Err(self.copy_up_of_gone_fails(rel, is_dir))
            }
        }
    }

    /// What the view shows of the lower object `fd` is open on, once at
    /// `rel`: `Ok(it)` while that is the object (itself, or its copy);
    /// `Err(its fstat)` when the name shows nothing or another object now.
    /// Only looks (a query such as `readlink` of its link changes nothing).
    pub fn shown_lower_object_of_fd(
        &self,
        fd: i32,
        rel: &[u8],
    ) -> Result<Result<Resolved, rustix::fs::Stat>, Errno> {
        // SAFETY: `fd` is open: the table follows closes.
        let own = || rustix::fs::fstat(unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) });
        Ok(match self.resolve(rel, false) {
            // Lower layers never change: a name one of them shows is the
            // same object still.
            Ok(Resolved::Inside(node)) if node.layer != crate::overlay::UPPER => {
                Ok(Resolved::Inside(node))
            }
            Ok(Resolved::Inside(node)) => {
                let st = own()?;
                match self.is_copy_of_fd_object(rel, fd, &st) {
                    Some(false) => Err(st),
                    _ => Ok(Resolved::Inside(node)),
                }
            }
            Err(Errno::NOENT) => Err(own()?),
            other => Ok(other?),
        })
    }

    /// The kernel's answer to a change of a lower object whose name `rel`
    /// has gone since (removed, or given to another object): its copy-up
    /// fails on what the name holds now. `EEXIST` for a file; for a
    /// directory, whose copy is renamed over that, `ENOTEMPTY` over a
    /// directory with entries and `ENOTDIR` over a whiteout or a file. (Over
    /// an empty directory the kernel's rename succeeds, and the copy of the
    /// removed directory replaces the new one on disk; ovl leaves the new
    /// one alone and fails with `ENOTDIR`.) The upper parent is marked
    /// impure, as the kernel leaves it.
    pub fn copy_up_of_gone_fails(&self, rel: &[u8], is_dir: bool) -> Errno {
        let parent = self.upper_path(crate::lookup::split_last(rel).0);
        if rustix::fs::lstat(parent.as_c_str())
            .is_ok_and(|p| rustix::fs::FileType::from_raw_mode(p.st_mode).is_dir())
        {
            self.mark_impure(&parent);
        }
        if !is_dir {
            return Errno::EXIST;
        }
        // A whiteout or a file has no entries to read.
        if crate::sys::entries(&self.upper_path(rel)).is_empty() {
            Errno::NOTDIR
        } else {
            Errno::NOTEMPTY
        }
    }

    /// A change of `.`, the current directory, removed from the view while
    /// a lower directory: the kernel's copy-up fails
    /// ([`Overlay::copy_up_of_gone_fails`]).
    pub fn change_of_removed_cwd_fails(&self) -> Errno {
        self.with_known_cwd_rel(|rel| match rel {
            Some(rel) => self.copy_up_of_gone_fails(rel, true),
            None => Errno::NOTDIR,
        })
    }
}

/// For `fd`, a descriptor of a directory, `real` its real device and
/// inode numbers: when it is open on a lower layer's directory that has
/// been copied up since, the directory as the view shows it now (the
/// kernel's `fstat` of such a descriptor reports the upper directory's
/// attributes, and one link). `None`: it has not been, or `fd` is open on
/// no lower directory of the view.
pub fn copied_up_dir(ovl: &Overlay, fd: i32, real: (u64, u64)) -> Option<Node> {
    let (info, now) = lower_dir_copy_up_unseen(ovl, fd)?;
    copy_at_its_name(ovl, fd, &info, now, real)
}

/// [`copied_up_dir`] for a caller without the descriptor's `fstat`: that
/// is made only when a directory has been copied up since `fd` last looked.
pub fn copied_up_dir_of(ovl: &Overlay, fd: i32) -> Option<Node> {
    let (info, now) = lower_dir_copy_up_unseen(ovl, fd)?;
    // SAFETY: `fd` is open: the table follows closes.
    let st = rustix::fs::fstat(unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) }).ok()?;
    copy_at_its_name(ovl, fd, &info, now, (st.st_dev, st.st_ino))
}

/// `fd`'s record and the count of directory copy-ups, when `fd` is open on
/// a lower object and a directory has been copied up since it last looked
/// (one load otherwise).
fn lower_dir_copy_up_unseen(ovl: &Overlay, fd: i32) -> Option<(Arc<FdInfo>, u64)> {
    if crate::vfork::in_child() {
        return None; // the parent's table: this child's descriptors may differ
    }
    let info = fd_info(fd).filter(|i| i.lower)?;
    let now = ovl.dir_copy_ups();
    if info.dir_copy_ups == now && now != crate::generation::UNCACHEABLE {
        return None;
    }
    Some((info, now))
}

/// The copy of the lower directory `fd` (of record `info`, real identity
/// `real`) is open on, as the view shows it now at its name; else `None`,
/// noted while the name still shows the lower directory (at count `now`).
fn copy_at_its_name(
    ovl: &Overlay,
    fd: i32,
    info: &FdInfo,
    now: u64,
    real: (u64, u64),
) -> Option<Node> {
    match ovl.resolve(&info.rel, false) {
        // The copy of this directory, not another put at its name since.
        Ok(Resolved::Inside(n))
            if n.is_dir() && ovl.layer_identity(n.layer, &n.rel, &n.stat) == Some(real) =>
        {
            Some(n)
        }
        Ok(Resolved::Inside(n)) if n.is_dir() && n.layer != crate::overlay::UPPER => {
            note_dir_not_copied_up(fd, &info.rel, now);
            None
        }
        _ => None,
    }
}

/// The directory `fd` is open on (at `rel`) was found still not copied up
/// when the count of directory copy-ups was `count`: its streams need not
/// look again before the next.
pub fn note_dir_not_copied_up(fd: i32, rel: &[u8], count: u64) {
    if crate::vfork::in_child() {
        return;
    }
    update_fd_info(fd, rel, |info| info.dir_copy_ups = count);
}

/// Stores `fd`'s record again, changed by `change`, if it still stands for
/// `rel` (the descriptor may have been closed and reused meanwhile).
fn update_fd_info(fd: i32, rel: &[u8], change: impl FnOnce(&mut FdInfo)) {
    if let Some(info) = fd_info(fd).filter(|i| i.rel == rel) {
        let mut changed = (*info).clone();
        change(&mut changed);
        store_fd(fd, Arc::new(changed));
    }
}

/// Is the upper file of inode `copy_ino` a copy of the lower file `fd` is
/// open on (not another file put in its name's place since)?
fn is_copy_of_fd(ovl: &Overlay, fd: i32, copy_ino: u64) -> bool {
    // SAFETY: `fd` is open: the table follows closes.
    let lower = rustix::fs::fstat(unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) });
    lower.is_ok_and(|st| {
        ovl.fd_file_key(fd, &st)
            .is_some_and(|key| ovl.is_copy_of(key, copy_ino))
    })
}

/// Do `a` and `b` share one open file description (`kcmp`)? `false` when
/// the kernel will not say.
fn same_description(a: i32, b: i32) -> bool {
    const KCMP_FILE: libc::c_long = 0;
    let pid = libc::c_long::from(rustix::process::getpid().as_raw_nonzero().get());
    let r = crate::sys::syscall_keeping_errno(|| {
        // SAFETY: kcmp only compares two descriptors of this process.
        unsafe {
            libc::syscall(
                libc::SYS_kcmp,
                pid,
                pid,
                KCMP_FILE,
                libc::c_long::from(a),
                libc::c_long::from(b),
            )
        }
    });
    r == Ok(0)
}

/// A new open file description of `upper` with the status flags and offset
/// of `fd`'s (a reader of the file's lower copy, or an `O_PATH` descriptor
/// of it: that reads nothing, but its `fstat` shows the copy on the kernel).
fn reopen_on(fd: i32, upper: &CStr) -> Result<rustix::fd::OwnedFd, Errno> {
    use rustix::fs::{Mode, OFlags, SeekFrom};
    // SAFETY: `fd` is open: the table follows closes.
    let old = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
    let flags = rustix::fs::fcntl_getfl(old)?;
    if flags.contains(OFlags::PATH) {
        // `NOFOLLOW`: the copy of a symbolic link is the link itself.
        let path = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        return rustix::fs::open(upper, path, Mode::empty());
    }
    if flags.intersects(OFlags::WRONLY | OFlags::RDWR) {
        return Err(Errno::INVAL); // only readers stay on a lower file
    }
    let offset = rustix::fs::seek(old, SeekFrom::Current(0))?;
    let kept = flags & (OFlags::NONBLOCK | OFlags::APPEND);
    let copy = rustix::fs::open(
        upper,
        OFlags::RDONLY | OFlags::CLOEXEC | kept,
        Mode::empty(),
    )?;
    rustix::fs::seek(&copy, SeekFrom::Start(offset))?;
    Ok(copy)
}

/// Puts `copy` under the number `fd`, keeping `fd`'s close-on-exec flag.
/// (Record locks the process held on the lower file go, as with any close;
/// the view no longer shows that file.)
fn put_under(copy: &rustix::fd::OwnedFd, fd: i32) -> Result<(), Errno> {
    use rustix::fd::FromRawFd;
    // SAFETY: `fd` is open (the table follows closes) and is never closed
    // here: the wrapper is not dropped, dup3 only replaces what it refers to.
    let mut old = std::mem::ManuallyDrop::new(unsafe { rustix::fd::OwnedFd::from_raw_fd(fd) });
    let cloexec = rustix::io::fcntl_getfd(&*old)?.contains(rustix::io::FdFlags::CLOEXEC);
    let flags = if cloexec {
        rustix::io::DupFlags::CLOEXEC
    } else {
        rustix::io::DupFlags::empty()
    };
    rustix::io::dup3(copy, &mut old, flags)
}

/// `newfd` is now a duplicate of `oldfd`.
pub fn dup_fd(oldfd: i32, newfd: i32) {
    if crate::vfork::in_child() {
        return crate::vfork::touch_fds(newfd, newfd);
    }
    // A program's own descriptors, duplicated by the thousand (fts does):
    // nothing to copy, nothing to forget, no lock.
    if !may_know_fd(oldfd) && settle_plain_new_fd(newfd) {
        return;
    }
    match fd_info(oldfd) {
        Some(info) if newfd >= 0 => store_fd(newfd, info),
        _ => forget_fd(newfd),
    }
    crate::above::dup(oldfd, newfd);
    settle_fd(newfd);
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
            Where::Inside(rel) => Some(self.resolve(&rel, follow)),
            Where::Fails(e) => Some(Err(e)),
        }
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
            Where::Inside(rel) => Some(self.resolve_parent_as(&rel, crate::lookup::no_name(path))),
            Where::Fails(e) => Some(Err(e)),
        }
    }
}

impl Overlay {
    /// After the process moved to a real directory: work the virtual current
    /// directory out again.
    pub fn refresh_cwd(&self) {
        self.init_cwd();
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
