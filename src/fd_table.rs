//! What the overlay remembers of open descriptors: for each one of the
//! view, its path there and what it is (see [`FdInfo`]). Kept through the
//! hooks that open, duplicate and close; a descriptor inherited across
//! `exec` is looked at the first time it matters (no `/proc` scan at start).

// Descriptors below SETTLED_LIMIT are tracked by [`SETTLED`]; higher ones
// are looked at every time they are not known.
use crate::hot::SETTLED_LIMIT;
use crate::lookup::Node;
use crate::overlay::Overlay;
use crate::padded::Padded;
use std::cell::RefCell;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Open descriptors that refer to objects of the view: fd -> path in the view.
static FDS: Padded<RwLock<Vec<Option<Arc<FdInfo>>>>> = Padded(RwLock::new(Vec::new()));

/// Highest fd ever registered + 1 (fast check for "not ours").
pub(crate) const FDS_LEN: &AtomicI32 = &crate::hot::HOT.fds_len;

/// Bumped at every change of [`FDS`], under its write lock.
static FDS_VERSION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The last descriptor this thread looked up in [`FDS`], the table's
    /// version then, and what it said: while the version stands, asking
    /// about the same descriptor again takes no lock and clones nothing
    /// (`find` asks about its directory's descriptor for every name in it).
    static LAST_FD: RefCell<(i32, u64, Option<Arc<FdInfo>>)> =
        const { RefCell::new((-1, u64::MAX, None)) };
}

/// What the overlay remembers of an open descriptor.
#[derive(Clone)]
pub struct FdInfo {
    /// Path in the view, relative to its root (normalized, symlink-free).
    pub rel: Vec<u8>,
    /// The descriptor is a directory built from several layers.
    pub merged: bool,
    /// The descriptor refers to an object of a lower layer.
    pub lower: bool,
    /// For a directory: what the look-up found, valid while the overlay's
    /// generation is `generation`.
    pub node: Option<Node>,
    pub generation: u64,
    /// For a reader of a lower file: the overlay's count of copy-ups when
    /// the file was last seen not copied up (see [`catch_up_reader`](crate::fd_follow::catch_up_reader)).
    pub copy_ups: u64,
    /// For a directory of one lower layer: the overlay's count of directory
    /// copy-ups when it was last seen not copied up (a stream on it lists
    /// the merged directory from its next start once it has been: see
    /// [`note_dir_not_copied_up`](crate::fd_follow::note_dir_not_copied_up)).
    pub dir_copy_ups: u64,
    /// The object is known not to be a directory (a descriptor given as
    /// one fails with `ENOTDIR`, also once its name shows another object).
    pub not_dir: bool,
    /// The overlay's generation when `rel` was last known to name the
    /// descriptor's object: an object of the upper layer alone moves with a
    /// rename, by this process or another (see [`Overlay::locate`]).
    pub rel_seen: u64,
    /// A directory stream reads through the descriptor (it stays on the
    /// directory it was opened on: see [`repoint_lower_dirs`](crate::fd_follow::repoint_lower_dirs)).
    pub stream: bool,
    /// The overlay added `O_NOATIME` to the program's flags (a read of a
    /// lower object: see [`crate::sys::open_unstamped`]): `F_GETFL` does not
    /// show it, `F_SETFL` keeps it.
    pub unstamped: bool,
}

/// One bit per descriptor: set once the overlay has accounted for it (opened,
/// duplicated or closed through a hook, or looked at once). A descriptor not
/// yet settled may have been inherited across `exec`; it is looked at the
/// first time it matters, so a process start costs no `/proc` scan.
const SETTLED: &[AtomicU64] = &crate::hot::HOT.settled;

#[inline]
pub(crate) fn settled(fd: i32) -> bool {
    (0..SETTLED_LIMIT).contains(&fd)
        && SETTLED[(fd / 64) as usize].load(Ordering::Relaxed) & (1 << (fd % 64)) != 0
}

/// Records that `fd` is accounted for: what [`FDS`] says of it is the truth.
#[inline]
pub fn settle_fd(fd: i32) {
    if crate::vfork::in_child() {
        return; // the parent's table: a child's descriptors are not in it
    }
    if (0..SETTLED_LIMIT).contains(&fd) {
        let word = &SETTLED[(fd / 64) as usize];
        let bit = 1 << (fd % 64);
        // Mostly set already (numbers are reused): a load, not an exchange.
        if word.load(Ordering::Relaxed) & bit == 0 {
            word.fetch_or(bit, Ordering::Relaxed);
        }
    }
}

/// Settles every descriptor from `first` on (`closefrom`, `close_range`).
fn settle_from(first: u32, last: u32) {
    if crate::vfork::in_child() {
        return;
    }
    let last = last.min(SETTLED_LIMIT as u32 - 1);
    for fd in first..=last {
        if fd % 64 == 0 && fd + 63 <= last {
            SETTLED[(fd / 64) as usize].store(u64::MAX, Ordering::Relaxed);
        } else {
            settle_fd(fd as i32);
        }
    }
}

/// Remembers that `fd` refers to an object of the view.
pub fn register_fd(fd: i32, info: FdInfo) {
    if crate::vfork::in_child() {
        return crate::vfork::touch_fds(fd, fd);
    }
    if fd < 0 {
        return;
    }
    store_fd(fd, Arc::new(info));
    settle_fd(fd);
}

/// Puts `info` in [`FDS`] for `fd` (not negative).
pub(crate) fn store_fd(fd: i32, info: Arc<FdInfo>) {
    crate::above::forget(fd);
    if let Ok(mut t) = FDS.write() {
        let i = fd as usize;
        if t.len() <= i {
            t.resize(i + 1, None);
        }
        note_reader(i, Some(&info));
        t[i] = Some(info);
        FDS_LEN.fetch_max(fd + 1, Ordering::Release);
        FDS_VERSION.fetch_add(1, Ordering::AcqRel);
    }
}

/// Could `fd` be one the overlay knows (a quick test, no lock)?
#[inline]
pub fn may_know_fd(fd: i32) -> bool {
    fd >= 0
        && (fd < FDS_LEN.load(Ordering::Acquire)
            || !settled(fd)
            || crate::above::quick_is_above(fd) != Some(false))
}

/// What the overlay knows of `fd`, if it refers to the view.
#[inline]
pub fn fd_info(fd: i32) -> Option<Arc<FdInfo>> {
    if fd < 0 {
        return None;
    }
    if crate::vfork::in_child() && crate::vfork::touched_fd(fd) {
        return None; // changed by a vfork child: taken as it is
    }
    match in_table(fd) {
        Some(found) => found,
        None => crate::overlay::get()?.adopt_inherited(fd),
    }
}

/// Runs `f` on what the overlay knows of `fd` (`None`: it does not refer
/// to the view), from this thread's last look-up while the table is
/// unchanged: as [`fd_info`], without a lock or a clone.
pub fn with_fd_info<R>(fd: i32, f: impl FnOnce(Option<&FdInfo>) -> R) -> R {
    if fd < 0 || (crate::vfork::in_child() && crate::vfork::touched_fd(fd)) {
        return f(None);
    }
    if fd >= FDS_LEN.load(Ordering::Acquire) && settled(fd) {
        return f(None);
    }
    // Read before the table: a copy is never newer than its version.
    let version = FDS_VERSION.load(Ordering::Acquire);
    let mut f = Some(f);
    let from_copy = LAST_FD
        .try_with(|last| {
            let mut last = last.try_borrow_mut().ok()?;
            if last.0 != fd || last.1 != version {
                *last = (fd, version, in_table(fd)?);
            }
            f.take().map(|f| f(last.2.as_deref()))
        })
        .ok()
        .flatten();
    match (from_copy, f) {
        (Some(r), _) => r,
        (None, Some(f)) => f(fd_info(fd).as_deref()),
        (None, None) => unreachable!("the closure ran and gave its result"),
    }
}

/// What [`FDS`] says of `fd`, when that is the whole truth (`None`: an
/// inherited descriptor not looked at yet).
fn in_table(fd: i32) -> Option<Option<Arc<FdInfo>>> {
    let found = if fd < FDS_LEN.load(Ordering::Acquire) {
        FDS.read().ok()?.get(fd as usize).cloned().flatten()
    } else {
        None
    };
    (found.is_some() || settled(fd)).then_some(found)
}

/// Forgets `fd` (it was closed). (Not `#[inline]`: as `plainly_outside`.)
pub fn forget_fd(fd: i32) {
    if crate::vfork::in_child() {
        return crate::vfork::touch_fds(fd, fd);
    }
    settle_fd(fd);
    crate::watch::forget(fd);
    crate::above::forget(fd);
    crate::getdents::forget(fd);
    if fd < 0 || fd >= FDS_LEN.load(Ordering::Acquire) {
        return;
    }
    let known = FDS
        .read()
        .is_ok_and(|t| t.get(fd as usize).is_some_and(Option::is_some));
    if !known {
        return;
    }
    if let Ok(mut t) = FDS.write() {
        if let Some(slot) = t.get_mut(fd as usize) {
            *slot = None;
            note_reader(fd as usize, None);
        }
        FDS_VERSION.fetch_add(1, Ordering::AcqRel);
    }
}

/// Forgets every fd in `[first, last]` (close_range).
pub fn forget_fd_range(first: u32, last: u32) {
    if crate::vfork::in_child() {
        return crate::vfork::touch_fds(
            first.min(i32::MAX as u32) as i32,
            last.min(i32::MAX as u32) as i32,
        );
    }
    settle_from(first, last);
    crate::above::forget_range(
        first.min(i32::MAX as u32) as i32,
        last.min(i32::MAX as u32) as i32,
    );
    let len = FDS_LEN.load(Ordering::Acquire).max(0) as u32;
    for fd in first..=last.min(len) {
        forget_fd(fd as i32);
    }
}

/// Settles `fd`, just made for something outside the view, when that needs
/// no lock: no stale entry of the view's table or of the list of directories
/// above the view to forget. `false`: call [`forget_fd`] (or [`dup_fd`]).
/// Safe without the re-entry guard (in a process whose inotify descriptor
/// follows watches, `watch::forget` takes its list's lock).
#[inline]
pub fn settle_plain_new_fd(fd: i32) -> bool {
    let plain = fd >= FDS_LEN.load(Ordering::Acquire)
        && crate::above::quick_is_above(fd) == Some(false)
        && !crate::vfork::in_child();
    if plain {
        settle_fd(fd);
        crate::watch::forget(fd);
    }
    plain
}

/// Marks `fd` as read by a directory stream (`opendir`, `fdopendir`).
pub fn note_stream(fd: i32) {
    if crate::vfork::in_child() {
        return;
    }
    if let Some(info) = fd_info(fd).filter(|i| !i.stream) {
        let mut changed = (*info).clone();
        changed.stream = true;
        store_fd(fd, Arc::new(changed));
    }
}

/// Could a read through `fd` need [`catch_up_reader`](crate::fd_follow::catch_up_reader) first? `false` when
/// it surely reaches the right file as it is: it reads no lower file, or
/// nothing was copied up since it last looked. Loads only: no lock, no
/// call (a hook's quick test, made before every `read`).
#[inline(always)]
pub fn read_may_need_catch_up(fd: i32) -> bool {
    if fd < 0 || crate::hot::HOT.overlay.load(Ordering::Relaxed).is_null() {
        return false;
    }
    match READERS.get(fd as usize) {
        Some(slot) => match slot.load(Ordering::Acquire) {
            0 => !settled(fd), // an inherited descriptor is looked at once
            mark => mark - 1 != crate::generation::copy_ups_now(),
        },
        None => true,
    }
}

/// Does `info` describe a descriptor on a lower file (not a directory)?
pub(crate) fn is_lower_reader(info: &FdInfo) -> bool {
    info.lower && info.node.is_none()
}

/// The low descriptors' [`FdInfo::copy_ups`], for [`read_may_need_catch_up`] to read
/// without a lock: 0 for a descriptor that reads no lower file, else one
/// more than the count (`u64::MAX`: never current). Kept by [`store_fd`]
/// and [`forget_fd`], under the table's write lock.
static READERS: [AtomicU64; READERS_LEN] = [const { AtomicU64::new(0) }; READERS_LEN];
const READERS_LEN: usize = 4096;

fn note_reader(fd: usize, info: Option<&FdInfo>) {
    if let Some(slot) = READERS.get(fd) {
        let mark = match info.filter(|i| is_lower_reader(i)) {
            None => 0,
            Some(i) => i.copy_ups.saturating_add(1),
        };
        slot.store(mark, Ordering::Release);
    }
}

/// Marks the inotify descriptor `fd` as one whose reads go past the quick
/// test (`watch.rs` translates its events), or no longer.
pub(crate) fn note_watcher(fd: i32, watching: bool) {
    if let Some(slot) = usize::try_from(fd).ok().and_then(|fd| READERS.get(fd)) {
        slot.store(if watching { u64::MAX } else { 0 }, Ordering::Release);
    }
}

/// Stores `fd`'s record again, changed by `change`, if it still stands for
/// `rel` (the descriptor may have been closed and reused meanwhile).
pub(crate) fn update_fd_info(fd: i32, rel: &[u8], change: impl FnOnce(&mut FdInfo)) {
    if let Some(info) = fd_info(fd).filter(|i| i.rel == rel) {
        let mut changed = (*info).clone();
        change(&mut changed);
        store_fd(fd, Arc::new(changed));
    }
}

/// `newfd` is now a duplicate of `oldfd`.
pub fn dup_fd(oldfd: i32, newfd: i32) {
    if crate::vfork::in_child() {
        return crate::vfork::touch_fds(newfd, newfd);
    }
    // A program's own descriptors, duplicated by the thousand (fts does):
    // nothing to copy, nothing to forget, no lock.
    if !may_know_fd(oldfd) && settle_plain_new_fd(newfd) {
        return;
    }
    match fd_info(oldfd) {
        Some(info) if newfd >= 0 => store_fd(newfd, info),
        _ => forget_fd(newfd),
    }
    crate::above::dup(oldfd, newfd);
    crate::getdents::dup(oldfd, newfd);
    settle_fd(newfd);
}

impl Overlay {
    /// Looks once at a descriptor this process did not open through the
    /// overlay (inherited across `exec`): when its real path lies in a layer
    /// it stands for that object of the view, as before the `exec`.
    fn adopt_inherited(&self, fd: i32) -> Option<Arc<FdInfo>> {
        settle_fd(fd);
        if self.surely_no_object_of_layers(fd) {
            return None;
        }
        let real = crate::sys::real_path_of_fd(fd)?;
        if self.is_above_view(&real) {
            crate::above::note(fd, real);
            return None;
        }
        let rel = self.real_to_rel(&real)?;
        let lower = self.in_lower_tree(&real);
        // A directory may be merged: look it up again to know.
        let (merged, not_dir) = match self.resolve(rel, false) {
            Ok(crate::lookup::Resolved::Inside(n)) => (n.is_merged(), !n.is_dir()),
            _ => (false, false),
        };
        let info = FdInfo {
            rel: rel.to_vec(),
            merged,
            lower,
            node: None,
            generation: 0,
            copy_ups: 0,     // not known: looked at before its first read
            dir_copy_ups: 0, // as `copy_ups`
            not_dir,
            rel_seen: self.generation(),
            stream: false,
            // A lower object read with `O_NOATIME`: the parent's overlay
            // added it (a program asks for it too rarely to tell apart).
            unstamped: lower && has_noatime(fd),
        };
        register_fd(fd, info);
        fd_info(fd)
    }

    /// Is `fd` (inherited, not looked at yet) surely neither an object of a
    /// layer nor a directory above the view? So for a pipe, a socket or a
    /// device (a terminal, `/dev/null`: what standard descriptors mostly
    /// are) on a file system no layer lies on: one `fstat`, where reading
    /// its `/proc/self/fd` link would be the process's first look into
    /// `/proc`, ~40 µs here (a shell saves its output so before a
    /// redirection). Files and directories are always looked at: one may
    /// lie on a file system mounted inside a layer.
    fn surely_no_object_of_layers(&self, fd: i32) -> bool {
        use rustix::fs::FileType;
        // SAFETY: the caller's open descriptor, for this call only.
        let st = rustix::fs::fstat(unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) });
        st.is_ok_and(|st| {
            matches!(
                FileType::from_raw_mode(st.st_mode),
                FileType::Fifo | FileType::Socket | FileType::CharacterDevice
            ) && self.layers.iter().all(|l| l.dev != st.st_dev)
        })
    }
}

/// Is `fd` open with `O_NOATIME`?
fn has_noatime(fd: i32) -> bool {
    // SAFETY: the caller's open descriptor, for this call only.
    let fd = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
    rustix::fs::fcntl_getfl(fd).is_ok_and(|f| f.contains(rustix::fs::OFlags::NOATIME))
}

/// This process's descriptors of the lower object at `rel`: of its
/// directory (`dirs`), or of its file.
pub(crate) fn lower_fds_at(rel: &[u8], dirs: bool) -> Vec<(i32, Arc<FdInfo>)> {
    match FDS.read() {
        Ok(t) => t
            .iter()
            .enumerate()
            .filter_map(|(fd, info)| Some((fd as i32, info.clone()?)))
            .filter(|(_, info)| info.lower && info.node.is_some() == dirs && info.rel == rel)
            .collect(),
        Err(_) => Vec::new(),
    }
}
