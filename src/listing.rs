//! A directory listing laid out as the kernel's `getdents64` records
//! (`struct dirent64`): `readdir` hands out pointers into it without copying,
//! and the work directory keeps it on disk byte for byte (see
//! `listing_cache`). A position in the listing is the byte offset of a record;
//! each record's `d_off` is the position of the next, as the kernel's are.

use std::mem::offset_of;

/// Bytes of a record before its name.
const HEADER: usize = offset_of!(libc::dirent64, d_name);
/// The shortest record: header, a one-byte name, its NUL, rounded up.
const MIN_RECORD: usize = (HEADER + 2).next_multiple_of(8);
/// Zeroed bytes kept after the last record: a program may copy a whole
/// `struct dirent64` out of the last one, as it may out of glibc's buffer.
const SLACK: usize = std::mem::size_of::<libc::dirent64>();

/// Records, 8-byte aligned: in a buffer of `u64`s, or in a mapped file.
#[derive(Default)]
pub struct Listing {
    words: Vec<u64>,
    /// When set, the records are there (from its byte `start`), not in `words`.
    mapped: Option<(FileMap, usize)>,
    /// Bytes of records (the zeroed slack follows them).
    len: usize,
    count: usize,
}

/// A private, writable mapping of a whole file: a program may write into an
/// entry it was handed, as into glibc's buffer; the file never changes. The
/// file must not be cut while mapped (kept listings are never changed in
/// place: they are written under another name and renamed).
pub struct FileMap {
    ptr: std::ptr::NonNull<std::ffi::c_void>,
    len: usize,
}

// SAFETY: the mapping is private memory owned by this value alone.
unsafe impl Send for FileMap {}

impl FileMap {
    /// Maps the first `len` bytes (the whole file) of `fd`.
    pub fn new(fd: rustix::fd::BorrowedFd<'_>, len: usize) -> Option<FileMap> {
        use rustix::mm::{MapFlags, ProtFlags};
        if len == 0 {
            return None;
        }
        // SAFETY: a fresh mapping chosen by the kernel, owned by the result
        // and unmapped when it is dropped.
        let p = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
                fd,
                0,
            )
        };
        Some(FileMap {
            ptr: std::ptr::NonNull::new(p.ok()?)?,
            len,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `len` bytes mapped, readable, alive while `self` is.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>(), self.len) }
    }
}

impl Drop for FileMap {
    fn drop(&mut self) {
        // SAFETY: our own mapping; nothing borrows it any more.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr(), self.len) };
    }
}

/// One entry, read out of a listing.
#[derive(Clone, Copy, Debug)]
pub struct EntryRef<'a> {
    pub ino: u64,
    /// `DT_*` value.
    pub dtype: u8,
    pub name: &'a [u8],
    /// Position of the next record.
    pub next: usize,
}

impl Listing {
    pub fn new() -> Listing {
        Listing::default()
    }

    /// Number of entries.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Where the records start: 8-aligned.
    fn base(&self) -> *const u8 {
        match &self.mapped {
            // SAFETY: `start` lies within the mapping (see `from_map`).
            Some((map, start)) => unsafe { map.ptr.as_ptr().cast::<u8>().add(*start) },
            None => self.words.as_ptr().cast(),
        }
    }

    /// The records, as `getdents64` would return them.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `len` initialised bytes start at `base` (see `push`,
        // `from_bytes`, `from_map`); u8 has no alignment requirement.
        unsafe { std::slice::from_raw_parts(self.base(), self.len) }
    }

    /// Moves mapped records into a buffer of our own (to add to them).
    fn make_owned(&mut self) {
        if self.mapped.is_some() {
            let mut words = vec![0u64; (self.len + SLACK).div_ceil(8)];
            // SAFETY: `words` has room for `len` bytes; the regions are distinct.
            unsafe {
                std::ptr::copy_nonoverlapping(self.base(), words.as_mut_ptr().cast(), self.len)
            };
            self.words = words;
            self.mapped = None;
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        self.make_owned();
        let n = self.words.len() * 8;
        // SAFETY: the whole of `words`, seen as bytes; exclusively borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<u8>(), n) }
    }

    /// Appends an entry; returns its position. A name longer than a
    /// directory entry's (255 bytes) cannot come from a directory; it is cut.
    pub fn push(&mut self, ino: u64, dtype: u8, name: &[u8]) -> usize {
        self.make_owned();
        let name = &name[..name.len().min(255)];
        let at = self.len;
        let reclen = (HEADER + name.len() + 1).next_multiple_of(8);
        let need = (at + reclen + SLACK).div_ceil(8);
        if self.words.len() < need {
            self.words.resize(need.max(self.words.len() * 2), 0);
        }
        let next = at + reclen;
        let rec = &mut self.bytes_mut()[at..next];
        rec[0..8].copy_from_slice(&ino.to_ne_bytes());
        rec[8..16].copy_from_slice(&(next as i64).to_ne_bytes());
        rec[16..18].copy_from_slice(&(reclen as u16).to_ne_bytes());
        rec[18] = dtype;
        rec[HEADER..HEADER + name.len()].copy_from_slice(name);
        rec[HEADER + name.len()..].fill(0);
        self.len = next;
        self.count += 1;
        at
    }

    /// A listing of the `len` bytes of records at `start` in `map`, which
    /// must be followed by zeroed slack in it; checked record by record.
    pub fn from_map(map: FileMap, start: usize, len: usize) -> Option<Listing> {
        let end = start.checked_add(len)?;
        let slack = map.bytes().get(end..end.checked_add(SLACK)?)?;
        if !start.is_multiple_of(8) || slack.iter().any(|&b| b != 0) {
            return None;
        }
        let mut l = Listing {
            words: Vec::new(),
            mapped: Some((map, start)),
            len,
            count: 0,
        };
        l.count = l.checked_count()?;
        Some(l)
    }

    /// Number of records, when every record is as `push` makes them.
    fn checked_count(&self) -> Option<usize> {
        let (mut pos, mut count) = (0, 0);
        while pos < self.len {
            pos = self.checked_record(pos)?;
            count += 1;
        }
        Some(count)
    }

    /// Bytes of zeroes a file holding records must have after them.
    pub const SLACK: usize = SLACK;

    /// A listing from records made by [`Listing::bytes`], checked.
    pub fn from_bytes(bytes: &[u8]) -> Option<Listing> {
        let mut l = Listing {
            words: vec![0; (bytes.len() + SLACK).div_ceil(8)],
            mapped: None,
            len: bytes.len(),
            count: 0,
        };
        l.bytes_mut()[..bytes.len()].copy_from_slice(bytes);
        l.count = l.checked_count()?;
        Some(l)
    }

    /// The position after the record at `pos`, if one starts there as
    /// `push` makes them: linked by `d_off`, a name of at least one byte,
    /// and the record's last byte a NUL (so every name ends within its
    /// record). Constant time, unlike `entry_at`.
    fn checked_record(&self, pos: usize) -> Option<usize> {
        let (_, next) = self.dirent_at(pos)?;
        let b = self.bytes();
        (self.d_off(pos) == next as i64 && b[pos + HEADER] != 0 && b[next - 1] == 0).then_some(next)
    }

    fn d_off(&self, pos: usize) -> i64 {
        let b = self.bytes();
        i64::from_ne_bytes(b[pos + 8..pos + 16].try_into().unwrap_or_default())
    }

    /// The entry at position `pos`, when a well-formed record starts there
    /// (a position from `seekdir` may be anything).
    pub fn entry_at(&self, pos: usize) -> Option<EntryRef<'_>> {
        let (_, next) = self.dirent_at(pos)?;
        let b = self.bytes();
        let rest = &b[pos + HEADER..next];
        let nul = rest.iter().position(|&c| c == 0)?;
        (nul > 0 && self.d_off(pos) == next as i64).then(|| EntryRef {
            ino: u64::from_ne_bytes(b[pos..pos + 8].try_into().unwrap_or_default()),
            dtype: b[pos + 18],
            name: &rest[..nul],
            next,
        })
    }

    /// The record at `pos` as a C `dirent64`, with the position after it.
    /// The pointer stays valid until the listing is dropped or pushed to.
    /// Cheap, for `readdir`: only the record's length is checked. A `pos`
    /// inside a record (from a program's `seekdir`) gives a garbled entry,
    /// never a read out of the buffer: every name is followed by a NUL
    /// before the zeroed slack ends.
    pub fn dirent_at(&self, pos: usize) -> Option<(*const libc::dirent64, usize)> {
        let b = self.bytes();
        if !pos.is_multiple_of(8) || pos.checked_add(MIN_RECORD)? > b.len() {
            return None;
        }
        let reclen = usize::from(u16::from_ne_bytes([b[pos + 16], b[pos + 17]]));
        if reclen < MIN_RECORD || !reclen.is_multiple_of(8) || pos + reclen > b.len() {
            return None;
        }
        // SAFETY: `pos` is within the records and 8-aligned from an
        // 8-aligned base; the record and SLACK zeroed bytes follow it.
        let p = unsafe { self.base().add(pos) };
        Some((p.cast(), pos + reclen))
    }

    /// The name of the record at `pos` (a position `push` returned).
    pub fn name_at(&self, pos: usize) -> &[u8] {
        self.entry_at(pos).map_or(&[], |e| e.name)
    }

    /// The entries, in order.
    pub fn iter(&self) -> impl Iterator<Item = EntryRef<'_>> {
        let mut pos = 0;
        std::iter::from_fn(move || {
            let e = self.entry_at(pos)?;
            pos = e.next;
            Some(e)
        })
    }

    /// Only `.` and `..`, or nothing at all.
    pub fn is_empty_dir(&self) -> bool {
        self.iter().all(|e| e.name == b"." || e.name == b"..")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_as_pushed() {
        let mut l = Listing::new();
        let a = l.push(7, libc::DT_DIR, b".");
        let b = l.push(9, libc::DT_REG, b"a-rather-longer-name");
        assert_eq!((a, l.count()), (0, 2));
        assert_eq!(l.name_at(b), b"a-rather-longer-name");
        let got: Vec<_> = l
            .iter()
            .map(|e| (e.ino, e.dtype, e.name.to_vec()))
            .collect();
        assert_eq!(
            got,
            vec![
                (7, libc::DT_DIR, b".".to_vec()),
                (9, libc::DT_REG, b"a-rather-longer-name".to_vec())
            ]
        );
        let copy = Listing::from_bytes(l.bytes()).expect("well-formed");
        assert_eq!(copy.bytes(), l.bytes());
        assert_eq!(copy.count(), 2);
        assert!(!l.is_empty_dir());
    }

    #[test]
    fn dirents_are_c_records() {
        let mut l = Listing::new();
        l.push(1, libc::DT_DIR, b"..");
        let second = l.push(42, libc::DT_LNK, b"link");
        let (d, next) = l.dirent_at(second).expect("a record");
        // SAFETY: a record of `l`, which lives on; fields read by pointer.
        let (ino, off, ty, name) = unsafe {
            (
                (*d).d_ino,
                (*d).d_off,
                (*d).d_type,
                std::ffi::CStr::from_ptr((*d).d_name.as_ptr())
                    .to_bytes()
                    .to_vec(),
            )
        };
        assert_eq!(
            (ino, off as usize, ty, name),
            (42, next, libc::DT_LNK, b"link".to_vec())
        );
        assert_eq!(next, l.bytes().len());
        assert!(l.dirent_at(next).is_none());
    }

    #[test]
    fn a_mapped_file_of_records_is_a_listing() {
        let mut l = Listing::new();
        l.push(3, libc::DT_REG, b"mapped");
        l.push(4, libc::DT_DIR, b"sub");
        let path = std::env::temp_dir().join(format!("ovl-listing-test-{}", std::process::id()));
        let map_of = |bytes: &[u8]| {
            std::fs::write(&path, bytes).expect("write the test file");
            let f = std::fs::File::open(&path).expect("open the test file");
            FileMap::new(rustix::fd::AsFd::as_fd(&f), bytes.len()).expect("map")
        };
        let mut file = b"8 bytes.".to_vec();
        file.extend_from_slice(l.bytes());
        file.extend_from_slice(&[0; SLACK]);
        let m = Listing::from_map(map_of(&file), 8, l.bytes().len()).expect("a listing");
        assert_eq!(m.bytes(), l.bytes());
        assert_eq!(m.count(), 2);
        // A program may write into an entry it was handed (its copy only).
        let (d, _) = m.dirent_at(0).expect("first record");
        // SAFETY: a record of `m`, in a private writable mapping.
        unsafe { (*d.cast_mut()).d_name[0] = b'M' as libc::c_char };
        assert_eq!(
            m.iter().next().map(|e| e.name.to_vec()),
            Some(b"Mapped".to_vec())
        );
        assert_eq!(
            std::fs::read(&path).expect("read back")[8 + HEADER],
            b'm',
            "file unchanged"
        );
        let mut m = m;
        m.push(5, libc::DT_LNK, b"added");
        assert_eq!(m.count(), 3);
        // Not followed by zeroes, or not aligned: refused.
        let n = file.len();
        file[n - 1] = 1;
        assert!(Listing::from_map(map_of(&file), 8, l.bytes().len()).is_none());
        file[n - 1] = 0;
        assert!(Listing::from_map(map_of(&file), 4, l.bytes().len()).is_none());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn malformed_records_and_positions_are_refused() {
        let mut l = Listing::new();
        l.push(1, libc::DT_REG, b"one");
        l.push(2, libc::DT_REG, b"two");
        assert!(l.entry_at(4).is_none(), "not aligned");
        assert!(l.entry_at(8).is_none(), "inside a record");
        let mut bad = l.bytes().to_vec();
        bad[16] = 0xff; // reclen past the end
        assert!(Listing::from_bytes(&bad).is_none());
        assert!(Listing::from_bytes(&l.bytes()[..l.bytes().len() - 8]).is_none());
        assert_eq!(Listing::from_bytes(&[]).map(|l| l.count()), Some(0));
    }
}
