//! `stat` of a path whose directory this process already knows, made
//! without a walk, an allocation or a [`Node`](crate::lookup::Node): the
//! shape of nearly every call of a tree walker, a build or `git status`.
//! Anything else (a symlink to follow, `..`, a directory not seen yet, a
//! path too long for the buffer) is left to the full look-up.

use crate::lookup::{is_clean, split_last, Slot};
use crate::overlay::Overlay;
use rustix::fs::{FileType, Stat};
use rustix::io::Errno;
use std::ffi::CStr;

/// Longest path in the view (NUL included) the quick path builds.
const CAPACITY: usize = 256;

/// What the view reports for a path.
pub struct QuickStat {
    pub stat: Stat,
    /// A directory made of several layers: the view reports one link.
    pub merged: bool,
}

/// A path in the view, NUL-terminated, on the stack.
struct StackPath {
    bytes: [u8; CAPACITY],
    len: usize,
}

impl StackPath {
    /// `base/path` (or `path` when `base` is empty); `None` when too long.
    fn joined(base: &[u8], path: &[u8]) -> Option<StackPath> {
        let sep = usize::from(!base.is_empty());
        let len = base.len() + sep + path.len();
        if len >= CAPACITY {
            return None;
        }
        let mut b = StackPath {
            bytes: [0; CAPACITY],
            len,
        };
        b.bytes[..base.len()].copy_from_slice(base);
        if sep == 1 {
            b.bytes[base.len()] = b'/';
        }
        b.bytes[base.len() + sep..len].copy_from_slice(path);
        Some(b)
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// `None` if a NUL came in with the caller's path (it cannot: C strings).
    fn as_c_str(&self) -> Option<&CStr> {
        CStr::from_bytes_until_nul(&self.bytes[..=self.len])
            .ok()
            .filter(|c| c.to_bytes().len() == self.len)
    }
}

impl Overlay {
    /// `stat` (`lstat` unless `follow`) of `path`, relative to the current
    /// directory or absolute, when the quick path applies; `None` otherwise.
    pub fn quick_stat(
        &self,
        dirfd: i32,
        path: &[u8],
        follow: bool,
    ) -> Option<Result<QuickStat, Errno>> {
        let rel = if path.first() == Some(&b'/') {
            let rest = self.inside(path)?;
            if !is_clean(rest) {
                return None;
            }
            StackPath::joined(b"", rest)?
        } else if dirfd == libc::AT_FDCWD && is_clean(path) {
            self.with_cwd_rel(|cwd| StackPath::joined(cwd?, path))?
        } else {
            return None;
        };
        self.quick_stat_rel(&rel, follow)
    }

    fn quick_stat_rel(&self, rel: &StackPath, follow: bool) -> Option<Result<QuickStat, Errno>> {
        let (parent, _) = split_last(rel.as_bytes());
        let (parent_dirs, generation) = self.known_dir_layers(parent)?;
        let found = match self.find_in_layers(parent_dirs, rel.as_c_str()?, parent.len()) {
            Ok(Slot::Taken(f)) => f,
            Ok(Slot::Free { .. }) => return Some(Err(Errno::NOENT)),
            Err(e) => return Some(Err(e)),
        };
        match FileType::from_raw_mode(found.stat.st_mode) {
            FileType::Symlink if follow => return None,
            FileType::Directory => {
                let answer = QuickStat {
                    stat: found.stat,
                    merged: found.is_merged(),
                };
                self.remember_dir(&found.into_node(rel.as_bytes().to_vec()), generation);
                return Some(Ok(answer));
            }
            _ => {}
        }
        Some(Ok(QuickStat {
            stat: found.stat,
            merged: false,
        }))
    }
}
