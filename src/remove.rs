//! Removing names from the view: `unlink` and `rmdir`. A name that a lower
//! layer still has leaves a whiteout in upper; an upper object that hides a
//! lower one is swapped for a whiteout in one exchange, so the lower object
//! never shows through, even for an instant.

use crate::config::WhiteoutFormat;
use crate::copy_up::remove_temp;
use crate::lookup::{join, Node};
use crate::overlay::{Overlay, UPPER};
use crate::whiteout::make_whiteout;
use rustix::fs::{AtFlags, CWD};
use rustix::io::Errno;
use std::ffi::CStr;

impl Overlay {
    /// `unlink` of the non-directory `node`, named `name` in `parent`.
    pub fn unlink(&self, parent: &Node, name: &[u8], node: &Node) -> Result<(), Errno> {
        self.changing(node.is_dir(), || self.remove_name(parent, name, node))
    }

    /// `rmdir` of the directory `node`, named `name` in `parent`: it must be
    /// empty in the merged view.
    pub fn rmdir(&self, parent: &Node, name: &[u8], node: &Node) -> Result<(), Errno> {
        if !self.merged_listing(node)?.is_empty_dir() {
            return Err(Errno::NOTEMPTY);
        }
        self.changing(node.is_dir(), || self.remove_name(parent, name, node))
    }

    fn remove_name(&self, parent: &Node, name: &[u8], node: &Node) -> Result<(), Errno> {
        let rel = join(&parent.rel, name);
        if node.layer != UPPER {
            // Only lower layers have it: a whiteout in the (copied-up) parent.
            self.copy_up(parent, None)?;
            return self.whiteout_in_upper(&rel);
        }
        let upper = &self.layers[UPPER];
        if self.lower_has(parent, name)? {
            let tmp = self.work_temp(crate::copy_up::Temp::Whiteout)?;
            make_whiteout(self, &tmp)?;
            let dst = self.upper_path(&rel);
            if let Err(e) = crate::rename::exchange(&tmp, &dst) {
                remove_temp(&tmp, false);
                return Err(e);
            }
            // The removed object is now at tmp, in the work directory.
            remove_temp(&tmp, node.is_dir());
            return Ok(());
        }
        if node.is_dir() {
            // Empty in the view; it may still hold whiteouts of its own.
            clear_whiteouts(&self.upper_path(&rel));
            return upper.at(&rel, |dir, p| {
                rustix::fs::unlinkat(dir, p, AtFlags::REMOVEDIR)
            });
        }
        upper.at(&rel, |dir, p| {
            rustix::fs::unlinkat(dir, p, AtFlags::empty())
        })
    }

    /// Makes a whiteout at `rel` in the upper layer.
    fn whiteout_in_upper(&self, rel: &[u8]) -> Result<(), Errno> {
        match self.whiteout {
            WhiteoutFormat::CharDev => {
                self.layers[UPPER].at(rel, |dir, p| self.chardev_whiteout_at(dir, p))
            }
            // Its xattr is set by path: no call sets one relative to a directory.
            WhiteoutFormat::SeedSymlink => make_whiteout(self, &self.upper_path(rel)),
        }
    }
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
