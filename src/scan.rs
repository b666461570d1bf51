//! Scans of a path's bytes, eight at a time: paths given by compilers and
//! build tools are long, and a hook scans each one it is given.

const ONES: u64 = u64::from_le_bytes([1; 8]);
const HIGH: u64 = ONES << 7;
const LOW7: u64 = !HIGH;

/// The high bit of each byte of `w` equal to `b`; the byte just above an
/// equal one may be marked too (borrow), so this only errs towards "yes".
fn equal_loose(w: u64, b: u8) -> u64 {
    let x = w ^ (ONES * u64::from(b));
    x.wrapping_sub(ONES) & !x & HIGH
}

/// The high bit of exactly the bytes of `w` equal to `b`.
fn equal_exact(w: u64, b: u8) -> u64 {
    let x = w ^ (ONES * u64::from(b));
    !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
}

/// The eight bytes of `p` from `at`, or none past its end.
#[inline(always)]
fn word(p: &[u8], at: usize) -> u64 {
    match p.get(at..at + 8) {
        Some(w) => u64::from_le_bytes(w.try_into().unwrap_or_default()),
        None => 0,
    }
}

/// Does a `/` in `p` come right before a `/` or a `.`? It may also answer
/// yes for `/.` followed by `/` or `.` (`/./`, `/..`), which callers take
/// as "look closer" anyway.
pub(crate) fn slash_before_slash_or_dot(p: &[u8]) -> bool {
    let pair_in = |w: u64| {
        let next = (equal_loose(w, b'/') | equal_loose(w, b'.')) >> 8;
        equal_loose(w, b'/') & next != 0
    };
    if p.len() < 8 {
        return p
            .windows(2)
            .any(|w| w[0] == b'/' && matches!(w[1], b'/' | b'.'));
    }
    // Windows of 8 bytes, 7 apart, the last one flush with the end: every
    // pair of neighbours lies in one.
    let mut at = 0;
    while at + 8 < p.len() {
        if pair_in(word(p, at)) {
            return true;
        }
        at += 7;
    }
    pair_in(word(p, p.len() - 8))
}

/// The index of the last `/` in `p`.
pub(crate) fn last_slash(p: &[u8]) -> Option<usize> {
    let mut end = p.len();
    while end >= 8 {
        let hits = equal_exact(word(p, end - 8), b'/');
        if hits != 0 {
            return Some(end - 8 + (63 - hits.leading_zeros() as usize) / 8);
        }
        end -= 8;
    }
    p[..end].iter().rposition(|&b| b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every string of up to 7 bytes over `/`, `.`, `a`, with padding on
    /// either side so that each position of the eight-byte windows is met.
    fn samples() -> Vec<Vec<u8>> {
        let mut short = vec![Vec::new()];
        let mut last = vec![Vec::new()];
        for _ in 0..7 {
            last = last
                .iter()
                .flat_map(|p: &Vec<u8>| [b'/', b'.', b'a'].map(|b| [p.as_slice(), &[b]].concat()))
                .collect();
            short.extend(last.iter().cloned());
        }
        let mut all = Vec::new();
        for p in short {
            for pad in 0..9 {
                let left = &b"abcdefghi"[..pad];
                all.push([left, p.as_slice()].concat());
                all.push([p.as_slice(), left].concat());
            }
        }
        all
    }

    #[test]
    fn slash_before_slash_or_dot_finds_every_pair() {
        for p in samples() {
            let exact = p
                .windows(2)
                .any(|w| w[0] == b'/' && matches!(w[1], b'/' | b'.'));
            let loose = p
                .windows(3)
                .any(|w| w[..2] == *b"/." && matches!(w[2], b'/' | b'.'));
            let got = slash_before_slash_or_dot(&p);
            assert!(
                got == exact || (got && loose),
                "{:?}",
                String::from_utf8_lossy(&p)
            );
        }
    }

    #[test]
    fn last_slash_is_exact() {
        for p in samples() {
            assert_eq!(
                last_slash(&p),
                p.iter().rposition(|&b| b == b'/'),
                "{:?}",
                String::from_utf8_lossy(&p)
            );
        }
    }
}
