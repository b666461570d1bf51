//! `stat` of a path whose directory this process already knows, made
//! without a walk, an allocation or a [`Node`](crate::lookup::Node): the
//! shape of nearly every call of a tree walker, a build or `git status`.
//! Anything else (a symlink to follow, `..`, a directory not seen yet, a
//! path too long for the buffer) is left to the full look-up.

use crate::lookup::{is_clean, split_last, Found, Slot};
use crate::overlay::Overlay;
use rustix::fs::{FileType, Stat};
use rustix::io::Errno;
use std::ffi::CStr;
use std::mem::MaybeUninit;

/// Longest path in the view (NUL included) the quick path builds.
const CAPACITY: usize = 256;

/// Room on the stack for a path in the view: never zeroed first nor
/// moved (a call made by the thousand would pay for both).
type Room = MaybeUninit<[u8; CAPACITY]>;

/// `base/path` as a C string in `room`; `None` when too long, or when
/// `base` holds a NUL (it cannot: it is made of C strings).
fn join<'r>(room: &'r mut Room, base: &[u8], path: &CStr) -> Option<&'r CStr> {
    let path = path.to_bytes();
    let len = base.len() + 1 + path.len();
    if len >= CAPACITY || base.contains(&0) {
        return None;
    }
    let dst = room.as_mut_ptr().cast::<u8>();
    // SAFETY: len + 1 <= CAPACITY bytes are written, all within `room`; the
    // sources are live slices that do not overlap it. What is read back is
    // what was written: the bytes of a C string and of a NUL-free base, a
    // '/', and the final NUL.
    unsafe {
        std::ptr::copy_nonoverlapping(base.as_ptr(), dst, base.len());
        dst.add(base.len()).write(b'/');
        std::ptr::copy_nonoverlapping(path.as_ptr(), dst.add(base.len() + 1), path.len());
        dst.add(len).write(0);
        Some(CStr::from_bytes_with_nul_unchecked(
            std::slice::from_raw_parts(dst, len + 1),
        ))
    }
}

/// The last `len` bytes of `s` (and its NUL): a C string too.
fn tail(s: &CStr, len: usize) -> &CStr {
    let all = s.to_bytes_with_nul();
    // SAFETY: a suffix of a C string ends with its NUL and holds no other.
    unsafe { CStr::from_bytes_with_nul_unchecked(&all[all.len() - 1 - len..]) }
}

impl Overlay {
    /// `stat` (`lstat` unless `follow`) of `path`, relative to the current
    /// directory or absolute, made in `out` when the quick path applies:
    /// the `stat`, and whether the view reports a merged directory (one
    /// link). `None` otherwise.
    pub fn quick_stat<'s>(
        &self,
        dirfd: i32,
        path: &CStr,
        follow: bool,
        out: &'s mut MaybeUninit<Stat>,
    ) -> Option<Result<(&'s Stat, bool), Errno>> {
        let bytes = path.to_bytes();
        let mut room = Room::uninit();
        let rel = if bytes.first() == Some(&b'/') {
            let rest = self.inside(bytes)?;
            if !is_clean(rest) {
                return None;
            }
            tail(path, rest.len())
        } else if dirfd == libc::AT_FDCWD && is_clean(bytes) {
            let room = &mut room;
            // At the view's root (the usual current directory of a build),
            // the caller's string is the path in the view as it stands.
            self.with_cwd_rel(move |cwd| match cwd? {
                [] => Some(path),
                base => join(room, base, path),
            })?
        } else {
            return None;
        };
        self.quick_stat_rel(rel, follow, out)
    }

    fn quick_stat_rel<'s>(
        &self,
        rel: &CStr,
        follow: bool,
        out: &'s mut MaybeUninit<Stat>,
    ) -> Option<Result<(&'s Stat, bool), Errno>> {
        let (parent, _) = split_last(rel.to_bytes());
        let (parent_dirs, generation) = self.known_dir_layers(parent)?;
        let (layer, dirs, stat) =
            match self.find_in_layers_into(parent_dirs, rel, parent.len(), out) {
                Ok(Slot::Taken(found)) => found,
                Ok(Slot::Free { .. }) => return Some(Err(Errno::NOENT)),
                Err(e) => return Some(Err(e)),
            };
        let merged = match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink if follow => return None,
            FileType::Directory => {
                let found = Found {
                    layer,
                    stat: *stat,
                    dirs,
                };
                let merged = found.is_merged();
                self.remember_dir(&found.into_node(rel.to_bytes().to_vec()), generation);
                merged
            }
            _ => false,
        };
        self.report_identity(layer, rel.to_bytes(), stat);
        Some(Ok((stat, merged)))
    }
}
