//! `rename`: files and symlinks are copied up and renamed in upper (with a
//! whiteout left at the old name when a lower layer has it); directories
//! that exist in a lower layer give `EXDEV`, as the kernel's default
//! (`redirect_dir=off`), and `mv` then copies them.

use crate::lookup::{join, Node};
use crate::overlay::{Overlay, UPPER};
use crate::remove::clear_whiteouts;
use crate::sys::cpath;
use crate::whiteout::{is_opaque, is_whiteout, make_opaque, mark_refused};
use rustix::fd::AsFd;
use rustix::fs::{AtFlags, RenameFlags, CWD};
use rustix::io::Errno;

/// One end of a rename: the directory, the name in it, and the object there.
pub struct RenameEnd<'a> {
    pub parent: &'a Node,
    pub name: &'a [u8],
    pub node: Option<&'a Node>,
}

impl Overlay {
    /// Is this directory (also) in a lower layer, so that it cannot move?
    fn dir_in_lower(&self, node: &Node) -> bool {
        node.is_dir() && (node.layer != UPPER || self.merges_lower(node))
    }

    /// Does the directory `dir` take entries from a lower layer?
    fn merges_lower(&self, dir: &Node) -> bool {
        dir.dir_layers().any(|l| self.is_lower_layer(l))
    }

    /// Renames `old` to `new` (over `new.node` if it exists). `flags` are renameat2's.
    pub fn rename(&self, old: RenameEnd<'_>, new: RenameEnd<'_>, flags: u32) -> Result<(), Errno> {
        let known = RenameFlags::NOREPLACE | RenameFlags::EXCHANGE;
        let flags = RenameFlags::from_bits(flags)
            .filter(|f| known.contains(*f) && !f.contains(known))
            .ok_or(Errno::INVAL)?;
        let src = old.node.ok_or(Errno::NOENT)?;
        let old_rel = join(&old.parent.rel, old.name);
        let new_rel = join(&new.parent.rel, new.name);
        if old_rel == new_rel {
            // Renaming a name onto itself: nothing to do, unless asked not to replace.
            return if flags.contains(RenameFlags::NOREPLACE) {
                Err(Errno::EXIST)
            } else {
                Ok(())
            };
        }
        // The kernel's checks of names, in its order (`do_renameat2`).
        if flags.contains(RenameFlags::NOREPLACE) && new.node.is_some() {
            return Err(Errno::EXIST);
        }
        if flags.contains(RenameFlags::EXCHANGE) && new.node.is_none() {
            return Err(Errno::NOENT);
        }
        if is_inside(&new_rel, &old_rel) {
            return Err(Errno::INVAL); // a directory into itself
        }
        if is_inside(&old_rel, &new_rel) {
            // Over a directory that holds the source.
            return Err(match flags.contains(RenameFlags::EXCHANGE) {
                true => Errno::INVAL,
                false => Errno::NOTEMPTY,
            });
        }
        if flags.contains(RenameFlags::EXCHANGE) {
            return self.exchange(&old, &new, src);
        }
        if let Some(dst) = new.node {
            // Two names of one upper file: nothing to do (nothing checked,
            // as the kernel). Two names of one lower file are two objects
            // of the view (a copy-up breaks the link), as on the kernel's
            // overlayfs.
            let same = dst.stat.st_dev == src.stat.st_dev && dst.stat.st_ino == src.stat.st_ino;
            if same && !src.is_dir() && !self.is_lower(src) && !self.is_lower(dst) {
                return Ok(());
            }
        }
        self.may_rename(&old, &new, src, false)?;
        // Before the target's emptiness, as the kernel's overlayfs.
        if self.dir_in_lower(src) {
            return Err(Errno::XDEV);
        }
        if let Some(dst) = new.node.filter(|d| d.is_dir()) {
            if !self.is_empty_in_view(dst)? {
                if !self.dir_in_lower(dst) {
                    // The kernel's overlayfs checks only a target that merges
                    // lower layers itself; over one of upper alone, the upper
                    // file system refuses, after the moved directory was
                    // made opaque, which it stays.
                    let moved = self.upper_path(&old_rel);
                    match self.make_opaque_if_lower_may_show(src, &moved, &new, false) {
                        // Unmarked, the directory stays where it is.
                        Ok(()) | Err(Errno::XDEV) => {}
                        Err(e) => return Err(e),
                    }
                }
                return Err(Errno::NOTEMPTY);
            }
        }
        self.changing(src.is_dir() || new.node.is_some_and(Node::is_dir), || {
            self.move_name(&old, &new, src, &old_rel, &new_rel)
        })
    }

    /// The kernel's checks of a rename, made before anything is copied up
    /// (see `crate::permission`): `may_delete` of the old name, then
    /// `may_delete` of the name replaced (and, unless `exchange`, that the
    /// types agree) or `may_create` of the new one; a directory that
    /// changes parent must be writable (its `..` changes).
    fn may_rename(
        &self,
        old: &RenameEnd<'_>,
        new: &RenameEnd<'_>,
        src: &Node,
        exchange: bool,
    ) -> Result<(), Errno> {
        self.may_delete_from(old.parent, src)?;
        match new.node {
            Some(dst) => {
                self.may_delete_from(new.parent, dst)?;
                match (src.is_dir(), dst.is_dir()) {
                    _ if exchange => {}
                    (true, false) => return Err(Errno::NOTDIR),
                    (false, true) => return Err(Errno::ISDIR),
                    _ => {}
                }
            }
            None => self.may_create_in(new.parent)?,
        }
        if old.parent.rel != new.parent.rel {
            let moved_dirs = [Some(src), new.node.filter(|_| exchange)];
            // An upper one too: the kernel checks before it answers `EXDEV`.
            for dir in moved_dirs.into_iter().flatten().filter(|n| n.is_dir()) {
                crate::permission::may_write(&self.object(dir))?;
            }
        }
        Ok(())
    }

    fn move_name(
        &self,
        old: &RenameEnd<'_>,
        new: &RenameEnd<'_>,
        src: &Node,
        old_rel: &[u8],
        new_rel: &[u8],
    ) -> Result<(), Errno> {
        let whiteout_at_old = self.lower_has(old.parent, old.name)?;
        let lower_at_new = self.lower_has(new.parent, new.name)?;
        let moving = self.copy_up(src, None)?;
        self.copy_up(new.parent, None)?;
        // The object leaves, and a whiteout takes its place, in the old
        // name's directory open here (see `upper_dir_for_whiteouts`).
        let (old_dir, shows_lower) = self.upper_dir_for_whiteouts(&old.parent.rel)?;
        let whiteout_at_old = whiteout_at_old && shows_lower;
        let old_name = cpath(old.name);
        // What moves is what was looked up: another process may have
        // removed it since (moving its whiteout would put one where none
        // belongs), as if it had before this rename.
        match rustix::fs::statat(&old_dir, &old_name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if (st.st_dev, st.st_ino) == (moving.stat.st_dev, moving.stat.st_ino) => {}
            _ => return Err(Errno::NOENT),
        }
        let from = self.upper_path(old_rel);
        let to = self.upper_path(new_rel);
        if old.parent.rel != new.parent.rel {
            self.moving_into(src, &from, &new.parent.rel);
        }
        let to_st = rustix::fs::lstat(to.as_c_str()).ok();
        let over_whiteout = to_st.as_ref().is_some_and(|st| is_whiteout(&to, st));
        if src.is_dir() {
            self.make_opaque_if_lower_may_show(src, &from, new, over_whiteout || lower_at_new)?;
        }
        let place = || {
            if over_whiteout && src.is_dir() {
                // A directory cannot replace a whiteout by rename: swap them, and
                // the whiteout lands at the old name, where it may be wanted.
                rustix::fs::renameat_with(&old_dir, &old_name, CWD, &to, RenameFlags::EXCHANGE)?;
                if !whiteout_at_old {
                    rustix::fs::unlinkat(&old_dir, &old_name, AtFlags::empty())?;
                }
                return Ok(());
            }
            if whiteout_at_old && self.whiteout == crate::config::WhiteoutFormat::CharDev {
                match rustix::fs::renameat_with(
                    &old_dir,
                    &old_name,
                    CWD,
                    &to,
                    RenameFlags::WHITEOUT,
                ) {
                    Ok(()) => return self.moved_whiteout_undone(&to, new, lower_at_new),
                    Err(Errno::INVAL) | Err(Errno::PERM) | Err(Errno::NOSYS) => {}
                    Err(e) => return Err(e),
                }
            }
            rustix::fs::renameat(&old_dir, &old_name, CWD, &to)?;
            if whiteout_at_old {
                self.whiteout_in(old_dir.as_fd(), &old.parent.rel, old.name)?;
            }
            self.moved_whiteout_undone(&to, new, lower_at_new)
        };
        if src.is_dir() && to_st.is_some() && !over_whiteout {
            // An upper directory empty in the view: only whiteouts in it,
            // which go first (by its owner, where its mode denies them
            // writing or searching it, as in `remove_name`).
            return crate::copy_up::with_owner_access(&to, || {
                if new.node.is_some_and(|dst| self.merges_lower(dst)) {
                    // Marked opaque first, as the kernel swaps in an empty
                    // opaque copy: no lower name shows while the whiteouts
                    // go, nor after a move that fails. Only a safeguard:
                    // where the mark is refused, the move goes on unmarked.
                    let _ = make_opaque(self.xattr_ns, &to);
                }
                clear_whiteouts(&to);
                place()
            });
        }
        place()
    }

    /// After a move to the upper name `to`: another process may have
    /// removed the object between the check of what moves and the move,
    /// which then moved its whiteout. One where no lower object is to be
    /// hidden (none has the name, or the directory is opaque) is an entry
    /// the kernel lists and cannot open: it goes, and the rename fails as
    /// it would have after that removal (`ENOENT`).
    fn moved_whiteout_undone(
        &self,
        to: &std::ffi::CStr,
        new: &RenameEnd<'_>,
        lower_at_new: bool,
    ) -> Result<(), Errno> {
        let Ok(st) = rustix::fs::lstat(to) else {
            return Ok(());
        };
        if !is_whiteout(to, &st) {
            return Ok(());
        }
        let (_, shows_lower) = self.upper_dir_for_whiteouts(&new.parent.rel)?;
        if lower_at_new && shows_lower {
            return Ok(());
        }
        let _ = rustix::fs::unlinkat(CWD, to, AtFlags::empty());
        Err(Errno::NOENT)
    }

    /// Nothing below may show through a directory moved to `new`: the
    /// kernel makes it opaque (its upper copy, `moved`) whenever its new
    /// parent merges lower layers (or, `lower_below`, a lower layer or a
    /// whiteout holds the new name).
    fn make_opaque_if_lower_may_show(
        &self,
        src: &Node,
        moved: &std::ffi::CStr,
        new: &RenameEnd<'_>,
        lower_below: bool,
    ) -> Result<(), Errno> {
        if src.is_dir() && (lower_below || self.merges_lower(new.parent)) {
            self.mark_moving_dir_opaque(moved, new.parent, new.name)?;
        }
        Ok(())
    }

    /// Marks `moved`, an upper directory about to take `name` in `parent`,
    /// opaque. Where the mark is refused (see `mark_refused`), it matters
    /// only if the lower layers show a directory at that name, which would
    /// merge with it: then `EXDEV`, as the kernel's rename fails where it
    /// cannot set the mark (`mv` then copies, and the copy's `mkdir` hides
    /// the lower names by whiteouts).
    fn mark_moving_dir_opaque(
        &self,
        moved: &std::ffi::CStr,
        parent: &Node,
        name: &[u8],
    ) -> Result<(), Errno> {
        // A user's directory whose mode denies them writing cannot take a
        // `user.` xattr: its owner may write it for that moment, as the
        // kernel marks it with the mounter's credentials.
        match crate::copy_up::with_owner_access(moved, || make_opaque(self.xattr_ns, moved)) {
            Err(e) if mark_refused(e) => {
                if is_opaque(moved) || self.lower_dir_at(parent, name)?.is_none() {
                    Ok(())
                } else {
                    Err(Errno::XDEV)
                }
            }
            r => r,
        }
    }

    /// `RENAME_EXCHANGE`: both names exist and swap. Directories that a
    /// lower layer has cannot move (`EXDEV`); a directory that lands in a
    /// directory merging lower layers is made opaque, as the kernel's
    /// overlayfs does, so that nothing of a lower one of that name shows.
    fn exchange(&self, old: &RenameEnd<'_>, new: &RenameEnd<'_>, src: &Node) -> Result<(), Errno> {
        let dst = new.node.ok_or(Errno::NOENT)?;
        self.may_rename(old, new, src, true)?;
        if self.dir_in_lower(src) || self.dir_in_lower(dst) {
            return Err(Errno::XDEV);
        }
        self.changing(src.is_dir() || dst.is_dir(), || {
            let a = self.copy_up(src, None)?;
            let b = self.copy_up(dst, None)?;
            let from = self.upper_path(&a.rel);
            let to = self.upper_path(&b.rel);
            // Marked before they swap, as by the kernel: a mark refused
            // then leaves both where they are.
            if src.is_dir() && self.merges_lower(new.parent) {
                self.mark_moving_dir_opaque(&from, new.parent, new.name)?;
            }
            if dst.is_dir() && self.merges_lower(old.parent) {
                self.mark_moving_dir_opaque(&to, old.parent, old.name)?;
            }
            if old.parent.rel != new.parent.rel {
                self.moving_into(src, &from, &new.parent.rel);
                self.moving_into(dst, &to, &old.parent.rel);
            }
            exchange(&from, &to)
        })
    }
}

/// Is the view's path `rel` below the directory `dir` (both relative to the
/// view's root)?
fn is_inside(rel: &[u8], dir: &[u8]) -> bool {
    crate::overlay::strip_dir(rel, dir).is_some_and(|rest| !rest.is_empty())
}

/// Swaps two names of the upper layer in one step.
pub(crate) fn exchange(a: &std::ffi::CStr, b: &std::ffi::CStr) -> Result<(), Errno> {
    rustix::fs::renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE)
}

/// Swaps `tmp`, an object built in the work directory, with what the upper
/// name `dst` holds, if that is what this process looked at: `expected`,
/// given the swapped-out object's path and `lstat`, says so. Another
/// process may have changed the name meanwhile (no lock spans the look and
/// the swap, where the kernel holds the directory's): then the swap is
/// undone, the name keeps that process's object, and `ESTALE` is returned.
/// Either way `tmp` then holds an object for the caller to remove: what
/// `dst` held, or its own (or, if the name changed once more before the
/// swap could be undone, the object displaced).
pub(crate) fn exchange_if(
    tmp: &std::ffi::CStr,
    dst: &std::ffi::CStr,
    expected: impl Fn(&std::ffi::CStr, &rustix::fs::Stat) -> bool,
) -> Result<(), Errno> {
    exchange(tmp, dst)?;
    if rustix::fs::lstat(tmp).is_ok_and(|st| expected(tmp, &st)) {
        return Ok(());
    }
    let _ = exchange(tmp, dst);
    Err(Errno::STALE)
}
