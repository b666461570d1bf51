//! The lower layers never change, whatever a program does: a path outside
//! the view can still reach a lower layer's own tree (by its real name, by a
//! symlink, or through `/proc/self/fd`). Such paths are found here, before a
//! change is made through them.

use crate::overlay::{strip_dir, Overlay};
use rustix::fd::{AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags, CWD};
use rustix::io::Errno;

/// Where a path outside the view really lies, when that is in a layer.
pub struct InLayer {
    /// The same object's path in the view.
    pub rel: Vec<u8>,
    /// It lies in a lower layer.
    pub lower: bool,
}

impl Overlay {
    /// Where `(dirfd, path)` really leads (following a final symlink when
    /// `follow`), when that is inside one of the layers. For a name that does
    /// not exist yet, its directory decides (a dangling symlink's: where it
    /// leads). `Err`: it could not be told (out of descriptors, say), and
    /// the change must not be made.
    pub fn real_in_layers(
        &self,
        dirfd: i32,
        path: &[u8],
        follow: bool,
    ) -> Result<Option<InLayer>, Errno> {
        self.real_in_layers_after(dirfd, path, follow, 0)
    }

    /// [`Overlay::real_in_layers`], `links` dangling symlinks followed so far.
    fn real_in_layers_after(
        &self,
        dirfd: i32,
        path: &[u8],
        follow: bool,
        links: u32,
    ) -> Result<Option<InLayer>, Errno> {
        if path.is_empty() {
            return Ok(None);
        }
        let trimmed = path.strip_suffix(b"/").unwrap_or(path);
        let (dir, name) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(0) => (&b"/"[..], &trimmed[1..]),
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => (&b"."[..], trimmed),
        };
        if let Some(real) = lexical_real_path(path, follow) {
            let name = real.is_none().then(|| name.to_vec());
            return Ok(self.in_layer(real.unwrap_or(dir), name));
        }
        let open = |p: &[u8], extra: OFlags| open_path_at(dirfd, p, extra);
        let nofollow = if follow {
            OFlags::empty()
        } else {
            OFlags::NOFOLLOW
        };
        let (real, name) = match open(path, nofollow) {
            Ok(fd) => (self.fd_path(fd.as_raw_fd()), None),
            Err(Errno::NOENT) => {
                if follow {
                    if let Some(target) = dangling_target(dirfd, path) {
                        if links >= crate::lookup::MAX_SYMLINKS {
                            return Err(Errno::LOOP);
                        }
                        // The name would be made where the link leads.
                        let (at, to) = match target.first() {
                            Some(b'/') => (libc::AT_FDCWD, target),
                            _ => (dirfd, crate::lookup::join(dir, &target)),
                        };
                        return self.real_in_layers_after(at, &to, true, links + 1);
                    }
                }
                match open(dir, OFlags::DIRECTORY) {
                    Ok(fd) => (self.fd_path(fd.as_raw_fd()), Some(name.to_vec())),
                    Err(e) => return settled_by_the_call(e),
                }
            }
            Err(e) => return settled_by_the_call(e),
        };
        Ok(real.and_then(|real| self.in_layer(&real, name)))
    }

    /// The layer whose tree holds the real path `real` (with `name` below
    /// it, for a name not made yet), and the path in the view there.
    fn in_layer(&self, real: &[u8], name: Option<Vec<u8>>) -> Option<InLayer> {
        let (l, rel) = self
            .layers
            .iter()
            .enumerate()
            .find_map(|(i, l)| strip_dir(real, &l.root).map(|r| (i, r)))?;
        let mut rel = rel.to_vec();
        if let Some(name) = name {
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(&name);
        }
        Some(InLayer {
            rel,
            lower: self.is_lower_layer(l),
        })
    }

    /// The real path of an open descriptor.
    fn fd_path(&self, fd: i32) -> Option<Vec<u8>> {
        let link = format!("/proc/self/fd/{fd}");
        rustix::fs::readlinkat(CWD, link.as_str(), Vec::new())
            .ok()
            .map(|c| c.into_bytes())
    }

    /// Is the open descriptor `fd` on an object of a lower layer's own tree
    /// (for a descriptor the overlay did not open itself)?
    pub fn fd_in_lower_layer(&self, fd: i32) -> bool {
        self.fd_lower_real_path(fd).is_some()
    }

    /// The real path of the open descriptor `fd` (one the overlay did not
    /// open itself) when its object lies in a lower layer's own tree.
    fn fd_lower_real_path(&self, fd: i32) -> Option<Vec<u8>> {
        self.fd_path(fd).filter(|real| self.in_lower_tree(real))
    }

    /// The path by which a descriptor's own object is opened again with
    /// `flags` (`freopen` without a path, which libc makes by the
    /// descriptor's `/proc/self/fd` link, where no hook sees it): its name
    /// in the view, for a descriptor of the view (a lower file's link would
    /// be opened in place, for writing too); a lower layer's file reached
    /// by its real name, that name when the open writes (opened then in the
    /// view, as by that name). `None`: opened again as it is, which changes
    /// nothing below.
    pub fn path_to_reopen(&self, fd: i32, flags: i32) -> Option<Vec<u8>> {
        if let Some(info) = crate::fd_table::fd_info(fd) {
            return Some(self.virtual_path(&info.rel));
        }
        if crate::open::writes(flags) {
            return self.fd_lower_real_path(fd);
        }
        None
    }

    /// A change through a path outside the view: refused (`EROFS`) when it
    /// would reach a lower layer's tree. `Ok(true)`: it reaches the upper
    /// layer's.
    pub fn check_outside_change(
        &self,
        dirfd: i32,
        path: &[u8],
        follow: bool,
    ) -> Result<bool, Errno> {
        match self.real_in_layers(dirfd, path, follow)? {
            // `.` of a current directory removed from the view, a lower one:
            // the kernel cannot copy it up, as through a descriptor of it.
            Some(InLayer { lower: true, .. }) if names_removed_cwd(dirfd, path) => {
                Err(self.change_of_removed_cwd_fails())
            }
            Some(InLayer { lower: true, .. }) => Err(Errno::ROFS),
            Some(InLayer { lower: false, .. }) => Ok(true),
            None => Ok(false),
        }
    }

    /// Makes the change `change` through a path outside the view, unless
    /// [`Overlay::check_outside_change`] refuses it. A change to the upper
    /// layer by its real path is one to the view's names that the overlay
    /// did not make: what every process keeps of the layers is dropped
    /// around it (a symlink planted there would otherwise be followed by a
    /// later copy-up that still took the name for a directory).
    pub fn outside_change<R>(
        &self,
        dirfd: i32,
        path: &[u8],
        follow: bool,
        change: impl FnOnce() -> R,
    ) -> Result<R, Errno> {
        if !self.check_outside_change(dirfd, path, follow)? {
            return Ok(change());
        }
        self.changed();
        let r = change();
        self.changed();
        Ok(r)
    }

    /// A rename of `(dirfd, path)` outside the view: refused as any change
    /// reaching a lower layer (`EROFS`), and with `EBUSY` when it would
    /// move a directory that holds a layer, the work directory or the view
    /// (the overlay keeps their paths: a lower layer would then be reached
    /// by a path it does not know).
    pub fn check_outside_rename(&self, dirfd: i32, path: &[u8]) -> Result<(), Errno> {
        self.check_outside_change(dirfd, path, false)?;
        let dir = open_path_at(dirfd, path, OFlags::NOFOLLOW | OFlags::DIRECTORY);
        let Some(real) = dir.ok().and_then(|d| self.fd_path(d.as_raw_fd())) else {
            return Ok(()); // not a directory: it holds nothing
        };
        let held = self
            .layers
            .iter()
            .chain(self.work.iter())
            .map(|l| l.root.as_slice())
            .chain([self.target.as_slice()])
            .any(|p| strip_dir(p, &real).is_some());
        if held {
            Err(Errno::BUSY)
        } else {
            Ok(())
        }
    }
}

/// Does `(dirfd, path)` name the current directory, removed from the view?
/// (Relative to it, only `.` is left outside the view: see
/// `crate::cwd::in_removed_cwd`.)
fn names_removed_cwd(dirfd: i32, path: &[u8]) -> bool {
    dirfd == libc::AT_FDCWD && path.first() != Some(&b'/') && crate::cwd::cwd_is_gone()
}

/// Most paths checked here name a file in a plain directory by its real
/// name (a compiler's temporary file, an object file): the real path of an
/// absolute path with no `//`, `.`, `..` or hidden name is that path itself
/// when no directory on the way is a symbolic link, which one `lstat` per
/// component shows, and the final name when it is no link to follow.
/// `Some(Some(path))`: that real path; `Some(None)`: the name does not exist
/// yet, and its directory, read the same way, is real (the caller has it).
/// `None`: look the slow way (opening the path and reading its
/// `/proc/self/fd` link, which costs a new process about 80 µs: the first
/// look into /proc sets up the process's directory there; an `lstat` is
/// about 2 µs, so past 8 components this is not tried).
fn lexical_real_path(path: &[u8], follow: bool) -> Option<Option<&[u8]>> {
    use rustix::fs::{AtFlags, FileType};
    const MAX_COMPONENTS: usize = 8;
    if path.first() != Some(&b'/')
        || path.len() < 2
        || path.ends_with(b"/")
        || crate::scan::slash_before_slash_or_dot(path)
        || path.iter().filter(|&&b| b == b'/').count() > MAX_COMPONENTS
    {
        return None;
    }
    let kind = |p: &[u8]| {
        rustix::fs::statat(CWD, p, AtFlags::SYMLINK_NOFOLLOW)
            .map(|st| FileType::from_raw_mode(st.st_mode))
    };
    for (i, _) in path.iter().enumerate().skip(1).filter(|&(_, &b)| b == b'/') {
        if kind(&path[..i]) != Ok(FileType::Directory) {
            return None;
        }
    }
    match kind(path) {
        Ok(FileType::Symlink) if follow => None,
        Ok(_) => Some(Some(path)),
        Err(Errno::NOENT) => Some(None),
        Err(_) => None,
    }
}

/// A failed look at a path the call will meet too (a name missing on the
/// way, no permission to search, a loop): `Ok(None)`, the call fails as
/// well. Anything else (no descriptor left, no memory) could hide a
/// lower layer: `Err`.
fn settled_by_the_call(e: Errno) -> Result<Option<InLayer>, Errno> {
    match e {
        Errno::NOENT | Errno::NOTDIR | Errno::ACCESS | Errno::LOOP | Errno::NAMETOOLONG => Ok(None),
        e => Err(e),
    }
}

/// `dirfd` as the base of a path: the caller's descriptor, or `None` for
/// the current directory.
fn base(dirfd: i32) -> Option<BorrowedFd<'static>> {
    // SAFETY: the caller's directory descriptor, used for the call at hand
    // only (never kept past it).
    (dirfd != libc::AT_FDCWD).then(|| unsafe { BorrowedFd::borrow_raw(dirfd) })
}

/// An `O_PATH` descriptor of `(dirfd, path)`, opened with `extra` flags.
fn open_path_at(dirfd: i32, path: &[u8], extra: OFlags) -> Result<OwnedFd, Errno> {
    let flags = OFlags::PATH | OFlags::CLOEXEC | extra;
    match base(dirfd) {
        Some(b) => rustix::fs::openat(b, path, flags, Mode::empty()),
        None => rustix::fs::openat(CWD, path, flags, Mode::empty()),
    }
}

/// Where the symlink `(dirfd, path)` leads, when it is one (its target missing).
fn dangling_target(dirfd: i32, path: &[u8]) -> Option<Vec<u8>> {
    let link = match base(dirfd) {
        Some(b) => rustix::fs::readlinkat(b, path, Vec::new()),
        None => rustix::fs::readlinkat(CWD, path, Vec::new()),
    };
    link.ok().map(|t| t.into_bytes())
}
