//! Removing names from the view: `unlink` and `rmdir`. A name that a lower
//! layer still has leaves a whiteout in upper; an upper object that hides a
//! lower one is swapped for a whiteout in one exchange, so the lower object
//! never shows through, even for an instant.

use crate::copy_up::remove_temp;
use crate::lookup::{join, Node, Resolved};
use crate::overlay::{Overlay, UPPER};
use crate::whiteout::{is_whiteout, make_whiteout};
use rustix::fd::AsFd;
use rustix::fs::{AtFlags, CWD};
use rustix::io::Errno;
use std::ffi::CStr;

/// How many times a removal looks its name up again when other processes
/// keep changing it under it.
const LOOKS: usize = 16;

impl Overlay {
    /// `unlink` of the non-directory `node`, named `name` in `parent`.
    pub fn unlink(&self, parent: &Node, name: &[u8], node: &Node) -> Result<(), Errno> {
        self.remove_looked_up(parent, name, node, false)
    }

    /// `rmdir` of the directory `node`, named `name` in `parent`: it must be
    /// empty in the merged view.
    pub fn rmdir(&self, parent: &Node, name: &[u8], node: &Node) -> Result<(), Errno> {
        self.remove_looked_up(parent, name, node, true)
    }

    /// Removes `name` from `parent`, which a look-up found to be `node`.
    /// Another process may change the name between that look-up and the
    /// removal (no lock spans both, where the kernel holds the directory's):
    /// the name is then looked up again and what it holds now is removed,
    /// as the kernel's removal would have, had it run then.
    fn remove_looked_up(
        &self,
        parent: &Node,
        name: &[u8],
        node: &Node,
        want_dir: bool,
    ) -> Result<(), Errno> {
        let mut again: Option<(Node, Node)> = None;
        for _ in 0..LOOKS {
            let (parent, node) = again.as_ref().map_or((parent, node), |(p, n)| (p, n));
            if want_dir && !self.is_empty_in_view(node)? {
                return Err(Errno::NOTEMPTY);
            }
            match self.changing(node.is_dir(), || self.remove_name(parent, name, node)) {
                Err(Errno::STALE) => {}
                done => return done,
            }
            // The directory too may have been made anew.
            let parent = match self.resolve(&parent.rel, false)? {
                Resolved::Inside(dir) if dir.is_dir() => dir,
                _ => return Err(Errno::NOENT),
            };
            let now = self.lookup_child(&parent, name)?.ok_or(Errno::NOENT)?;
            match (want_dir, now.is_dir()) {
                (true, false) => return Err(Errno::NOTDIR),
                (false, true) => return Err(Errno::ISDIR),
                _ => {}
            }
            self.may_delete_from(&parent, &now)?;
            again = Some((parent, now));
        }
        // Changed at every look: gone at one of those moments, as far as
        // this removal can tell.
        Err(Errno::NOENT)
    }

    /// Removes `name`, `node`, from `parent`; `ESTALE` when the name no
    /// longer holds what the look-up found.
    fn remove_name(&self, parent: &Node, name: &[u8], node: &Node) -> Result<(), Errno> {
        let rel = join(&parent.rel, name);
        let owner_may_empty = libc::S_IWUSR | libc::S_IXUSR;
        if node.layer == UPPER
            && node.is_dir()
            && node.stat.st_mode & owner_may_empty != owner_may_empty
        {
            // Moved out (for a whiteout) or emptied of its whiteouts.
            let dir = self.upper_path(&rel);
            return crate::copy_up::with_owner_access(&dir, || {
                self.remove_object(parent, name, node, &rel)
            });
        }
        self.remove_object(parent, name, node, &rel)
    }

    /// [`remove_name`](Self::remove_name) of the name at `rel`, its directory
    /// writable by its owner.
    fn remove_object(
        &self,
        parent: &Node,
        name: &[u8],
        node: &Node,
        rel: &[u8],
    ) -> Result<(), Errno> {
        if node.layer != UPPER {
            // Only lower layers have it: a whiteout in the (copied-up) parent.
            self.copy_up(parent, None)?;
            // Taken in upper since the look-up (made there, or whited out).
            return match self.whiteout_in_upper(&parent.rel, name) {
                Err(Errno::EXIST) => Err(Errno::STALE),
                made => made,
            };
        }
        let upper = &self.layers[UPPER];
        // Opaque now (made anew since `parent` was looked up), the
        // directory shows nothing of a lower layer, whatever `parent` says.
        if self.lower_has(parent, name)? && self.upper_dir_for_whiteouts(&parent.rel)?.1 {
            let tmp = self.work_temp(crate::copy_up::Temp::Whiteout)?;
            make_whiteout(self, &tmp)?;
            let dst = self.upper_path(rel);
            let looked_up = (node.stat.st_dev, node.stat.st_ino);
            // What was looked up, and, a directory, still empty: another
            // process may have made a name in it since.
            let swapped = crate::rename::exchange_if(&tmp, &dst, |p, st| {
                (st.st_dev, st.st_ino) == looked_up && (!node.is_dir() || holds_only_whiteouts(p))
            });
            // The removed object, or our whiteout, is now at tmp.
            remove_temp(&tmp, swapped.is_ok() && node.is_dir());
            return swapped;
        }
        if node.is_dir() {
            // Empty in the view; it may still hold whiteouts of its own.
            clear_whiteouts(&self.upper_path(rel));
            return upper.at(rel, |dir, p| {
                rustix::fs::unlinkat(dir, p, AtFlags::REMOVEDIR)
            });
        }
        upper.at(rel, |dir, p| rustix::fs::unlinkat(dir, p, AtFlags::empty()))
    }

    /// Makes a whiteout for `name` in the upper directory `dir_rel`, unless
    /// that directory shows no lower layer (`ESTALE`): made anew since the
    /// look-up (removed by another process, then made or moved there, so
    /// opaque), it has nothing to hide, and the name is to be looked up
    /// again. The whiteout is made in the directory looked at.
    fn whiteout_in_upper(&self, dir_rel: &[u8], name: &[u8]) -> Result<(), Errno> {
        let (dir, shows_lower) = self.upper_dir_for_whiteouts(dir_rel)?;
        if !shows_lower {
            return Err(Errno::STALE);
        }
        self.whiteout_in(dir.as_fd(), dir_rel, name)
    }
}

/// Does the upper directory at `dir` hold nothing but whiteouts, as one
/// empty in the view does?
fn holds_only_whiteouts(dir: &CStr) -> bool {
    crate::sys::entries(dir).into_iter().all(|(name, _)| {
        let path = crate::sys::child(dir, &name);
        rustix::fs::lstat(path.as_c_str()).is_ok_and(|st| is_whiteout(&path, &st))
    })
}

/// Removes the whiteouts (the only entries left) of an upper directory that
/// is empty in the view.
pub(crate) fn clear_whiteouts(dir: &CStr) {
    for (name, _) in crate::sys::entries(dir) {
        let _ = rustix::fs::unlinkat(
            CWD,
            crate::sys::child(dir, &name).as_c_str(),
            AtFlags::empty(),
        );
    }
}
