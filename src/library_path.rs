//! The dynamic loader's library path (`LD_LIBRARY_PATH`) in the view. The
//! loader searches its directories itself, unseen by the hooks, so a
//! directory of the view in it would be searched in the empty mount point.
//! A child gets the variable with each such directory replaced by its real
//! copies in the layers, topmost first (the loader tries them in turn, as
//! the merged directory would show its files), and the value it was given
//! in [`env::LIBRARY_PATH_AS_GIVEN`], which the shim puts back before the
//! program's `main`: the loader keeps the search list it read at start, and
//! the program sees its own variable. Libraries named in `LD_PRELOAD` by
//! paths of the view are likewise given to the loader by their real files
//! (and so the program sees those).

use crate::config::env;
use crate::locate::Where;
use crate::lookup::Resolved;
use crate::overlay::Overlay;

impl Overlay {
    /// `value` (an `LD_LIBRARY_PATH`) with its directories of the view
    /// replaced by their real copies; `None` when none lies in the view.
    pub fn real_library_path(&self, value: &[u8]) -> Option<Vec<u8>> {
        let entries = value.split(|&b| b == b':' || b == b';');
        replaced(entries, |entry| self.real_copies(entry))
    }

    /// The real copies of the directory `entry` names, joined with `:`,
    /// when it is a directory of the view (an empty entry is the current
    /// directory, as for the loader; `$ORIGIN` and its kin are left alone).
    fn real_copies(&self, entry: &[u8]) -> Option<Vec<u8>> {
        if entry.contains(&b'$') {
            return None;
        }
        let path = if entry.is_empty() { &b"."[..] } else { entry };
        let Where::Inside(rel) = self.locate(libc::AT_FDCWD, path) else {
            return None;
        };
        let Ok(Resolved::Inside(dir)) = self.resolve(&rel, true) else {
            return None;
        };
        if !dir.is_dir() {
            return None;
        }
        let copies: Vec<Vec<u8>> = (0..self.layers.len())
            .filter(|&l| dir.dirs & (1 << l) != 0)
            .map(|l| self.real_path(l, &dir.rel))
            .collect();
        (!copies.is_empty()).then(|| copies.join(&b':'))
    }

    /// A child's environment entries for the loader's library path: `None`
    /// when `LD_LIBRARY_PATH` (in `envp`) names no directory of the view.
    pub fn library_path_env(&self, envp: &[&[u8]]) -> Option<[Vec<u8>; 2]> {
        let given = envp
            .iter()
            .find_map(|e| e.strip_prefix(b"LD_LIBRARY_PATH="))?;
        let real = self.real_library_path(given)?;
        let entry = |k: &str, v: &[u8]| [k.as_bytes(), b"=", v].concat();
        Some([
            entry("LD_LIBRARY_PATH", &real),
            entry(env::LIBRARY_PATH_AS_GIVEN, given),
        ])
    }
}

impl Overlay {
    /// `value` (an `LD_PRELOAD`) with its libraries named by paths of the
    /// view replaced by their real files: the loader opens them itself,
    /// before any hook runs. `None` when none lies in the view.
    pub fn real_preload(&self, value: &[u8]) -> Option<Vec<u8>> {
        let entries = value
            .split(|&b| b == b':' || b == b' ')
            .filter(|e| !e.is_empty());
        replaced(entries, |entry| self.real_file(entry))
    }

    /// The real file behind `entry`, a path (with a `/`) of a file of the
    /// view; a bare name is searched by the loader, outside.
    fn real_file(&self, entry: &[u8]) -> Option<Vec<u8>> {
        if !entry.contains(&b'/') || entry.contains(&b'$') {
            return None;
        }
        let Where::Inside(rel) = self.locate(libc::AT_FDCWD, entry) else {
            return None;
        };
        match self.resolve(&rel, true) {
            Ok(Resolved::Inside(node)) if !node.is_dir() => {
                Some(self.real_path(node.layer, &node.rel))
            }
            _ => None,
        }
    }
}

/// A loader's list of `entries` with each that `real` maps replaced, joined
/// with `:`; `None` when it maps none.
fn replaced<'a>(
    entries: impl Iterator<Item = &'a [u8]>,
    real: impl Fn(&[u8]) -> Option<Vec<u8>>,
) -> Option<Vec<u8>> {
    let mut changed = false;
    let entries: Vec<Vec<u8>> = entries
        .map(|entry| match real(entry) {
            Some(r) => {
                changed = true;
                r
            }
            None => entry.to_vec(),
        })
        .collect();
    changed.then(|| entries.join(&b':'))
}

/// In a new process, before `main`: puts back the `LD_LIBRARY_PATH` the
/// program was given (the loader has read the real one already).
pub fn restore_library_path() {
    if let Some(given) = std::env::var_os(env::LIBRARY_PATH_AS_GIVEN) {
        std::env::set_var("LD_LIBRARY_PATH", given);
        std::env::remove_var(env::LIBRARY_PATH_AS_GIVEN);
    }
}
