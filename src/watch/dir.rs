//! A watch on a directory of the view follows the directory's upper copy,
//! whose events are read as the kernel's overlay reports the merged
//! directory's: a whiteout made there is a removal; an object moved in from
//! the work directory is a creation (built there to replace a whiteout) or
//! nothing (a copy-up, which the kernel does unseen); what moves out to the
//! work directory (to be replaced or removed) is nothing; the copy's own
//! records and times, put back by a copy-up into it, are nothing.

use super::events::{encode, MadeUp, COPY_UP_READ};
use super::file::{copy_events, has_no_writer, Before};
use crate::copy_up::Temp;
use crate::lookup::join;
use crate::overlay::Overlay;
use rustix::fs::{FileType, Stat};
use std::ffi::CStr;

/// A program's watch on a directory of the view that has (or had) lower
/// copies.
pub(super) struct DirWatch {
    /// The watch's number: on the directory's topmost real copy when it was
    /// added (the upper one, or a lower one).
    pub wd: i32,
    pub rel: Vec<u8>,
    pub mask: u32,
    /// The watch on the upper copy (`wd` itself when that is where the
    /// program's watch is), once there is one.
    pub upper_wd: Option<i32>,
    /// Once the upper copy is watched: what it had before, by name, for the
    /// next read to hand over.
    pub pending: Option<Vec<MadeUp>>,
    /// The upper copy moved to the work directory, where it is emptied
    /// and removed: what happens to it there is not the program's.
    leaving: bool,
}

/// What one read brought of the work directory's moves: the cookies of
/// the objects moved out (with what they are) and into it, and where an
/// object built there arrived in a watched directory as a new one (event
/// position, watch, name).
#[derive(Default)]
pub(super) struct WorkMoves {
    pub out: Vec<(u32, Temp)>,
    pub into: Vec<u32>,
    pub created: Vec<(usize, i32, Vec<u8>)>,
}

impl WorkMoves {
    /// What arrived from the work directory with the move `cookie`.
    pub fn arrived(&self, cookie: u32) -> Option<Temp> {
        self.out.iter().find(|(c, _)| *c == cookie).map(|&(_, t)| t)
    }

    pub fn any(&self) -> bool {
        !self.out.is_empty() || !self.into.is_empty()
    }
}

/// The events that tell a removal or a creation apart in an upper copy.
const NAMED_CHANGES: u32 = libc::IN_CREATE | libc::IN_DELETE | libc::IN_MOVE;
/// Handed over whatever the watch's mask.
const UNMASKED: u32 = libc::IN_IGNORED | libc::IN_Q_OVERFLOW | libc::IN_UNMOUNT;

/// The mask of the watch on a directory's upper copy: the program's, and
/// what tells its removals and creations apart.
pub(super) fn upper_mask(mask: u32) -> u32 {
    if mask & NAMED_CHANGES != 0 {
        mask | NAMED_CHANGES
    } else {
        mask
    }
}

/// The first lower layer's object at `rel`.
fn lower_stat(ovl: &Overlay, rel: &[u8]) -> Option<Stat> {
    (0..ovl.layers.len())
        .filter(|&l| ovl.is_lower_layer(l))
        .find_map(|l| rustix::fs::lstat(crate::sys::cpath(&ovl.real_path(l, rel)).as_c_str()).ok())
}

/// `IN_ISDIR` when a lower layer shows `rel` as a directory: what a whiteout
/// there removed.
fn removed_dir_flag(ovl: &Overlay, rel: &[u8]) -> u32 {
    match lower_stat(ovl, rel) {
        Some(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => libc::IN_ISDIR,
        _ => 0,
    }
}

fn is_dir(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::Directory
}

impl DirWatch {
    pub fn new(wd: i32, rel: &[u8], mask: u32, upper_wd: Option<i32>) -> DirWatch {
        DirWatch {
            wd,
            rel: rel.to_vec(),
            mask,
            upper_wd,
            pending: None,
            leaving: false,
        }
    }

    /// An event `(mask, cookie)` of the upper copy's watch at `at` in the
    /// read, of the object `name` in it (empty: the directory itself), as
    /// the program sees it; `None`: not the program's.
    pub fn translate(
        &mut self,
        ovl: &Overlay,
        (at, mask, cookie): (usize, u32, u32),
        name: &[u8],
        moves: &WorkMoves,
    ) -> Option<(u32, u32)> {
        let (mask, cookie) = if name.is_empty() {
            self.own_event(mask, cookie, moves)?
        } else if self.leaving {
            return None;
        } else if moves.any()
            && mask & libc::IN_ISDIR != 0
            && mask & (libc::IN_ATTRIB | COPY_UP_READ) != 0
        {
            // A subdirectory's records and times, or its listing, by a
            // copy-up into it.
            return None;
        } else {
            self.child_event(ovl, (at, mask, cookie), name, moves)?
        };
        (mask & (self.mask | UNMASKED) & !libc::IN_ISDIR != 0).then_some((mask, cookie))
    }

    fn own_event(&mut self, mask: u32, cookie: u32, moves: &WorkMoves) -> Option<(u32, u32)> {
        // Its records and times, set by a copy-up into it.
        if moves.any() && mask & libc::IN_ATTRIB != 0 {
            return None;
        }
        // Moved to the work directory: removed (as the kernel tells it, by
        // its end alone) or replaced there.
        if mask & libc::IN_MOVE_SELF != 0 && !moves.into.is_empty() {
            self.leaving = true;
            return None;
        }
        if mask & (libc::IN_DELETE_SELF | libc::IN_IGNORED) != 0 {
            self.leaving = false;
        }
        // A listing through the view reads each real copy of a merged
        // directory: the lower one's watch tells it.
        if self.upper_wd != Some(self.wd) && mask & COPY_UP_READ != 0 {
            return None;
        }
        Some((mask, cookie))
    }

    fn child_event(
        &mut self,
        ovl: &Overlay,
        (at, mask, cookie): (usize, u32, u32),
        name: &[u8],
        moves: &WorkMoves,
    ) -> Option<(u32, u32)> {
        // Moved out to be replaced (its replacement tells what happened).
        if mask & libc::IN_MOVED_FROM != 0 && moves.into.contains(&cookie) {
            return None;
        }
        let rel = join(&self.rel, name);
        match (mask & libc::IN_MOVED_TO != 0)
            .then(|| moves.arrived(cookie))
            .flatten()
        {
            Some(Temp::Copy) => None,
            Some(Temp::Whiteout) => Some((libc::IN_DELETE | removed_dir_flag(ovl, &rel), 0)),
            Some(Temp::New) => Some((libc::IN_CREATE | (mask & libc::IN_ISDIR), 0)),
            Some(Temp::Other) => Some((mask, cookie)),
            None if mask & libc::IN_CREATE != 0 && self.made_whiteout(ovl, at, name, moves) => {
                Some((libc::IN_DELETE | removed_dir_flag(ovl, &rel), 0))
            }
            None => Some((mask, cookie)),
        }
    }

    /// Was the object created at `name` (by the event at `at`) a whiteout:
    /// one still, or one that a new object built in the work directory
    /// replaced later in the same read?
    fn made_whiteout(&self, ovl: &Overlay, at: usize, name: &[u8], moves: &WorkMoves) -> bool {
        let replaced = moves
            .created
            .iter()
            .any(|(pos, wd, n)| *pos > at && Some(*wd) == self.upper_wd && n.as_slice() == name);
        replaced || {
            let path = ovl.upper_path(&join(&self.rel, name));
            rustix::fs::lstat(path.as_c_str())
                .is_ok_and(|st| crate::whiteout::is_whiteout(&path, &st))
        }
    }

    /// Is the object `name`, just built in the work directory and moved in
    /// (`mask`), a regular file? It was opened there, where no watch saw it.
    pub fn is_new_file(&self, ovl: &Overlay, mask: u32, name: &[u8]) -> bool {
        mask & libc::IN_ISDIR == 0
            && rustix::fs::lstat(ovl.upper_path(&join(&self.rel, name)).as_c_str())
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
    }

    /// After events of the work directory: a watch on a lower directory whose
    /// upper copy has appeared since watches the copy too (`add_watch`), and
    /// keeps what the copy had before.
    pub fn switch_to_copy(&mut self, ovl: &Overlay, add_watch: impl Fn(&CStr, u32) -> Option<i32>) {
        if self.upper_wd.is_some() {
            return;
        }
        let upper = ovl.upper_path(&self.rel);
        if !rustix::fs::lstat(upper.as_c_str()).is_ok_and(|st| is_dir(&st)) {
            return;
        }
        // Read once the watch is on (a change made meanwhile is told twice
        // rather than never), with a mask that does not see the reading; then
        // the full mask.
        let mask = upper_mask(self.mask);
        let Some(wd) = add_watch(&upper, mask & !COPY_UP_READ) else {
            return;
        };
        self.upper_wd = Some(wd);
        self.pending = Some(self.catch_up(ovl, &upper));
        let _ = add_watch(&upper, mask);
    }

    /// Watches the upper copy with the program's own watch (`add` puts it)
    /// and keeps what the copy had before, read first (the program's watch
    /// would see the reading).
    pub fn adopt_upper(&mut self, ovl: &Overlay, add: impl FnOnce() -> Option<i32>) -> Option<i32> {
        let had = self.catch_up(ovl, &ovl.upper_path(&self.rel));
        let wd = add()?;
        self.upper_wd = Some(wd);
        self.pending = Some(had);
        Some(wd)
    }

    /// What the upper copy `upper` holds, as the events it had (in the order
    /// of the objects' change times): a whiteout was a removal, a copy had
    /// what its lower object had not, another object was created (a file
    /// opened, written and closed).
    fn catch_up(&self, ovl: &Overlay, upper: &CStr) -> Vec<MadeUp> {
        let mut objects: Vec<(Vec<u8>, std::ffi::CString, Stat)> = crate::sys::entries(upper)
            .into_iter()
            .filter_map(|(name, _)| {
                let path = crate::sys::child(upper, &name);
                let st = rustix::fs::lstat(path.as_c_str()).ok()?;
                Some((name, path, st))
            })
            .collect();
        objects.sort_by_key(|(_, _, st)| (st.st_ctime, st.st_ctime_nsec));
        objects
            .into_iter()
            .map(|(name, path, st)| {
                let masks = self.had(ovl, &name, &path, &st, || has_no_writer(&path));
                let events = masks
                    .into_iter()
                    .filter(|m| m & self.mask & !libc::IN_ISDIR != 0)
                    .map(|m| encode(self.wd, m, &name))
                    .collect();
                (name, events)
            })
            .collect()
    }

    /// The events the object `name` of the upper copy (at `path`, `st`) had;
    /// `closed` tells whether no writer has the file open any more.
    fn had(
        &self,
        ovl: &Overlay,
        name: &[u8],
        path: &CStr,
        st: &Stat,
        closed: impl FnOnce() -> bool,
    ) -> Vec<u32> {
        let rel = join(&self.rel, name);
        if crate::whiteout::is_whiteout(path, st) {
            return vec![libc::IN_DELETE | removed_dir_flag(ovl, &rel)];
        }
        if is_dir(st) {
            return if ovl.has_origin(path) {
                Vec::new()
            } else {
                vec![libc::IN_CREATE | libc::IN_ISDIR]
            };
        }
        if ovl.has_origin(path) {
            return lower_stat(ovl, &rel).map_or_else(Vec::new, |lower| {
                copy_events(&Before::of(&lower), st, self.mask, closed)
            });
        }
        let mut made = vec![libc::IN_CREATE];
        if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile {
            made.push(libc::IN_OPEN);
            if st.st_size > 0 {
                made.push(libc::IN_MODIFY);
            }
            if self.mask & libc::IN_CLOSE_WRITE != 0 && closed() {
                made.push(libc::IN_CLOSE_WRITE);
            }
        }
        made
    }
}
