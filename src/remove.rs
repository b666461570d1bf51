//! Removing names from the view: `unlink` and `rmdir`. A name that a lower
//! layer still has leaves a whiteout in upper; an upper object that hides a
//! lower one is swapped for a whiteout in one exchange, so the lower object
//! never shows through, even for an instant.

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
        let entries = self.merged_entries(node)?;
        if entries.iter().any(|e| e.name != b"." && e.name != b"..") {
            return Err(Errno::NOTEMPTY);
        }
        self.changing(node.is_dir(), || self.remove_name(parent, name, node))
    }

    fn remove_name(&self, parent: &Node, name: &[u8], node: &Node) -> Result<(), Errno> {
        let rel = join(&parent.rel, name);
        let dst = self.upper_path(&rel);
        let whiteout_needed = node.layer != UPPER || self.lower_has(parent, name)?;
        if node.layer != UPPER {
            // Only lower layers have it: a whiteout in the (copied-up) parent.
            self.copy_up(parent, None)?;
            return make_whiteout(self, &dst);
        }
        if whiteout_needed {
            let tmp = self.work_temp()?;
            make_whiteout(self, &tmp)?;
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
            clear_whiteouts(&dst);
            return rustix::fs::unlinkat(CWD, dst.as_c_str(), AtFlags::REMOVEDIR);
        }
        rustix::fs::unlinkat(CWD, dst.as_c_str(), AtFlags::empty())
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
