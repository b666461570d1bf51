//! Descriptors of the layers' roots, so that a look-up walks only the path
//! inside a layer (the kernel's walk of the root's own components is most
//! of a `stat`'s cost on a deep layer).
//!
//! They belong to the overlay, not to the program: they sit at high numbers,
//! and the program's `close`, `close_range`, `closefrom`, `dup2` and `dup3`
//! leave them alone (the shim asks here first; a `dup2` onto one moves it
//! away). Nor are they trusted blindly: a look-up through one that fails
//! with `EBADF` or `ENOTDIR`, or lands on another device, is made again by
//! path.

use crate::overlay::{Layer, Overlay};
use rustix::fd::{BorrowedFd, IntoRawFd};
use rustix::fs::{AtFlags, Mode, OFlags, Stat, CWD};
use rustix::io::Errno;
use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

/// The lowest number a layer descriptor takes: high enough to stay out of
/// the way of the numbers programs pick themselves, low enough not to grow
/// the process's descriptor table much. Asked once per process.
fn lowest_number() -> i32 {
    static LOWEST: OnceLock<i32> = OnceLock::new();
    *LOWEST.get_or_init(|| {
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(1 << 20);
        if soft >= 1024 {
            960
        } else {
            (soft / 2) as i32
        }
    })
}

/// Opens the directory `root` as a layer descriptor (moved to a high
/// number when it can be), with its `stat`.
pub(crate) fn open_layer_fd(root: &[u8]) -> Result<(i32, Stat), Errno> {
    let fd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    let fd = match rustix::io::fcntl_dupfd_cloexec(&fd, lowest_number()) {
        Ok(high) => {
            // Closed by rustix's system call: dropping std's `OwnedFd` would
            // call libc's `close`, which is the shim's own hook.
            // SAFETY: `fd` is ours, and given up here.
            unsafe { rustix::io::close(fd.into_raw_fd()) };
            high.into_raw_fd()
        }
        Err(_) => fd.into_raw_fd(),
    };
    // Ours, not inherited: never to be taken for a directory of the view.
    crate::fd_table::settle_fd(fd);
    Ok((fd, st))
}

/// `fstatat` made straight into `out`: rustix hands the `stat` back by
/// value, which costs a look-up a copy of it or two.
fn statat_into(
    fd: BorrowedFd<'_>,
    path: &CStr,
    flags: AtFlags,
    out: &mut MaybeUninit<Stat>,
) -> Result<(), Errno> {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        use rustix::fd::AsRawFd;
        crate::sys::syscall_keeping_errno(|| {
            // SAFETY: newfstatat reads the C string `path` and writes one
            // kernel `struct stat`, which `Stat` is on these targets, into
            // `out`. libc's `syscall` is not one of the shim's hooks.
            unsafe {
                libc::syscall(
                    libc::SYS_newfstatat,
                    fd.as_raw_fd(),
                    path.as_ptr(),
                    out.as_mut_ptr(),
                    flags.bits(),
                )
            }
        })
        .map(drop)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        out.write(rustix::fs::statat(fd, path, flags)?);
        Ok(())
    }
}

impl Layer {
    fn borrowed_fd(&self) -> Option<BorrowedFd<'_>> {
        if !crate::vfork::layer_fds_usable() {
            return None;
        }
        let fd = self.fd.load(Ordering::Acquire);
        // SAFETY: a layer descriptor stays open for the life of the process:
        // the program's closing calls skip it, a dup2 onto it moves it first.
        (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
    }

    /// `stat` of the layer's root: of its descriptor, which needs no walk
    /// of the root's path.
    pub(crate) fn root_stat(&self) -> Result<Stat, Errno> {
        if let Some(fd) = self.borrowed_fd() {
            match rustix::fs::fstat(fd) {
                Ok(st) if st.st_dev == self.dev => return Ok(st),
                Err(e) if e != Errno::BADF => return Err(e),
                _ => {} // a descriptor gone astray: by path
            }
        }
        rustix::fs::stat(self.root.as_slice())
    }

    /// `lstat` of `rel` (relative, not empty) in this layer.
    pub(crate) fn lstat(&self, rel: &CStr) -> Result<Stat, Errno> {
        let mut st = MaybeUninit::uninit();
        self.lstat_into(rel, &mut st).copied()
    }

    /// `lstat` of `rel` (relative, not empty) in this layer, made in `out`.
    pub(crate) fn lstat_into<'o>(
        &self,
        rel: &CStr,
        out: &'o mut MaybeUninit<Stat>,
    ) -> Result<&'o Stat, Errno> {
        if let Some(fd) = self.borrowed_fd() {
            match statat_into(fd, rel, AtFlags::SYMLINK_NOFOLLOW, out) {
                // SAFETY: the call succeeded: the kernel filled `out`.
                Ok(()) if unsafe { out.assume_init_ref() }.st_dev == self.dev => {
                    // SAFETY: as above.
                    return Ok(unsafe { out.assume_init_ref() });
                }
                Err(e) if e != Errno::BADF && e != Errno::NOTDIR => return Err(e),
                _ => {} // another device, or a descriptor gone astray: by path
            }
        }
        let st = rustix::fs::lstat(self.real_path(rel.to_bytes()).as_slice())?;
        Ok(out.write(st))
    }

    /// Makes the `*at` call `f` on `rel` (relative, not empty) in this
    /// layer: relative to the layer's descriptor, or, when that fails with
    /// `EBADF` or `ENOTDIR` (a descriptor gone astray, which also changed
    /// nothing), again by the real path. `f` may thus run twice.
    ///
    /// A change cannot check the device as `lstat` does; the descriptor is
    /// the layer's root as surely as its path is: the program's closing and
    /// duplicating calls leave it alone, and a program that makes raw system
    /// calls bypasses the overlay by path just as well.
    pub(crate) fn at<T>(
        &self,
        rel: &[u8],
        mut f: impl FnMut(BorrowedFd<'_>, &CStr) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        if let Some(fd) = self.borrowed_fd() {
            match f(fd, crate::sys::cpath(rel).as_c_str()) {
                Err(Errno::BADF) | Err(Errno::NOTDIR) => {}
                r => return r,
            }
        }
        f(CWD, crate::sys::cpath(&self.real_path(rel)).as_c_str())
    }
}

/// Only the layers of the stack have descriptors; the work directory is
/// reached by path.
impl Overlay {
    /// Is `fd` one of the overlay's own descriptors?
    pub fn is_own_fd(&self, fd: i32) -> bool {
        fd >= 0
            && self
                .layers
                .iter()
                .any(|l| l.fd.load(Ordering::Acquire) == fd)
    }

    /// Before the program makes `fd` a copy of another descriptor (`dup2`,
    /// `dup3`): a layer descriptor there moves to another number.
    pub fn vacate_fd(&self, fd: i32) {
        for layer in &self.layers {
            if layer.fd.load(Ordering::Acquire) != fd {
                continue;
            }
            if crate::vfork::in_child() {
                // The number is the parent's too: the child goes by path.
                crate::vfork::spoil_layer_fds();
                return;
            }
            // SAFETY: fd is the layer's open descriptor (see borrowed_fd).
            let current = unsafe { BorrowedFd::borrow_raw(fd) };
            let moved = rustix::io::fcntl_dupfd_cloexec(current, lowest_number())
                .map_or(-1, IntoRawFd::into_raw_fd);
            crate::fd_table::settle_fd(moved);
            layer.fd.store(moved, Ordering::Release);
        }
    }

    /// `[first, last]` without the overlay's own descriptors, as ranges.
    pub fn ranges_without_own_fds(&self, first: u32, last: u32) -> Vec<(u32, u32)> {
        let mut own: Vec<u32> = self
            .layers
            .iter()
            .map(|l| l.fd.load(Ordering::Acquire))
            .filter(|&fd| fd >= 0)
            .map(|fd| fd as u32)
            .filter(|fd| (first..=last).contains(fd))
            .collect();
        own.sort_unstable();
        let mut ranges = Vec::new();
        let mut from = first;
        for fd in own {
            if fd > from {
                ranges.push((from, fd - 1));
            }
            from = fd + 1;
        }
        if from <= last {
            ranges.push((from, last));
        }
        ranges
    }
}
