//! The current directory, as the overlay knows it: inside the view (its
//! path there) or outside, worked out from the real one on first use and
//! followed through `chdir`, `fchdir`, copy-ups and renames; and a current
//! directory removed from the view, where only `.` and `..` lead anywhere,
//! as on the kernel.

use crate::fd_table::with_fd_info;
use crate::locate::Where;
use crate::lookup::{Node, Resolved};
use crate::overlay::Overlay;
use crate::padded::Padded;
use rustix::io::Errno;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;

/// What the overlay knows of the current directory.
pub(crate) struct CwdState {
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

    /// Is the current directory known to be outside the view, and not
    /// above it (so relative names that do not climb stay outside)?
    #[inline(always)]
    pub(crate) fn plainly_outside(&self) -> bool {
        self.known.load(Ordering::Acquire)
            && !self.inside.load(Ordering::Acquire)
            && !self.above.load(Ordering::Acquire)
    }

    /// Has the current directory been worked out yet?
    pub(crate) fn is_known(&self) -> bool {
        self.known.load(Ordering::Acquire)
    }

    /// Is the current directory outside the view but above it?
    pub(crate) fn is_above(&self) -> bool {
        self.above.load(Ordering::Acquire)
    }

    /// Runs `f` on the real current directory, when outside the view (empty
    /// if unknown), read in place.
    pub(crate) fn with_real_path<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        self.real.read().ok().map(|c| f(&c))
    }
}

/// The process's current directory.
pub(crate) static MAIN_CWD: CwdState = CwdState::new(0);

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
pub(crate) fn cwd() -> &'static CwdState {
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

/// Where `path`, relative to a current directory removed from the view
/// (`rel`: `path` joined to its old path), leads, as on the kernel: `.`
/// is the removed directory itself (the real one the process is in), a
/// path through `..` climbs from where it was, any other name is in no
/// directory (`ENOENT`), whatever has the directory's name now.
pub(crate) fn in_removed_cwd(path: &[u8], rel: Vec<u8>) -> Where {
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
        rest = crate::locate::trim_leading_slashes(rest);
        match rest.strip_prefix(b".") {
            Some(after) if after.is_empty() || after[0] == b'/' => rest = after,
            _ => return rest,
        }
    }
}

impl Overlay {
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
        if !self.in_upper_tree(real) && self.real_to_rel(real) == Some(rel) {
            // Failing leaves the process where it was: the copy is shown all the same.
            let _ = rustix::process::chdir(copy);
        }
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
            (Ok(c), Some(rel)) if !rel.is_empty() && !self.in_upper_tree(c.as_bytes()) => {
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
        self.in_upper_tree(real)
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
    pub(crate) fn init_cwd(&self) {
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

    /// A change of `.`, the current directory, removed from the view while
    /// a lower directory: the kernel's copy-up fails
    /// ([`Overlay::copy_up_of_gone_fails`]).
    pub fn change_of_removed_cwd_fails(&self) -> Errno {
        self.with_known_cwd_rel(|rel| match rel {
            Some(rel) => self.copy_up_of_gone_fails(rel, true),
            None => Errno::NOTDIR,
        })
    }

    /// After the process moved to a real directory: work the virtual current
    /// directory out again.
    pub fn refresh_cwd(&self) {
        self.init_cwd();
    }
}
