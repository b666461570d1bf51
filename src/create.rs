//! Creating names in the view: files, directories, nodes, symlinks, links,
//! Unix sockets' files.
//! New objects always land in the upper layer (its parents copied up first);
//! creating over a whiteout replaces it in one exchange, and a directory
//! made there is opaque, so nothing of the lower layers shows through it
//! (or, where the process may not mark it, holds a whiteout of each name
//! the lower layers show there).

use crate::lookup::{join, Node};
use crate::overlay::{Overlay, UPPER};
use crate::sys::cpath;
use crate::whiteout::is_whiteout;
use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;
use std::ffi::CStr;

impl Overlay {
    /// Runs a change of the layers' names. When it changes what directories
    /// are (which layers hold one, whether it is opaque, whether it exists:
    /// what processes may remember, see `generation`), every process of the
    /// overlay is told before and after. Files coming and going change no
    /// such fact: their names are always looked up afresh.
    pub(crate) fn changing<T>(
        &self,
        dirs_change: bool,
        f: impl FnOnce() -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        if !self.has_upper {
            return Err(Errno::ROFS);
        }
        if dirs_change {
            self.changed();
        }
        let r = f();
        if dirs_change {
            self.changed();
        }
        r
    }

    /// Creates an object with `make` at `name` in `parent` (copied up
    /// first). `make` is given a directory and a path in it, and must fail
    /// with `EEXIST` when the name is taken there. The object is made in
    /// place, or, over a whiteout (the one the caller's look-up saw, when
    /// `over_whiteout`, or one found at the name), built in the work
    /// directory then exchanged with it. A `parent` still lower-only is
    /// checked first, as the kernel checks it (`may_create`).
    pub(crate) fn create_with(
        &self,
        parent: &Node,
        name: &[u8],
        over_whiteout: bool,
        opaque_if_over_whiteout: bool,
        mut make: impl FnMut(BorrowedFd<'_>, &CStr) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        if self.has_upper {
            self.may_create_in(parent)?;
        }
        self.changing(opaque_if_over_whiteout, || {
            self.copy_up(parent, None)?;
            let rel = join(&parent.rel, name);
            // An exclusive creation needs no look before it: whatever took
            // the name since the caller's look-up makes it fail.
            if !over_whiteout {
                match self.layers[UPPER].at(&rel, &mut make) {
                    Err(Errno::EXIST) if self.upper_whiteout(&rel) => {}
                    r => return r,
                }
            }
            let tmp = self.work_temp(crate::copy_up::Temp::New)?;
            make(CWD, &tmp)?;
            // Only `mkdir` makes a directory (and marks it).
            let own_mode = opaque_if_over_whiteout
                .then(|| crate::copy_up::owner_may_write(&tmp))
                .flatten();
            if opaque_if_over_whiteout {
                if let Err(e) = self.make_opaque_or_hide_lower(&tmp, parent, name) {
                    crate::copy_up::remove_temp(&tmp, true);
                    return Err(e);
                }
            }
            let dst = self.upper_path(&rel);
            self.replace_whiteout(&tmp, &dst)?;
            if let Some(mode) = own_mode {
                let _ = rustix::fs::chmodat(CWD, dst.as_c_str(), mode, AtFlags::empty());
            }
            Ok(())
        })
    }

    /// Is there a whiteout at `rel` in the upper layer?
    fn upper_whiteout(&self, rel: &[u8]) -> bool {
        self.layers[UPPER]
            .lstat(&cpath(rel))
            .is_ok_and(|st| is_whiteout(&self.upper_path(rel), &st))
    }

    /// Puts the object at `tmp` (work directory) in place of the whiteout at
    /// `dst`, then removes the whiteout. `EEXIST` when another process took
    /// the name since it was seen a whiteout: the name keeps its object, as
    /// the kernel's creation would have failed had it run then.
    fn replace_whiteout(&self, tmp: &CStr, dst: &CStr) -> Result<(), Errno> {
        let swapped = crate::rename::exchange_if(tmp, dst, is_whiteout);
        if let Err(e) = swapped {
            // Ours (a file or a directory), or what it displaced: removed
            // whatever its type.
            crate::copy_up::remove_temp(tmp, false);
            return Err(if e == Errno::STALE { Errno::EXIST } else { e });
        }
        rustix::fs::unlinkat(CWD, tmp, AtFlags::empty())
    }

    /// Creates a regular file `name` in the directory `parent` (O_CREAT with
    /// the name absent from the view; `over_whiteout` as the look-up found)
    /// and returns it opened with `flags`. `EEXIST` when the name was taken
    /// since the look-up, even without `O_EXCL` in `flags`: the caller looks
    /// again rather than open what took it.
    pub fn create_file(
        &self,
        parent: &Node,
        name: &[u8],
        over_whiteout: bool,
        flags: i32,
        mode: u32,
    ) -> Result<OwnedFd, Errno> {
        let flags = OFlags::from_bits_retain((flags | libc::O_CREAT | libc::O_EXCL) as u32);
        let mode = Mode::from_raw_mode(mode);
        let mut fd = None;
        self.create_with(parent, name, over_whiteout, false, |dir, path| {
            fd = Some(rustix::fs::openat(dir, path, flags, mode)?);
            Ok(())
        })?;
        fd.ok_or(Errno::IO)
    }

    /// `mkdir` of a name absent from the view.
    pub fn mkdir(&self, parent: &Node, name: &[u8], mode: u32) -> Result<(), Errno> {
        self.create_with(parent, name, false, true, |dir, p| {
            rustix::fs::mkdirat(dir, p, Mode::from_raw_mode(mode))
        })
    }

    /// `mknod` (fifos, sockets, devices) of a name absent from the view.
    pub fn mknod(&self, parent: &Node, name: &[u8], mode: u32, dev: u64) -> Result<(), Errno> {
        let kind = match mode & libc::S_IFMT {
            0 => FileType::RegularFile,
            t => FileType::from_raw_mode(t),
        };
        if kind == FileType::Directory || kind == FileType::Symlink {
            return Err(Errno::INVAL);
        }
        if kind == FileType::CharacterDevice && dev == 0 {
            // A whiteout's device: it would hide a lower object. The
            // kernel's overlayfs refuses to make one through the view.
            return Err(Errno::PERM);
        }
        let perm = Mode::from_raw_mode(mode & 0o7777);
        self.create_with(parent, name, false, false, |dir, p| {
            if kind == FileType::RegularFile {
                let flags = OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC;
                rustix::fs::openat(dir, p, flags, perm).map(drop)
            } else {
                rustix::fs::mknodat(dir, p, kind, perm, dev)
            }
        })
    }

    /// `bind` of the Unix socket `sock` to a name absent from the view: its
    /// socket file is made in upper like any other node. `EADDRINUSE` when
    /// the name is taken, as the kernel's `bind` says.
    pub fn bind_unix(&self, parent: &Node, name: &[u8], sock: BorrowedFd<'_>) -> Result<(), Errno> {
        let r = self.create_with(parent, name, false, false, |dir, p| {
            let (path, _dir_kept_open) = crate::sys::socket_path_at(dir, p)?;
            let addr = rustix::net::SocketAddrUnix::new(path.as_c_str())?;
            // create_with asks for EEXIST when the name is taken.
            rustix::net::bind(sock, &addr).map_err(|e| match e {
                Errno::ADDRINUSE => Errno::EXIST,
                e => e,
            })
        });
        r.map_err(|e| match e {
            Errno::EXIST => Errno::ADDRINUSE,
            e => e,
        })
    }

    /// `symlink(target, parent/name)` of a name absent from the view.
    pub fn symlink(&self, target: &[u8], parent: &Node, name: &[u8]) -> Result<(), Errno> {
        let target = crate::sys::cpath(target);
        self.create_with(parent, name, false, false, |dir, p| {
            rustix::fs::symlinkat(target.as_c_str(), dir, p)
        })
    }

    /// `link(existing, parent/name)`: the existing object is copied up first
    /// (once the kernel's checks pass: `may_linkat`, `may_create`).
    pub fn link(&self, existing: &Node, parent: &Node, name: &[u8]) -> Result<(), Errno> {
        if self.is_lower(existing) {
            crate::permission::may_link(&self.object(existing))?;
        }
        self.may_create_in(parent)?;
        if existing.is_dir() {
            return Err(Errno::PERM);
        }
        let up = self.copy_up(existing, None)?;
        let from = self.upper_path(&up.rel);
        // What is linked is the object looked up, through a descriptor of
        // it: another process may have removed it since, and a link by name
        // would then link its whiteout (hiding the lower object of the new
        // name, or leaving an entry the kernel lists and cannot open).
        let object = open_if_same(&from, &up.stat)?;
        self.create_with(parent, name, false, false, |dir, p| {
            // The parent's upper copy exists by now.
            self.moving_into(existing, &from, &parent.rel);
            link_object(&object, dir, p)
        })
    }
}

/// An `O_PATH` descriptor of what the upper name `path` holds, if that is
/// still `expected` (same device and inode); `ENOENT` otherwise, as if the
/// other process's change had come before this call.
fn open_if_same(path: &CStr, expected: &rustix::fs::Stat) -> Result<OwnedFd, Errno> {
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path, flags, Mode::empty())?;
    let st = rustix::fs::fstat(&fd)?;
    if (st.st_dev, st.st_ino) != (expected.st_dev, expected.st_ino) {
        return Err(Errno::NOENT);
    }
    Ok(fd)
}

/// Links the object behind `fd` as `p` in `dir`: from the descriptor
/// (`AT_EMPTY_PATH`, which the kernel allows with `CAP_DAC_READ_SEARCH`),
/// else from its magic link. `ENOENT` once the object has no name left.
fn link_object(fd: &OwnedFd, dir: BorrowedFd<'_>, p: &CStr) -> Result<(), Errno> {
    match rustix::fs::linkat(fd, c"", dir, p, AtFlags::EMPTY_PATH) {
        Err(Errno::NOENT) if rustix::fs::fstat(fd).is_ok_and(|st| st.st_nlink > 0) => {
            let link =
                cpath(format!("/proc/self/fd/{}", rustix::fd::AsRawFd::as_raw_fd(fd)).as_bytes());
            rustix::fs::linkat(CWD, link.as_c_str(), dir, p, AtFlags::SYMLINK_FOLLOW)
        }
        r => r,
    }
}
