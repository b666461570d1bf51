//! Merged listings of big directories, kept in the work directory
//! (`ovl-listings/`) for every process of the overlay, in this run and the
//! next. Reading a directory of thousands of names costs far more than
//! reading one file (ext4 hashes and sorts every name of it), and programs
//! list the same directories again and again.
//!
//! A kept listing is used only while each layer directory it was read from
//! is the same directory (device, inode) with the same size and change time
//! (ctime): adding, removing or renaming a name, or marking the directory
//! opaque, changes its ctime. And it is kept only when every such ctime is
//! older, by more than a timestamp's granularity, than the moment the
//! reading began: a change made during the reading or after it then gets a
//! later ctime, however coarse the filesystem's clock (git's "racily clean"
//! index entries are the same problem). Nothing is kept with the seed's
//! whiteout format: its whiteout is a symlink that becomes one when given
//! an xattr after its creation, which its directory's ctime does not show.

use crate::config::WhiteoutFormat;
use crate::listing::{FileMap, Listing};
use crate::lookup::Node;
use crate::overlay::{LayerIdx, Overlay};
use crate::sys::{cpath, fnv1a};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Mode, OFlags, Stat};
use rustix::io::Errno;

/// Name of the listings' directory in the work directory.
pub const DIR_NAME: &str = "ovl-listings";
/// Listings shorter than this are read again each time: cheap enough.
const MIN_ENTRIES: usize = 1000;
/// No kept listing is looked for when the layer directories' sizes add up
/// to less (a directory of about a thousand names on ext4 or tmpfs).
const MIN_DIR_BYTES: i64 = 24 * 1024;
/// Start of every kept listing's file: the format and its version.
const MAGIC: &[u8; 8] = b"ovlLst04";

/// One layer's directory of a merged directory, open for reading.
pub(crate) struct LayerDir {
    pub layer: LayerIdx,
    pub fd: OwnedFd,
    /// Its `fstat`, taken before reading it.
    pub stat: Stat,
    /// Its real path.
    pub path: Vec<u8>,
}

/// Nanoseconds since the epoch, by the coarse clock that stamps files.
pub(crate) fn now() -> i128 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
    i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
}

/// Did `st`'s directory last change long enough before `started` that any
/// later change shows in its ctime? A ctime without nanoseconds may come
/// from a filesystem that keeps whole (or even two) seconds.
fn settled(st: &Stat, started: i128) -> bool {
    let ctime = i128::from(st.st_ctime) * 1_000_000_000 + i128::from(st.st_ctime_nsec);
    let margin = if st.st_ctime_nsec == 0 {
        2_000_000_000
    } else {
        10_000_000
    };
    ctime + margin < started
}

/// Where the listing of one directory is kept, and what it must have been
/// read from to be used now. The file holds that key, the records (as
/// `Listing::bytes`), then `Listing::SLACK` zero bytes.
pub(crate) struct Kept {
    file: Vec<u8>,
    /// The file's first bytes: format, overlay, directory, and the identity
    /// and ctime of each layer directory.
    key: Vec<u8>,
}

impl Kept {
    /// The kept listing of `dir`, whose layer directories are `dirs`; `None`
    /// when such a directory is not worth keeping or cannot be kept.
    pub(crate) fn for_dir(ovl: &Overlay, dir: &Node, dirs: &[LayerDir]) -> Option<Kept> {
        let work = ovl.work.as_ref()?;
        if ovl.whiteout != WhiteoutFormat::CharDev
            || dirs.iter().map(|d| d.stat.st_size).sum::<i64>() < MIN_DIR_BYTES
        {
            return None;
        }
        let mut key = MAGIC.to_vec();
        let push = |key: &mut Vec<u8>, numbers: &[u64]| {
            numbers
                .iter()
                .for_each(|n| key.extend_from_slice(&n.to_le_bytes()))
        };
        let overlay = [ovl.layers.len() as u64, ovl.xattr_ns as u64, dir.dirs];
        push(&mut key, &overlay);
        push(&mut key, &[dir.rel.len() as u64]);
        key.extend_from_slice(&dir.rel);
        for d in dirs {
            let s = &d.stat;
            let ctime_nsec = i128::from(s.st_ctime_nsec) as u64;
            let identity = [d.layer as u64, s.st_dev, s.st_ino, s.st_size as u64];
            push(&mut key, &identity);
            push(&mut key, &[s.st_ctime as u64, ctime_nsec]);
        }
        // The records that follow must start 8-aligned.
        key.resize(key.len().next_multiple_of(8), 0);
        let file = work.real_path(format!("{DIR_NAME}/{:016x}", fnv1a(&dir.rel)).as_bytes());
        Some(Kept { file, key })
    }

    /// The listing kept for exactly these layer directories, if any: the
    /// file is mapped, not read (its records are handed out as they are).
    pub(crate) fn load(&self) -> Option<Listing> {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        let fd = rustix::fs::open(cpath(&self.file).as_c_str(), flags, Mode::empty()).ok()?;
        let size = usize::try_from(rustix::fs::fstat(&fd).ok()?.st_size).ok()?;
        let records = size.checked_sub(self.key.len() + Listing::SLACK)?;
        let map = FileMap::new(fd.as_fd(), size)?;
        if !map.bytes().starts_with(&self.key) {
            return None;
        }
        Listing::from_map(map, self.key.len(), records)
    }

    /// Keeps `listing`, read from `dirs` after `started`, for later readers,
    /// when it is big enough and no change to it can have gone unseen.
    /// Written whole under a temporary name, then renamed into place: a
    /// reader sees the old file or the new one. Failing costs nothing.
    pub(crate) fn store(&self, ovl: &Overlay, listing: &Listing, dirs: &[LayerDir], started: i128) {
        if listing.count() < MIN_ENTRIES || !dirs.iter().all(|d| settled(&d.stat, started)) {
            return;
        }
        let Some(work) = ovl.work.as_ref() else {
            return;
        };
        let parent = cpath(&work.real_path(DIR_NAME.as_bytes()));
        match rustix::fs::mkdir(parent.as_c_str(), Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(_) => return,
        }
        let Ok(tmp) = ovl.work_temp(crate::copy_up::Temp::Other) else {
            return;
        };
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
        let Ok(fd) = rustix::fs::open(tmp.as_c_str(), flags, Mode::from_raw_mode(0o600)) else {
            return;
        };
        let written = write_all(&fd, &self.key)
            .and_then(|()| write_all(&fd, listing.bytes()))
            .and_then(|()| write_all(&fd, &[0; Listing::SLACK]));
        drop(fd);
        if written.is_err()
            || rustix::fs::rename(tmp.as_c_str(), cpath(&self.file).as_c_str()).is_err()
        {
            let _ = rustix::fs::unlink(tmp.as_c_str());
        }
    }
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_with_ctime(sec: i64, nsec: i64) -> Stat {
        // SAFETY: Stat is plain data; all-zero is a valid value.
        let mut st: Stat = unsafe { std::mem::zeroed() };
        st.st_ctime = sec as _;
        st.st_ctime_nsec = nsec as _;
        st
    }

    #[test]
    fn only_directories_changed_well_before_the_reading_are_settled() {
        let started = 100 * 1_000_000_000i128 + 500_000_000;
        assert!(settled(&stat_with_ctime(100, 400_000_000), started));
        assert!(
            !settled(&stat_with_ctime(100, 495_000_000), started),
            "within the margin"
        );
        assert!(
            !settled(&stat_with_ctime(100, 600_000_000), started),
            "after the start"
        );
        // Whole seconds: the filesystem may keep no finer time.
        assert!(!settled(&stat_with_ctime(99, 0), started));
        assert!(settled(&stat_with_ctime(98, 0), started));
    }
}
