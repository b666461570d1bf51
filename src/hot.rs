//! What a hook's fast path reads on every call, kept on one cache line.
//! Between two calls the kernel's own work (a `stat` walks dentries and
//! inodes) pushes the overlay's state out of the first-level cache; a call a
//! program makes by the thousand then pays one miss here, not one for each
//! module's variable.

use crate::overlay::Overlay;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64};

/// Descriptors below this number are tracked by [`Hot::settled`].
pub(crate) const SETTLED_LIMIT: i32 = 1 << 16;

#[repr(C, align(128))]
pub(crate) struct Hot {
    /// The overlay once set up (null before, or when none is configured).
    pub overlay: AtomicPtr<Overlay>,
    /// One past the highest descriptor the view's table may hold (`locate`).
    pub fds_len: AtomicI32,
    /// The pid of a `vfork` child running on this memory (`vfork`).
    pub vfork_child: AtomicI32,
    /// Descriptors known as directories above the view, one bit per number
    /// modulo 64, and how many of them are beyond the lock-free slots
    /// (`above`).
    pub above_mask: AtomicU64,
    pub above_more: AtomicU32,
    /// One bit per descriptor, set once it is accounted for (`locate`); the
    /// first words, for the low numbers programs use, share the line.
    pub settled: [AtomicU64; (SETTLED_LIMIT / 64) as usize],
}

pub(crate) static HOT: Hot = Hot {
    overlay: AtomicPtr::new(std::ptr::null_mut()),
    fds_len: AtomicI32::new(0),
    vfork_child: AtomicI32::new(0),
    above_mask: AtomicU64::new(0),
    above_more: AtomicU32::new(0),
    settled: [const { AtomicU64::new(0) }; (SETTLED_LIMIT / 64) as usize],
};
