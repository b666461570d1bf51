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
//!
//! A program's own search path (`DT_RUNPATH`, or `DT_RPATH`), which the
//! loader also searches itself, may name directories of the view too: an
//! absolute build directory (CMake writes them), or `$ORIGIN/...` of a
//! program in the view. The loader would look only in the real directory
//! at that path (with an in-place view, the lower layer's: a library rebuilt
//! in the view would not be found, or a stale one would). The real copies of
//! such directories are added to the loader's `LD_LIBRARY_PATH`, after the
//! program's own entries (it is searched before `DT_RUNPATH`), and the
//! program gets its own value back, or its absence
//! ([`env::LIBRARY_PATH_UNSET`]), as above.

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
        self.real_copy_list(entry).map(|copies| copies.join(&b':'))
    }

    /// The real copies of the directory `entry` names, topmost first, when
    /// it is a directory of the view.
    fn real_copy_list(&self, entry: &[u8]) -> Option<Vec<Vec<u8>>> {
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
        (!copies.is_empty()).then_some(copies)
    }

    /// A child's environment entries for the loader's library path, with
    /// `library_dirs` (real directories, `:`-joined) after the program's
    /// own entries, and the value the program is to see: `None` when
    /// `LD_LIBRARY_PATH` (in `envp`) names no directory of the view and
    /// there are no `library_dirs`. Every entry [`is_library_path_entry`]
    /// tells of is to be replaced by these.
    pub fn library_path_env(
        &self,
        envp: &[&[u8]],
        library_dirs: Option<&[u8]>,
    ) -> Option<[Vec<u8>; 2]> {
        let given = envp
            .iter()
            .find_map(|e| e.strip_prefix(b"LD_LIBRARY_PATH="));
        let real = given.and_then(|g| self.real_library_path(g));
        if real.is_none() && library_dirs.is_none() {
            return None;
        }
        let mut value = real
            .or_else(|| given.map(<[u8]>::to_vec))
            .unwrap_or_default();
        if let Some(dirs) = library_dirs {
            // An empty value is ignored by the loader: ":dirs" would add
            // the current directory.
            if !value.is_empty() {
                value.push(b':');
            }
            value.extend_from_slice(dirs);
        }
        let entry = |k: &str, v: &[u8]| [k.as_bytes(), b"=", v].concat();
        Some([
            entry("LD_LIBRARY_PATH", &value),
            match given {
                Some(given) => entry(env::LIBRARY_PATH_AS_GIVEN, given),
                None => entry(env::LIBRARY_PATH_UNSET, b"1"),
            },
        ])
    }

    /// The real directories, `:`-joined, that the loader is to search for
    /// a program whose own library search path is `search` (its
    /// `DT_RUNPATH` or `DT_RPATH`): for each entry that names a directory
    /// of the view, that directory's real copies, topmost first. `$ORIGIN`
    /// is the program's directory as the view names it (`view_dir`, when
    /// the program is in the view; else the real one's); the loader's own
    /// is the directory of `real`, the file it runs. An entry whose only
    /// copy is what the loader would search anyway adds nothing. `None`
    /// when nothing is to be added: the common case, at no cost beyond a
    /// look at each entry.
    pub fn search_path_dirs(
        &self,
        search: &[u8],
        real: &[u8],
        view_dir: Option<&[u8]>,
    ) -> Option<Vec<u8>> {
        let mut origins: Option<(Vec<u8>, Vec<u8>)> = None;
        let mut dirs: Vec<Vec<u8>> = Vec::new();
        for entry in search.split(|&b| b == b':').filter(|e| !e.is_empty()) {
            let (in_view, for_loader) = if entry.contains(&b'$') {
                if origins.is_none() {
                    origins = program_origins(real, view_dir);
                }
                let Some((view_origin, loader_origin)) = &origins else {
                    continue;
                };
                match (
                    expand_origin(entry, view_origin),
                    expand_origin(entry, loader_origin),
                ) {
                    (Some(v), Some(l)) => (v, l),
                    _ => continue,
                }
            } else {
                (entry.to_vec(), entry.to_vec())
            };
            let Some(copies) = self.real_copy_list(&in_view) else {
                continue;
            };
            if copies.len() == 1 && copies[0] == for_loader {
                continue;
            }
            for copy in copies {
                if !dirs.contains(&copy) {
                    dirs.push(copy);
                }
            }
        }
        (!dirs.is_empty()).then(|| dirs.join(&b':'))
    }
}

/// `$ORIGIN` for a program whose real file is `real`, as the view gives it
/// and as the loader does (the directory of the real file, symlinks
/// resolved, as `/proc/self/exe` names it). `None` when unknown.
fn program_origins(real: &[u8], view_dir: Option<&[u8]>) -> Option<(Vec<u8>, Vec<u8>)> {
    let loader = match view_dir {
        // The layers' roots are canonical, and a node's path is free of
        // symlinks.
        Some(_) => parent(real).to_vec(),
        None => parent(&canonical(real)?).to_vec(),
    };
    let view = view_dir.map_or_else(|| loader.clone(), <[u8]>::to_vec);
    Some((view, loader))
}

/// The directory part of the absolute path `path`.
fn parent(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) => b"/",
        Some(i) => &path[..i],
        None => b".",
    }
}

/// The canonical path of the real file `path`, as the kernel names it.
fn canonical(path: &[u8]) -> Option<Vec<u8>> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        crate::sys::cpath(path).as_c_str(),
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let link = format!("/proc/self/fd/{}", rustix::fd::AsRawFd::as_raw_fd(&fd));
    let target = rustix::fs::readlink(link, Vec::new()).ok()?;
    Some(target.into_bytes())
}

/// `entry` with `$ORIGIN` and `${ORIGIN}` replaced by `origin`, as the
/// loader expands them; `None` when it holds another of the loader's
/// tokens (`$LIB`, `$PLATFORM`), or a `$` the loader would refuse.
fn expand_origin(entry: &[u8], origin: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(entry.len() + origin.len());
    let mut rest = entry;
    while let Some(i) = rest.iter().position(|&b| b == b'$') {
        out.extend_from_slice(&rest[..i]);
        let after = &rest[i + 1..];
        let len = if after.starts_with(b"{ORIGIN}") {
            8
        } else if after.starts_with(b"ORIGIN")
            && !after
                .get(6)
                .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_')
        {
            6
        } else {
            return None;
        };
        out.extend_from_slice(origin);
        rest = &after[len..];
    }
    out.extend_from_slice(rest);
    Some(out)
}

/// Is the environment entry `e` one of those [`Overlay::library_path_env`]
/// gives (the loader's variable, or the program's value kept aside)?
pub fn is_library_path_entry(e: &[u8]) -> bool {
    [
        "LD_LIBRARY_PATH",
        env::LIBRARY_PATH_AS_GIVEN,
        env::LIBRARY_PATH_UNSET,
    ]
    .iter()
    .any(|k| env::is_entry(e, k))
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
/// program was given, or removes it when it was given none (the loader has
/// read the real one already).
pub fn restore_library_path() {
    // Each variable read once; the marker removed only when set (removing
    // takes the environment's write lock and scans it, at every start).
    let unset = std::env::var_os(env::LIBRARY_PATH_UNSET).is_some();
    if let Some(given) = std::env::var_os(env::LIBRARY_PATH_AS_GIVEN) {
        std::env::set_var("LD_LIBRARY_PATH", given);
        std::env::remove_var(env::LIBRARY_PATH_AS_GIVEN);
    } else if unset {
        std::env::remove_var("LD_LIBRARY_PATH");
    }
    if unset {
        std::env::remove_var(env::LIBRARY_PATH_UNSET);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_is_expanded_as_the_loader_does() {
        let x =
            |e: &str| expand_origin(e.as_bytes(), b"/v/b").map(|v| String::from_utf8(v).unwrap());
        assert_eq!(x("$ORIGIN/lib").as_deref(), Some("/v/b/lib"));
        assert_eq!(x("${ORIGIN}/../lib").as_deref(), Some("/v/b/../lib"));
        assert_eq!(x("$ORIGIN").as_deref(), Some("/v/b"));
        assert_eq!(x("/x/$ORIGIN-y/$ORIGIN").as_deref(), Some("/x//v/b-y//v/b"));
        assert_eq!(x("/plain").as_deref(), Some("/plain"));
        assert_eq!(x("$ORIGINAL/lib"), None);
        assert_eq!(x("$LIB/x"), None);
        assert_eq!(x("${PLATFORM}"), None);
        assert_eq!(x("$"), None);
    }

    #[test]
    fn library_path_entries_are_known_by_exact_name() {
        assert!(is_library_path_entry(b"LD_LIBRARY_PATH=/x"));
        assert!(is_library_path_entry(b"OVL_LD_LIBRARY_PATH="));
        assert!(is_library_path_entry(b"OVL_LD_LIBRARY_PATH_UNSET=1"));
        assert!(!is_library_path_entry(b"LD_LIBRARY_PATHS=/x"));
        assert!(!is_library_path_entry(b"LD_LIBRARY_PATH"));
    }

    #[test]
    fn parent_of_paths() {
        assert_eq!(parent(b"/a/b/c"), b"/a/b");
        assert_eq!(parent(b"/c"), b"/");
    }
}
