//! Path resolution in the merged view: upper first, whiteouts hide, opaque
//! directories stop the merge, directories present in several layers merge,
//! symlinks are followed in the view (40 at most, then `ELOOP`), and `..`
//! after a symlink is physical, as in the kernel.

use crate::overlay::{LayerIdx, Overlay};
use crate::scan;
use crate::sys::cpath;
use crate::whiteout::{
    is_chardev_whiteout, is_opaque, is_whiteout, is_xattr_whiteout, marks_xattr_whiteouts,
};
use rustix::fs::{FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use std::ffi::CStr;
use std::mem::MaybeUninit;

/// Set of layers, bit `i` for layer `i`.
pub type LayerSet = u64;

/// Symlinks followed in one resolution before `ELOOP`, as the kernel.
pub const MAX_SYMLINKS: u32 = 40;

/// An object of the merged view.
#[derive(Clone)]
pub struct Node {
    /// Normalized path in the view, relative to the target (`""` = its root).
    pub rel: Vec<u8>,
    /// Topmost layer holding the object: the one the view shows.
    pub layer: LayerIdx,
    /// `lstat` of the object in that layer.
    pub stat: Stat,
    /// For directories: the layers whose directories merge here, topmost first.
    pub dirs: LayerSet,
    /// `stat` was read by this look-up (not remembered from an earlier one).
    pub fresh: bool,
}

impl Node {
    pub fn file_type(&self) -> FileType {
        FileType::from_raw_mode(self.stat.st_mode)
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == FileType::Directory
    }
    /// A directory built from more than one layer.
    pub fn is_merged(&self) -> bool {
        self.dirs.count_ones() > 1
    }
    /// The layers of this directory, topmost first.
    pub fn dir_layers(&self) -> impl Iterator<Item = LayerIdx> {
        layers_of(self.dirs)
    }
}

/// What a look-up found, before it is given its path and becomes a [`Node`].
pub(crate) struct Found {
    pub layer: LayerIdx,
    pub stat: Stat,
    pub dirs: LayerSet,
}

impl Found {
    pub(crate) fn into_node(self, rel: Vec<u8>) -> Node {
        Node {
            rel,
            layer: self.layer,
            stat: self.stat,
            dirs: self.dirs,
            fresh: true,
        }
    }

    pub(crate) fn is_merged(&self) -> bool {
        self.dirs.count_ones() > 1
    }
}

/// The layers of a set, topmost first.
pub fn layers_of(set: LayerSet) -> impl Iterator<Item = LayerIdx> {
    let mut rest = set;
    std::iter::from_fn(move || {
        (rest != 0).then(|| {
            let l = rest.trailing_zeros() as LayerIdx;
            rest &= rest - 1;
            l
        })
    })
}

/// A relative path without `.`, `..`, empty components or a trailing `/`:
/// its text is the path of the object it names, if no component is a symlink.
pub(crate) fn is_clean(path: &[u8]) -> bool {
    match (path.first(), path.last()) {
        (None, _) | (Some(b'/'), _) | (_, Some(b'/')) => false,
        // The usual path, no name in it starting with '.', takes one pass.
        (Some(&first), _) if first != b'.' && !scan::slash_before_slash_or_dot(path) => true,
        _ => path
            .split(|&b| b == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b".."),
    }
}

/// A name looked up (before creating it, say).
pub enum Slot<T = Node> {
    /// The view shows this object there.
    Taken(T),
    /// The view has no such name; `whiteout`: the upper layer holds a
    /// whiteout there, which a creation replaces.
    Free { whiteout: bool },
}

impl<T> Slot<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Slot<U> {
        match self {
            Slot::Taken(t) => Slot::Taken(f(t)),
            Slot::Free { whiteout } => Slot::Free { whiteout },
        }
    }
}

/// Where a path leads.
pub enum Resolved {
    /// To an object of the view.
    Inside(Node),
    /// Out of the view (through `..` at its root or an absolute symlink):
    /// this absolute path, to be used as it is.
    Outside(Vec<u8>),
}

/// Joins a relative path in the view and a name.
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    // Room for the NUL a look-up appends.
    let mut v = Vec::with_capacity(dir.len() + 2 + name.len());
    v.extend_from_slice(dir);
    if !dir.is_empty() {
        v.push(b'/');
    }
    v.extend_from_slice(name);
    v
}

/// Does `path` end in `/` after a name (`x/`, not `/` alone)? Its last name
/// must then be a directory, or be made one: the kernel's rules for each
/// call that creates, removes or renames by such a path.
pub fn ends_in_slash(path: &[u8]) -> bool {
    path.len() > 1 && path.ends_with(b"/")
}

/// Does `path` end as only a directory's path may (`x/`, `x/.`, `.`)? A
/// final symlink is then followed, and anything else fails with `ENOTDIR`.
fn names_a_directory(path: &[u8]) -> bool {
    path.ends_with(b"/") || path == b"." || path.ends_with(b"/.")
}

/// How a path with no last name ends; the kernel tells them apart (`rmdir
/// x/.` fails with `EINVAL`, `rmdir x/..` with `ENOTEMPTY`, `rmdir /` with
/// `EBUSY`), and none of them names an entry of a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoName {
    Dot,
    DotDot,
    Root,
}

/// The [`NoName`] a path as given ends in (trailing slashes aside), if any.
pub fn no_name(path: &[u8]) -> Option<NoName> {
    let Some(end) = path.iter().rposition(|&b| b != b'/') else {
        return (!path.is_empty()).then_some(NoName::Root);
    };
    match split_last(&path[..=end]).1 {
        b"." => Some(NoName::Dot),
        b".." => Some(NoName::DotDot),
        _ => None,
    }
}

/// Splits a relative path in the view into its directory and last name.
pub fn split_last(rel: &[u8]) -> (&[u8], &[u8]) {
    match scan::last_slash(rel) {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&[], rel),
    }
}

/// Could this object be a whiteout of some format (worth a closer look)?
pub(crate) fn may_hide(st: &Stat) -> bool {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::CharacterDevice => st.st_rdev == 0,
        FileType::Symlink => st.st_size as usize == crate::whiteout::SEED_WHITEOUT_TARGET.len(),
        FileType::RegularFile => st.st_size == 0,
        _ => false,
    }
}

/// A name in a layer directory this process may read and not search.
pub(crate) enum Listed {
    Absent,
    Whiteout,
    Unknown,
}

fn is_absent(e: Errno) -> bool {
    e == Errno::NOENT || e == Errno::NOTDIR
}

/// A path still to walk: components are taken from the front.
struct Pending {
    comps: Vec<Vec<u8>>, // reversed: the next component is last
}

impl Pending {
    fn new(path: &[u8]) -> Pending {
        let mut p = Pending { comps: Vec::new() };
        p.push_front(path);
        p
    }
    fn push_front(&mut self, path: &[u8]) {
        let parts: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        self.comps
            .extend(parts.into_iter().rev().map(<[u8]>::to_vec));
    }
    fn next(&mut self) -> Option<Vec<u8>> {
        self.comps.pop()
    }
    fn is_empty(&self) -> bool {
        self.comps.is_empty()
    }
    fn rest(&self) -> Vec<u8> {
        let mut v = Vec::new();
        for c in self.comps.iter().rev() {
            v.push(b'/');
            v.extend_from_slice(c);
        }
        v
    }
}

impl Overlay {
    /// The root of the view: every layer's root merges there.
    pub fn root_node(&self) -> Result<Node, Errno> {
        let stat = self.layers[0].root_stat()?;
        let all = if self.layers.len() >= 64 {
            u64::MAX
        } else {
            (1u64 << self.layers.len()) - 1
        };
        Ok(Node {
            rel: Vec::new(),
            layer: 0,
            stat,
            dirs: all,
            fresh: true,
        })
    }

    /// Looks `name` up in the directory `parent`: `None` when the view has no
    /// such name (absent everywhere, or hidden by a whiteout).
    pub fn lookup_child(&self, parent: &Node, name: &[u8]) -> Result<Option<Node>, Errno> {
        self.lookup_in(parent.dirs, join(&parent.rel, name), parent.rel.len())
    }

    /// Looks `name` up in `parent` before creating it: what the view shows
    /// there, or whether the upper layer holds a whiteout that hides it.
    pub fn lookup_slot(&self, parent: &Node, name: &[u8]) -> Result<Slot, Errno> {
        self.look(parent.dirs, join(&parent.rel, name), parent.rel.len())
    }

    /// Looks up `rel`, whose directory (its first `parent_len` bytes) is
    /// made of the layers `parent_dirs`.
    fn lookup_in(
        &self,
        parent_dirs: LayerSet,
        rel: Vec<u8>,
        parent_len: usize,
    ) -> Result<Option<Node>, Errno> {
        Ok(match self.look(parent_dirs, rel, parent_len)? {
            Slot::Taken(node) => Some(node),
            Slot::Free { .. } => None,
        })
    }

    /// The look-up of `lookup_in`, telling also what hid the name.
    fn look(&self, parent_dirs: LayerSet, rel: Vec<u8>, parent_len: usize) -> Result<Slot, Errno> {
        let rel = std::ffi::CString::new(rel).map_err(|_| Errno::INVAL)?;
        let slot = self.find_in_layers(parent_dirs, &rel, parent_len)?;
        Ok(slot.map(|f| f.into_node(rel.into_bytes())))
    }

    /// The heart of a look-up, without allocating: which layer shows `rel`
    /// (whose directory, its first `parent_len` bytes, is made of the layers
    /// `parent_dirs`), its `lstat` there, and the layers that merge if it is
    /// a directory; or, when the view has no such name (absent everywhere,
    /// or hidden by a whiteout), whether a whiteout in upper hides it.
    pub(crate) fn find_in_layers(
        &self,
        parent_dirs: LayerSet,
        rel: &CStr,
        parent_len: usize,
    ) -> Result<Slot<Found>, Errno> {
        let mut stat = MaybeUninit::uninit();
        let slot = self.find_in_layers_into(parent_dirs, rel, parent_len, &mut stat)?;
        Ok(slot.map(|(layer, dirs, stat)| Found {
            layer,
            stat: *stat,
            dirs,
        }))
    }

    /// [`Overlay::find_in_layers`], leaving the `lstat` of what the view
    /// shows in `stat` (the quick path's answer is not moved about): the
    /// layer that shows it, the layers that merge if it is a directory, and
    /// the `lstat`.
    pub(crate) fn find_in_layers_into<'s>(
        &self,
        parent_dirs: LayerSet,
        rel: &CStr,
        parent_len: usize,
        stat: &'s mut MaybeUninit<Stat>,
    ) -> Result<Slot<(LayerIdx, LayerSet, &'s mut Stat)>, Errno> {
        let rel_bytes = rel.to_bytes();
        let parent_rel = &rel_bytes[..parent_len];
        let mut found: Option<LayerIdx> = None;
        let mut below = MaybeUninit::uninit();
        let mut dirs: LayerSet = 0;
        let mut upper_whiteout = false;
        for l in layers_of(parent_dirs) {
            // Until something is found, each `lstat` is made in the caller's
            // buffer: the answer is not copied about.
            let buf = if found.is_none() {
                &mut *stat
            } else {
                &mut below
            };
            let st = match self.layers[l].lstat_into(rel, buf) {
                Ok(st) => st,
                Err(e) if is_absent(e) => continue,
                Err(Errno::ACCESS) => {
                    match self.listed_in_unsearchable(l, parent_dirs, rel_bytes, parent_len) {
                        Some(Listed::Absent) => continue,
                        Some(Listed::Whiteout) => break,
                        _ => return Err(Errno::ACCESS),
                    }
                }
                Err(e) => return Err(e),
            };
            let bottom = self.is_bottom(l);
            let real = || cpath(&self.real_path(l, rel_bytes));
            // The bottom layer hides by the kernel's own whiteouts only: a
            // look at the `lstat`, no system call.
            let hidden = if bottom {
                is_chardev_whiteout(st)
            } else {
                may_hide(st) && self.hides(l, &real(), st, parent_rel)
            };
            if hidden {
                upper_whiteout = !self.is_lower_layer(l);
                break;
            }
            let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
            if found.is_none() {
                found = Some(l);
            }
            if !is_dir {
                break;
            }
            dirs |= 1 << l;
            if !bottom && is_opaque(&real()) {
                break;
            }
        }
        let Some(layer) = found else {
            return Ok(Slot::Free {
                whiteout: upper_whiteout,
            });
        };
        // SAFETY: the `lstat` of `layer`, the first layer found, was made in
        // `stat`, which no later layer's wrote over.
        let stat = unsafe { stat.assume_init_mut() };
        // A non-directory found under a directory ends the merge; only the
        // directories above it count.
        let dirs = if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
            dirs
        } else {
            0
        };
        Ok(Slot::Taken((layer, dirs, stat)))
    }

    /// What the directory of `rel` (its first `parent_len` bytes, a
    /// directory of the view made of the layers `parent_dirs`) in the lower
    /// layer `l`, which refused this process a look (`EACCES`), lists under
    /// `rel`'s last name. `None` where `l` is the layer that shows the
    /// directory: its refusal is the view's own (the view's mode is its
    /// mode). Below it the kernel looks with the mounter's credentials; a
    /// directory of a user's own lower layer that they may read and not
    /// search (mode 400) still tells by its listing whether the name is
    /// absent, or a device (taken for a whiteout, as a listing takes it:
    /// see `readdir`'s `hidden_entry`). Anything else there cannot be
    /// looked at.
    pub(crate) fn listed_in_unsearchable(
        &self,
        l: LayerIdx,
        parent_dirs: LayerSet,
        rel: &[u8],
        parent_len: usize,
    ) -> Option<Listed> {
        if l == parent_dirs.trailing_zeros() as LayerIdx {
            return None;
        }
        Some(self.listed_name(l, rel, parent_len))
    }

    /// [`Overlay::listed_in_unsearchable`]'s look at the listing.
    fn listed_name(&self, l: LayerIdx, rel: &[u8], parent_len: usize) -> Listed {
        let name = &rel[parent_len..];
        let name = name.strip_prefix(b"/").unwrap_or(name);
        if !self.is_lower_layer(l) || name.is_empty() || name.contains(&b'/') {
            return Listed::Unknown;
        }
        let dir = cpath(&self.real_path(l, &rel[..parent_len]));
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let Ok(fd) = rustix::fs::open(dir.as_c_str(), flags, Mode::empty()) else {
            return Listed::Unknown;
        };
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut entries = rustix::fs::RawDir::new(&fd, &mut buf);
        while let Some(entry) = entries.next() {
            let Ok(entry) = entry else {
                return Listed::Unknown;
            };
            if entry.file_name().to_bytes() == name {
                return match entry.file_type() {
                    FileType::CharacterDevice => Listed::Whiteout,
                    _ => Listed::Unknown,
                };
            }
        }
        Listed::Absent
    }

    /// Is the object at `path` in layer `l` (in the directory `dir_rel`) a
    /// whiteout, in any of the formats? In the bottom layer (a former upper
    /// layer may be one; the kernel hides a name by a whiteout in any
    /// layer) only the kernel's character device 0/0 counts: the seed's
    /// symlink is no kernel format, and xattr whiteouts are not looked for
    /// there (each empty file would cost a look at its xattrs).
    pub fn hides(&self, l: LayerIdx, path: &std::ffi::CStr, st: &Stat, dir_rel: &[u8]) -> bool {
        if self.is_bottom(l) {
            return is_chardev_whiteout(st);
        }
        is_whiteout(path, st)
            || (self.is_lower_layer(l)
                && is_xattr_whiteout(path, st, || {
                    marks_xattr_whiteouts(&cpath(&self.real_path(l, dir_rel)))
                }))
    }

    /// Resolves `path`, relative to the view's root unless absolute (a
    /// virtual absolute path), following a final symlink when `follow`.
    pub fn resolve(&self, path: &[u8], follow: bool) -> Result<Resolved, Errno> {
        if let Some(r) = self.resolve_in_known_dir(path, follow) {
            return r;
        }
        self.walk(path, follow, false).map(|(r, _)| r)
    }

    /// The common case, without a walk: a clean path whose directory this
    /// process knows (the cache holds directories by their symlink-free
    /// path, so a hit means every component is a directory); one look-up,
    /// of the last name. `None`: walk instead.
    fn resolve_in_known_dir(&self, path: &[u8], follow: bool) -> Option<Result<Resolved, Errno>> {
        if !is_clean(path) {
            return None;
        }
        let (parent, _) = split_last(path);
        let (parent_dirs, generation) = self.known_dir_layers(parent)?;
        let mut rel = Vec::with_capacity(path.len() + 1); // and the NUL
        rel.extend_from_slice(path);
        let node = match self.lookup_in(parent_dirs, rel, parent.len()) {
            Ok(Some(node)) => node,
            Ok(None) => return Some(Err(Errno::NOENT)),
            Err(e) => return Some(Err(e)),
        };
        match node.file_type() {
            FileType::Symlink if follow => None,
            FileType::Directory => {
                self.remember_dir(&node, generation);
                Some(Ok(Resolved::Inside(node)))
            }
            _ => Some(Ok(Resolved::Inside(node))),
        }
    }

    /// Resolves everything but the last component of `path`, which must be a
    /// name: returns the parent directory and that name. Used by calls that
    /// create or remove a name.
    pub fn resolve_parent(&self, path: &[u8]) -> Result<ParentOf, Errno> {
        self.resolve_parent_as(path, no_name(path))
    }

    /// [`Overlay::resolve_parent`] of `path`, which the caller gave ending as
    /// `ending` says (its `.` or `..` may have been folded away since).
    pub fn resolve_parent_as(
        &self,
        path: &[u8],
        ending: Option<NoName>,
    ) -> Result<ParentOf, Errno> {
        if let Some(kind) = ending {
            return self.resolve_no_name(path, kind);
        }
        match self.walk(path, true, true)? {
            (Resolved::Inside(dir), Some(name)) => Ok(ParentOf::Inside(dir, name)),
            (Resolved::Inside(node), None) => Ok(ParentOf::Special(node, NoName::Root)),
            (Resolved::Outside(p), _) => Ok(ParentOf::Outside(p)),
        }
    }

    /// A path with no last name names a directory as a whole. The kernel
    /// judges such a call by the directory the last component is in (the
    /// `x` of `x/..`): within the view, the answer depends on the ending
    /// alone; outside, the real call is given the ending again.
    fn resolve_no_name(&self, path: &[u8], kind: NoName) -> Result<ParentOf, Errno> {
        let within = match kind {
            NoName::DotDot => {
                let end = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
                split_last(&path[..end]).0
            }
            NoName::Dot | NoName::Root => path,
        };
        let dir = match self.walk(within, true, false)? {
            (Resolved::Inside(dir), _) if dir.is_dir() => dir,
            (Resolved::Inside(_), _) => return Err(Errno::NOTDIR),
            (Resolved::Outside(mut p), _) => {
                p.extend_from_slice(if kind == NoName::DotDot {
                    b"/.."
                } else {
                    b"/."
                });
                return Ok(ParentOf::Outside(p));
            }
        };
        if kind != NoName::DotDot {
            return Ok(ParentOf::Special(dir, kind));
        }
        // The directory named is the one above; above the view's root it
        // is outside, where no call made by this name acts on it.
        Ok(match self.walk(path, true, false)? {
            (Resolved::Inside(up), _) => ParentOf::Special(up, kind),
            (Resolved::Outside(_), _) => ParentOf::Special(dir, kind),
        })
    }

    fn walk(
        &self,
        path: &[u8],
        follow: bool,
        stop_before_last: bool,
    ) -> Result<(Resolved, Option<Vec<u8>>), Errno> {
        let mut pending = Pending::new(b"");
        let generation = self.validate_cache();
        let mut cur = self.cached_root()?;
        let mut stack: Vec<Node> = Vec::new();
        let mut links = 0;
        let must_be_dir = !stop_before_last && names_a_directory(path);
        self.splice(path, &mut pending, &mut cur, &mut stack)?;
        while let Some(comp) = pending.next() {
            let last = pending.is_empty();
            if comp == b"." {
                // As the kernel: `.` is looked up in `cur`, which must be searchable.
                self.may_search_in(&cur)?;
                continue;
            }
            if comp == b".." {
                self.may_search_in(&cur)?;
                match stack.pop() {
                    Some(parent) => cur = parent,
                    None => {
                        // Out of the view; but a path like `../view/x` comes back in.
                        let out = self.outside_of_root(&pending);
                        match self.locate_abs(&out) {
                            crate::locate::Where::Inside(rest) => {
                                pending = Pending::new(&rest);
                                cur = self.cached_root()?;
                            }
                            crate::locate::Where::Fails(e) => return Err(e),
                            _ => return Ok((Resolved::Outside(out), None)),
                        }
                    }
                }
                continue;
            }
            if last && stop_before_last {
                return Ok((Resolved::Inside(cur), Some(comp)));
            }
            let found = if last {
                None
            } else {
                self.cached_dir(&cur, &comp)
            };
            let child = match found
                .map_or_else(|| self.lookup_child(&cur, &comp), |n| Ok(Some(n)))?
            {
                Some(c) => c,
                None if last && stop_before_last => return Ok((Resolved::Inside(cur), Some(comp))),
                None => return Err(Errno::NOENT),
            };
            match child.file_type() {
                FileType::Symlink if !last || follow || must_be_dir => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(Errno::LOOP);
                    }
                    let real = cpath(&self.real_path(child.layer, &child.rel));
                    let target =
                        rustix::fs::readlinkat(rustix::fs::CWD, real.as_c_str(), Vec::new())?;
                    if let Some(out) =
                        self.splice(target.as_bytes(), &mut pending, &mut cur, &mut stack)?
                    {
                        return Ok((Resolved::Outside(out), None));
                    }
                }
                FileType::Directory => {
                    if child.fresh {
                        self.remember_dir(&child, generation);
                    }
                    stack.push(std::mem::replace(&mut cur, child));
                }
                _ if last => {
                    if must_be_dir {
                        return Err(Errno::NOTDIR);
                    }
                    return Ok((Resolved::Inside(child), None));
                }
                _ => return Err(Errno::NOTDIR),
            }
        }
        Ok((Resolved::Inside(cur), None))
    }

    /// Puts `target` (a path or a symlink's target) in front of the pending
    /// components. An absolute target restarts at the root of the view, or
    /// leaves it: then the absolute path outside is returned.
    fn splice(
        &self,
        target: &[u8],
        pending: &mut Pending,
        cur: &mut Node,
        stack: &mut Vec<Node>,
    ) -> Result<Option<Vec<u8>>, Errno> {
        if target.first() == Some(&b'/') {
            let clean = crate::overlay::clean_abs(target);
            match self.inside(&clean) {
                Some(rest) => {
                    let rest = rest.to_vec();
                    *cur = self.cached_root()?;
                    stack.clear();
                    pending.push_front(&rest);
                }
                None => {
                    let mut out = clean;
                    out.extend_from_slice(&pending.rest());
                    return Ok(Some(out));
                }
            }
        } else {
            pending.push_front(target);
        }
        Ok(None)
    }

    /// The real path reached by `..` at the root of the view, followed by the
    /// components still pending.
    fn outside_of_root(&self, pending: &Pending) -> Vec<u8> {
        let (parent, _) = split_last(&self.target);
        let mut out = if parent.is_empty() {
            b"/".to_vec()
        } else {
            parent.to_vec()
        };
        let rest = pending.rest();
        if out == b"/" && !rest.is_empty() {
            out.clear();
        }
        out.extend_from_slice(&rest);
        out
    }
}

/// The parent of a name about to be created or removed.
pub enum ParentOf {
    /// The directory of the view, and the name in it.
    Inside(Node, Vec<u8>),
    /// The path has no last name (it ends in `.` or `..`, or is the view's
    /// root): the directory it names, and how it ended.
    Special(Node, NoName),
    /// The path leads out of the view.
    Outside(Vec<u8>),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean_by_definition(path: &[u8]) -> bool {
        !path.is_empty()
            && path
                .split(|&b| b == b'/')
                .all(|c| !c.is_empty() && c != b"." && c != b"..")
    }

    /// Every path of up to 7 bytes over `/`, `.` and `a`, and each of them
    /// padded on either side to cross the eight-byte windows.
    #[test]
    fn is_clean_agrees_with_its_definition() {
        let alphabet = [b'/', b'.', b'a'];
        let mut paths = vec![Vec::new()];
        for _ in 0..7 {
            let longer: Vec<Vec<u8>> = paths
                .iter()
                .filter(|p| p.len() == paths.last().map_or(0, Vec::len))
                .flat_map(|p| alphabet.iter().map(move |&b| [p.as_slice(), &[b]].concat()))
                .collect();
            paths.extend(longer);
        }
        for p in &paths {
            for padded in [
                p.clone(),
                [b"abcdefghij/".as_slice(), p].concat(),
                [p.as_slice(), b"/klmnopq"].concat(),
            ] {
                assert_eq!(
                    is_clean(&padded),
                    clean_by_definition(&padded),
                    "{:?}",
                    String::from_utf8_lossy(&padded)
                );
            }
        }
    }
}
