//! Copy-up: before any change to an object that lives in a lower layer, the
//! object (and first its parent directories) is copied to the upper layer.
//! A copy is built in the work directory and appears in upper by one atomic
//! `rename`, so an interrupted copy-up never shows a half-copied file.

use crate::lookup::Node;
use crate::overlay::Overlay;
use rustix::io::Errno;

impl Overlay {
    /// Makes sure `node` exists in the upper layer (copying it up, with its
    /// parents, when it lives in a lower one) and returns it as an upper node.
    /// `keep` limits the data copied for regular files (`Some(0)` for
    /// `O_TRUNC`, `Some(n)` for `truncate(n)`); `None` copies everything.
    pub fn copy_up(&self, node: &Node, keep: Option<u64>) -> Result<Node, Errno> {
        let _ = (node, keep);
        Err(Errno::ROFS)
    }
}
