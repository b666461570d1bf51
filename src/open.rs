//! Opening a path of the view: reads go to the layer that shows the object;
//! any write access (or `O_TRUNC`) copies a lower regular file up first (and
//! any open, a lower fifo), and `O_CREAT` of an absent name creates it in
//! upper.

use crate::fd_table::FdInfo;
use crate::lookup::{Node, ParentOf, Resolved, Slot};
use crate::overlay::Overlay;
use crate::sys::cpath;
use rustix::fd::OwnedFd;
use rustix::fs::{FileType, Mode, OFlags, CWD};
use rustix::io::Errno;

/// The result of opening a path.
pub enum Opened {
    /// An open descriptor, and what it refers to in the view.
    Fd(OwnedFd, Box<FdInfo>),
    /// The path leads out of the view: open this real path as it is.
    Outside(Vec<u8>),
    /// An unnamed file (`O_TMPFILE`) made in the upper copy of a directory
    /// of the view: a plain descriptor (see `tmpfile`).
    Unnamed(OwnedFd),
}

/// Does this `open` of `node` open a fifo's pipe (not just name it)?
fn opens_fifo(node: &Node, flags: i32) -> bool {
    node.file_type() == FileType::Fifo && flags & libc::O_PATH == 0
}

/// Does an open with `flags` follow a final symlink? Not with `O_NOFOLLOW`,
/// nor with `O_CREAT|O_EXCL` (a dangling link then fails with `EEXIST`).
pub fn follows_final_link(flags: i32) -> bool {
    let excl = flags & (libc::O_CREAT | libc::O_EXCL) == libc::O_CREAT | libc::O_EXCL;
    flags & libc::O_NOFOLLOW == 0 && !excl
}

/// May an open with `flags` of a lower object be made with `O_NOATIME`
/// added: it only reads (not `O_PATH`, which reads nothing), and the
/// program did not ask for the flag itself.
pub fn reads_unstamped(flags: i32) -> bool {
    !writes(flags) && flags & (libc::O_PATH | libc::O_NOATIME) == 0
}

/// Does `open` with these flags change the file?
pub fn writes(flags: i32) -> bool {
    // `O_PATH` leaves out every other flag but `O_DIRECTORY`, `O_NOFOLLOW`
    // and `O_CLOEXEC`: such a descriptor changes nothing.
    flags & libc::O_PATH == 0
        && (flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0)
}

/// What the overlay remembers of a regular file it just created at `rel`,
/// the layers' names being at `generation`.
fn new_file_info(rel: Vec<u8>, generation: u64) -> FdInfo {
    FdInfo {
        rel,
        merged: false,
        lower: false,
        node: None,
        generation: 0,
        copy_ups: 0,
        dir_copy_ups: 0,
        not_dir: true,
        rel_seen: generation,
        stream: false,
        unstamped: false,
    }
}

impl Overlay {
    /// Is `node` shown from a lower layer (so it must be copied up before a change)?
    pub fn is_lower(&self, node: &Node) -> bool {
        self.is_lower_layer(node.layer)
    }

    /// What the overlay remembers of a descriptor open on `node`.
    pub fn fd_info(&self, node: &Node) -> FdInfo {
        let dir = node.is_dir();
        FdInfo {
            rel: node.rel.clone(),
            merged: node.is_merged(),
            lower: self.is_lower(node),
            // Kept: its stat grows old, and is never an answer.
            node: dir.then(|| Node {
                fresh: false,
                ..node.clone()
            }),
            generation: if dir { self.generation() } else { 0 },
            copy_ups: 0,
            dir_copy_ups: self.dir_copy_ups(),
            not_dir: !dir,
            rel_seen: self.generation(),
            stream: false,
            unstamped: false,
        }
    }

    /// Where the symlink `node` points, as a path for `resolve`: absolute
    /// targets as they are, relative ones from the link's directory.
    fn link_target_path(&self, node: &Node) -> Result<Vec<u8>, Errno> {
        let real = cpath(&self.real_path(node.layer, &node.rel));
        let target =
            rustix::fs::readlinkat(rustix::fs::CWD, real.as_c_str(), Vec::new())?.into_bytes();
        if target.first() == Some(&b'/') {
            return Ok(target);
        }
        let (dir, _) = crate::lookup::split_last(&node.rel);
        Ok(crate::lookup::join(dir, &target))
    }

    /// Opens the object `node` itself with `flags`; a lower object that is
    /// only read, without stamping its access time where that may be asked
    /// (see [`crate::sys::open_unstamped`]). Also tells whether `O_NOATIME`
    /// was added.
    pub fn open_node(&self, node: &Node, flags: i32, mode: u32) -> Result<(OwnedFd, bool), Errno> {
        let real = cpath(&self.real_path(node.layer, &node.rel));
        let unstamped = self.is_lower(node) && reads_unstamped(flags);
        let flags = OFlags::from_bits_retain(flags as u32 & !(libc::O_CREAT | libc::O_EXCL) as u32);
        let mode = Mode::from_raw_mode(mode);
        if unstamped {
            let owner = Some(node.stat.st_uid);
            return crate::sys::open_unstamped(CWD, real.as_c_str(), flags, mode, owner);
        }
        rustix::fs::open(real.as_c_str(), flags, mode).map(|fd| (fd, false))
    }

    /// The read of a lower object that [`Overlay::open_as_given`] let
    /// through (`lower`: its answer's), made here without stamping the
    /// object's access time (see [`crate::sys::open_unstamped`]; the owner of
    /// the bottom layer's root is taken for the object's): the descriptor,
    /// and whether `O_NOATIME` was added. `None`: the caller opens it as
    /// given, as it asked.
    pub fn open_as_given_unstamped(
        &self,
        dirfd: i32,
        path: &std::ffi::CStr,
        flags: i32,
        lower: bool,
    ) -> Option<Result<(OwnedFd, bool), Errno>> {
        if !lower || !reads_unstamped(flags) {
            return None;
        }
        // SAFETY: the caller's open descriptor (or `AT_FDCWD`, which
        // `rustix::fs::CWD` is too), for this call only.
        let dir = unsafe { rustix::fd::BorrowedFd::borrow_raw(dirfd) };
        let flags = OFlags::from_bits_retain(flags as u32);
        let owner = self.bottom_owner();
        Some(crate::sys::open_unstamped(
            dir,
            path,
            flags,
            Mode::empty(),
            Some(owner),
        ))
    }

    /// `openat(dirfd, path, flags, mode)`; `None` when the path lies outside the view.
    pub fn open_at(
        &self,
        dirfd: i32,
        path: &[u8],
        flags: i32,
        mode: u32,
    ) -> Option<Result<Opened, Errno>> {
        if self.surely_outside(dirfd, path) {
            return None;
        }
        // Read before the look-up: a copy-up after it is seen at the first read.
        let copy_ups = self.copy_ups();
        let dir_copy_ups = self.dir_copy_ups();
        let opened = self.open_in_view(dirfd, path, flags, mode)?;
        Some(opened.map(|o| match o {
            Opened::Fd(fd, mut info) => {
                info.copy_ups = copy_ups;
                info.dir_copy_ups = dir_copy_ups;
                Opened::Fd(fd, info)
            }
            outside => outside,
        }))
    }

    /// `open_at` for a path that may lie in the view.
    fn open_in_view(
        &self,
        dirfd: i32,
        path: &[u8],
        flags: i32,
        mode: u32,
    ) -> Option<Result<Opened, Errno>> {
        let creat = flags & libc::O_CREAT != 0 && flags & libc::O_TMPFILE & !libc::O_DIRECTORY == 0;
        let excl = creat && flags & libc::O_EXCL != 0;
        let follow = flags & libc::O_NOFOLLOW == 0 && !excl;
        if creat {
            let parent = self.resolve_parent_at(dirfd, path)?;
            if flags & libc::O_DIRECTORY != 0 {
                return Some(Err(Errno::INVAL)); // as the kernel since 6.4
            }
            if crate::lookup::ends_in_slash(path) && matches!(parent, Ok(ParentOf::Inside(..))) {
                return Some(Err(Errno::ISDIR)); // as the kernel: O_CREAT never makes `x/`
            }
            return Some(parent.and_then(|p| self.open_creating(p, path, flags, mode)));
        }
        let r = self.resolve_at(dirfd, path, follow)?;
        Some(r.and_then(|r| match r {
            Resolved::Outside(p) => Ok(Opened::Outside(p)),
            Resolved::Inside(dir) if crate::tmpfile::asks_unnamed(flags) => {
                self.open_unnamed(&dir, flags, mode).map(Opened::Unnamed)
            }
            // Not a directory where one is asked for: refused before any
            // copy-up, as the kernel's look-up refuses it.
            Resolved::Inside(node)
                if !node.is_dir()
                    && (flags & libc::O_DIRECTORY != 0 || crate::lookup::ends_in_slash(path)) =>
            {
                Err(Errno::NOTDIR)
            }
            Resolved::Inside(node) => self.open_existing(node, flags, mode),
        }))
    }

    /// `open` with `O_CREAT`, once the parent is known.
    fn open_creating(
        &self,
        parent: ParentOf,
        path: &[u8],
        flags: i32,
        mode: u32,
    ) -> Result<Opened, Errno> {
        self.open_creating_via(parent, path, flags, mode, 0)
    }

    /// As `open_creating`, `links` symlinks deep: `O_CREAT` through a
    /// dangling symlink creates the file it points to, as the kernel does.
    fn open_creating_via(
        &self,
        parent: ParentOf,
        path: &[u8],
        flags: i32,
        mode: u32,
        links: u32,
    ) -> Result<Opened, Errno> {
        let excl = flags & libc::O_EXCL != 0;
        let follow = flags & libc::O_NOFOLLOW == 0 && !excl;
        let (parent, name) = match parent {
            ParentOf::Outside(p) => return Ok(Opened::Outside(p)),
            ParentOf::Special(..) if excl => return Err(Errno::EXIST),
            ParentOf::Special(node, _) => return self.open_found(node, flags, mode),
            ParentOf::Inside(parent, name) => (parent, name),
        };
        match self.lookup_slot(&parent, &name)? {
            Slot::Taken(_) if excl => Err(Errno::EXIST),
            Slot::Taken(node) if node.file_type() == FileType::Symlink && follow => {
                match self.resolve(&node.rel, true) {
                    Ok(Resolved::Outside(p)) => Ok(Opened::Outside(p)),
                    Ok(Resolved::Inside(n)) => self.open_found(n, flags, mode),
                    Err(Errno::NOENT) if links < crate::lookup::MAX_SYMLINKS => {
                        let target = self.link_target_path(&node)?;
                        let parent = self.resolve_parent(&target)?;
                        self.open_creating_via(parent, &target, flags, mode, links + 1)
                    }
                    Err(Errno::NOENT) => Err(Errno::LOOP),
                    Err(e) => Err(e),
                }
            }
            Slot::Taken(node) => match self.open_found(node, flags, mode) {
                // Removed since the look-up (its copy-up found the name
                // gone): made anew, as the kernel's open would have after
                // that removal (bounded, as for symlinks).
                Err(Errno::NOENT) if links < crate::lookup::MAX_SYMLINKS => {
                    let rel = crate::lookup::join(&parent.rel, &name);
                    let parent = self.resolve_parent(&rel)?;
                    self.open_creating_via(parent, path, flags, mode, links + 1)
                }
                r => r,
            },
            Slot::Free { whiteout } => {
                if !self.has_upper {
                    return Err(Errno::ROFS);
                }
                if path.ends_with(b"/") {
                    return Err(Errno::ISDIR);
                }
                let rel = crate::lookup::join(&parent.rel, &name);
                let generation = self.generation();
                match self.create_file(&parent, &name, whiteout, flags, mode) {
                    Ok(fd) => Ok(Opened::Fd(fd, Box::new(new_file_info(rel, generation)))),
                    // Taken since the look-up: open it as the view shows it
                    // now (a bounded number of times, as for symlinks).
                    Err(Errno::EXIST) if !excl && links < crate::lookup::MAX_SYMLINKS => {
                        let parent = self.resolve_parent(&rel)?;
                        self.open_creating_via(parent, path, flags, mode, links + 1)
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// `open(path, flags, mode)` in the view; `path` is relative to its root.
    pub fn open(&self, path: &[u8], flags: i32, mode: u32) -> Result<Opened, Errno> {
        let mut abs = self.virtual_path(b"");
        abs.push(b'/');
        abs.extend_from_slice(path);
        self.open_at(libc::AT_FDCWD, &abs, flags, mode)
            .unwrap_or(Err(Errno::XDEV))
    }

    /// An `O_CREAT` open that found `node` there: the kernel opens no
    /// directory so.
    fn open_found(&self, node: Node, flags: i32, mode: u32) -> Result<Opened, Errno> {
        if node.is_dir() {
            return Err(Errno::ISDIR);
        }
        self.open_existing(node, flags, mode)
    }

    fn open_existing(&self, node: Node, flags: i32, mode: u32) -> Result<Opened, Errno> {
        let node = if opens_fifo(&node, flags) && self.has_upper && self.is_lower(&node) {
            // A pipe's reads and writes stamp its fifo's times: on a lower
            // fifo they would change the lower layer (the kernel's overlay
            // runs the pipe on its own inode). Readers and writers must
            // meet on one inode: every open takes the copy.
            self.copy_up(&node, None)?
        } else if writes(flags) && node.file_type() == FileType::RegularFile && self.is_lower(&node)
        {
            if !self.has_upper {
                return Err(Errno::ROFS);
            }
            crate::permission::may_write(&self.object(&node))?;
            let keep = (flags & libc::O_TRUNC != 0).then_some(0);
            self.copy_up(&node, keep)?
        } else if writes(flags) && !self.has_upper && node.file_type() != FileType::Directory {
            // A read-only overlay refuses writes to every object but special files.
            if matches!(node.file_type(), FileType::RegularFile | FileType::Symlink) {
                return Err(Errno::ROFS);
            }
            node
        } else {
            node
        };
        let (fd, unstamped) = self.open_node(&node, flags, mode)?;
        let info = FdInfo {
            unstamped,
            ..self.fd_info(&node)
        };
        Ok(Opened::Fd(fd, Box::new(info)))
    }
}
