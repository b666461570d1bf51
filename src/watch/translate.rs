//! A read of a watching descriptor, as the program sees it: the work
//! directory's events dropped, the copies' watches numbered as the
//! program's, a directory's upper copy's events told as the kernel tells
//! the merged directory's (`dir`), what a copy had before its watch made
//! up (`file`, `dir`), the copy-up's read of a lower file dropped.

use super::dir::WorkMoves;
use super::events::{self, event_at, name_at, replace_copy_up_read, set_header, whole_events};
use super::{add_watch, file, Watcher, WATCHERS};
use crate::overlay::Overlay;
use std::ffi::CStr;

/// The events read from `fd` into `buf` (`len` bytes of it; the program's
/// buffer is all of `buf`), rewritten in place as the program sees them.
/// Returns the length kept (0: nothing for the program).
pub fn translate(ovl: &Overlay, fd: i32, buf: &mut [u8], len: usize) -> usize {
    let Ok(mut watchers) = WATCHERS.lock() else {
        return len;
    };
    let Some(watcher) = watchers.iter_mut().find(|w| w.fd == fd) else {
        return len;
    };
    if !whole_events(&buf[..len]) {
        return len; // not an inotify descriptor's read (a number reused unseen)
    }
    let moves = work_moves(watcher, &buf[..len]);
    let (mut at, mut kept) = (0, 0);
    let mut seen = Seen::default();
    while let Some(ev) = event_at(&buf[..len], at) {
        let from = at;
        at += ev.len;
        let Some((wd, mask, cookie)) = program_event(ovl, watcher, buf, from, &moves, &mut seen)
        else {
            seen.opened = None;
            continue;
        };
        buf.copy_within(from..from + ev.len, kept);
        set_header(buf, kept, wd, mask, cookie);
        kept += ev.len;
        if let Some(open) = seen.opened.take() {
            seen.opens.push((kept, open));
        }
    }
    // The opens of new files, each right after its creation.
    for (after, open) in seen.opens.into_iter().rev() {
        kept = events::insert(buf, after, kept, &[open]);
    }
    // Looked at once all events are in: a copy made by the last of them is
    // there already for the first.
    if moves.any() || seen.names_taken {
        let add = |path: &CStr, mask: u32| add_watch(fd, path, mask);
        super::end_gone_files(ovl, watcher);
        file::switch_to_copies(ovl, &mut watcher.files, add);
        for f in &mut watcher.files {
            f.watch_parent(ovl, add);
        }
        for d in &mut watcher.dirs {
            d.switch_to_copy(ovl, add);
        }
    }
    for (wd, name) in seen.copied {
        kept = replace_copy_up_read(buf, kept, wd, &name, &[]);
    }
    for (wd, name, made_up) in made_up_events(watcher) {
        kept = replace_copy_up_read(buf, kept, wd, &name, &made_up);
    }
    kept
}

/// What the events of one read told beyond themselves.
#[derive(Default)]
struct Seen {
    /// Copy-ups in watched directories (watch, name): their reads of the
    /// lower object are no events either.
    copied: Vec<(i32, Vec<u8>)>,
    /// The open of a new file the last event created (encoded).
    opened: Option<Vec<u8>>,
    /// Opens to insert, each after the event that ends at its position.
    opens: Vec<(usize, Vec<u8>)>,
    /// A name was taken in a directory's upper copy (a followed file's,
    /// maybe: whited out, or replaced).
    names_taken: bool,
}

/// The work directory's moves in `buf`, and where objects built there
/// arrived as new ones in a watched directory.
fn work_moves(watcher: &Watcher, buf: &[u8]) -> WorkMoves {
    let mut moves = WorkMoves::default();
    let mut at = 0;
    while let Some(ev) = event_at(buf, at) {
        if ev.wd == watcher.work_wd && ev.mask & libc::IN_MOVED_FROM != 0 {
            let kind = crate::copy_up::Temp::of_name(&name_at(buf, at, &ev));
            moves.out.push((ev.cookie, kind));
        } else if ev.wd == watcher.work_wd && ev.mask & libc::IN_MOVED_TO != 0 {
            moves.into.push(ev.cookie);
        }
        at += ev.len;
    }
    let mut at = 0;
    while let Some(ev) = event_at(buf, at) {
        let new = ev.mask & libc::IN_MOVED_TO != 0
            && moves.arrived(ev.cookie) == Some(crate::copy_up::Temp::New);
        if new {
            moves.created.push((at, ev.wd, name_at(buf, at, &ev)));
        }
        at += ev.len;
    }
    moves
}

/// The event at `at` as the program sees it (its watch's number, mask and
/// cookie), or `None`; what else it tells goes to `seen`.
fn program_event(
    ovl: &Overlay,
    watcher: &mut Watcher,
    buf: &[u8],
    at: usize,
    moves: &WorkMoves,
    seen: &mut Seen,
) -> Option<(i32, u32, u32)> {
    let ev = event_at(buf, at)?;
    if ev.wd == watcher.work_wd {
        return None;
    }
    if let Some(i) = watcher.retired.iter().position(|&wd| wd == ev.wd) {
        if ev.mask & libc::IN_IGNORED != 0 {
            watcher.retired.remove(i);
        }
        return None;
    }
    if watcher.files.iter().any(|f| f.parent_wd == Some(ev.wd)) {
        seen.names_taken = true;
        return None;
    }
    if let Some(f) = watcher.files.iter().find(|f| f.copy_wd == Some(ev.wd)) {
        // A copy moved to the work directory, to be removed there.
        if ev.mask & libc::IN_MOVE_SELF != 0 && !moves.into.is_empty() {
            return None;
        }
        return Some((f.wd, ev.mask, ev.cookie));
    }
    let Some(d) = watcher.dirs.iter_mut().find(|d| d.upper_wd == Some(ev.wd)) else {
        return Some((ev.wd, ev.mask, ev.cookie));
    };
    let name = name_at(buf, at, &ev);
    seen.names_taken |= ev.mask & (libc::IN_CREATE | libc::IN_MOVED_TO) != 0;
    let arrived = (ev.mask & libc::IN_MOVED_TO != 0)
        .then(|| moves.arrived(ev.cookie))
        .flatten();
    match arrived {
        Some(crate::copy_up::Temp::Copy) if d.wd != ev.wd => seen.copied.push((d.wd, name.clone())),
        Some(crate::copy_up::Temp::New)
            if d.mask & libc::IN_OPEN != 0 && d.is_new_file(ovl, ev.mask, &name) =>
        {
            seen.opened = Some(events::encode(d.wd, libc::IN_OPEN, &name));
        }
        _ => {}
    }
    let (mask, cookie) = d.translate(ovl, (at, ev.mask, ev.cookie), &name, moves)?;
    Some((d.wd, mask, cookie))
}

/// The made-up events waiting to be handed over (watch, name, events).
fn made_up_events(watcher: &mut Watcher) -> Vec<(i32, Vec<u8>, Vec<Vec<u8>>)> {
    let files = watcher
        .files
        .iter_mut()
        .filter_map(|f| Some((f.wd, Vec::new(), f.pending.take()?)));
    let mut all: Vec<_> = files.collect();
    for d in &mut watcher.dirs {
        let pending = d.pending.take().into_iter().flatten();
        all.extend(pending.map(|(name, events)| (d.wd, name, events)));
    }
    all.append(&mut watcher.unflushed);
    all
}
