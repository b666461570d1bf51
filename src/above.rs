//! Descriptors of directories above the view: the target's ancestors (`/`,
//! the target's parent, ...) opened outside the view. A name relative to one
//! may lead into the view (`openat(parent_fd, "view/x")`, as `find`, `du`
//! and `rm -r` walk a tree), so the real path of each is remembered and such
//! names are taken as absolute paths. Programs hold few of them (a walk
//! holds the chain from its start down to the view), so a short list does.

use crate::padded::Padded;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;

/// A descriptor and the real absolute path (lexically clean) of its directory.
type Entry = (i32, Vec<u8>);

static ABOVE: Padded<RwLock<Vec<Entry>>> = Padded(RwLock::new(Vec::new()));
/// Entries in [`ABOVE`]: while 0 (nearly always) no lock is taken.
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// Is `fd` known as a directory above the view? One load while none is.
#[inline]
pub fn is_above(fd: i32) -> bool {
    COUNT.load(Ordering::Acquire) != 0 && path_of(fd).is_some()
}

/// The real path of `fd`, when it is a directory above the view.
pub fn path_of(fd: i32) -> Option<Vec<u8>> {
    if COUNT.load(Ordering::Acquire) == 0 {
        return None;
    }
    if crate::vfork::in_child() && crate::vfork::touched_fd(fd) {
        return None; // changed by a vfork child: taken as it is
    }
    let list = ABOVE.read().ok()?;
    list.iter().find(|(f, _)| *f == fd).map(|(_, p)| p.clone())
}

/// Remembers that `fd` is the directory `path` above the view.
pub fn note(fd: i32, path: Vec<u8>) {
    if fd < 0 || crate::vfork::in_child() {
        return; // a vfork child's descriptors are taken as they are
    }
    if let Ok(mut list) = ABOVE.write() {
        list.retain(|(f, _)| *f != fd);
        list.push((fd, path));
        COUNT.store(list.len(), Ordering::Release);
    }
}

/// Forgets every descriptor in `first..=last` (closed, or replaced).
pub fn forget_range(first: i32, last: i32) {
    if COUNT.load(Ordering::Acquire) == 0 || crate::vfork::in_child() {
        return;
    }
    if let Ok(mut list) = ABOVE.write() {
        list.retain(|(f, _)| !(first..=last).contains(f));
        COUNT.store(list.len(), Ordering::Release);
    }
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
        dup(A, B);
        assert!(
            !is_above(B),
            "a duplicate of an unknown descriptor is unknown"
        );
    }
}
