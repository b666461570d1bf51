//! Removing names from the view: `unlink` and `rmdir`. A name that exists in
//! a lower layer leaves a whiteout in upper.

use crate::lookup::Node;
use crate::overlay::Overlay;
use rustix::io::Errno;

impl Overlay {
    /// `unlink` of the non-directory `node`, named `name` in `parent`.
    pub fn unlink(&self, parent: &Node, name: &[u8], node: &Node) -> Result<(), Errno> {
        let _ = (parent, name, node);
        Err(Errno::ROFS)
    }

    /// `rmdir` of the directory `node`, named `name` in `parent`: it must be
    /// empty in the merged view.
    pub fn rmdir(&self, parent: &Node, name: &[u8], node: &Node) -> Result<(), Errno> {
        let _ = (parent, name, node);
        Err(Errno::ROFS)
    }
}
