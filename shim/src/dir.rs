//! Directory streams and the current directory. A stream on a merged
//! directory is a real glibc `DIR*` (so `dirfd` and glibc's own users of it
//! keep working) whose entries come from a side table holding the merged
//! list, built at the first read and rebuilt after a rewind, as the kernel
//! does. Other directories are read straight; a stream on a directory of one
//! lower layer turns into a merged one when it starts reading (first read,
//! or first after a rewind) once the directory has been copied up, as the
//! kernel's overlayfs switches such a directory's file at a read from
//! position 0 (`ovl_iterate`, `ovl_dir_reset`); a read from further on
//! goes on in the lower directory, as there.

use crate::path::{locate, Located};
use crate::{fail, hooks};
use libc::{c_char, c_int, c_long, c_void, dirent64, size_t, ssize_t, DIR};
use ovl::fd_follow::{is_lower_only_dir, note_dir_not_copied_up};
use ovl::fd_table::{fd_info, forget_fd, register_fd};
use ovl::generation::{dir_copy_ups_now, UNCACHEABLE};
use ovl::listing::Listing;
use ovl::overlay::Overlay;
use ovl::padded::Padded;
use ovl::spin_lock::SpinLock;
use rustix::fd::IntoRawFd;
use rustix::io::Errno;
use std::cell::Cell;
use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A stream on a merged directory.
struct Merged {
    rel: Vec<u8>,
    /// Built at the first read, and again after a rewind.
    listing: Option<Listing>,
    /// Position of the next entry: a byte offset in the listing.
    pos: usize,
}

/// Hashes a stream's address: one multiplication (the table is private and
/// consulted at every `readdir`; SipHash's resistance buys nothing here).
#[derive(Default)]
struct AddressHasher(u64);

impl std::hash::Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        // The high bits are the well-mixed ones; hashbrown takes both ends.
        self.0 = (n as u64)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
}

/// A stream's state, owned by the table through a raw pointer: it stays at
/// its address while the table grows, so a thread's memo may point at it.
struct Owned(NonNull<Merged>);

impl Owned {
    fn new(m: Merged) -> Owned {
        Owned(NonNull::from(Box::leak(Box::new(m))))
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: the pointer came from Box::leak in `new` and is dropped once.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

// SAFETY: `Owned` owns its `Merged` as a Box would, and `Merged` is Send.
unsafe impl Send for Owned {}

type StreamTable = HashMap<usize, Owned, std::hash::BuildHasherDefault<AddressHasher>>;

static STREAMS: Padded<SpinLock<Option<StreamTable>>> = Padded(SpinLock::new(None));
/// Number of merged streams open: zero means every `readdir` goes straight to libc.
const OPEN_MERGED: &AtomicU32 = &ovl::hot::HOT.open_merged;
/// Bumped, under the table's lock, whenever a stream enters or leaves the
/// table: a thread's [`Memo`] taken at another value may be stale.
static TABLE_GEN: AtomicU64 = AtomicU64::new(0);

/// The stream this thread read last and what the table said of it (its
/// state, or null: not a merged stream), valid while [`TABLE_GEN`] has not
/// moved. `readdir` is called once per name; with the memo, reading one
/// stream takes neither the table's lock nor a look-up. Streams are not
/// shared by threads reading at once (glibc's `readdir` is MT-Unsafe
/// race:dirstream), so the memo's stream is this thread's to step.
#[derive(Clone, Copy)]
struct Memo {
    dir: usize,
    stream: *mut Merged,
    gen: u64,
}

thread_local! {
    static LAST_READ: Cell<Memo> = const {
        Cell::new(Memo { dir: 0, stream: std::ptr::null_mut(), gen: u64::MAX })
    };
}

/// Is any merged stream open (else every `readdir` goes straight to libc)?
pub(crate) fn any_merged() -> bool {
    OPEN_MERGED.load(Ordering::Acquire) != 0
}

/// Runs `f` on the stream `dir` under the table's lock: `None` when the
/// stream is not ours. `f` must be quick.
fn with_stream<R>(dir: *mut DIR, f: impl FnOnce(&mut Merged) -> R) -> Option<R> {
    if OPEN_MERGED.load(Ordering::Acquire) == 0 {
        return None;
    }
    STREAMS
        .lock()
        .as_mut()?
        .get_mut(&(dir as usize))
        // SAFETY: the table owns the stream, and we hold its lock.
        .map(|m| f(unsafe { m.0.as_mut() }))
}

/// Streams on directories of one lower layer that have not read since they
/// started (were opened or rewound), by descriptor: the count of directory
/// copy-ups when the directory was last seen not copied up, plus one (0:
/// none). Their first read compares it with the count (one load); only when
/// it moved is the directory looked at ([`start_reading`]).
static AT_START: [AtomicU64; AT_START_LEN] = [const { AtomicU64::new(0) }; AT_START_LEN];
const AT_START_LEN: usize = 4096;

/// `fd`'s slot in [`AT_START`], if it has one.
#[inline(always)]
fn at_start_slot(fd: c_int) -> Option<&'static AtomicU64> {
    usize::try_from(fd).ok().and_then(|i| AT_START.get(i))
}

/// The descriptor of the stream `dir`, read as glibc's `dirfd` reads it
/// (`struct __dirstream` begins with it), with no call.
///
/// # Safety
/// `dir` is a live stream (the caller passes it to `readdir`).
#[inline(always)]
unsafe fn stream_fd(dir: *mut DIR) -> c_int {
    // SAFETY: per the contract.
    unsafe { dir.cast::<c_int>().read() }
}

/// Does closing `dir` concern the overlay in nothing (no merged stream is
/// open, no stream waits for its first read on its descriptor, which the
/// overlay does not know, and nothing is watched)? Loads only (`closedir`'s
/// quick test: a tree walk closes a stream per directory).
///
/// # Safety
/// `dir` is NULL or a live stream.
#[inline(always)]
unsafe fn closes_plainly(dir: *mut DIR) -> bool {
    if dir.is_null() || any_merged() || ovl::watch::any() {
        return false;
    }
    // SAFETY: per the contract.
    let fd = unsafe { stream_fd(dir) };
    let at_start = at_start_slot(fd);
    !ovl::fd_table::may_know_fd(fd) && at_start.is_none_or(|s| s.load(Ordering::Acquire) == 0)
}

/// Is `dir` a stream on a directory of one lower layer, at its start, whose
/// directory may have been copied up since it was last looked at? When it
/// surely was not, the stream is done with starting. Loads only (a hook's
/// quick test).
///
/// # Safety
/// `dir` is NULL or a live stream.
#[inline(always)]
unsafe fn start_may_switch(dir: *mut DIR) -> bool {
    if dir.is_null() {
        return false;
    }
    // SAFETY: per the contract.
    let fd = unsafe { stream_fd(dir) };
    let Some(slot) = at_start_slot(fd) else {
        return false;
    };
    match slot.load(Ordering::Acquire) {
        0 => false,
        mark => {
            let now = dir_copy_ups_now();
            if mark - 1 == now && now != UNCACHEABLE {
                slot.store(0, Ordering::Release);
                false
            } else {
                true
            }
        }
    }
}

/// The stream `dir` (on descriptor `fd`) is at its start: on a directory of
/// one lower layer, its first read looks whether the directory has been
/// copied up meanwhile.
fn started(ovl: &Overlay, dir: *mut DIR, fd: c_int, info: &ovl::fd_table::FdInfo) {
    if is_lower_only_dir(info) {
        started_at(ovl, dir, fd, info.dir_copy_ups);
    }
}

/// [`started`], for a stream on a directory of one lower layer last seen
/// not copied up at the count `mark`.
fn started_at(ovl: &Overlay, dir: *mut DIR, fd: c_int, mark: u64) {
    match at_start_slot(fd) {
        Some(slot) => slot.store(mark.saturating_add(1), Ordering::Release),
        // No room to wait for the first read: looked at now.
        None => switch_if_copied_up(ovl, dir, fd),
    }
}

/// Before a read of `dir`: at its start, a stream on a directory of one
/// lower layer that has been copied up since becomes a merged stream.
fn start_reading(ovl: &Overlay, dir: *mut DIR) {
    // SAFETY: `dir` is the caller's live stream.
    if !unsafe { start_may_switch(dir) } {
        return;
    }
    // SAFETY: as above.
    let fd = unsafe { stream_fd(dir) };
    if let Some(slot) = at_start_slot(fd) {
        slot.store(0, Ordering::Release);
    }
    switch_if_copied_up(ovl, dir, fd);
}

/// Makes `dir`, a stream on descriptor `fd`, a merged stream when its
/// directory, in one lower layer when `fd` was opened, has been copied up
/// (is merged now) and `fd` is at position 0 (where the kernel's overlayfs
/// switches the directory's file: a read from further on goes on in the
/// lower directory). When it has not been, notes that it was not at this
/// count of directory copy-ups.
fn switch_if_copied_up(ovl: &Overlay, dir: *mut DIR, fd: c_int) {
    let Some(info) = fd_info(fd).filter(|i| is_lower_only_dir(i)) else {
        return;
    };
    let now = ovl.dir_copy_ups();
    if info.dir_copy_ups == now && now != UNCACHEABLE {
        return;
    }
    // A removed directory lists nothing from its start: followed as a
    // merged stream, whose listing is empty.
    let merged = match ovl.resolve(&info.rel, false) {
        Ok(ovl::lookup::Resolved::Inside(n)) => n.is_dir() && n.is_merged(),
        _ => false,
    } || ovl.fd_dir_is_gone(fd);
    if !merged {
        note_dir_not_copied_up(fd, &info.rel, now);
        return;
    }
    // SAFETY: `fd` is the stream's open descriptor.
    let at = rustix::fs::seek(
        unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) },
        rustix::fs::SeekFrom::Current(0),
    );
    if at == Ok(0) {
        track(dir, info.rel.clone());
    }
}

fn track(dir: *mut DIR, rel: Vec<u8>) {
    let m = Merged {
        rel,
        listing: None,
        pos: 0,
    };
    let mut g = STREAMS.lock();
    let replaced = g
        .get_or_insert_with(StreamTable::default)
        .insert(dir as usize, Owned::new(m));
    TABLE_GEN.fetch_add(1, Ordering::AcqRel);
    if replaced.is_none() {
        OPEN_MERGED.fetch_add(1, Ordering::AcqRel);
    }
    drop(g);
    drop(replaced); // freed outside the lock
}

fn untrack(dir: *mut DIR) {
    if OPEN_MERGED.load(Ordering::Acquire) == 0 {
        return;
    }
    let mut g = STREAMS.lock();
    let removed = g.as_mut().and_then(|m| m.remove(&(dir as usize)));
    if removed.is_some() {
        TABLE_GEN.fetch_add(1, Ordering::AcqRel);
    }
    drop(g);
    if removed.is_some() {
        OPEN_MERGED.fetch_sub(1, Ordering::AcqRel);
    }
    drop(removed); // its listing is freed outside the lock
}

/// What a stream holds at its position.
enum Step {
    Entry(*mut dirent64),
    End,
    /// No listing yet: the directory's path in the view.
    Unbuilt(Vec<u8>),
}

fn step(m: &mut Merged) -> Step {
    let Some(listing) = &m.listing else {
        return Step::Unbuilt(m.rel.clone());
    };
    match listing.dirent_at(m.pos) {
        Some((d, next)) => {
            m.pos = next;
            // Handed out mutable, as glibc's are; a program writing into it
            // changes only this stream's copy of the listing.
            Step::Entry(d.cast_mut())
        }
        None => Step::End,
    }
}

/// The next entry of the stream `dir`: a record of its listing, valid until
/// the stream is rewound or closed; `None` when the stream is not ours. The
/// listing is built at the first read, outside the table's lock.
fn next_entry(ovl: &Overlay, dir: *mut DIR) -> Option<Result<Option<*mut dirent64>, Errno>> {
    loop {
        match with_stream(dir, step)? {
            Step::Entry(d) => return Some(Ok(Some(d))),
            Step::End => return Some(Ok(None)),
            Step::Unbuilt(rel) => {
                // SAFETY: `dir` is the caller's live stream.
                let fd = unsafe { stream_fd(dir) };
                let listing = match ovl.listing_of_fd(fd, &rel) {
                    Ok(l) => l,
                    Err(e) => return Some(Err(e)),
                };
                let unused = with_stream(dir, |m| match m.listing {
                    None => m.listing.replace(listing),
                    Some(_) => Some(listing), // another thread was quicker
                })?;
                drop(unused);
            }
        }
    }
}

/// The next entry of a merged stream whose listing is built, without the
/// hook's guard against re-entry: `readdir` is called once per name. `None`
/// leaves the call to the hook's body: the stream is not ours or has no
/// listing yet, or the table is busy (perhaps with this very thread, in a
/// signal handler that interrupted it; the body then goes to libc).
fn quick_readdir(dir: *mut DIR, real: impl FnOnce() -> *mut dirent64) -> Option<*mut dirent64> {
    let memo = LAST_READ.get();
    let stream = if memo.dir == dir as usize && memo.gen == TABLE_GEN.load(Ordering::Acquire) {
        memo.stream
    } else {
        remember_stream(dir)?
    };
    if stream.is_null() {
        // SAFETY: `dir` is the caller's live stream.
        if unsafe { start_may_switch(dir) } {
            return None; // its directory may have been copied up: the body looks
        }
        return Some(real()); // not a merged stream
    }
    // SAFETY: the memo is current, so the table still owns this stream; no
    // other thread steps it meanwhile (see `Memo`).
    let m = unsafe { &mut *stream };
    m.listing.as_ref()?; // built at the first read, by the body
    match step(m) {
        Step::Entry(d) => Some(d),
        Step::End => Some(std::ptr::null_mut()),
        Step::Unbuilt(_) => None,
    }
}

/// Looks `dir` up in the table and makes it this thread's memo: its state,
/// or null when it is not a merged stream. `None`: the table is busy
/// (perhaps with this very thread, in a signal handler that interrupted it).
fn remember_stream(dir: *mut DIR) -> Option<*mut Merged> {
    let table = STREAMS.try_lock()?;
    let stream = table
        .as_ref()
        .and_then(|t| t.get(&(dir as usize)))
        .map_or(std::ptr::null_mut(), |m| m.0.as_ptr());
    let gen = TABLE_GEN.load(Ordering::Acquire);
    drop(table);
    LAST_READ.set(Memo {
        dir: dir as usize,
        stream,
        gen,
    });
    Some(stream)
}

/// `readdir` on a tracked stream: `None` when the stream is not ours.
fn merged_readdir(ovl: &Overlay, dir: *mut DIR) -> Option<*mut dirent64> {
    start_reading(ovl, dir);
    next_entry(ovl, dir).map(|r| match r {
        Ok(Some(d)) => d,
        Ok(None) => std::ptr::null_mut(),
        Err(e) => fail(e),
    })
}

/// Opens a directory of the view as a stream.
///
/// # Safety
/// `p` is NULL or a valid C string.
unsafe fn opendir_in_view(
    ovl: &Overlay,
    p: *const c_char,
    real: impl FnOnce(*const c_char) -> *mut DIR,
) -> *mut DIR {
    // Read before the look-up: a copy-up after it is seen at the first read.
    let dir_copy_ups = ovl.dir_copy_ups();
    // SAFETY: per the contract.
    let node = match unsafe { locate(ovl, libc::AT_FDCWD, p, true) } {
        // SAFETY: p is the caller's valid C string, r ours.
        Ok(Located::Outside) => return outside_stream(ovl, p, real(p)),
        Ok(Located::Redirect(r)) => return outside_stream(ovl, r.as_ptr(), real(r.as_ptr())),
        Ok(Located::Node(n)) => n,
        Err(e) => return fail(e),
    };
    if !node.is_dir() {
        return fail(Errno::NOTDIR);
    }
    let (fd, unstamped) = match ovl.open_node(
        &node,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    ) {
        Ok((fd, unstamped)) => (fd.into_raw_fd(), unstamped),
        Err(e) => return fail(e),
    };
    let info = ovl::fd_table::FdInfo {
        dir_copy_ups,
        stream: true,
        unstamped,
        ..ovl.fd_info(&node)
    };
    let lower_only = is_lower_only_dir(&info);
    let mark = info.dir_copy_ups;
    register_fd(fd, info);
    // SAFETY: fd is an open directory descriptor we own; fdopendir takes it over.
    let dir = unsafe { libc::fdopendir(fd) };
    if dir.is_null() {
        let e = crate::errno();
        forget_fd(fd);
        // SAFETY: fd is ours.
        unsafe { libc::close(fd) };
        crate::set_errno(e);
    } else if node.is_merged() || ovl.lists_origins(&node) {
        track(dir, node.rel);
    } else if lower_only {
        started_at(ovl, dir, fd, mark);
    }
    dir
}

/// The stream `dir`, not a merged one, was put back to its start.
fn restarted(ovl: &Overlay, dir: *mut DIR) {
    if dir.is_null() {
        return;
    }
    // SAFETY: a live stream, just rewound.
    let fd = unsafe { libc::dirfd(dir) };
    if let Some(info) = fd_info(fd) {
        started(ovl, dir, fd, &info);
    }
}

/// A stream opened outside the view: its descriptor stands for no view object.
///
/// # Safety
/// `p` is NULL or a valid C string: the path `dir` was opened with.
unsafe fn outside_stream(ovl: &Overlay, p: *const c_char, dir: *mut DIR) -> *mut DIR {
    if !dir.is_null() {
        // SAFETY: dir is a live stream just returned by libc.
        let fd = unsafe { libc::dirfd(dir) };
        ovl::fd_table::settle_fd(fd);
        // SAFETY: per the contract.
        let path = unsafe { crate::bytes(p) }.unwrap_or_default();
        ovl.note_opened_outside(libc::AT_FDCWD, path, fd);
    }
    dir
}

/// Writes `s` (plus NUL) into `buf` of `size` bytes, or into fresh `malloc`
/// memory when `buf` is NULL.
///
/// # Safety
/// `buf` is NULL or valid for `size` bytes.
unsafe fn out_string(s: &[u8], buf: *mut c_char, size: size_t, alloc_if_null: bool) -> *mut c_char {
    if buf.is_null() {
        if !alloc_if_null {
            return fail(Errno::INVAL);
        }
        let want = if size == 0 { s.len() + 1 } else { size };
        if want < s.len() + 1 {
            return fail(Errno::RANGE);
        }
        // SAFETY: plain allocation, checked below.
        let m = unsafe { libc::malloc(want) } as *mut c_char;
        if m.is_null() {
            return fail(Errno::NOMEM);
        }
        // SAFETY: m has room for s and the NUL.
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr(), m.cast(), s.len());
            *m.add(s.len()) = 0;
        }
        return m;
    }
    if size < s.len() + 1 {
        return fail(Errno::RANGE);
    }
    // SAFETY: buf has room for size >= s.len() + 1 bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast(), s.len());
        *buf.add(s.len()) = 0;
    }
    buf
}

/// `realpath` in the view: the virtual path with every symlink resolved.
///
/// # Safety
/// `p` is NULL or a valid C string; `out` NULL or PATH_MAX bytes.
unsafe fn realpath_in_view(
    ovl: &Overlay,
    p: *const c_char,
    out: *mut c_char,
    real: impl FnOnce(*const c_char, *mut c_char) -> *mut c_char,
) -> *mut c_char {
    // SAFETY: per the contract.
    match unsafe { locate(ovl, libc::AT_FDCWD, p, true) } {
        Ok(Located::Outside) => real(p, out),
        Ok(Located::Redirect(r)) => real(r.as_ptr(), out),
        Ok(Located::Node(n)) => {
            let v = ovl.virtual_path(&n.rel);
            // SAFETY: out is NULL or PATH_MAX bytes.
            unsafe {
                out_string(
                    &v,
                    out,
                    if out.is_null() {
                        0
                    } else {
                        libc::PATH_MAX as size_t
                    },
                    true,
                )
            }
        }
        Err(e) => fail(e),
    }
}

/// The virtual current directory's absolute path, when inside the view;
/// `ENOENT` once it was removed, as the kernel's `getcwd` answers.
fn virtual_cwd(ovl: &Overlay) -> Option<Result<Vec<u8>, Errno>> {
    let rel = ovl.cwd_rel()?;
    Some(match ovl.resolve(&rel, false) {
        Ok(ovl::lookup::Resolved::Inside(n)) if n.is_dir() => Ok(ovl.virtual_path(&rel)),
        Ok(_) => Err(Errno::NOENT),
        Err(e) => Err(e),
    })
}

/// `chdir` into the view: the real process moves to the directory's topmost
/// real copy; the virtual path is remembered.
///
/// # Safety
/// `p` is NULL or a valid C string.
unsafe fn chdir_in_view(
    ovl: &Overlay,
    p: *const c_char,
    real: impl FnOnce(*const c_char) -> c_int,
) -> c_int {
    // SAFETY: per the contract.
    match unsafe { locate(ovl, libc::AT_FDCWD, p, true) } {
        Ok(Located::Node(n)) => {
            if !n.is_dir() {
                return fail(Errno::NOTDIR);
            }
            let rp = ovl::cpath(&ovl.real_path(n.layer, &n.rel));
            let r = real(rp.as_ptr());
            if r == 0 {
                ovl.set_cwd(Some(n.rel));
                ovl::core_dump::after_cwd_change(ovl);
            }
            r
        }
        Ok(Located::Outside) => after_real_chdir(ovl, real(p)),
        Ok(Located::Redirect(r)) => after_real_chdir(ovl, real(r.as_ptr())),
        Err(e) => fail(e),
    }
}

fn after_real_chdir(ovl: &Overlay, r: c_int) -> c_int {
    if r == 0 {
        ovl.refresh_cwd();
        ovl::core_dump::after_cwd_change(ovl);
    }
    r
}

hooks! {
    fn opendir(p: *const c_char) -> *mut DIR |real, ovl| {
        opendir_in_view(ovl, p, |p| real(p))
    }
    unless_needed !ovl::fd_table::may_know_fd(fd);
    fn fdopendir(fd: c_int) -> *mut DIR |real, ovl| {
        let dir = real(fd);
        // A stream on an `O_PATH` descriptor reads nothing (`EBADF`), as
        // the kernel's: it is left to libc.
        if !dir.is_null() && !crate::fd::only_names(fd) {
            ovl::fd_table::note_stream(fd);
            let listed = |i: &ovl::fd_table::FdInfo| i.merged || (!i.lower && ovl.lists_origins_at(&i.rel));
            match fd_info(fd) {
                Some(info) if listed(&info) => track(dir, info.rel.clone()),
                Some(info) => started(ovl, dir, fd, &info),
                None => {}
            }
        }
        dir
    }
    unless_needed !any_merged() && !start_may_switch(dir);
    quick quick_readdir(dir, || real(dir));
    libc_at crate::HOT_READDIR;
    fn readdir(dir: *mut DIR) -> *mut dirent64 |real, ovl| {
        match merged_readdir(ovl, dir) { Some(d) => d, None => real(dir) }
    }
    unless_needed !any_merged() && !start_may_switch(dir);
    quick quick_readdir(dir, || real(dir));
    fn readdir64(dir: *mut DIR) -> *mut dirent64 |real, ovl| {
        match merged_readdir(ovl, dir) { Some(d) => d, None => real(dir) }
    }
    // A program's own read of a descriptor (see `ovl::getdents`).
    unless_needed !ovl::fd_table::may_know_fd(fd);
    fn getdents64(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t |real, ovl| {
        // SAFETY: `buf` is writable for `n` bytes, as `getdents64` requires;
        // `fill` is given at most `n` bytes.
        let fill = |records: &[u8]| unsafe { std::ptr::copy_nonoverlapping(records.as_ptr(), buf.cast(), records.len()) };
        match ovl.getdents(fd, n, fill) {
            Some(Ok(given)) => given as ssize_t,
            Some(Err(e)) => fail(e),
            None => real(fd, buf, n),
        }
    }
    fn readdir_r(dir: *mut DIR, entry: *mut dirent64, result: *mut *mut dirent64) -> c_int |real, ovl| {
        readdir_r_in_view(ovl, dir, entry, result).unwrap_or_else(|| real(dir, entry, result))
    }
    fn readdir64_r(dir: *mut DIR, entry: *mut dirent64, result: *mut *mut dirent64) -> c_int |real, ovl| {
        readdir_r_in_view(ovl, dir, entry, result).unwrap_or_else(|| real(dir, entry, result))
    }
    fn telldir(dir: *mut DIR) -> c_long |real, _ovl| {
        with_stream(dir, |m| m.pos as c_long).unwrap_or_else(|| real(dir))
    }
    fn seekdir(dir: *mut DIR, pos: c_long) -> () |real, ovl| {
        let ours = with_stream(dir, |m| {
            m.pos = pos.max(0) as usize;
            if pos == 0 { m.listing = None; }
        });
        if ours.is_none() {
            real(dir, pos);
            if pos == 0 { restarted(ovl, dir); }
        }
    }
    fn rewinddir(dir: *mut DIR) -> () |real, ovl| {
        let ours = with_stream(dir, |m| { m.pos = 0; m.listing = None; });
        real(dir);
        if ours.is_none() { restarted(ovl, dir); }
    }
    unless_needed closes_plainly(dir);
    fn closedir(dir: *mut DIR) -> c_int |real, _ovl| {
        if !dir.is_null() {
            untrack(dir);
            let fd = libc::dirfd(dir);
            if let Some(slot) = at_start_slot(fd) {
                slot.store(0, Ordering::Release);
            }
            forget_fd(fd);
        }
        real(dir)
    }

    fn chdir(p: *const c_char) -> c_int |real, ovl| {
        chdir_in_view(ovl, p, |p| real(p))
    }
    fn fchdir(fd: c_int) -> c_int |real, ovl| {
        let r = real(fd);
        if r == 0 {
            match fd_info(fd) {
                Some(info) => ovl.set_cwd_to_fd(fd, info.rel.clone()),
                None => ovl.refresh_cwd(),
            }
            ovl::core_dump::after_cwd_change(ovl);
        }
        r
    }
    fn getcwd(buf: *mut c_char, size: size_t) -> *mut c_char |real, ovl| {
        match virtual_cwd(ovl) { Some(Err(e)) => fail(e), Some(Ok(v)) => out_string(&v, buf, size, true), None => real(buf, size) }
    }
    fn __getcwd_chk(buf: *mut c_char, size: size_t, blen: size_t) -> *mut c_char |real, ovl| {
        match virtual_cwd(ovl) { Some(Err(e)) => fail(e), Some(Ok(v)) => out_string(&v, buf, size.min(blen), true), None => real(buf, size, blen) }
    }
    fn get_current_dir_name() -> *mut c_char |real, ovl| {
        match virtual_cwd(ovl) { Some(Err(e)) => fail(e), Some(Ok(v)) => out_string(&v, std::ptr::null_mut(), 0, true), None => real() }
    }
    fn getwd(buf: *mut c_char) -> *mut c_char |real, ovl| {
        match virtual_cwd(ovl) { Some(Err(e)) => fail(e), Some(Ok(v)) => out_string(&v, buf, libc::PATH_MAX as size_t, false), None => real(buf) }
    }
    unless_outside(libc::AT_FDCWD, p);
    fn realpath(p: *const c_char, out: *mut c_char) -> *mut c_char |real, ovl| {
        realpath_in_view(ovl, p, out, |p, o| real(p, o))
    }
    unless_outside(libc::AT_FDCWD, p);
    fn __realpath_chk(p: *const c_char, out: *mut c_char, olen: size_t) -> *mut c_char |real, ovl| {
        realpath_in_view(ovl, p, out, |p, o| real(p, o, olen))
    }
    unless_outside(libc::AT_FDCWD, p);
    fn canonicalize_file_name(p: *const c_char) -> *mut c_char |real, ovl| {
        realpath_in_view(ovl, p, std::ptr::null_mut(), |p, _| real(p))
    }
}

/// `readdir_r` on a tracked stream: `None` when the stream is not ours.
fn readdir_r_in_view(
    ovl: &Overlay,
    dir: *mut DIR,
    entry: *mut dirent64,
    result: *mut *mut dirent64,
) -> Option<c_int> {
    start_reading(ovl, dir);
    next_entry(ovl, dir).map(|r| match r {
        Ok(Some(d)) => {
            // SAFETY: entry is the caller's dirent buffer (a whole dirent64);
            // d a record of reclen bytes, at most a dirent64's.
            unsafe {
                let len = usize::from((*d).d_reclen).min(std::mem::size_of::<dirent64>());
                std::ptr::copy_nonoverlapping(d.cast::<u8>(), entry.cast::<u8>(), len);
                *result = entry;
            }
            0
        }
        Ok(None) => {
            // SAFETY: result is the caller's out pointer.
            unsafe { *result = std::ptr::null_mut() };
            0
        }
        Err(e) => e.raw_os_error(),
    })
}
