//! What a hook's fast path reads on every call, kept on one cache line.
//! Between two calls the kernel's own work (a `stat` walks dentries and
//! inodes) pushes the overlay's state out of the first-level cache; a call a
//! program makes by the thousand then pays one miss here, not one for each
//! module's variable.

use crate::overlay::Overlay;
use std::ffi::c_void;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64};

/// Descriptors below this number are tracked by [`Hot::settled`].
pub(crate) const SETTLED_LIMIT: i32 = 1 << 16;

/// How many hooks keep their libc function here ([`Hot::libc_fns`]).
pub const HOT_LIBC_FNS: usize = 2;

#[repr(C, align(128))]
pub struct Hot {
    /// The overlay once set up (null before, or when none is configured).
    pub(crate) overlay: AtomicPtr<Overlay>,
    /// One past the highest descriptor the view's table may hold (`fd_table`).
    pub(crate) fds_len: AtomicI32,
    /// The pid of a `vfork` child running on this memory (`vfork`).
    pub(crate) vfork_child: AtomicI32,
    /// Descriptors known as directories above the view, one bit per number
    /// modulo 64, and how many of them are beyond the lock-free slots
    /// (`above`).
    pub(crate) above_mask: AtomicU64,
    pub(crate) above_more: AtomicU32,
    /// How many merged directory streams are open (the shim's `readdir`).
    pub open_merged: AtomicU32,
    /// libc's own functions behind the hooks a tree walk calls once per
    /// name (`fstatat`, `readdir`): their quick path reads this line alone.
    pub libc_fns: [AtomicPtr<c_void>; HOT_LIBC_FNS],
    /// One bit per descriptor, set once it is accounted for (`fd_table`); the
    /// first words, for the low numbers programs use, share the line.
    pub(crate) settled: [AtomicU64; (SETTLED_LIMIT / 64) as usize],
}

// The quick tests read the first fields and the settled bits of descriptors
// 0-63: all on the first cache line.
const _: () = assert!(std::mem::offset_of!(Hot, settled) + 8 <= 64);

/// The one hot line, shared by the core and the shim's hooks.
pub static HOT: Hot = Hot {
    overlay: AtomicPtr::new(std::ptr::null_mut()),
    fds_len: AtomicI32::new(0),
    vfork_child: AtomicI32::new(0),
    above_mask: AtomicU64::new(0),
    above_more: AtomicU32::new(0),
    open_merged: AtomicU32::new(0),
    libc_fns: [const { AtomicPtr::new(std::ptr::null_mut()) }; HOT_LIBC_FNS],
    settled: [const { AtomicU64::new(0) }; (SETTLED_LIMIT / 64) as usize],
};
