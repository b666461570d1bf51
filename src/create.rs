//! Creating names in the view: files, directories, nodes, symlinks, links.
//! New objects always land in the upper layer; creating over a whiteout
//! replaces it, and a directory made there is opaque.

use crate::lookup::Node;
use crate::overlay::Overlay;
use rustix::fd::OwnedFd;
use rustix::io::Errno;

impl Overlay {
    /// Creates a regular file `name` in the directory `parent` (O_CREAT with
    /// the name absent from the view) and returns it opened with `flags`.
    pub fn create_file(
        &self,
        parent: &Node,
        name: &[u8],
        flags: i32,
        mode: u32,
    ) -> Result<OwnedFd, Errno> {
        let _ = (parent, name, flags, mode);
        Err(Errno::ROFS)
    }

    /// `mkdir` of a name absent from the view.
    pub fn mkdir(&self, parent: &Node, name: &[u8], mode: u32) -> Result<(), Errno> {
        let _ = (parent, name, mode);
        Err(Errno::ROFS)
    }

    /// `mknod` (fifos, sockets, devices) of a name absent from the view.
    pub fn mknod(&self, parent: &Node, name: &[u8], mode: u32, dev: u64) -> Result<(), Errno> {
        let _ = (parent, name, mode, dev);
        Err(Errno::ROFS)
    }

    /// `symlink(target, parent/name)` of a name absent from the view.
    pub fn symlink(&self, target: &[u8], parent: &Node, name: &[u8]) -> Result<(), Errno> {
        let _ = (target, parent, name);
        Err(Errno::ROFS)
    }

    /// `link(existing, parent/name)`: the existing object is copied up first.
    pub fn link(&self, existing: &Node, parent: &Node, name: &[u8]) -> Result<(), Errno> {
        let _ = (existing, parent, name);
        Err(Errno::ROFS)
    }
}
