//! Listing a merged directory: upper names first, then each lower layer's,
//! duplicates dropped, whiteouts hidden (and hiding what lies below them),
//! `.` and `..` once. The list is built once per open directory stream; a
//! big directory's is kept in the work directory for the next (see
//! `listing_cache`).

use crate::listing::Listing;
use crate::listing_cache::{self, LayerDir};
use crate::lookup::Node;
use crate::overlay::{Overlay, UPPER};
use crate::sys::{cpath, fnv1a};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use std::mem::MaybeUninit;

/// Could an entry of this type be a whiteout (and so need a closer look)?
/// In the bottom layer only a character device can be (see
/// `Overlay::hides`).
fn may_be_whiteout(dtype: u8, bottom: bool, xattr_whiteouts: bool) -> bool {
    dtype == libc::DT_CHR
        || dtype == libc::DT_UNKNOWN
        || (!bottom && (dtype == libc::DT_LNK || (xattr_whiteouts && dtype == libc::DT_REG)))
}

/// Where a remembered name is kept.
#[derive(Clone, Copy)]
enum Place {
    /// A record of the listing being built, at this position.
    Listed(usize),
    /// A whited-out name, at this offset of `NameSet::hidden` (length first).
    Hidden(usize),
}

/// The names met so far, listed or whited out, to drop what lies below them:
/// an open-addressing table of places, so that no listed name is copied.
struct NameSet {
    slots: Vec<Option<(u64, Place)>>,
    used: usize,
    hidden: Vec<u8>,
}

impl NameSet {
    fn new() -> NameSet {
        NameSet {
            slots: vec![None; 1024],
            used: 0,
            hidden: Vec::new(),
        }
    }

    fn name<'a>(&'a self, listing: &'a Listing, place: Place) -> &'a [u8] {
        match place {
            Place::Listed(pos) => listing.name_at(pos),
            Place::Hidden(at) => {
                let len = usize::from(self.hidden[at]);
                &self.hidden[at + 1..at + 1 + len]
            }
        }
    }

    fn contains(&self, listing: &Listing, name: &[u8], hash: u64) -> bool {
        self.find(listing, name, hash).is_some()
    }

    /// Where `name` is, if seen.
    fn find(&self, listing: &Listing, name: &[u8], hash: u64) -> Option<Place> {
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        while let Some((h, place)) = self.slots[i] {
            if h == hash && self.name(listing, place) == name {
                return Some(place);
            }
            i = (i + 1) & mask;
        }
        None
    }

    fn insert(&mut self, listing: &Listing, hash: u64, place: Place) {
        if (self.used + 1) * 2 > self.slots.len() {
            self.grow(listing);
        }
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        while self.slots[i].is_some() {
            i = (i + 1) & mask;
        }
        self.slots[i] = Some((hash, place));
        self.used += 1;
    }

    fn insert_hidden(&mut self, listing: &Listing, name: &[u8], hash: u64) {
        let at = self.hidden.len();
        let name = &name[..name.len().min(255)];
        self.hidden.push(name.len() as u8);
        self.hidden.extend_from_slice(name);
        self.insert(listing, hash, Place::Hidden(at));
    }

    fn grow(&mut self, listing: &Listing) {
        let bigger = vec![None; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, bigger);
        self.used = 0;
        for (hash, place) in old.into_iter().flatten() {
            self.insert(listing, hash, place);
        }
    }
}

impl Overlay {
    /// The merged listing of the directory `dir`, as a program reading it
    /// gets it.
    pub fn merged_listing(&self, dir: &Node) -> Result<Listing, Errno> {
        self.listing(dir, true)
    }

    /// Does the directory `dir` show no name but `.` and `..`? Checked as
    /// the kernel's `rmdir` and `rename` check it, which leave an `impure`
    /// mark alone: only a program's reading of the listing takes it off.
    pub fn is_empty_in_view(&self, dir: &Node) -> Result<bool, Errno> {
        Ok(self.listing(dir, false)?.is_empty_dir())
    }

    /// The merged listing of `dir`; `read` when a program reads it.
    fn listing(&self, dir: &Node, read: bool) -> Result<Listing, Errno> {
        let started = listing_cache::now();
        let mut dirs = Vec::new();
        for l in dir.dir_layers() {
            let path = self.real_path(l, &dir.rel);
            let (fd, _) = crate::sys::open_unstamped(
                rustix::fs::CWD,
                cpath(&path).as_c_str(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                Some(self.layer_owner(l)),
            )?;
            let stat = rustix::fs::fstat(&fd)?;
            dirs.push(LayerDir {
                layer: l,
                fd,
                stat,
                path,
            });
        }
        let kept = listing_cache::Kept::for_dir(self, dir, &dirs);
        if let Some(listing) = kept.as_ref().and_then(|k| k.load()) {
            return Ok(listing);
        }
        let listing = self.read_merged(dir, &dirs, read)?;
        if let Some(k) = kept {
            k.store(self, &listing, &dirs, started);
        }
        Ok(listing)
    }

    /// Reads and merges the layers' directories `dirs` of `dir` (topmost
    /// first), in the kernel's overlayfs order: the names of the last layer
    /// (the stack's bottom) first, in that directory's own order, each with
    /// the record of the highest layer that has it; then the other names,
    /// top layer first. (The kernel reads the bottom last and moves its
    /// names to the front, to keep offsets steady.) `read`: for a program
    /// reading it (see `is_empty_in_view`).
    fn read_merged(&self, dir: &Node, dirs: &[LayerDir], read: bool) -> Result<Listing, Errno> {
        let Some((last, above)) = dirs.split_last() else {
            return Ok(Listing::new());
        };
        let mut buf = vec![MaybeUninit::<u8>::uninit(); 32 * 1024];
        let mut seen = NameSet::new();
        let mut higher = Listing::new();
        for d in above {
            self.read_layer(dir, d, &mut buf, |name, hash, record| {
                if seen.contains(&higher, name, hash) {
                    return;
                }
                match record {
                    Some((ino, dtype)) => {
                        let at = higher.push(ino, dtype, name);
                        seen.insert(&higher, hash, Place::Listed(at));
                    }
                    // Hidden, and hiding the name below.
                    None => seen.insert_hidden(&higher, name, hash),
                }
            })?;
        }
        let mut out = Listing::new();
        let mut moved = Vec::new();
        let origins = self.read_layer(dir, last, &mut buf, |name, hash, record| {
            match seen.find(&higher, name, hash) {
                Some(Place::Listed(at)) => {
                    if let Some(e) = higher.entry_at(at) {
                        out.push(e.ino, e.dtype, name);
                        moved.push(at);
                    }
                }
                Some(Place::Hidden(_)) => {}
                None => {
                    if let Some((ino, dtype)) = record {
                        out.push(ino, dtype, name);
                    }
                }
            }
        })?;
        if read && above.is_empty() && origins == Some(0) {
            // As the kernel: an upper-only directory marked impure that
            // holds no copy any more loses the mark when it is read.
            self.clear_impure(&cpath(&last.path));
        }
        moved.sort_unstable();
        let mut pos = 0;
        for e in higher.iter() {
            if moved.binary_search(&pos).is_err() {
                out.push(e.ino, e.dtype, e.name);
            }
            pos = e.next;
        }
        Ok(out)
    }

    /// Reads the layer directory `d` of `dir`, handing each name to `f`
    /// with its hash and `(ino, DT_*)`, or `None` for a whiteout (which
    /// hides the name in the layers below). For an impure upper directory:
    /// how many entries are listed with their origins' numbers, or may be
    /// copies whose origins could not be recorded (`origin_unrecordable`).
    fn read_layer(
        &self,
        dir: &Node,
        d: &LayerDir,
        buf: &mut [MaybeUninit<u8>],
        mut f: impl FnMut(&[u8], u64, Option<(u64, u8)>),
    ) -> Result<Option<usize>, Errno> {
        let bottom = self.is_bottom(d.layer);
        // As the kernel: the copies in an impure upper directory are listed
        // with their origins' inode numbers, as `stat` reports them.
        let impure = d.layer == UPPER && self.is_impure(&cpath(&d.path));
        let xw = self.is_lower_layer(d.layer)
            && !bottom
            && crate::whiteout::marks_xattr_whiteouts(&cpath(&d.path));
        let mut origins = 0;
        let mut iter = rustix::fs::RawDir::new(&d.fd, buf);
        while let Some(ent) = iter.next() {
            let ent = ent?;
            let name = ent.file_name().to_bytes();
            let dots = name == b"." || name == b"..";
            let dtype = file_type_to_dt(ent.file_type());
            let whiteout = !dots
                && may_be_whiteout(dtype, bottom, xw)
                && self.hidden_entry(d, &dir.rel, name, dtype);
            let may_be_copy = impure && !dots && !whiteout;
            let origin = may_be_copy
                .then(|| self.listed_ino(&dir.rel, name, dtype, d.stat.st_dev))
                .flatten();
            let unrecorded = may_be_copy && self.origin_unrecordable(dtype);
            origins += usize::from(origin.is_some() || unrecorded);
            f(
                name,
                fnv1a(name),
                (!whiteout).then_some((origin.unwrap_or(ent.ino()), dtype)),
            );
        }
        Ok(impure.then_some(origins))
    }

    /// Can an upper entry of type `dtype` be a copy whose origin could not
    /// be recorded? In `user.` xattrs (a user who is not root) symlinks and
    /// special files hold none, and the kernel, which still knows their
    /// origins while it has them cached, keeps their directory's `impure`
    /// mark when it lists it: taken off, the directory's change time would
    /// move under a reader (`tar`: "file changed as we read it").
    fn origin_unrecordable(&self, dtype: u8) -> bool {
        self.xattr_ns == crate::config::XattrNs::User
            && !matches!(dtype, libc::DT_DIR | libc::DT_REG)
    }

    /// The inode number the view reports for the upper entry `name` of the
    /// directory `dir_rel` (of type `dtype`, on the device `dev`), when it
    /// is a copy with an origin.
    fn listed_ino(&self, dir_rel: &[u8], name: &[u8], dtype: u8, dev: u64) -> Option<u64> {
        let mode = if dtype == libc::DT_DIR {
            libc::S_IFDIR
        } else {
            libc::S_IFREG
        };
        let upper = crate::origin::UpperObject {
            mode,
            dev,
            ino: 0,
            ctime: None,
        };
        self.origin_identity_at(&crate::lookup::join(dir_rel, name), &upper)
            .map(|(_, ino)| ino)
    }

    /// Is the entry `name` (of type `dtype`) of the layer directory `d` a
    /// whiteout? In a directory the reader may not search (mode 400, say),
    /// a device is taken for one: the kernel tells with the mounter's
    /// credentials; a user can make no other device in their upper layer,
    /// and a lower layer that was one (stacked) holds the same. A real
    /// device in a lower directory its reader cannot search is listed by
    /// the kernel and not by ovl; the reader cannot reach it on either.
    fn hidden_entry(&self, d: &LayerDir, dir_rel: &[u8], name: &[u8], dtype: u8) -> bool {
        let mut p = d.path.clone();
        p.push(b'/');
        p.extend_from_slice(name);
        let cp = cpath(&p);
        match rustix::fs::lstat(cp.as_c_str()) {
            Ok(st) => self.hides(d.layer, &cp, &st, dir_rel),
            Err(Errno::ACCESS) => dtype == libc::DT_CHR,
            Err(_) => false,
        }
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
