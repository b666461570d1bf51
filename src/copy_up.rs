//! Copy-up: before any change to an object that lives in a lower layer, the
//! object (and first its parent directories) is copied to the upper layer.
//! A copy is built in the work directory and appears in upper by one atomic
//! `rename`, so an interrupted copy-up never shows a half-copied file; when
//! two processes copy the same object at once, the first rename wins and the
//! other uses its copy.

use crate::config::XattrNs;
use crate::lookup::{join, may_hide, split_last, Listed, Node, Resolved};
use crate::overlay::{Overlay, UPPER};
use crate::sys::cpath;
use crate::whiteout::is_chardev_whiteout;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{
    AtFlags, FallocateFlags, FileType, Mode, OFlags, RenameFlags, SeekFrom, Stat, Timestamps,
    XattrFlags, CWD,
};
use rustix::io::Errno;
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicU64, Ordering};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// What an object built in the work directory is for, told by its name's
/// end: an inotify watch on a directory of the view sees it arrive from the
/// work directory, and tells a copy-up (no event on the kernel) from a
/// removal (a whiteout) and a creation over a whiteout.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Temp {
    Copy,
    Whiteout,
    New,
    Other,
}

impl Temp {
    fn suffix(self) -> &'static str {
        match self {
            Temp::Copy => ".copy",
            Temp::Whiteout => ".wh",
            Temp::New => ".new",
            Temp::Other => "",
        }
    }

    /// The kind of a work directory's entry named `name`.
    pub fn of_name(name: &[u8]) -> Temp {
        [Temp::Copy, Temp::Whiteout, Temp::New]
            .into_iter()
            .find(|t| name.starts_with(b"#ovl.") && name.ends_with(t.suffix().as_bytes()))
            .unwrap_or(Temp::Other)
    }
}

/// Times of a `stat`, as `utimensat` takes them.
pub(crate) fn times_of(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: st.st_atime as _,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: st.st_mtime as _,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

/// The mode a copy of an object of mode `mode` is built with. The kernel
/// makes its copies with the mounter's credentials; a user who is not root
/// cannot set the copy's `user.` xattrs (its origin) once its mode denies
/// them writing, nor move such a directory into upper: the copy is theirs,
/// so it is built writable by them and gets its own mode before it is
/// published (a directory: just after).
fn mode_while_building(mode: Mode) -> Mode {
    if mode.contains(Mode::WUSR) || rustix::process::geteuid().is_root() {
        mode
    } else {
        mode | Mode::WUSR
    }
}

/// For a directory of the user's that is about to be marked, moved to
/// another parent or emptied (made in the work directory, or removed from
/// the view): where its mode denies them writing it or searching it (its
/// whiteouts cannot be removed without both), lets them, and returns the
/// mode to give it back once done. The kernel does those with the
/// mounter's credentials.
pub(crate) fn owner_may_write(dir: &CStr) -> Option<Mode> {
    lift_for_owner(dir).map(|(mode, _)| mode)
}

/// [`owner_may_write`], also giving the directory's `lstat` from before.
/// Root is let do all this already: nothing is looked at.
fn lift_for_owner(dir: &CStr) -> Option<(Mode, Stat)> {
    if rustix::process::geteuid().is_root() {
        return None;
    }
    let st = rustix::fs::lstat(dir).ok()?;
    let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
    let writable = mode | Mode::WUSR | Mode::XUSR;
    if writable == mode || !FileType::from_raw_mode(st.st_mode).is_dir() {
        return None;
    }
    rustix::fs::chmodat(CWD, dir, writable, AtFlags::empty()).ok()?;
    Some((mode, st))
}

/// Runs `op`, which marks, empties, replaces or removes the user's upper
/// directory at `dir`, with its mode lifted as `owner_may_write` lifts it;
/// the mode is put back afterwards where `dir` still holds that directory
/// (not once `op` removed or replaced it).
pub(crate) fn with_owner_access<T>(dir: &CStr, op: impl FnOnce() -> T) -> T {
    let lifted = lift_for_owner(dir);
    let done = op();
    if let Some((mode, st)) = lifted {
        let same = |now: Stat| (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino);
        if rustix::fs::lstat(dir).is_ok_and(same) {
            let _ = rustix::fs::chmodat(CWD, dir, mode, AtFlags::empty());
        }
    }
    done
}

/// Runs `op`, which makes or moves a name in the upper directory `dir`, or
/// marks it. The kernel does that for a copy-up with the mounter's
/// credentials; a user who is not root whose copy of a directory denies
/// them writing (a read-only lower directory's, say) is refused. The copy
/// is theirs: its mode lets them write for the moment of `op`, then is put
/// back (another process's moment, seen here as a mode that lets them
/// write, is waited out by trying again).
pub(crate) fn writing_in_dir<T>(
    dir: &CStr,
    mut op: impl FnMut() -> Result<T, Errno>,
) -> Result<T, Errno> {
    for _ in 0..8 {
        match op() {
            Err(Errno::ACCESS) => {}
            done => return done,
        }
        let st = rustix::fs::lstat(dir)?;
        let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
        if mode.contains(Mode::WUSR | Mode::XUSR) {
            std::thread::yield_now();
            continue;
        }
        if st.st_uid != rustix::process::geteuid().as_raw() {
            break;
        }
        rustix::fs::chmodat(CWD, dir, mode | Mode::WUSR | Mode::XUSR, AtFlags::empty())?;
        let done = op();
        let _ = rustix::fs::chmodat(CWD, dir, mode, AtFlags::empty());
        return done;
    }
    Err(Errno::ACCESS)
}

/// `EPERM` from `chown` is expected when not root: the copy keeps our ids.
fn tolerate_perm(r: Result<(), Errno>) -> Result<(), Errno> {
    match r {
        Err(Errno::PERM) => Ok(()),
        other => other,
    }
}

/// Copies every xattr the view shows (escaped names too, not the overlay's
/// records), from `src` to `dst` (paths, not following).
fn copy_xattrs(ns: XattrNs, src: &CStr, dst: &CStr) -> Result<(), Errno> {
    let mut names = vec![0u8; 4096];
    let n = loop {
        match rustix::fs::llistxattr(src, &mut names[..]) {
            Ok(n) => break n,
            Err(Errno::RANGE) => names.resize(names.len() * 4, 0),
            Err(Errno::NOTSUP) => return Ok(()),
            Err(e) => return Err(e),
        }
    };
    for name in names[..n]
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty() && crate::xattr::shown(ns, a))
    {
        let cname = cpath(name);
        let mut value = vec![0u8; 256];
        let len = loop {
            match rustix::fs::lgetxattr(src, cname.as_c_str(), &mut value[..]) {
                Ok(len) => break len,
                Err(Errno::RANGE) => value.resize(value.len() * 4, 0),
                Err(e) => return Err(e),
            }
        };
        match rustix::fs::lsetxattr(dst, cname.as_c_str(), &value[..len], XattrFlags::empty()) {
            Ok(()) => {}
            // Not every namespace can be written by everyone (trusted.*, security.*).
            Err(Errno::PERM) | Err(Errno::NOTSUP) if !rustix::process::geteuid().is_root() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Data extents at least this long get their blocks reserved before they
/// are copied; small files are copied without the extra system call.
const PREALLOCATE_FROM: u64 = 1 << 20;

/// Copies `len` bytes of data from `src` to `dst`, keeping holes: a reflink
/// where the filesystem can, else `copy_file_range` over the data extents.
fn copy_data(src: &OwnedFd, dst: &OwnedFd, len: u64, size: u64) -> Result<(), Errno> {
    if len == 0 {
        return Ok(());
    }
    if len == size && rustix::fs::ioctl_ficlone(dst, src).is_ok() {
        return Ok(());
    }
    let mut pos: u64 = 0;
    while pos < len {
        // The next data extent, or the end when only a hole remains.
        let data = match rustix::fs::seek(src, SeekFrom::Data(pos)) {
            Ok(d) => d,
            Err(Errno::NXIO) => break,
            Err(_) => pos,
        };
        if data >= len {
            break;
        }
        let hole = rustix::fs::seek(src, SeekFrom::Hole(data))
            .unwrap_or(len)
            .min(len);
        if hole - data >= PREALLOCATE_FROM {
            // Best effort: with the extent's blocks reserved at once, each
            // page written need not reserve its own (ext4, 1 GiB: about 7%
            // sooner). Only data extents: a hole of the source stays a hole.
            let _ = rustix::fs::fallocate(dst, FallocateFlags::empty(), data, hole - data);
        }
        copy_range(src, dst, data, hole)?;
        pos = hole;
    }
    rustix::fs::ftruncate(dst, len)
}

/// Copies the bytes `from..to` of `src` to the same place of `dst`.
fn copy_range(src: &OwnedFd, dst: &OwnedFd, from: u64, to: u64) -> Result<(), Errno> {
    let mut off_in = from;
    let mut off_out = from;
    while off_in < to {
        let want = (to - off_in).min(1 << 30) as usize;
        match rustix::fs::copy_file_range(src, Some(&mut off_in), dst, Some(&mut off_out), want) {
            Ok(0) => break,
            Ok(_) => {}
            // Layers on two file systems (since Linux 5.19 `copy_file_range`
            // refuses most such pairs), or one that cannot: the kernel's
            // generic copy, by `sendfile`.
            Err(Errno::XDEV | Errno::INVAL | Errno::OPNOTSUPP | Errno::NOSYS) if off_in == from => {
                return send_range(src, dst, from, to);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// [`copy_range`] by `sendfile`, which copies between any two files.
fn send_range(src: &OwnedFd, dst: &OwnedFd, from: u64, to: u64) -> Result<(), Errno> {
    rustix::fs::seek(dst, SeekFrom::Start(from))?;
    let mut off = from;
    while off < to {
        let want = (to - off).min(1 << 30) as usize;
        if rustix::fs::sendfile(dst, src, Some(&mut off), want)? == 0 {
            break;
        }
    }
    Ok(())
}

impl Overlay {
    /// A fresh name in the work directory for an object being built, which
    /// tells what it is for (see [`Temp`]).
    pub(crate) fn work_temp(&self, kind: Temp) -> Result<CString, Errno> {
        let work = self.work.as_ref().ok_or(Errno::ROFS)?;
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = rustix::process::getpid().as_raw_nonzero().get();
        let mut p = work.root.clone();
        p.extend_from_slice(format!("/#ovl.{pid}.{n}{}", kind.suffix()).as_bytes());
        Ok(cpath(&p))
    }

    /// The real path of `rel` in the upper layer.
    pub(crate) fn upper_path(&self, rel: &[u8]) -> CString {
        cpath(&self.real_path(UPPER, rel))
    }

    /// Makes sure `node` exists in the upper layer (copying it up, with its
    /// parents, when it lives in a lower one) and returns it as an upper node.
    /// `keep` limits the data copied for regular files (`Some(0)` for
    /// `O_TRUNC`, `Some(n)` for `truncate(n)`); `None` copies everything.
    pub fn copy_up(&self, node: &Node, keep: Option<u64>) -> Result<Node, Errno> {
        if !self.has_upper {
            return Err(Errno::ROFS);
        }
        if node.layer == UPPER {
            return Ok(node.clone());
        }
        let up = self.changing(node.is_dir(), || self.copy_up_object(node, keep))?;
        match up.file_type() {
            FileType::RegularFile => {
                crate::fd_follow::repoint_lower_fds(&node.rel, &self.upper_path(&node.rel))
            }
            FileType::Directory => {
                crate::fd_follow::repoint_lower_dirs(self, &node.rel, &self.upper_path(&node.rel))
            }
            _ => {}
        }
        Ok(up)
    }

    /// Makes sure the directory `rel` of the view exists in upper.
    pub(crate) fn ensure_upper_dir(&self, rel: &[u8]) -> Result<(), Errno> {
        if rel.is_empty() {
            return Ok(());
        }
        if let Ok(st) = rustix::fs::lstat(self.upper_path(rel).as_c_str()) {
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                return Ok(());
            }
        }
        match self.resolve(rel, false)? {
            Resolved::Inside(dir) if dir.is_dir() => self.copy_up(&dir, None).map(|_| ()),
            Resolved::Inside(_) => Err(Errno::NOTDIR),
            Resolved::Outside(_) => Err(Errno::XDEV),
        }
    }

    fn copy_up_object(&self, node: &Node, keep: Option<u64>) -> Result<Node, Errno> {
        let (dir_rel, _) = split_last(&node.rel);
        self.ensure_upper_dir(dir_rel)?;
        let src = cpath(&self.real_path(node.layer, &node.rel));
        let st = rustix::fs::lstat(src.as_c_str())?;
        let dst = self.upper_path(&node.rel);
        let parent = self.upper_path(dir_rel);
        let parent_st = rustix::fs::lstat(parent.as_c_str())?;
        let tmp = self.work_temp(Temp::Copy)?;
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
        let building = mode_while_building(mode);
        if let Err(e) = self.build_copy(&src, &st, &tmp, keep, building) {
            remove_temp(&tmp, is_dir);
            return Err(e);
        }
        // A file with other hard links gets no origin, as on the kernel
        // without its index: the copy is one object, the other names another.
        if is_dir || st.st_nlink == 1 {
            self.record_origin(node.layer, &src, &tmp);
        }
        // A directory's own mode must let its owner write while it moves to
        // another parent (its `..` changes): it gets its own after the move.
        if building != mode && !is_dir {
            if let Err(e) = rustix::fs::chmodat(CWD, tmp.as_c_str(), mode, AtFlags::empty()) {
                remove_temp(&tmp, is_dir);
                return Err(e);
            }
        }
        // The parent is marked impure at every copy-up, as the kernel marks it.
        let published = writing_in_dir(&parent, || {
            self.mark_impure(&parent);
            rustix::fs::renameat_with(
                CWD,
                tmp.as_c_str(),
                CWD,
                dst.as_c_str(),
                RenameFlags::NOREPLACE,
            )
        });
        let ours = match published {
            Ok(()) => {
                if building != mode && is_dir {
                    let _ = rustix::fs::chmodat(CWD, dst.as_c_str(), mode, AtFlags::empty());
                }
                // The kernel keeps the parent's times across a copy-up.
                let _ = rustix::fs::utimensat(
                    CWD,
                    parent.as_c_str(),
                    &times_of(&parent_st),
                    AtFlags::empty(),
                );
                true
            }
            // Another process copied it up first: use its copy.
            Err(Errno::EXIST) | Err(Errno::NOTEMPTY) => {
                remove_temp(&tmp, is_dir);
                false
            }
            Err(e) => {
                remove_temp(&tmp, is_dir);
                return Err(e);
            }
        };
        let stat = rustix::fs::lstat(dst.as_c_str())?;
        if !ours && crate::whiteout::is_whiteout(&dst, &stat) {
            // Not another process's copy: its whiteout, the name removed
            // since this look-up. The object is gone, as if that removal
            // had come first (no caller may link, open or change it).
            return Err(Errno::NOENT);
        }
        if ours && FileType::from_raw_mode(st.st_mode) == FileType::RegularFile {
            // Other processes' readers of the lower file follow (`catch_up_reader`).
            let lower = crate::generation::file_key(st.st_dev, st.st_ino, &node.rel);
            self.copied_up(lower, stat.st_ino);
        }
        if ours && is_dir {
            // Streams opened on the lower directory list the merged one
            // from their next start (see the shim's `dir.rs`).
            self.dir_copied_up();
        }
        if is_dir {
            self.cwd_follows_copy_up(&node.rel, &dst);
        }
        let dirs = if is_dir { node.dirs | (1 << UPPER) } else { 0 };
        Ok(Node {
            rel: node.rel.clone(),
            layer: UPPER,
            stat,
            dirs,
            fresh: true,
        })
    }

    /// Builds at `tmp` a copy of the object at `src` (whose lstat is `st`),
    /// with the mode `mode` (see `mode_while_building`).
    fn build_copy(
        &self,
        src: &CStr,
        st: &Stat,
        tmp: &CStr,
        keep: Option<u64>,
        mode: Mode,
    ) -> Result<(), Errno> {
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {
                let (from, _) = crate::sys::open_unstamped(
                    rustix::fs::CWD,
                    src,
                    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    Mode::empty(),
                    Some(st.st_uid),
                )?;
                let to = rustix::fs::open(
                    tmp,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )?;
                let size = st.st_size as u64;
                copy_data(&from, &to, keep.map_or(size, |k| k.min(size)), size)?;
                tolerate_perm(rustix::fs::fchown(
                    to.as_fd(),
                    Some(rustix::process::Uid::from_raw(st.st_uid)),
                    Some(rustix::process::Gid::from_raw(st.st_gid)),
                ))?;
                copy_xattrs(self.xattr_ns, src, tmp)?;
                rustix::fs::fchmod(&to, mode)?;
                // No fsync: the rename publishes a complete copy to every
                // process, and a killed copy-up leaves only a temporary file
                // in the work directory (durability across power loss is the
                // filesystem's, as for any `cp`).
                rustix::fs::futimens(&to, &times_of(st))?;
                return Ok(());
            }
            FileType::Directory => rustix::fs::mkdirat(CWD, tmp, Mode::from_raw_mode(0o700))?,
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(CWD, src, Vec::new())?;
                rustix::fs::symlinkat(target.as_c_str(), CWD, tmp)?;
            }
            t => rustix::fs::mknodat(CWD, tmp, t, mode, st.st_rdev)?,
        }
        let link = FileType::from_raw_mode(st.st_mode) == FileType::Symlink;
        tolerate_perm(rustix::fs::chownat(
            CWD,
            tmp,
            Some(rustix::process::Uid::from_raw(st.st_uid)),
            Some(rustix::process::Gid::from_raw(st.st_gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        ))?;
        copy_xattrs(self.xattr_ns, src, tmp)?;
        if !link {
            rustix::fs::chmodat(CWD, tmp, mode, AtFlags::empty())?;
        }
        rustix::fs::utimensat(CWD, tmp, &times_of(st), AtFlags::SYMLINK_NOFOLLOW)
    }

    /// Does a lower layer of the directory `parent` still show `name` (so that
    /// removing it from the view needs a whiteout)?
    pub(crate) fn lower_has(&self, parent: &Node, name: &[u8]) -> Result<bool, Errno> {
        let rel = join(&parent.rel, name);
        let rel_c = cpath(&rel);
        for l in parent.dir_layers().filter(|&l| self.is_lower_layer(l)) {
            match self.layers[l].lstat(&rel_c) {
                Ok(st) if self.is_bottom(l) => return Ok(!is_chardev_whiteout(&st)),
                Ok(st) if !may_hide(&st) => return Ok(true),
                Ok(st) => {
                    let path = cpath(&self.real_path(l, &rel));
                    return Ok(!self.hides(l, &path, &st, &parent.rel));
                }
                Err(Errno::NOENT) | Err(Errno::NOTDIR) => continue,
                // A directory of the layer this process may not search:
                // as the look-up.
                Err(Errno::ACCESS) => {
                    match self.listed_in_unsearchable(l, parent.dirs, &rel, parent.rel.len()) {
                        Some(Listed::Absent) => continue,
                        Some(Listed::Whiteout) => return Ok(false),
                        Some(Listed::Unknown) => return Ok(true),
                        None => return Err(Errno::ACCESS),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }
}

/// Removes a temporary object from the work directory (a directory with
/// whatever it holds: only whiteouts and copies of ours). `is_dir` is what
/// the caller expects; it may be wrong where another process changed a
/// name before its object was swapped out to `tmp`: the other way is
/// tried then, so that nothing is left behind.
pub(crate) fn remove_temp(tmp: &CStr, is_dir: bool) {
    if is_dir || rustix::fs::unlinkat(CWD, tmp, AtFlags::empty()) == Err(Errno::ISDIR) {
        remove_tree(tmp);
    }
}

/// Removes a directory tree of the work directory (or, if `dir` is not a
/// directory after all, the object). A process holding a descriptor of the
/// directory (or of one in it) may still make names there until it is
/// gone: it is emptied again then.
pub(crate) fn remove_tree(dir: &CStr) {
    for _ in 0..8 {
        for (name, is_dir) in crate::sys::entries(dir) {
            remove_temp(&crate::sys::child(dir, &name), is_dir);
        }
        match rustix::fs::unlinkat(CWD, dir, AtFlags::REMOVEDIR) {
            Err(Errno::NOTEMPTY) => {}
            Err(Errno::NOTDIR) => {
                let _ = rustix::fs::unlinkat(CWD, dir, AtFlags::empty());
                return;
            }
            _ => return,
        }
    }
}
