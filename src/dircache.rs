//! What this process learned of the layers' directories: for a directory of
//! the view, which layers hold it. Kept while the overlay's generation
//! (see `generation`) is unchanged, so a path whose directories were seen
//! before resolves with one system call, on its last component.

use crate::generation::UNCACHEABLE;
use crate::lookup::{join, Node};
use crate::overlay::Overlay;
use rustix::io::Errno;
use std::collections::HashMap;
use std::sync::RwLock;

/// Directories kept at most (about 100 bytes each), then the cache restarts.
const MAX_ENTRIES: usize = 8192;

struct DirCache {
    generation: u64,
    root: Option<Node>,
    dirs: Option<HashMap<Vec<u8>, Node>>,
}

static CACHE: RwLock<DirCache> = RwLock::new(DirCache {
    generation: UNCACHEABLE,
    root: None,
    dirs: None,
});

impl Overlay {
    /// Forgets everything when the layers changed since it was learned;
    /// returns the generation a look-up starting now works in.
    pub(crate) fn validate_cache(&self) -> u64 {
        let g = self.generation();
        let stale = CACHE
            .read()
            .map_or(true, |c| c.generation != g || g == UNCACHEABLE);
        if stale {
            if let Ok(mut c) = CACHE.write() {
                if c.generation != g || g == UNCACHEABLE {
                    c.generation = g;
                    c.root = None;
                    c.dirs = None;
                }
            }
        }
        g
    }

    /// The root of the view (its `stat` possibly not fresh).
    pub(crate) fn cached_root(&self) -> Result<Node, Errno> {
        if let Ok(c) = CACHE.read() {
            if let Some(r) = &c.root {
                let mut r = r.clone();
                r.fresh = false;
                return Ok(r);
            }
        }
        let root = self.root_node()?;
        if let Ok(mut c) = CACHE.write() {
            if c.generation != UNCACHEABLE {
                c.root = Some(root.clone());
            }
        }
        Ok(root)
    }

    /// The directory `name` in `parent`, if this process knows it.
    pub(crate) fn cached_dir(&self, parent: &Node, name: &[u8]) -> Option<Node> {
        let c = CACHE.read().ok()?;
        let mut n = c.dirs.as_ref()?.get(&join(&parent.rel, name))?.clone();
        n.fresh = false;
        Some(n)
    }

    /// Keeps what a look-up that started in `generation` found out about a
    /// directory (nothing, if the layers changed meanwhile).
    pub(crate) fn remember_dir(&self, node: &Node, generation: u64) {
        if let Ok(mut c) = CACHE.write() {
            if c.generation == UNCACHEABLE || c.generation != generation {
                return;
            }
            let dirs = c.dirs.get_or_insert_with(HashMap::new);
            if dirs.len() >= MAX_ENTRIES {
                dirs.clear();
            }
            dirs.insert(node.rel.clone(), node.clone());
        }
    }
}
