//! The records a read of an inotify descriptor returns: read, rewritten and
//! written in place, in the program's buffer.

/// An event's fixed part; a name follows, padded with NULs.
pub(super) const EVENT_HEADER: usize = 16;
/// The events of a copy-up's own read of a lower file.
pub(super) const COPY_UP_READ: u32 = libc::IN_OPEN | libc::IN_ACCESS | libc::IN_CLOSE_NOWRITE;

/// Events made up for the object of one name (empty: the watched object),
/// each encoded as the kernel lays it out.
pub(super) type MadeUp = (Vec<u8>, Vec<Vec<u8>>);

/// One event of a buffer.
#[derive(Clone, Copy)]
pub(super) struct Event {
    pub wd: i32,
    pub mask: u32,
    pub cookie: u32,
    /// Its whole length (header and name).
    pub len: usize,
}

pub(super) fn event_at(buf: &[u8], at: usize) -> Option<Event> {
    let header = buf.get(at..at + EVENT_HEADER)?;
    let word = |i: usize| u32::from_ne_bytes(header[i..i + 4].try_into().unwrap_or_default());
    let len = EVENT_HEADER + word(12) as usize;
    (at + len <= buf.len()).then_some(Event {
        wd: word(0) as i32,
        mask: word(4),
        cookie: word(8),
        len,
    })
}

/// The name of the event at `at` (empty for an event of the watched object
/// itself).
pub(super) fn name_at(buf: &[u8], at: usize, ev: &Event) -> Vec<u8> {
    let name = &buf[at + EVENT_HEADER..at + ev.len];
    name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())].to_vec()
}

/// Is `buf` a run of whole events, as a read of an inotify descriptor gives?
pub(super) fn whole_events(buf: &[u8]) -> bool {
    let mut at = 0;
    while let Some(ev) = event_at(buf, at) {
        at += ev.len;
    }
    at == buf.len()
}

/// Rewrites the header of the event at `at`.
pub(super) fn set_header(buf: &mut [u8], at: usize, wd: i32, mask: u32, cookie: u32) {
    buf[at..at + 4].copy_from_slice(&wd.to_ne_bytes());
    buf[at + 4..at + 8].copy_from_slice(&mask.to_ne_bytes());
    buf[at + 8..at + 12].copy_from_slice(&cookie.to_ne_bytes());
}

/// An event as the kernel lays it out (the name NUL-padded to a multiple of
/// the header's size).
pub(super) fn encode(wd: i32, mask: u32, name: &[u8]) -> Vec<u8> {
    let padded = if name.is_empty() {
        0
    } else {
        (name.len() + EVENT_HEADER) & !(EVENT_HEADER - 1)
    };
    let mut ev = vec![0u8; EVENT_HEADER + padded];
    set_header(&mut ev, 0, wd, mask, 0);
    ev[12..16].copy_from_slice(&(padded as u32).to_ne_bytes());
    ev[EVENT_HEADER..EVENT_HEADER + name.len()].copy_from_slice(name);
    ev
}

/// Inserts `events` (encoded) at `at` in `buf[..end]`, as many as fit in
/// `buf`, moving what follows. Returns the new end.
pub(super) fn insert(buf: &mut [u8], at: usize, end: usize, events: &[Vec<u8>]) -> usize {
    let tail = buf[at..end].to_vec();
    let mut to = at;
    for ev in events {
        if to + ev.len() + tail.len() > buf.len() {
            break;
        }
        buf[to..to + ev.len()].copy_from_slice(ev);
        to += ev.len();
    }
    buf[to..to + tail.len()].copy_from_slice(&tail);
    to + tail.len()
}

/// Replaces, in the events kept (`buf[..kept]`), the last read of a lower
/// file by watch `wd` under `name` (an `IN_OPEN` followed by nothing but
/// `IN_ACCESS` and `IN_CLOSE_NOWRITE` of it: the copy-up's own) by the
/// events `made_up` (encoded), put at the end when there is no such read;
/// as many as fit in `buf`. Returns the new end.
pub(super) fn replace_copy_up_read(
    buf: &mut [u8],
    kept: usize,
    wd: i32,
    name: &[u8],
    made_up: &[Vec<u8>],
) -> usize {
    let mut events = Vec::new();
    let mut at = 0;
    while let Some(ev) = event_at(&buf[..kept], at) {
        events.push((at, ev, ev.wd == wd && name_at(buf, at, &ev) == name));
        at += ev.len;
    }
    let mut start = events.len();
    for (i, (_, ev, its)) in events.iter().enumerate().rev() {
        // The watch's removal comes after the events made up, as it did.
        if !its || ev.mask & libc::IN_IGNORED != 0 {
            continue;
        }
        if ev.mask & !(COPY_UP_READ | libc::IN_ISDIR) != 0 {
            break;
        }
        if ev.mask & libc::IN_OPEN != 0 {
            start = i;
            break;
        }
    }
    let Some(&(from, _, _)) = events.get(start) else {
        return insert(buf, kept, kept, made_up);
    };
    let mut end = from;
    for &(at, ev, its) in &events[start..] {
        if !its || ev.mask & libc::IN_IGNORED != 0 {
            buf.copy_within(at..at + ev.len, end);
            end += ev.len;
        }
    }
    insert(buf, from, end, made_up)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(buf: &[u8]) -> Vec<(i32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(ev) = event_at(buf, at) {
            out.push((ev.wd, ev.mask, name_at(buf, at, &ev)));
            at += ev.len;
        }
        out
    }

    #[test]
    fn the_copy_up_read_gives_way_to_the_events_made_up() {
        let mut buf = [
            encode(1, libc::IN_OPEN, b""),
            encode(1, libc::IN_CLOSE_NOWRITE, b""),
            encode(2, libc::IN_CREATE, b"x"),
            encode(1, libc::IN_OPEN, b""),
            encode(2, libc::IN_DELETE, b"x"),
            encode(1, libc::IN_ACCESS, b""),
            encode(1, libc::IN_CLOSE_NOWRITE, b""),
        ]
        .concat();
        let len = buf.len();
        let end = replace_copy_up_read(&mut buf, len, 1, b"", &[encode(1, libc::IN_MODIFY, b"")]);
        assert_eq!(
            events(&buf[..end]),
            vec![
                (1, libc::IN_OPEN, vec![]),
                (1, libc::IN_CLOSE_NOWRITE, vec![]),
                (2, libc::IN_CREATE, b"x".to_vec()),
                (1, libc::IN_MODIFY, vec![]),
                (2, libc::IN_DELETE, b"x".to_vec())
            ]
        );
    }

    #[test]
    fn a_read_followed_by_a_write_is_kept_and_the_events_made_up_come_last() {
        let mut buf = [
            encode(1, libc::IN_OPEN, b"f"),
            encode(1, libc::IN_MODIFY, b"f"),
        ]
        .concat();
        let len = buf.len();
        buf.resize(len + 2 * EVENT_HEADER, 0);
        let end = replace_copy_up_read(&mut buf, len, 1, b"f", &[encode(1, libc::IN_ATTRIB, b"f")]);
        assert_eq!(
            events(&buf[..end]),
            vec![
                (1, libc::IN_OPEN, b"f".to_vec()),
                (1, libc::IN_MODIFY, b"f".to_vec()),
                (1, libc::IN_ATTRIB, b"f".to_vec())
            ]
        );
    }

    #[test]
    fn names_are_padded_as_the_kernel_pads_them() {
        assert_eq!(encode(1, 2, b"").len(), 16);
        assert_eq!(encode(1, 2, b"x").len(), 32);
        assert_eq!(encode(1, 2, &[b'a'; 15]).len(), 32);
        assert_eq!(encode(1, 2, &[b'a'; 16]).len(), 48);
    }
}
