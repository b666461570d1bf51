//! The overlay's change counters, shared by every process of one overlay.
//!
//! Like the kernel, ovl requires that nobody changes the layers behind the
//! overlay's back (lower layers never change at all). Then the only changes
//! to the layers' names are the ones ovl makes itself, and each of those
//! bumps a counter kept in a page of the work directory mapped by every
//! process of the overlay. A process may keep what it learned of the layers'
//! directories for as long as the counter has not moved: checking costs one
//! memory load, not a system call. A second counter, beside it, counts the
//! copy-ups of regular files: a descriptor reading a lower file checks it
//! before each read, to follow a copy-up made by another process; the page
//! also keeps the last copy-ups' records (which lower file became which
//! upper one), so a name that was replaced is not taken for a copy. A third
//! counts the copy-ups of directories: a directory stream opened while its
//! directory was in one lower layer checks it when it starts reading.

use crate::overlay::Overlay;
use rustix::fs::{Mode, OFlags};
use rustix::mm::{MapFlags, ProtFlags};
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::OnceLock;

/// Name of the counter's file in the work directory.
pub const FILE_NAME: &str = "ovl-generation";

/// The value reported when no counter could be mapped: nothing may be kept.
pub const UNCACHEABLE: u64 = u64::MAX;

/// How many copy-ups the shared page remembers (it fills one page).
const RECORDS: usize = 254;

/// The shared page.
#[repr(C)]
struct Counters {
    /// Changes to the layers' names.
    names: AtomicU64,
    /// Copy-ups of regular files.
    copy_ups: AtomicU64,
    /// Where the next copy-up's record goes (modulo [`RECORDS`]).
    next_record: AtomicU64,
    /// The last copy-ups: the lower file ([`file_key`]) and its copy's inode.
    records: [[AtomicU64; 2]; RECORDS],
    /// Copy-ups of directories (the page's last word: a page written before
    /// it was added holds zero there).
    dir_copy_ups: AtomicU64,
}

// The page holds the counters whole.
const _: () = assert!(std::mem::size_of::<Counters>() <= 4096);

/// One number for a file of a lower layer at one name (`rel`, its path in
/// the view, which a lower file keeps): its device, inode and name. Each
/// name of a lower file with hard links is copied up apart, as by the
/// kernel without its index: the copy of one name is not the other's.
pub fn file_key(dev: u64, ino: u64, rel: &[u8]) -> u64 {
    // FNV-1a of the name.
    let name = rel.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    ino ^ dev.rotate_left(32) ^ name
}

enum Counter {
    /// No upper layer: nothing ever changes.
    Frozen,
    /// The shared page.
    Shared(&'static Counters),
    /// The page could not be mapped: nothing is kept.
    Unavailable,
}

static COUNTER: OnceLock<Counter> = OnceLock::new();

/// The count of copy-ups once [`COUNTER`] is set up (null before, and when
/// it cannot be mapped), for [`copy_ups_now`] to read with no call.
static COPY_UPS: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());
/// The count of directory copy-ups, as [`COPY_UPS`], for [`dir_copy_ups_now`].
static DIR_COPY_UPS: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());
/// The count of copy-ups of an overlay without an upper layer.
static NO_COPY_UPS: AtomicU64 = AtomicU64::new(0);

/// The count of copy-ups if this process has looked at it already, else
/// [`UNCACHEABLE`]: one load, no call (for a hook's quick test).
#[inline(always)]
pub fn copy_ups_now() -> u64 {
    // SAFETY: when set, the pointer is to a counter that lives as long as
    // the process (the shared page is never unmapped).
    match unsafe { COPY_UPS.load(Ordering::Acquire).as_ref() } {
        Some(c) => c.load(Ordering::Acquire),
        None => UNCACHEABLE,
    }
}

/// The count of directory copy-ups if this process has looked at it
/// already, else [`UNCACHEABLE`]: one load, no call (for a hook's quick test).
#[inline(always)]
pub fn dir_copy_ups_now() -> u64 {
    // SAFETY: as in `copy_ups_now`.
    match unsafe { DIR_COPY_UPS.load(Ordering::Acquire).as_ref() } {
        Some(c) => c.load(Ordering::Acquire),
        None => UNCACHEABLE,
    }
}

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
        Ok(st) if st.st_size >= std::mem::size_of::<Counters>() as i64 => {}
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
        // SAFETY: the mapping is page-aligned, as long as the file (at
        // least `Counters`' size, which a page holds), and lives for the
        // rest of the process; AtomicU64 has u64's layout.
        Ok(p) => Counter::Shared(unsafe { &*(p as *const Counters) }),
        Err(_) => Counter::Unavailable,
    }
}

impl Overlay {
    fn counter(&self) -> &Counter {
        COUNTER.get_or_init(|| {
            let counter = map_counter(self);
            let (copy_ups, dir_copy_ups) = match &counter {
                Counter::Frozen => (&NO_COPY_UPS, &NO_COPY_UPS),
                Counter::Shared(c) => (&c.copy_ups, &c.dir_copy_ups),
                Counter::Unavailable => return counter,
            };
            COPY_UPS.store(std::ptr::from_ref(copy_ups).cast_mut(), Ordering::Release);
            DIR_COPY_UPS.store(
                std::ptr::from_ref(dir_copy_ups).cast_mut(),
                Ordering::Release,
            );
            counter
        })
    }

    /// The current generation of the layers' names.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.count(|c| &c.names)
    }

    /// Records a change to the layers' names (call before and after it).
    pub fn changed(&self) {
        self.bump(|c| &c.names);
    }

    /// How many regular files have been copied up so far ([`UNCACHEABLE`]
    /// when no process can tell: every reader looks every time).
    #[inline]
    pub fn copy_ups(&self) -> u64 {
        self.count(|c| &c.copy_ups)
    }

    /// How many directories have been copied up so far ([`UNCACHEABLE`]
    /// when no process can tell): a stream opened on a directory of one
    /// lower layer compares it when it starts reading (see the shim's
    /// `dir.rs`).
    #[inline]
    pub fn dir_copy_ups(&self) -> u64 {
        self.count(|c| &c.dir_copy_ups)
    }

    /// Records a copy-up of a directory (once its copy is in place).
    pub fn dir_copied_up(&self) {
        self.bump(|c| &c.dir_copy_ups);
    }

    /// Records a copy-up of a regular file (once its copy is in place): the
    /// lower file ([`file_key`]) and the inode of its copy.
    pub fn copied_up(&self, lower: u64, copy_ino: u64) {
        if let Counter::Shared(c) = self.counter() {
            let slot = c.next_record.fetch_add(1, Ordering::AcqRel) as usize % RECORDS;
            c.records[slot][0].store(lower, Ordering::Release);
            c.records[slot][1].store(copy_ino, Ordering::Release);
        }
        self.bump(|c| &c.copy_ups);
    }

    /// The [`file_key`] of the lower file `fd` is open on (`st`, its
    /// `fstat`), by the name its real path gives.
    pub(crate) fn fd_file_key(&self, fd: i32, st: &rustix::fs::Stat) -> Option<u64> {
        let real = crate::sys::real_path_of_fd(fd)?;
        let rel = self.real_to_rel(&real)?;
        Some(file_key(st.st_dev, st.st_ino, rel))
    }

    /// Is the upper file of inode `copy_ino` a copy of the lower file
    /// `lower` ([`file_key`]), by one of the last copy-ups? (`false` also
    /// when that copy-up's record was overwritten since.)
    pub fn is_copy_of(&self, lower: u64, copy_ino: u64) -> bool {
        match self.counter() {
            Counter::Shared(c) => c.records.iter().any(|r| {
                r[0].load(Ordering::Acquire) == lower && r[1].load(Ordering::Acquire) == copy_ino
            }),
            _ => false,
        }
    }

    /// One counter's value: 0 without an upper layer (nothing changes),
    /// [`UNCACHEABLE`] without the shared page.
    #[inline]
    fn count(&self, which: fn(&Counters) -> &AtomicU64) -> u64 {
        match self.counter() {
            Counter::Frozen => 0,
            Counter::Shared(c) => which(c).load(Ordering::Acquire),
            Counter::Unavailable => UNCACHEABLE,
        }
    }

    fn bump(&self, which: fn(&Counters) -> &AtomicU64) {
        if let Counter::Shared(c) = self.counter() {
            which(c).fetch_add(1, Ordering::AcqRel);
        }
    }
}
