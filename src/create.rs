//! Creating names in the view: files, directories, nodes, symlinks, links.
//! New objects always land in the upper layer (its parents copied up first);
//! creating over a whiteout replaces it in one exchange, and a directory
//! made there is opaque, so nothing of the lower layers shows through it.

use crate::lookup::{join, Node};
use crate::overlay::Overlay;
use crate::whiteout::{is_whiteout, make_opaque};
use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;
use std::ffi::{CStr, CString};

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

    /// The upper path where `name` is created in `parent` (copied up first),
    /// and whether a whiteout stands there now.
    fn creation_site(&self, parent: &Node, name: &[u8]) -> Result<(CString, bool), Errno> {
        self.copy_up(parent, None)?;
        let dst = self.upper_path(&join(&parent.rel, name));
        let over_whiteout =
            rustix::fs::lstat(dst.as_c_str()).is_ok_and(|st| is_whiteout(&dst, &st));
        Ok((dst, over_whiteout))
    }

    /// Creates an object with `make` at `name` in `parent`: in place, or,
    /// over a whiteout, built in the work directory then exchanged with it.
    fn create_with(
        &self,
        parent: &Node,
        name: &[u8],
        opaque_if_over_whiteout: bool,
        make: impl FnOnce(&CStr) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        self.changing(opaque_if_over_whiteout, || {
            let (dst, over_whiteout) = self.creation_site(parent, name)?;
            if !over_whiteout {
                return make(&dst);
            }
            let tmp = self.work_temp()?;
            make(&tmp)?;
            if opaque_if_over_whiteout {
                if let Err(e) = make_opaque(self.xattr_ns, &tmp) {
                    crate::copy_up::remove_temp(&tmp, true);
                    return Err(e);
                }
            }
            self.replace_whiteout(&tmp, &dst)
        })
    }

    /// Puts the object at `tmp` (work directory) in place of the whiteout at
    /// `dst`, then removes the whiteout.
    fn replace_whiteout(&self, tmp: &CStr, dst: &CStr) -> Result<(), Errno> {
        if let Err(e) = crate::rename::exchange(tmp, dst) {
            let is_dir = rustix::fs::lstat(tmp)
                .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory);
            crate::copy_up::remove_temp(tmp, is_dir);
            return Err(e);
        }
        rustix::fs::unlinkat(CWD, tmp, AtFlags::empty())
    }

    /// Creates a regular file `name` in the directory `parent` (O_CREAT with
    /// the name absent from the view) and returns it opened with `flags`.
    pub fn create_file(
        &self,
        parent: &Node,
        name: &[u8],
        flags: i32,
        mode: u32,
    ) -> Result<OwnedFd, Errno> {
        let flags = OFlags::from_bits_retain((flags | libc::O_CREAT) as u32);
        let mode = Mode::from_raw_mode(mode);
        let mut fd = None;
        self.create_with(parent, name, false, |path| {
            fd = Some(rustix::fs::open(path, flags, mode)?);
            Ok(())
        })?;
        fd.ok_or(Errno::IO)
    }

    /// `mkdir` of a name absent from the view.
    pub fn mkdir(&self, parent: &Node, name: &[u8], mode: u32) -> Result<(), Errno> {
        self.create_with(parent, name, true, |p| {
            rustix::fs::mkdirat(CWD, p, Mode::from_raw_mode(mode))
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
        self.create_with(parent, name, false, |p| {
            if kind == FileType::RegularFile {
                let flags = OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC;
                rustix::fs::open(p, flags, Mode::from_raw_mode(mode & 0o7777)).map(drop)
            } else {
                rustix::fs::mknodat(CWD, p, kind, Mode::from_raw_mode(mode & 0o7777), dev)
            }
        })
    }

    /// `symlink(target, parent/name)` of a name absent from the view.
    pub fn symlink(&self, target: &[u8], parent: &Node, name: &[u8]) -> Result<(), Errno> {
        let target = crate::sys::cpath(target);
        self.create_with(parent, name, false, |p| {
            rustix::fs::symlinkat(target.as_c_str(), CWD, p)
        })
    }

    /// `link(existing, parent/name)`: the existing object is copied up first.
    pub fn link(&self, existing: &Node, parent: &Node, name: &[u8]) -> Result<(), Errno> {
        if existing.is_dir() {
            return Err(Errno::PERM);
        }
        let up = self.copy_up(existing, None)?;
        let from = self.upper_path(&up.rel);
        self.create_with(parent, name, false, |p| {
            rustix::fs::linkat(CWD, from.as_c_str(), CWD, p, AtFlags::empty())
        })
    }
}
