//! The overlay's change counter, shared by every process of one overlay.
//!
//! Like the kernel, ovl requires that nobody changes the layers behind the
//! overlay's back (lower layers never change at all). Then the only changes
//! to the layers' names are the ones ovl makes itself, and each of those
//! bumps this counter, kept in a page of the work directory mapped by every
//! process of the overlay. A process may keep what it learned of the layers'
//! directories for as long as the counter has not moved: checking costs one
//! memory load, not a system call.

use crate::overlay::Overlay;
use rustix::fs::{Mode, OFlags};
use rustix::mm::{MapFlags, ProtFlags};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Name of the counter's file in the work directory.
pub const FILE_NAME: &str = "ovl-generation";

/// The value reported when no counter could be mapped: nothing may be kept.
pub const UNCACHEABLE: u64 = u64::MAX;

enum Counter {
    /// No upper layer: nothing ever changes.
    Frozen,
    /// The shared page.
    Shared(&'static AtomicU64),
    /// The page could not be mapped: nothing is kept.
    Unavailable,
}

static COUNTER: OnceLock<Counter> = OnceLock::new();

fn map_counter(ovl: &Overlay) -> Counter {
    let Some(work) = &ovl.work else {
        return Counter::Frozen;
    };
    let path = work.real_path(FILE_NAME.as_bytes());
    let fd = match rustix::fs::open(
        path.as_slice(),
        OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o600),
    ) {
        Ok(fd) => fd,
        Err(_) => return Counter::Unavailable,
    };
    let page = 4096;
    match rustix::fs::fstat(&fd) {
        Ok(st) if st.st_size >= 8 => {}
        Ok(_) => {
            if rustix::fs::ftruncate(&fd, page).is_err() {
                return Counter::Unavailable;
            }
        }
        Err(_) => return Counter::Unavailable,
    }
    // SAFETY: a fresh shared mapping of a file we hold open; it is never
    // unmapped, so the reference below lives as long as the process.
    let p = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            page as usize,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
            &fd,
            0,
        )
    };
    match p {
        // SAFETY: the mapping is page-aligned, at least 8 bytes, and lives
        // for the rest of the process; AtomicU64 has u64's layout.
        Ok(p) => Counter::Shared(unsafe { &*(p as *const AtomicU64) }),
        Err(_) => Counter::Unavailable,
    }
}

impl Overlay {
    fn counter(&self) -> &Counter {
        COUNTER.get_or_init(|| map_counter(self))
    }

    /// The current generation of the layers' names.
    #[inline]
    pub fn generation(&self) -> u64 {
        match self.counter() {
            Counter::Frozen => 0,
            Counter::Shared(c) => c.load(Ordering::Acquire),
            Counter::Unavailable => UNCACHEABLE,
        }
    }

    /// Records a change to the layers' names (call before and after it).
    pub fn changed(&self) {
        if let Counter::Shared(c) = self.counter() {
            c.fetch_add(1, Ordering::AcqRel);
        }
    }
}
