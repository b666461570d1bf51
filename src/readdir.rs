//! Listing a merged directory: upper names first, then each lower layer's,
//! duplicates dropped, whiteouts hidden (and hiding what lies below them),
//! `.` and `..` once. The list is built once per open directory stream.

use crate::lookup::Node;
use crate::overlay::Overlay;
use crate::sys::cpath;
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use std::collections::HashSet;
use std::mem::MaybeUninit;

/// One name of a merged listing.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: Vec<u8>,
    pub ino: u64,
    /// `DT_*` value.
    pub dtype: u8,
}

/// Could an entry of this type be a whiteout (and so need a closer look)?
fn may_be_whiteout(dtype: u8, xattr_whiteouts: bool) -> bool {
    dtype == libc::DT_CHR
        || dtype == libc::DT_LNK
        || (xattr_whiteouts && dtype == libc::DT_REG)
        || dtype == libc::DT_UNKNOWN
}

/// FNV-1a: names are short, and the set is private (no adversary to resist).
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// A name already listed: points into the `Entry` that owns it.
#[derive(Clone, Copy)]
struct Seen {
    ptr: *const u8,
    len: usize,
}

impl Seen {
    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` points to the heap buffer of an `Entry::name` of the
        // listing being built, or of a whited-out name kept beside it; such a
        // buffer is neither freed nor moved while the set lives (the outer
        // vectors may move their elements, not the elements' buffers).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl std::hash::Hash for Seen {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write(self.bytes());
    }
}

impl PartialEq for Seen {
    fn eq(&self, other: &Seen) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for Seen {}

fn probe(name: &[u8]) -> Seen {
    Seen {
        ptr: name.as_ptr(),
        len: name.len(),
    }
}

impl Overlay {
    /// The merged listing of the directory `dir`.
    pub fn merged_entries(&self, dir: &Node) -> Result<Vec<Entry>, Errno> {
        let mut seen: HashSet<Seen, std::hash::BuildHasherDefault<Fnv>> = HashSet::default();
        let mut out: Vec<Entry> = Vec::new();
        let last = dir.dir_layers().last();
        // Whited-out names, owned here for as long as `seen` points at them.
        let mut whiteouts: Vec<Vec<u8>> = Vec::new();
        let mut buf = vec![MaybeUninit::<u8>::uninit(); 32 * 1024];
        for l in dir.dir_layers() {
            let dpath = self.real_path(l, &dir.rel);
            let cdir = cpath(&dpath);
            let fd = rustix::fs::open(
                cdir.as_c_str(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let bottom = self.is_bottom(l);
            let xw =
                self.is_lower_layer(l) && !bottom && crate::whiteout::marks_xattr_whiteouts(&cdir);
            let mut iter = rustix::fs::RawDir::new(&fd, &mut buf);
            while let Some(ent) = iter.next() {
                let ent = ent?;
                let name = ent.file_name().to_bytes();
                let dots = name == b"." || name == b"..";
                if dots && !out.is_empty() && l != dir.layer {
                    continue;
                }
                if seen.contains(&probe(name)) {
                    continue;
                }
                // Names of the last layer need not be remembered: nothing follows.
                let remember = Some(l) != last;
                let dtype = file_type_to_dt(ent.file_type());
                if !dots && !bottom && may_be_whiteout(dtype, xw) {
                    let mut p = dpath.clone();
                    p.push(b'/');
                    p.extend_from_slice(name);
                    let cp = cpath(&p);
                    if let Ok(st) = rustix::fs::lstat(cp.as_c_str()) {
                        if self.hides(l, &cp, &st, &dir.rel) {
                            // Hidden, and hiding the name below.
                            if remember {
                                whiteouts.push(name.to_vec());
                                seen.insert(probe(&whiteouts[whiteouts.len() - 1]));
                            }
                            continue;
                        }
                    }
                }
                out.push(Entry {
                    name: name.to_vec(),
                    ino: ent.ino(),
                    dtype,
                });
                if remember {
                    seen.insert(probe(&out[out.len() - 1].name));
                }
            }
        }
        Ok(out)
    }
}

/// The `DT_*` value of a file type.
pub fn file_type_to_dt(t: FileType) -> u8 {
    match t {
        FileType::RegularFile => libc::DT_REG,
        FileType::Directory => libc::DT_DIR,
        FileType::Symlink => libc::DT_LNK,
        FileType::Fifo => libc::DT_FIFO,
        FileType::Socket => libc::DT_SOCK,
        FileType::CharacterDevice => libc::DT_CHR,
        FileType::BlockDevice => libc::DT_BLK,
        FileType::Unknown => libc::DT_UNKNOWN,
    }
}
