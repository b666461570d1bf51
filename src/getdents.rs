//! `getdents64` called by a program on a descriptor of a merged directory
//! (glibc's `readdir` reads with its own internal call; see the shim's
//! `dir.rs` for streams): the real directory under the descriptor is one
//! layer's, with its whiteouts and without the other layers' names, so the
//! records come from the merged listing instead, as the kernel's overlayfs
//! gives them. The listing is taken when the descriptor reads from its
//! start (first read, or after a seek to 0), as the kernel builds its cache
//! of a merged directory (`ovl_iterate`, `ovl_dir_reset`); a descriptor
//! that had read its real directory past the start goes on there. Its
//! position is a record's place in the listing (each record's `d_off` names
//! the next), shared by duplicates as an open file's offset is.

use crate::fd_table::with_fd_info;
use crate::listing::Listing;
use crate::lookup::Resolved;
use crate::overlay::Overlay;
use rustix::io::Errno;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Where a descriptor reads its merged directory.
struct Cursor {
    /// The directory's path in the view, when the descriptor started reading.
    rel: Vec<u8>,
    /// Taken at the first read from the start; `None` until then.
    listing: Option<Listing>,
    /// Byte offset of the next record in `listing`.
    pos: usize,
}

/// Descriptors read through their merged listing, with their cursors (an
/// open file's: duplicates share one).
static LISTED: Mutex<Vec<(i32, Arc<Mutex<Cursor>>)>> = Mutex::new(Vec::new());

/// Number of entries in [`LISTED`]: zero means no descriptor is read so,
/// and `lseek`, `close` and `dup` need not look.
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// Is any descriptor read through its merged listing (one load)?
#[inline]
pub fn any_listed() -> bool {
    COUNT.load(Ordering::Acquire) != 0
}

fn cursor_of(fd: i32) -> Option<Arc<Mutex<Cursor>>> {
    if !any_listed() {
        return None;
    }
    let listed = LISTED.lock().ok()?;
    listed
        .iter()
        .find(|(f, _)| *f == fd)
        .map(|(_, c)| c.clone())
}

fn set_cursor(fd: i32, cursor: Option<Arc<Mutex<Cursor>>>) {
    let Ok(mut listed) = LISTED.lock() else {
        return;
    };
    listed.retain(|(f, _)| *f != fd);
    if let Some(c) = cursor {
        listed.push((fd, c));
    }
    COUNT.store(listed.len(), Ordering::Release);
}

/// `fd` was closed (or replaced): it no longer reads a listing.
pub fn forget(fd: i32) {
    if any_listed() {
        set_cursor(fd, None);
    }
}

/// `newfd` is a duplicate of `oldfd`: it shares its cursor, if any.
pub fn dup(oldfd: i32, newfd: i32) {
    if any_listed() {
        set_cursor(newfd, cursor_of(oldfd));
    }
}

/// An `lseek` of `fd` when it reads its merged listing (`None`: it does
/// not, and the real call stands). As the kernel's overlayfs seeks in a
/// merged directory: from the start or from the current place only, and a
/// seek to 0 takes the listing anew at the next read.
pub fn seek(fd: i32, at: i64, whence: i32) -> Option<Result<i64, Errno>> {
    let cursor = cursor_of(fd)?;
    let mut c = cursor.lock().ok()?;
    let to = match whence {
        libc::SEEK_SET => at,
        libc::SEEK_CUR => (c.pos as i64).checked_add(at).unwrap_or(-1),
        _ => return Some(Err(Errno::INVAL)),
    };
    if to < 0 {
        return Some(Err(Errno::INVAL));
    }
    if to == 0 {
        c.listing = None;
    }
    c.pos = to as usize;
    Some(Ok(to))
}

impl Overlay {
    /// `getdents64` of `fd` into a buffer of `room` bytes, when `fd` reads
    /// a merged directory: `fill` is given the whole records that fit, and
    /// their length is the result (0 at the end; `EINVAL` when the next
    /// record does not fit, as the kernel answers). `None`: the real call
    /// stands (not a merged directory, or one read past its start already).
    pub fn getdents(
        &self,
        fd: i32,
        room: usize,
        fill: impl FnOnce(&[u8]),
    ) -> Option<Result<usize, Errno>> {
        if crate::vfork::in_child() {
            return None;
        }
        let cursor = match cursor_of(fd) {
            Some(c) => c,
            None => self.start_listing(fd)?,
        };
        let mut c = cursor.lock().ok()?;
        if c.listing.is_none() {
            match self.listing_of_fd(fd, &c.rel) {
                Ok(l) => c.listing = Some(l),
                Err(e) => return Some(Err(e)),
            }
        }
        let listing = c.listing.as_ref()?;
        let start = c.pos;
        let mut end = start;
        while let Some((_, next)) = listing.dirent_at(end) {
            if next - start > room {
                break;
            }
            end = next;
        }
        if end == start {
            // Nothing fits: at the end, or the next record is too long.
            return Some(match listing.dirent_at(start) {
                Some(_) => Err(Errno::INVAL),
                None => Ok(0),
            });
        }
        fill(&listing.bytes()[start..end]);
        c.pos = end;
        Some(Ok(end - start))
    }

    /// A cursor for `fd` when it is a descriptor of a merged directory (or
    /// of one removed since) at its start; `None` otherwise.
    fn start_listing(&self, fd: i32) -> Option<Arc<Mutex<Cursor>>> {
        let rel = with_fd_info(fd, |info| {
            info.filter(|i| !i.not_dir).map(|i| i.rel.clone())
        })?;
        let merged = self.fd_dir_is_gone(fd)
            || matches!(self.resolve(&rel, false), Ok(Resolved::Inside(n)) if n.is_dir() && n.is_merged());
        if !merged {
            return None;
        }
        // SAFETY: `fd` is the caller's open descriptor, for this call only.
        let borrowed = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
        if rustix::fs::seek(borrowed, rustix::fs::SeekFrom::Current(0)) != Ok(0) {
            return None; // read past its start: it goes on where it is
        }
        let cursor = Arc::new(Mutex::new(Cursor {
            rel,
            listing: None,
            pos: 0,
        }));
        set_cursor(fd, Some(cursor.clone()));
        Some(cursor)
    }

    /// The merged listing of the directory at `rel` that `fd` is open on:
    /// nothing once it has been removed (whatever has its name now).
    pub fn listing_of_fd(&self, fd: i32, rel: &[u8]) -> Result<Listing, Errno> {
        if self.fd_dir_is_gone(fd) {
            return Ok(Listing::new());
        }
        match self.resolve(rel, false)? {
            Resolved::Inside(node) if node.is_dir() => self.merged_listing(&node),
            Resolved::Inside(_) => Err(Errno::NOTDIR),
            Resolved::Outside(_) => Err(Errno::NOENT),
        }
    }
}
