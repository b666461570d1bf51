//! What an upper layer changed in the view of its lower layers: the names
//! it added, the objects it changed (its copy or replacement shows where a
//! lower object did) and the names it removed (by a whiteout, or under an
//! opaque directory), as `docker diff` tells a container's changes. The
//! view is read as a program of it reads it, by the overlay's own look-up,
//! so every whiteout and opaque format counts; nothing is written.

use crate::lookup::{LayerSet, Node};
use crate::overlay::{Overlay, UPPER};
use crate::sys::{cpath, read_entries};
use rustix::io::Errno;

/// How one name of the view differs from the lower layers alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// No lower layer shows the name.
    Added,
    /// The upper layer's object shows where a lower one did: a copy-up
    /// (the data, the metadata or something below a directory changed), or
    /// a new object of the same name.
    Changed,
    /// A lower layer shows the name; the view does not.
    Removed,
}

impl Change {
    /// The one-letter mark `docker diff` uses.
    pub fn letter(self) -> char {
        match self {
            Change::Added => 'A',
            Change::Changed => 'C',
            Change::Removed => 'D',
        }
    }
}

/// Why the changes could not be listed: the directory of the view (its
/// path, relative) where a layer could not be read, and the error.
#[derive(Debug)]
pub struct ChangesError {
    pub rel: Vec<u8>,
    pub errno: Errno,
}

/// One changed name: its path in the view (relative, no leading `/`) and
/// whether the object (the view's, or for a removal the lower layers') is a
/// directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub change: Change,
    pub rel: Vec<u8>,
    pub dir: bool,
}

impl Overlay {
    /// Every change the upper layer makes to the lower layers' view, in the
    /// order of a depth-first walk with names sorted bytewise. Below an
    /// added directory every name is added; below a removed one nothing is
    /// listed.
    pub fn changes(&self) -> Result<Vec<Entry>, ChangesError> {
        if !self.has_upper {
            return Ok(Vec::new());
        }
        let root = self.root_node().map_err(|errno| ChangesError {
            rel: Vec::new(),
            errno,
        })?;
        let below = root.dirs & !(1 << UPPER);
        let mut out = Vec::new();
        self.changes_in(&root, below, &mut out)?;
        Ok(out)
    }

    /// The changes below the directory `view` (which has an upper part),
    /// where the lower layers alone merge the directories `below` (none:
    /// the lower layers show no directory there).
    fn changes_in(
        &self,
        view: &Node,
        below: LayerSet,
        out: &mut Vec<Entry>,
    ) -> Result<(), ChangesError> {
        let before = Node {
            dirs: below,
            ..view.clone()
        };
        let here = |errno| ChangesError {
            rel: view.rel.clone(),
            errno,
        };
        for name in self.names_to_compare(view, below).map_err(here)? {
            let now = self.lookup_child(view, &name).map_err(here)?;
            let was = match below {
                0 => None,
                _ => self.lookup_child(&before, &name).map_err(here)?,
            };
            let (change, node, was_dirs) = match (now, was) {
                (None, None) => continue,
                (None, Some(was)) => {
                    out.push(entry(Change::Removed, &was));
                    continue;
                }
                (Some(now), None) => (Change::Added, now, 0),
                // The lower object shows through: nothing changed there.
                (Some(now), Some(_)) if now.layer != UPPER => continue,
                (Some(now), Some(was)) => (Change::Changed, now, was.dirs),
            };
            out.push(entry(change, &node));
            if node.is_dir() {
                // Below it, the lower directories that merged there before
                // (those an opaque directory now hides among them).
                self.changes_in(&node, was_dirs, out)?;
            }
        }
        Ok(())
    }

    /// The names of `view` that may differ from the lower layers': the
    /// upper directory's own (objects and whiteouts), and, where the view
    /// does not merge the lower directories `below` (an opaque or a
    /// replacing directory), theirs too. Sorted, once each.
    fn names_to_compare(&self, view: &Node, below: LayerSet) -> Result<Vec<Vec<u8>>, Errno> {
        let mut layers = 1 << UPPER;
        if view.dirs & !(1 << UPPER) != below {
            layers |= below;
        }
        let mut names = Vec::new();
        for l in crate::lookup::layers_of(layers) {
            let listed = read_entries(&cpath(&self.real_path(l, &view.rel)))?;
            names.extend(listed.into_iter().map(|(name, _)| name));
        }
        names.sort_unstable();
        names.dedup();
        Ok(names)
    }
}

fn entry(change: Change, node: &Node) -> Entry {
    Entry {
        change,
        rel: node.rel.clone(),
        dir: node.is_dir(),
    }
}
