//! Descriptors of directories above the view: the target's ancestors (`/`,
//! the target's parent, ...) opened outside the view. A name relative to one
//! may lead into the view (`openat(parent_fd, "view/x")`, as `find`, `du`
//! and `rm -r` walk a tree), so the real path of each is remembered and such
//! names are taken as absolute paths. Programs hold few of them (a walk
//! holds the chain from its start down to the view), so a short list does.

use crate::padded::Padded;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::RwLock;

/// Descriptors held in slots, asked without a lock (a hook asks on every
/// call relative to a descriptor); more than this go to a list.
const SLOTS: usize = 16;
/// The descriptor of each slot, -1 when free. A slot's descriptor never
/// moves to another slot, so a reader racing with a change of another
/// descriptor never misses its own.
static SLOT_FDS: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];
/// Bit `fd % 64` of every descriptor known, in slots and in the list: a
/// call relative to any other descriptor is settled by one load and a bit
/// test, on the hooks' hot cache line (the slots are another line).
const MASK: &AtomicU64 = &crate::hot::HOT.above_mask;
/// Descriptors in the list.
const MORE: &AtomicU32 = &crate::hot::HOT.above_more;

/// The real absolute path (lexically clean) of each slot's directory, and
/// the list of (descriptor, path) beyond the slots.
struct Paths {
    slots: [Vec<u8>; SLOTS],
    more: Vec<(i32, Vec<u8>)>,
}

static PATHS: Padded<RwLock<Paths>> = Padded(RwLock::new(Paths {
    slots: [const { Vec::new() }; SLOTS],
    more: Vec::new(),
}));

/// Is any descriptor known as a directory above the view? One load.
#[inline]
pub fn any() -> bool {
    MASK.load(Ordering::Acquire) != 0
}

#[inline(always)]
fn mask_bit(fd: i32) -> u64 {
    1 << (fd & 63)
}

/// Could `fd` be a directory above the view? One load and a bit test.
#[inline(always)]
pub fn may_be_above(fd: i32) -> bool {
    MASK.load(Ordering::Acquire) & mask_bit(fd) != 0
}

/// Is `fd` a directory above the view, asked without a lock: `None` when
/// only the list could tell.
#[inline]
pub fn quick_is_above(fd: i32) -> Option<bool> {
    if !may_be_above(fd) {
        return Some(false);
    }
    quick_is_above_in_slots(fd)
}

#[cold]
#[inline(never)]
fn quick_is_above_in_slots(fd: i32) -> Option<bool> {
    if SLOT_FDS.iter().any(|s| s.load(Ordering::Acquire) == fd) {
        return Some(true);
    }
    (MORE.load(Ordering::Acquire) == 0).then_some(false)
}

/// Is `fd` known as a directory above the view?
pub fn is_above(fd: i32) -> bool {
    quick_is_above(fd) != Some(false) && path_of(fd).is_some()
}

/// The real path of `fd`, when it is a directory above the view.
pub fn path_of(fd: i32) -> Option<Vec<u8>> {
    if quick_is_above(fd) == Some(false) {
        return None;
    }
    if crate::vfork::in_child() && crate::vfork::touched_fd(fd) {
        return None; // changed by a vfork child: taken as it is
    }
    let paths = PATHS.read().ok()?;
    match SLOT_FDS
        .iter()
        .position(|s| s.load(Ordering::Acquire) == fd)
    {
        Some(i) => Some(paths.slots[i].clone()),
        None => paths
            .more
            .iter()
            .find(|(f, _)| *f == fd)
            .map(|(_, p)| p.clone()),
    }
}

/// Remembers that `fd` is the directory `path` above the view.
pub fn note(fd: i32, path: Vec<u8>) {
    if fd < 0 || crate::vfork::in_child() {
        return; // a vfork child's descriptors are taken as they are
    }
    let Ok(mut paths) = PATHS.write() else { return };
    if let Some(i) = SLOT_FDS
        .iter()
        .position(|s| s.load(Ordering::Acquire) == fd)
    {
        paths.slots[i] = path;
    } else if let Some(e) = paths.more.iter_mut().find(|(f, _)| *f == fd) {
        e.1 = path;
    } else if let Some(i) = SLOT_FDS.iter().position(|s| s.load(Ordering::Acquire) < 0) {
        // The path first: a reader that finds the descriptor takes the lock.
        paths.slots[i] = path;
        SLOT_FDS[i].store(fd, Ordering::Release);
        MASK.fetch_or(mask_bit(fd), Ordering::AcqRel);
    } else {
        paths.more.push((fd, path));
        MORE.fetch_add(1, Ordering::AcqRel);
        MASK.fetch_or(mask_bit(fd), Ordering::AcqRel);
    }
}

/// Forgets every descriptor in `first..=last` (closed, or replaced).
pub fn forget_range(first: i32, last: i32) {
    if !any() || crate::vfork::in_child() {
        return;
    }
    if first == last && quick_is_above(first) == Some(false) {
        return;
    }
    let Ok(mut paths) = PATHS.write() else { return };
    for (i, slot) in SLOT_FDS.iter().enumerate() {
        if (first..=last).contains(&slot.load(Ordering::Acquire)) {
            slot.store(-1, Ordering::Release);
            paths.slots[i] = Vec::new();
        }
    }
    let before = paths.more.len();
    paths.more.retain(|(f, _)| !(first..=last).contains(f));
    let gone = (before - paths.more.len()) as u32;
    MORE.fetch_sub(gone, Ordering::AcqRel);
    // Changes are made under the write lock: the mask is rebuilt whole.
    let slots = SLOT_FDS.iter().map(|s| s.load(Ordering::Acquire));
    let known = slots
        .filter(|&fd| fd >= 0)
        .chain(paths.more.iter().map(|&(fd, _)| fd));
    MASK.store(known.fold(0, |m, fd| m | mask_bit(fd)), Ordering::Release);
}

/// Forgets `fd`.
#[inline]
pub fn forget(fd: i32) {
    forget_range(fd, fd);
}

/// `new` is now a duplicate of `old`.
pub fn dup(old: i32, new: i32) {
    match path_of(old) {
        Some(path) => note(new, path),
        None => forget(new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Numbers no other test opens: the table is shared by the test threads.
    const A: i32 = 1_000_001;
    const B: i32 = 1_000_002;

    #[test]
    fn noted_duplicated_and_forgotten() {
        note(A, b"/tmp".to_vec());
        assert_eq!(path_of(A).as_deref(), Some(&b"/tmp"[..]));
        assert!(is_above(A));
        dup(A, B);
        assert_eq!(path_of(B).as_deref(), Some(&b"/tmp"[..]));
        note(A, b"/".to_vec());
        assert_eq!(
            path_of(A).as_deref(),
            Some(&b"/"[..]),
            "a new open replaces the old"
        );
        forget_range(A, B);
        assert!(!is_above(A) && !is_above(B));
        // More than the slots hold: the rest go to the list.
        for fd in 0..SLOTS as i32 + 3 {
            note(A + 10 + fd, format!("/d{fd}").into_bytes());
        }
        let last = A + 10 + SLOTS as i32 + 2;
        assert_eq!(path_of(last).as_deref(), Some(&b"/d18"[..]));
        assert_eq!(quick_is_above(last), None, "only the list can tell");
        forget_range(A + 10, last);
        assert_eq!(quick_is_above(last), Some(false));
        dup(A, B);
        assert!(
            !is_above(B),
            "a duplicate of an unknown descriptor is unknown"
        );
    }
}
