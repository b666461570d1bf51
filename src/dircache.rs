//! What this process learned of the layers' directories: for a directory of
//! the view, which layers hold it. Kept while the overlay's generation
//! (see `generation`) is unchanged, so a path whose directories were seen
//! before resolves with one system call, on its last component.

use crate::generation::UNCACHEABLE;
use crate::lookup::{join, LayerSet, Node};
use crate::overlay::Overlay;
use crate::padded::Padded;
use rustix::io::Errno;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::RwLock;

/// Directories kept at most (about 100 bytes each), then the cache restarts.
const MAX_ENTRIES: usize = 8192;

struct DirCache {
    generation: u64,
    root: Option<Node>,
    dirs: Option<HashMap<Vec<u8>, Node>>,
}

/// The directory a thread looked in last, as the cache knew it: most
/// look-ups are in the same directory as the one before, and this answers
/// them without taking the cache's lock (whose line would bounce between
/// the cores of a threaded program).
struct LastDir {
    generation: u64,
    rel: Vec<u8>,
    dirs: LayerSet,
}

thread_local! {
    static LAST_DIR: RefCell<LastDir> = const {
        RefCell::new(LastDir { generation: UNCACHEABLE, rel: Vec::new(), dirs: 0 })
    };
}

static CACHE: Padded<RwLock<DirCache>> = Padded(RwLock::new(DirCache {
    generation: UNCACHEABLE,
    root: None,
    dirs: None,
}));

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

    /// The layers of the directory at `rel` (symlink-free; `""`: the root)
    /// and the generation they hold in, if this process knows them now.
    pub(crate) fn known_dir_layers(&self, rel: &[u8]) -> Option<(LayerSet, u64)> {
        let g = self.generation();
        if g == UNCACHEABLE {
            return None;
        }
        let memo = LAST_DIR
            .try_with(|last| {
                let last = last.try_borrow().ok()?;
                (last.generation == g && last.rel == rel).then_some(last.dirs)
            })
            .ok()
            .flatten();
        if let Some(dirs) = memo {
            return Some((dirs, g));
        }
        let dirs = {
            let c = CACHE.read().ok()?;
            if c.generation != g {
                return None;
            }
            let dir = if rel.is_empty() {
                c.root.as_ref()?
            } else {
                c.dirs.as_ref()?.get(rel)?
            };
            dir.dirs
        };
        let _ = LAST_DIR.try_with(|last| {
            if let Ok(mut last) = last.try_borrow_mut() {
                last.generation = g;
                last.rel.clear();
                last.rel.extend_from_slice(rel);
                last.dirs = dirs;
            }
        });
        Some((dirs, g))
    }

    /// The directory `name` in `parent`, if this process knows it.
    pub(crate) fn cached_dir(&self, parent: &Node, name: &[u8]) -> Option<Node> {
        let c = CACHE.read().ok()?;
        c.dirs.as_ref()?.get(&join(&parent.rel, name)).cloned()
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
            let kept = Node {
                fresh: false,
                ..node.clone()
            };
            dirs.insert(node.rel.clone(), kept);
        }
    }
}
