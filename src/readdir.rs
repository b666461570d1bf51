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

impl Overlay {
    /// The merged listing of the directory `dir`.
    pub fn merged_entries(&self, dir: &Node) -> Result<Vec<Entry>, Errno> {
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut out = Vec::new();
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
                if seen.contains(name) {
                    continue;
                }
                seen.insert(name.to_vec());
                let dtype = file_type_to_dt(ent.file_type());
                if !dots && !bottom && may_be_whiteout(dtype, xw) {
                    let mut p = dpath.clone();
                    p.push(b'/');
                    p.extend_from_slice(name);
                    let cp = cpath(&p);
                    if let Ok(st) = rustix::fs::lstat(cp.as_c_str()) {
                        if self.hides(l, &cp, &st, &dir.rel) {
                            continue;
                        }
                    }
                }
                out.push(Entry {
                    name: name.to_vec(),
                    ino: ent.ino(),
                    dtype,
                });
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
