//! A `vfork` child runs on its parent's memory, with its own descriptor
//! table, until it execs or exits; meanwhile the parent's thread waits (its
//! other threads do not). What the child does to its descriptors and its
//! current directory must not be written into the overlay's tables, which
//! are the parent's: here the child is recognised, and what it changed is
//! kept apart until the parent resumes.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Mutex;

/// The pid of a `vfork` child running on this memory (0: none; `CLAIMED`:
/// one is being started).
const CHILD: &AtomicI32 = &crate::hot::HOT.vfork_child;
const CLAIMED: i32 = -1;
/// The child moved a layer descriptor's number (`dup2` onto it): its
/// look-ups go by path.
static LAYER_FDS_SPOILED: AtomicBool = AtomicBool::new(false);
/// The child changed its current directory (see `cwd`).
static MOVED: AtomicBool = AtomicBool::new(false);
/// Descriptors the child opened, closed or duplicated onto, as ranges.
static TOUCHED: Mutex<Vec<(i32, i32)>> = Mutex::new(Vec::new());

/// Before a `vfork`: may it share this memory? Only one child at a time
/// does (its state here is one); a thread that finds another's child still
/// running must `fork` instead.
pub fn claim() -> bool {
    CHILD
        .compare_exchange(0, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}

/// The `vfork` claimed did not happen.
pub fn release() {
    CHILD.store(0, Ordering::Release);
}

/// In the child, right after `vfork` returned there.
pub fn child_started() {
    CHILD.store(
        rustix::process::getpid().as_raw_nonzero().get(),
        Ordering::Release,
    );
}

/// In the child of a `fork` (which has memory of its own): no `vfork` child
/// runs on it, whatever another thread of its parent was doing. Nothing is
/// written when none did (`parent_resumed` clears the rest before `CHILD`):
/// each page written here would be copied for the child.
pub fn after_fork_in_child() {
    if CHILD.load(Ordering::Acquire) != 0 {
        parent_resumed();
    }
}

/// In the parent, once its child has exec'd or exited.
pub fn parent_resumed() {
    LAYER_FDS_SPOILED.store(false, Ordering::Release);
    MOVED.store(false, Ordering::Release);
    // Only a vfork child takes this lock, and it is gone: a lock still held
    // is one a `fork` copied from another thread, which the child lacks.
    if let Ok(mut t) = TOUCHED.try_lock() {
        t.clear();
    }
    CHILD.store(0, Ordering::Release);
}

/// Could this be the `vfork` child (is there one)? One load.
#[inline(always)]
pub fn may_be_child() -> bool {
    CHILD.load(Ordering::Acquire) != 0
}

/// Is this the `vfork` child? One load while there is none.
#[inline]
pub fn in_child() -> bool {
    let child = CHILD.load(Ordering::Acquire);
    child != 0 && child == rustix::process::getpid().as_raw_nonzero().get()
}

/// In the child: descriptors `first..=last` no longer are what the
/// parent's table says.
pub(crate) fn touch_fds(first: i32, last: i32) {
    if let Ok(mut t) = TOUCHED.lock() {
        if !t.iter().any(|&(a, b)| a <= first && last <= b) {
            t.push((first, last));
        }
    }
}

/// In the child: did it change `fd`?
pub(crate) fn touched_fd(fd: i32) -> bool {
    TOUCHED
        .lock()
        .map_or(true, |t| t.iter().any(|&(a, b)| a <= fd && fd <= b))
}

pub(crate) fn spoil_layer_fds() {
    LAYER_FDS_SPOILED.store(true, Ordering::Release);
}

/// May the layer descriptors be used? Not in a child that moved one.
#[inline]
pub(crate) fn layer_fds_usable() -> bool {
    !LAYER_FDS_SPOILED.load(Ordering::Acquire) || !in_child()
}

pub(crate) fn set_moved() {
    MOVED.store(true, Ordering::Release);
}

/// Is this a `vfork` child that changed its current directory?
#[inline]
pub(crate) fn child_moved() -> bool {
    MOVED.load(Ordering::Acquire) && in_child()
}
