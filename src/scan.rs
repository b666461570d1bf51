//! Scans of a path's bytes, eight or sixteen at a time: paths given by
//! compilers and build tools are long, and a hook scans each one it is given.

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

/// Does the NUL-terminated string at `p` hold two dots in a row? A path
/// without them cannot climb with `..`. Sixteen bytes at a time (SSE2, part
/// of every x86-64): the aligned block that holds `p` is tested in line,
/// with no call and no constant from memory (the hooks run it right after a
/// system call, when every cache line they touch is a miss); a longer
/// string goes on in a loop after it.
///
/// # Safety
/// `p` points to a NUL-terminated string.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub unsafe fn has_dot_pair_c(p: *const u8) -> bool {
    let block = (p as usize & !15) as *const u8;
    // Bytes of the first block before `p` are not the string's.
    let before = (1u32 << (p as usize & 15)) - 1;
    // SAFETY: `block` holds a byte of the string (see `block_masks`).
    let (nuls, dots) = unsafe { block_masks(block) };
    let (nuls, mut dots) = (nuls & !before, dots & !before);
    if nuls != 0 {
        // Only the bytes before the first NUL are the string's.
        dots &= nuls ^ (nuls - 1);
        return dots & (dots << 1) != 0;
    }
    // SAFETY: no NUL yet, so the string goes on into the next block.
    dots & (dots << 1) != 0 || unsafe { has_dot_pair_after(block.add(16), dots >> 15) }
}

/// [`has_dot_pair_c`] from the aligned `block` on, `dot_before` telling
/// whether the block before ended with a dot.
///
/// # Safety
/// `block` is 16-aligned and holds a byte of a NUL-terminated string.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn has_dot_pair_after(mut block: *const u8, mut dot_before: u32) -> bool {
    loop {
        // SAFETY: per the contract.
        let (nuls, mut dots) = unsafe { block_masks(block) };
        if nuls != 0 {
            dots &= nuls ^ (nuls - 1);
        }
        if dots & ((dots << 1) | dot_before) != 0 {
            return true;
        }
        if nuls != 0 {
            return false;
        }
        dot_before = dots >> 15;
        // SAFETY: no NUL yet, so the string goes on into the next block.
        block = unsafe { block.add(16) };
    }
}

/// Which bytes of the aligned 16-byte `block` are NUL, and which are dots:
/// one bit each, in the bytes' order.
///
/// # Safety
/// `block` is 16-aligned and holds a byte of a NUL-terminated string.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn block_masks(block: *const u8) -> (u32, u32) {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_setzero_si128};
    let v: __m128i;
    let dots: __m128i;
    // SAFETY: memory is readable page by page, and the page that holds a
    // readable byte of the string holds the aligned 16 bytes around it: the
    // load cannot fault. Its bytes outside the string belong to no Rust
    // object the compiler knows of (the assembly loads them, not Rust), and
    // the callers mask them out, so whatever they hold, even while another
    // thread writes them, never changes the answer. The sixteen dots are
    // made in registers (the compiler would load them from memory).
    unsafe {
        std::arch::asm!(
            "movdqa {v}, xmmword ptr [{at}]",
            "movd {d}, {k:e}",
            "pshufd {d}, {d}, 0",
            at = in(reg) block,
            k = in(reg) 0x2e2e_2e2e_u32,
            v = lateout(xmm_reg) v,
            d = lateout(xmm_reg) dots,
            options(nostack, preserves_flags, readonly, pure),
        );
    }
    let nuls = _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128())) as u32;
    let dots = _mm_movemask_epi8(_mm_cmpeq_epi8(v, dots)) as u32;
    (nuls, dots)
}

/// [`has_dot_pair_c`] eight bytes at a time, for other 64-bit targets.
///
/// # Safety
/// `p` points to a NUL-terminated string.
#[cfg(any(target_arch = "aarch64", all(test, target_arch = "x86_64")))]
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
pub unsafe fn has_dot_pair_c_by_words(p: *const u8) -> bool {
    let mut word = (p as usize & !7) as *const u64;
    // Bytes of the first word before `p` count as 0xff: no NUL, no dot.
    let mut w = aligned_load(word) | ((1u64 << ((p as usize & 7) * 8)) - 1);
    let mut dot_before = 0; // the previous word ended with a dot
    loop {
        let nuls = equal_exact(w, 0);
        let mut dots = equal_exact(w, b'.');
        if nuls != 0 {
            dots &= nuls ^ (nuls - 1);
        }
        if dots & ((dots << 8) | dot_before) != 0 {
            return true;
        }
        if nuls != 0 {
            return false;
        }
        dot_before = dots >> 56;
        // SAFETY: no NUL yet, so the string goes on into the next word.
        word = unsafe { word.add(1) };
        w = aligned_load(word);
    }
}

/// The aligned word at `at` that holds a byte of a string, read as
/// [`has_dot_pair_c`] reads its blocks (see the safety note there).
#[cfg(any(target_arch = "aarch64", all(test, target_arch = "x86_64")))]
#[inline(always)]
fn aligned_load(at: *const u64) -> u64 {
    let w: u64;
    // SAFETY: `at` is aligned and holds a readable byte of a string: the
    // word lies in one readable page; bytes outside the string are masked.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        std::arch::asm!("mov {w}, qword ptr [{at}]", at = in(reg) at, w = lateout(reg) w,
            options(nostack, preserves_flags, readonly, pure));
        #[cfg(target_arch = "aarch64")]
        std::arch::asm!("ldr {w}, [{at}]", at = in(reg) at, w = lateout(reg) w,
            options(nostack, preserves_flags, readonly, pure));
    }
    u64::from_le(w)
}

#[cfg(target_arch = "aarch64")]
pub use has_dot_pair_c_by_words as has_dot_pair_c;

/// [`has_dot_pair_c`] a byte at a time, where no wide load is written.
///
/// # Safety
/// `p` points to a NUL-terminated string.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub unsafe fn has_dot_pair_c(p: *const u8) -> bool {
    // SAFETY: per the contract.
    unsafe { std::ffi::CStr::from_ptr(p.cast()) }
        .to_bytes()
        .windows(2)
        .any(|w| w == b"..")
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

    /// Every sample, at each of the sixteen offsets from an aligned block, and
    /// with bytes after its NUL that would be a pair of dots: only the
    /// string's own bytes count.
    #[test]
    fn dot_pairs_are_found_exactly_at_every_alignment() {
        for p in samples() {
            let exact = p.windows(2).any(|w| w == b"..");
            for offset in 0..16 {
                let mut buf = vec![0u128; (p.len() + 40) / 16 + 2];
                // SAFETY: the u128 buffer is large enough for the offset, the
                // string, its NUL and the trailing dots.
                let bytes = unsafe {
                    std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), buf.len() * 16)
                };
                bytes.fill(b'.');
                bytes[offset..offset + p.len()].copy_from_slice(&p);
                bytes[offset + p.len()] = 0;
                let at = bytes[offset..].as_ptr();
                // SAFETY: NUL-terminated above.
                let (got, by_words) = unsafe { (has_dot_pair_c(at), has_dot_pair_c_by_words(at)) };
                let shown = String::from_utf8_lossy(&p);
                assert_eq!(got, exact, "{shown:?} at {offset}");
                assert_eq!(by_words, exact, "{shown:?} at {offset}, by words");
            }
        }
    }

    /// Strings that end at the last byte of a page followed by one that
    /// cannot be read: the scans' aligned loads never reach it (a load
    /// that did would end the test with SIGSEGV).
    #[test]
    fn dot_pair_scans_stop_at_the_end_of_a_page() {
        let page = rustix::param::page_size();
        // SAFETY: a fresh private anonymous mapping of two pages; the
        // second is made unreadable before any string is scanned.
        let base = unsafe {
            let m = libc::mmap(
                std::ptr::null_mut(),
                2 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(m, libc::MAP_FAILED);
            assert_eq!(
                libc::mprotect(m.cast::<u8>().add(page).cast(), page, libc::PROT_NONE),
                0
            );
            m.cast::<u8>()
        };
        // SAFETY: the first page is readable and writable, and ours.
        let first = unsafe { std::slice::from_raw_parts_mut(base, page) };
        for len in 0..40 {
            for dots in [false, true] {
                first.fill(b'a');
                first[page - 1] = 0;
                let start = page - 1 - len;
                if dots && len >= 2 {
                    first[page - 3] = b'.';
                    first[page - 2] = b'.';
                }
                let at = first[start..].as_ptr();
                let expected = dots && len >= 2;
                // SAFETY: NUL-terminated at the page's last byte.
                unsafe {
                    assert_eq!(has_dot_pair_c(at), expected, "{len} bytes");
                    assert_eq!(
                        has_dot_pair_c_by_words(at),
                        expected,
                        "{len} bytes, by words"
                    );
                }
            }
        }
        // SAFETY: the mapping made above, no longer used.
        unsafe { libc::munmap(base.cast(), 2 * page) };
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
