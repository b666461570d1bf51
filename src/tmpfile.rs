//! Unnamed files (`open(dir, O_TMPFILE)`) in directories of the view: made
//! in the directory's upper copy, as the kernel's overlayfs makes them
//! (never on a lower layer's file system), and given a name in the view by
//! `linkat`, from the descriptor (`AT_EMPTY_PATH`) or from its
//! `/proc/self/fd` link (`AT_SYMLINK_FOLLOW`).

use crate::lookup::Node;
use crate::overlay::Overlay;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, CWD};
use rustix::io::Errno;
use std::ffi::CStr;
use std::sync::Mutex;

/// The files this process made so (device, inode), the last `KEPT`: a
/// descriptor of one, or a duplicate, is known by its inode whatever its
/// number. (Programs name such a file soon after making it, if at all.)
static MADE: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
const KEPT: usize = 1024;

/// Does `open` with these flags ask for an unnamed file?
pub fn asks_unnamed(flags: i32) -> bool {
    flags & (libc::O_TMPFILE & !libc::O_DIRECTORY) != 0
}

/// Where a new name for an unnamed file is linked from.
pub enum LinkFrom<'a> {
    /// The descriptor itself (`linkat(fd, "", …, AT_EMPTY_PATH)`).
    Descriptor(BorrowedFd<'a>),
    /// Its magic link, followed (`/proc/self/fd/N`, `AT_SYMLINK_FOLLOW`).
    MagicLink(&'a CStr),
}

impl Overlay {
    /// Opens an unnamed file in the directory `dir` of the view: in its
    /// upper copy (made first).
    pub fn open_unnamed(&self, dir: &Node, flags: i32, mode: u32) -> Result<OwnedFd, Errno> {
        if flags & libc::O_CREAT != 0 || !crate::open::writes(flags) {
            return Err(Errno::INVAL); // as the kernel: O_TMPFILE is for writing, without O_CREAT
        }
        if !dir.is_dir() {
            return Err(Errno::NOTDIR);
        }
        if !self.has_upper {
            return Err(Errno::ROFS);
        }
        self.may_create_in(dir)?;
        let up = self.copy_up(dir, None)?;
        // The flags as given: `O_EXCL` keeps the file from ever being linked.
        let real = crate::sys::cpath(&self.real_path(up.layer, &up.rel));
        let fd = rustix::fs::open(
            real.as_c_str(),
            rustix::fs::OFlags::from_bits_retain(flags as u32),
            rustix::fs::Mode::from_raw_mode(mode),
        )?;
        let st = rustix::fs::fstat(&fd)?;
        if let Ok(mut made) = MADE.lock() {
            if made.len() == KEPT {
                made.remove(0);
            }
            made.push((st.st_dev, st.st_ino));
        }
        Ok(fd)
    }

    /// Gives the unnamed file behind `from` the name `name` in `parent`.
    pub fn link_unnamed(
        &self,
        from: LinkFrom<'_>,
        parent: &Node,
        name: &[u8],
    ) -> Result<(), Errno> {
        self.create_with(parent, name, false, false, |dir, p| match &from {
            LinkFrom::Descriptor(fd) => {
                rustix::fs::linkat(fd.as_fd(), c"", dir, p, AtFlags::EMPTY_PATH)
            }
            LinkFrom::MagicLink(link) => {
                rustix::fs::linkat(CWD, *link, dir, p, AtFlags::SYMLINK_FOLLOW)
            }
        })
    }
}

/// Is `fd` an unnamed file this process made in the view (or a duplicate
/// of one), named since or not?
pub fn made_unnamed(fd: i32) -> bool {
    if fd < 0 {
        return false;
    }
    // SAFETY: a descriptor number the caller passed; fstat only reads it.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let Ok(st) = rustix::fs::fstat(fd) else {
        return false;
    };
    MADE.lock()
        .is_ok_and(|made| made.contains(&(st.st_dev, st.st_ino)))
}

/// The descriptor a magic link of this process names: `/proc/self/fd/N`,
/// `/proc/PID/fd/N` with our own pid, or `/dev/fd/N`.
pub fn magic_link_fd(path: &[u8]) -> Option<i32> {
    let rest = path
        .strip_prefix(b"/proc/self/fd/")
        .or_else(|| path.strip_prefix(b"/dev/fd/"))
        .or_else(|| {
            let pid = rustix::process::getpid().as_raw_nonzero().get().to_string();
            path.strip_prefix(b"/proc/")?
                .strip_prefix(pid.as_bytes())?
                .strip_prefix(b"/fd/")
        })?;
    std::str::from_utf8(rest).ok()?.parse().ok()
}
