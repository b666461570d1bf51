//! Inode numbers that survive a copy-up, as on the kernel's overlay (layers
//! on one file system): a copy-up records its lower object's file handle in
//! `overlay.origin` (the kernel's format, with the lower file system's
//! uuid) and marks the upper parent `overlay.impure`; `stat` of an upper
//! object that has an origin reports the lower object's device and inode
//! numbers. Programs that compare a file's `st_ino` before and after a
//! change (`git clone`'s hard links, `tar` and `cp` telling hard links
//! apart, tree walkers guarding against a directory replaced under them)
//! see one object, not two.

use crate::config::XattrNs;
use crate::lookup::Node;
use crate::overlay::{Overlay, UPPER};
use crate::spin_lock::SpinLock;
use crate::sys::{cpath, syscall_keeping_errno};
use rustix::fs::{FileType, Stat, XattrFlags};
use rustix::io::Errno;
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

/// `MAX_HANDLE_SZ`: the longest file handle the kernel makes.
const MAX_HANDLE: usize = 128;
/// The origin's header: version, magic, length, flags, handle type, uuid.
const HEADER: usize = 21;
/// Where the uuid is in the header, and its length.
const UUID_AT: usize = 5;
const UUID_LEN: usize = 16;
const MAGIC: u8 = 0xfb;
/// `OVL_FH_FLAG_BIG_ENDIAN`: the handle's integers are in the writer's order.
const BIG_ENDIAN_FLAG: u8 = 1;

/// A file handle as `name_to_handle_at` makes it: its type and bytes.
#[derive(PartialEq, Eq)]
struct Handle {
    kind: i32,
    len: usize,
    bytes: [u8; MAX_HANDLE],
}

impl Handle {
    fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// `struct file_handle` with room for the longest handle.
#[repr(C)]
struct RawHandle {
    handle_bytes: u32,
    handle_type: i32,
    f_handle: [u8; MAX_HANDLE],
}

/// The file handle of the object at the real `path` (not following a final
/// symlink), or `None` where its file system makes none.
fn handle_of(path: &CStr) -> Option<Handle> {
    handle_at(libc::AT_FDCWD, path, 0)
}

/// The file handle of the object the descriptor `fd` is open on.
fn handle_of_fd(fd: i32) -> Option<Handle> {
    handle_at(fd, c"", libc::AT_EMPTY_PATH)
}

/// `name_to_handle_at(dirfd, path, flags)`, or `None` where the file system
/// makes no handles.
fn handle_at(dirfd: i32, path: &CStr, flags: libc::c_int) -> Option<Handle> {
    let mut raw = RawHandle {
        handle_bytes: MAX_HANDLE as u32,
        handle_type: 0,
        f_handle: [0; MAX_HANDLE],
    };
    let mut mount_id: libc::c_int = 0;
    // SAFETY: `raw` is a `struct file_handle` whose `handle_bytes` says how
    // much room follows it; `path` is a C string; both outlive the call.
    syscall_keeping_errno(|| unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            dirfd,
            path.as_ptr(),
            &mut raw as *mut RawHandle,
            &mut mount_id as *mut libc::c_int,
            flags,
        )
    })
    .ok()?;
    let len = (raw.handle_bytes as usize).min(MAX_HANDLE);
    Some(Handle {
        kind: raw.handle_type,
        len,
        bytes: raw.f_handle,
    })
}

/// A file system's uuid (the kernel's `s_uuid`), as `FS_IOC_GETFSUUID`
/// tells it.
type Uuid = [u8; UUID_LEN];

/// `struct fsuuid2`: the uuid's length, then room for 16 bytes.
#[repr(C)]
struct FsUuid2 {
    len: u8,
    uuid: Uuid,
}

/// The uuid of the file system of the directory `dir`: `Ok(None)` where
/// the kernel does not tell it (before Linux 6.5, or a file system that
/// sets none: the request is refused), `Err` when the directory cannot be
/// opened (no permission, out of descriptors).
fn fs_uuid_of(dir: &CStr) -> Result<Option<Uuid>, Errno> {
    let fd = rustix::fs::open(
        dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let mut out = FsUuid2 {
        len: 0,
        uuid: [0; UUID_LEN],
    };
    // SAFETY: the request writes a `struct fsuuid2` (17 bytes) into `out`,
    // which outlives the call; the descriptor is open.
    let r = syscall_keeping_errno(|| unsafe {
        libc::syscall(
            libc::SYS_ioctl,
            rustix::fd::AsRawFd::as_raw_fd(&fd),
            libc::c_ulong::from(crate::ioctl::FS_IOC_GETFSUUID),
            &mut out as *mut FsUuid2,
        )
    });
    // The bytes past `len` are zeros, as in the kernel's `s_uuid`.
    Ok(r.ok()
        .filter(|_| usize::from(out.len) <= UUID_LEN)
        .map(|_| out.uuid))
}

/// A layer's file system uuid, asked once, when first needed: not known
/// yet, known, or refused (asked again while the layer's root could not be
/// opened). Lock-free: a signal handler may ask while the thread it
/// interrupted is asking (both then ask the kernel, and agree).
pub(crate) struct FsUuid {
    state: AtomicU8,
    bytes: [AtomicU64; 2],
}

const UUID_UNKNOWN: u8 = 0;
const UUID_KNOWN: u8 = 1;
const UUID_REFUSED: u8 = 2;

impl FsUuid {
    pub(crate) const fn new() -> FsUuid {
        FsUuid {
            state: AtomicU8::new(UUID_UNKNOWN),
            bytes: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// The uuid of the file system of the directory at `root` (the layer
    /// this belongs to), `None` where the kernel does not tell it.
    fn get(&self, root: &[u8]) -> Option<Uuid> {
        match self.state.load(Ordering::Acquire) {
            UUID_KNOWN => {
                let mut u = [0; UUID_LEN];
                u[..8].copy_from_slice(&self.bytes[0].load(Ordering::Relaxed).to_ne_bytes());
                u[8..].copy_from_slice(&self.bytes[1].load(Ordering::Relaxed).to_ne_bytes());
                Some(u)
            }
            UUID_REFUSED => None,
            _ => {
                let found = fs_uuid_of(&cpath(root)).ok()?;
                if let Some(u) = found {
                    let half = |i: usize| u64::from_ne_bytes(u[i..i + 8].try_into().unwrap());
                    self.bytes[0].store(half(0), Ordering::Relaxed);
                    self.bytes[1].store(half(8), Ordering::Relaxed);
                }
                let state = if found.is_some() {
                    UUID_KNOWN
                } else {
                    UUID_REFUSED
                };
                self.state.store(state, Ordering::Release);
                found
            }
        }
    }
}

/// The value of `overlay.origin` for a lower object whose handle is `h` on
/// a file system whose uuid is `uuid`, as the kernel writes it with its
/// default `uuid=` (`auto`, or what it becomes: `on`, `null`); all its
/// settings but `off` record the lower file system's uuid.
fn encode(h: &Handle, uuid: &Uuid) -> Option<Vec<u8>> {
    let kind = u8::try_from(h.kind).ok()?;
    let len = u8::try_from(HEADER + h.len).ok()?;
    let flags = if cfg!(target_endian = "big") {
        BIG_ENDIAN_FLAG
    } else {
        0
    };
    let mut v = vec![0, MAGIC, len, flags, kind];
    v.extend_from_slice(uuid);
    v.extend_from_slice(h.bytes());
    Some(v)
}

/// The file system uuid and the handle recorded in an `overlay.origin`
/// value, if it is one this machine wrote (same byte order) or could have.
fn decode(v: &[u8]) -> Option<(Uuid, Handle)> {
    if v.len() < HEADER || v[0] != 0 || v[1] != MAGIC {
        return None;
    }
    let len = usize::from(v[2]);
    let ours = if cfg!(target_endian = "big") {
        BIG_ENDIAN_FLAG
    } else {
        0
    };
    if len < HEADER || len > v.len() || len - HEADER > MAX_HANDLE || v[3] & BIG_ENDIAN_FLAG != ours
    {
        return None;
    }
    let mut bytes = [0; MAX_HANDLE];
    bytes[..len - HEADER].copy_from_slice(&v[HEADER..len]);
    let mut uuid = [0; UUID_LEN];
    uuid.copy_from_slice(&v[UUID_AT..UUID_AT + UUID_LEN]);
    let h = Handle {
        kind: i32::from(v[4]),
        len: len - HEADER,
        bytes,
    };
    Some((uuid, h))
}

/// Is the real path `path` the directory `root` or below it?
fn is_within(path: &[u8], root: &[u8]) -> bool {
    root == b"/"
        || path
            .strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest[0] == b'/')
}

/// The inode number a file handle holds, in the formats of the file systems
/// that write it plainly: ext2/3/4 and XFS with 32-bit inode numbers
/// (`FILEID_INO32_GEN`: number, generation), XFS with 64-bit ones (type
/// `0x81`: number, generation), tmpfs (type 1: generation, number in two
/// halves).
fn inode_in_handle(fs_type: i64, h: &Handle) -> Option<u64> {
    const EXT4: i64 = 0xef53;
    const XFS: i64 = 0x5846_5342;
    const TMPFS: i64 = 0x0102_1994;
    let word = |at: usize| -> Option<u64> {
        let b = h.bytes().get(at..at + 4)?;
        Some(u32::from_ne_bytes(b.try_into().ok()?) as u64)
    };
    match (fs_type, h.kind, h.len) {
        (EXT4 | XFS, 1, 8) => word(0),
        (XFS, 0x81, 12) => {
            let b = h.bytes().get(..8)?;
            Some(u64::from_ne_bytes(b.try_into().ok()?))
        }
        (TMPFS, 1, 12) => Some(word(4)? | word(8)? << 32),
        _ => None,
    }
}

/// False once `open_by_handle_at` was refused (it needs
/// `CAP_DAC_READ_SEARCH`): not tried again.
static CAN_OPEN_HANDLES: AtomicBool = AtomicBool::new(true);

/// The object of `handle` on the file system of the directory `dir`, opened
/// `O_PATH`, where this process may open handles.
fn open_handle(dir: &CStr, h: &Handle) -> Option<rustix::fd::OwnedFd> {
    if !CAN_OPEN_HANDLES.load(Ordering::Relaxed) {
        return None;
    }
    let mount = rustix::fs::open(
        dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    let mut raw = RawHandle {
        handle_bytes: h.len as u32,
        handle_type: h.kind,
        f_handle: h.bytes,
    };
    // SAFETY: `raw` is a valid `struct file_handle`; the descriptor is open.
    let r = syscall_keeping_errno(|| unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            rustix::fd::AsRawFd::as_raw_fd(&mount),
            &mut raw as *mut RawHandle,
            libc::O_PATH | libc::O_CLOEXEC,
        )
    });
    match r {
        // SAFETY: a descriptor the call just opened, owned by nobody else.
        Ok(fd) => Some(unsafe { rustix::fd::FromRawFd::from_raw_fd(fd as i32) }),
        Err(Errno::PERM) => {
            CAN_OPEN_HANDLES.store(false, Ordering::Relaxed);
            None
        }
        Err(_) => None,
    }
}

/// An upper object as its real `stat` describes it: what finding its
/// origin needs, and what tells it from any other object or state.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UpperObject {
    pub mode: u32,
    pub dev: u64,
    pub ino: u64,
    /// Its change time (seconds, nanoseconds), where known: then what was
    /// found is remembered.
    pub ctime: Option<(i64, i64)>,
}

impl UpperObject {
    pub fn of(st: &Stat) -> UpperObject {
        UpperObject {
            mode: st.st_mode,
            dev: st.st_dev,
            ino: st.st_ino,
            ctime: Some((st.st_ctime, st.st_ctime_nsec as i64)),
        }
    }
}

/// What was found for an upper object, by its identity and change time.
/// An origin is recorded before a copy appears in upper and removing it
/// changes the copy's change time; the lower layers do not change. So a
/// remembered answer holds while the object's change time is the same.
/// All zeros (inode 0, which no object has) is an empty slot, so that the
/// table takes no room in the library's file.
#[derive(Clone, Copy)]
struct Known {
    dev: u64,
    ino: u64,
    ctime: (i64, i64),
    mode: u32,
    has_origin: bool,
    origin: (u64, u64),
}

const EMPTY: Known = Known {
    dev: 0,
    ino: 0,
    ctime: (0, 0),
    mode: 0,
    has_origin: false,
    origin: (0, 0),
};

const KNOWN_SLOTS: usize = 4096;

static KNOWN: SpinLock<[Known; KNOWN_SLOTS]> = SpinLock::new([EMPTY; KNOWN_SLOTS]);

fn slot(o: &UpperObject) -> usize {
    (o.ino ^ o.dev.rotate_left(32)) as usize % KNOWN_SLOTS
}

/// The remembered answer for `o`, if any (never waits for the lock: a
/// signal handler may run while this thread holds it).
fn known(o: &UpperObject) -> Option<Option<(u64, u64)>> {
    let ctime = o.ctime?;
    let table = KNOWN.try_lock()?;
    let k = table[slot(o)];
    let same =
        k.ino == o.ino && k.ino != 0 && k.dev == o.dev && k.ctime == ctime && k.mode == o.mode;
    same.then_some(k.has_origin.then_some(k.origin))
}

fn remember(o: &UpperObject, found: Option<(u64, u64)>) {
    let Some(ctime) = o.ctime else { return };
    if let Some(mut table) = KNOWN.try_lock() {
        table[slot(o)] = Known {
            dev: o.dev,
            ino: o.ino,
            ctime,
            mode: o.mode,
            has_origin: found.is_some(),
            origin: found.unwrap_or((0, 0)),
        };
    }
}

impl Overlay {
    fn origin_name(&self) -> &'static CStr {
        match self.xattr_ns {
            XattrNs::Trusted => c"trusted.overlay.origin",
            XattrNs::User => c"user.overlay.origin",
        }
    }

    fn impure_name(&self) -> &'static CStr {
        match self.xattr_ns {
            XattrNs::Trusted => c"trusted.overlay.impure",
            XattrNs::User => c"user.overlay.impure",
        }
    }

    fn uuid_name(&self) -> &'static CStr {
        match self.xattr_ns {
            XattrNs::Trusted => c"trusted.overlay.uuid",
            XattrNs::User => c"user.overlay.uuid",
        }
    }

    /// The uuid of layer `l`'s file system, where the kernel tells it.
    fn layer_uuid(&self, l: usize) -> Option<Uuid> {
        let layer = &self.layers[l];
        layer.uuid.get(&layer.root)
    }

    /// At copy-up, before the copy at `tmp` is published: records the handle
    /// of the lower object at `src` in `layer` (with its file system's uuid,
    /// zeros where the kernel does not tell it), as the kernel does. Best
    /// effort: a lower file system that makes no handles gets no origin (and
    /// its copies new inode numbers).
    pub(crate) fn record_origin(&self, layer: usize, src: &CStr, tmp: &CStr) {
        let Some(h) = handle_of(src) else {
            return;
        };
        let uuid = self.layer_uuid(layer).unwrap_or_default();
        let Some(value) = encode(&h, &uuid) else {
            return;
        };
        let _ = rustix::fs::lsetxattr(tmp, self.origin_name(), &value, XattrFlags::empty());
    }

    /// Marks the upper directory `dir` `overlay.impure` (unless it is).
    pub(crate) fn mark_impure(&self, dir: &CStr) {
        let mut v = [0u8; 1];
        match rustix::fs::lgetxattr(dir, self.impure_name(), &mut v) {
            Ok(_) => return,
            Err(Errno::NODATA) if dir.to_bytes() == self.layers[UPPER].root.as_slice() => {
                self.init_upper_uuid(dir);
            }
            Err(_) => {}
        }
        let _ = rustix::fs::lsetxattr(dir, self.impure_name(), b"y", XattrFlags::empty());
    }

    /// Before the upper root `root` is first marked impure: gives a new
    /// upper its `overlay.uuid`, as the kernel does when it mounts one (its
    /// default `uuid=auto`, `ovl_init_uuid_xattr`). The kernel reads an
    /// upper root with neither record as a new overlay (it writes a random
    /// uuid there and reports it as the overlay's), and one marked impure
    /// without a uuid as an overlay made before uuids (it writes none, and
    /// reports none): a new upper first written here would otherwise look
    /// old to it. An existing uuid is never changed.
    fn init_upper_uuid(&self, root: &CStr) {
        let mut current = [0u8; UUID_LEN];
        if rustix::fs::lgetxattr(root, self.uuid_name(), &mut current) != Err(Errno::NODATA) {
            return;
        }
        let mut u: Uuid = [0; UUID_LEN];
        // SAFETY: writes at most 16 bytes into `u`, which outlives the call.
        let n = syscall_keeping_errno(|| unsafe {
            libc::syscall(libc::SYS_getrandom, u.as_mut_ptr(), UUID_LEN, 0)
        });
        if n != Ok(UUID_LEN as libc::c_long) {
            return;
        }
        // A version 4 (random) uuid, as the kernel's `uuid_gen`.
        u[6] = (u[6] & 0x0f) | 0x40;
        u[8] = (u[8] & 0x3f) | 0x80;
        let _ = rustix::fs::lsetxattr(root, self.uuid_name(), &u, XattrFlags::CREATE);
    }

    /// The device and inode numbers the view reports for the upper object
    /// `upper` at `rel` (`origin` reads its `overlay.origin` into a buffer):
    /// its lower origin's, when it has one, as the kernel reports them;
    /// `None`: its own. As on the kernel, a lower file with other hard links
    /// lends no number (its copy is one object, the other names another),
    /// nor does a directory of another file system.
    pub fn origin_identity(
        &self,
        rel: &[u8],
        upper: &UpperObject,
        origin: impl FnOnce(&CStr, &mut [u8]) -> Result<usize, Errno>,
    ) -> Option<(u64, u64)> {
        if !self.has_upper || self.layers.len() < 2 {
            return None;
        }
        if let Some(known) = known(upper) {
            return known;
        }
        let found = self.find_origin(rel, upper, origin);
        remember(upper, found);
        found
    }

    fn find_origin(
        &self,
        rel: &[u8],
        upper: &UpperObject,
        origin: impl FnOnce(&CStr, &mut [u8]) -> Result<usize, Errno>,
    ) -> Option<(u64, u64)> {
        let mut value = [0u8; HEADER + MAX_HANDLE];
        let n = origin(self.origin_name(), &mut value).ok()?;
        let (uuid, want) = decode(&value[..n])?;
        let is_dir = FileType::from_raw_mode(upper.mode) == FileType::Directory;
        let Some(lower) = self.lower_with_handle(rel, &uuid, &want) else {
            return (!is_dir && !CAN_OPEN_HANDLES.load(Ordering::Relaxed))
                .then(|| self.lower_identity_in_handle(&uuid, &want))
                .flatten();
        };
        if (is_dir && lower.st_dev != upper.dev) || (!is_dir && lower.st_nlink > 1) {
            return None;
        }
        Some((lower.st_dev, lower.st_ino))
    }

    /// For a process that may not open file handles (a user who is not
    /// root): the device and inode numbers of the lower file the handle
    /// `want` names, read from the handle itself where its file system's
    /// format is known. The kernel opens it; a lower layer never changes,
    /// so the file is there (origins are recorded only for files without
    /// other links, which stay so).
    fn lower_identity_in_handle(&self, uuid: &Uuid, want: &Handle) -> Option<(u64, u64)> {
        let l = (0..self.layers.len())
            .find(|&l| self.is_lower_layer(l) && self.origin_fits(l, uuid))?;
        let fs = rustix::fs::statfs(cpath(&self.real_path(l, b"")).as_c_str()).ok()?;
        let ino = inode_in_handle(fs.f_type as i64, want)?;
        Some((self.layers[l].dev, ino))
    }

    /// Can an origin recorded with `uuid` name an object of lower layer
    /// `l`? As on the kernel (`ovl_decode_real_fh`), only when it is the
    /// uuid of the layer's file system (zeros on a file system without
    /// one), and, for a layer on another file system than upper, when that
    /// uuid tells its file system apart (`ovl_lower_uuid_ok`: not zeros,
    /// and no other lower file system's). Any, where the kernel does not
    /// tell the layer's uuid.
    fn origin_fits(&self, l: usize, uuid: &Uuid) -> bool {
        let Some(own) = self.layer_uuid(l) else {
            return true;
        };
        if own != *uuid {
            return false;
        }
        let dev = self.layers[l].dev;
        if dev == self.layers[UPPER].dev {
            return true;
        }
        let shared = (0..self.layers.len()).any(|m| {
            let other = self.layers[m].dev;
            self.is_lower_layer(m)
                && other != dev
                && other != self.layers[UPPER].dev
                && self.layer_uuid(m) == Some(own)
        });
        own != [0; UUID_LEN] && !shared
    }

    /// The `stat` of the lower object whose handle is `want`, recorded with
    /// the file system uuid `uuid`: the one at `rel` in a lower layer, else
    /// (a copy renamed since) the one the handle opens, where this process
    /// may open handles.
    fn lower_with_handle(&self, rel: &[u8], uuid: &Uuid, want: &Handle) -> Option<Stat> {
        let lowers =
            (0..self.layers.len()).filter(|&l| self.is_lower_layer(l) && self.origin_fits(l, uuid));
        for l in lowers.clone() {
            let path = cpath(&self.real_path(l, rel));
            if handle_of(&path).is_some_and(|h| h == *want) {
                return rustix::fs::lstat(path.as_c_str()).ok();
            }
        }
        for l in lowers {
            let root = self.real_path(l, b"");
            let Some(fd) = open_handle(&cpath(&root), want) else {
                continue;
            };
            // A handle names an object anywhere on its file system. As the
            // kernel, a directory counts only in this lower layer (an upper
            // reused over other lower directories holds others'); a file
            // anywhere (the kernel takes non-directories disconnected).
            let st = rustix::fs::fstat(&fd).ok()?;
            let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
            let path = || crate::sys::real_path_of_fd(rustix::fd::AsRawFd::as_raw_fd(&fd));
            if !is_dir || path().is_some_and(|p| is_within(&p, &root)) {
                return Some(st);
            }
        }
        None
    }

    /// [`origin_identity`](Self::origin_identity) of the upper object at
    /// `rel`, read by its real path.
    pub fn origin_identity_at(&self, rel: &[u8], upper: &UpperObject) -> Option<(u64, u64)> {
        // The path is made only when the answer is not remembered.
        self.origin_identity(rel, upper, |name, buf| {
            rustix::fs::lgetxattr(self.upper_path(rel).as_c_str(), name, buf)
        })
    }

    /// [`origin_identity`](Self::origin_identity) of the object `fd` is open
    /// on (`upper`: its real `fstat`), when it is an upper object of the
    /// view; read through the descriptor, so a copy renamed since it was
    /// opened is still itself.
    pub fn fd_origin_identity(
        &self,
        fd: i32,
        info: &crate::fd_table::FdInfo,
        upper: &UpperObject,
    ) -> Option<(u64, u64)> {
        if info.lower {
            return None;
        }
        self.origin_identity(&info.rel, upper, |name, buf| {
            // SAFETY: a descriptor of the caller's, only read for the call.
            let borrowed = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
            match rustix::fs::fgetxattr(borrowed, name, &mut *buf) {
                // An `O_PATH` descriptor: by the upper path.
                Err(Errno::BADF) => {
                    rustix::fs::lgetxattr(self.upper_path(&info.rel).as_c_str(), name, buf)
                }
                r => r,
            }
        })
    }

    /// The view's device and inode numbers for the object at `rel` in
    /// `layer` (`st`: its real `stat`), where they are not its real ones:
    /// an upper copy of a lower object.
    pub fn layer_identity(&self, layer: usize, rel: &[u8], st: &Stat) -> Option<(u64, u64)> {
        if layer != UPPER {
            return None;
        }
        self.origin_identity_at(rel, &UpperObject::of(st))
    }

    /// Puts the view's device and inode numbers in `st`, the real `stat` of
    /// the object at `rel` in `layer`.
    pub fn report_identity(&self, layer: usize, rel: &[u8], st: &mut Stat) {
        if let Some((dev, ino)) = self.layer_identity(layer, rel, st) {
            st.st_dev = dev;
            st.st_ino = ino;
        }
    }

    /// Is the upper directory at the real `path` marked `overlay.impure`
    /// (it holds copies whose listed inode numbers are their origins')?
    pub(crate) fn is_impure(&self, path: &CStr) -> bool {
        let mut v = [0u8; 1];
        rustix::fs::lgetxattr(path, self.impure_name(), &mut v).is_ok()
    }

    /// Removes the upper directory's `overlay.impure` mark.
    pub(crate) fn clear_impure(&self, dir: &CStr) {
        let _ = rustix::fs::lremovexattr(dir, self.impure_name());
    }

    /// Is the directory `node` listed by the overlay though it is not
    /// merged: an upper-only directory marked impure, whose copies are
    /// listed with their origins' inode numbers (and which loses the mark
    /// when it holds none)?
    pub fn lists_origins(&self, node: &Node) -> bool {
        node.layer == UPPER
            && node.is_dir()
            && !node.is_merged()
            && self.lists_origins_at(&node.rel)
    }

    /// [`lists_origins`](Self::lists_origins) of the upper-only directory
    /// at `rel` (not merged: the caller knows).
    pub fn lists_origins_at(&self, rel: &[u8]) -> bool {
        self.has_upper && self.layers.len() > 1 && self.is_impure(&self.upper_path(rel))
    }

    /// Before the upper object at the real `path` moves (or is linked) into
    /// the directory `parent_rel` of the view: when it has an origin, its
    /// new parent is marked impure, as the kernel does. `moved` is the
    /// object as this call looked it up, before it copied it up.
    pub(crate) fn moving_into(&self, moved: &Node, path: &CStr, parent_rel: &[u8]) {
        if self.has_origin(path) || self.copied_without_its_origin(moved) {
            self.mark_impure(&self.upper_path(parent_rel));
        }
    }

    /// Was `node` a lower object whose copy (made by this call) would have
    /// recorded its origin but could not hold the record? `user.` xattrs
    /// are refused on symlinks and special files; the kernel's copy then
    /// has none either, but the dentry that made it still knows its origin.
    fn copied_without_its_origin(&self, node: &Node) -> bool {
        node.layer != UPPER
            && !node.is_dir()
            && node.stat.st_nlink == 1
            && self.makes_handles(&cpath(&self.real_path(node.layer, &node.rel)))
    }

    /// Does the file system of the object at the real `path` make file
    /// handles (so a copy of it records its origin)?
    pub(crate) fn makes_handles(&self, path: &CStr) -> bool {
        handle_of(path).is_some()
    }

    /// Is the upper object at `rel` the copy of the lower object `fd` is
    /// open on, not another object made in its name's place since? `None`
    /// where nothing can tell: the lower file system makes no handles, or
    /// the upper one keeps no extended attributes.
    /// `lower` is the descriptor's `fstat`: a file with other hard links
    /// gets no origin at its copy-up (see `copy_up_object`); for one, the
    /// shared page's records of the last copy-ups tell (as for a reader
    /// following a copy-up: one whose record has been overwritten since is
    /// taken for another object).
    pub fn is_copy_of_fd_object(&self, rel: &[u8], fd: i32, lower: &Stat) -> Option<bool> {
        let file_type = FileType::from_raw_mode(lower.st_mode);
        if file_type != FileType::Directory && lower.st_nlink > 1 {
            let now = rustix::fs::lstat(self.upper_path(rel).as_c_str()).ok()?;
            let key = self.fd_file_key(fd, lower)?;
            return Some(
                FileType::from_raw_mode(now.st_mode) == file_type
                    && self.is_copy_of(key, now.st_ino),
            );
        }
        let own = handle_of_fd(fd)?;
        let mut v = [0u8; HEADER + MAX_HANDLE];
        match rustix::fs::lgetxattr(self.upper_path(rel).as_c_str(), self.origin_name(), &mut v) {
            Ok(n) => Some(decode(&v[..n]).is_some_and(|(_, h)| h == own)),
            Err(Errno::NODATA) => Some(false),
            Err(_) => None,
        }
    }

    /// Does the upper object at the real `path` record an origin (is it a
    /// copy of a lower object)?
    pub(crate) fn has_origin(&self, path: &CStr) -> bool {
        let mut v = [0u8; HEADER + MAX_HANDLE];
        rustix::fs::lgetxattr(path, self.origin_name(), &mut v).is_ok()
    }
}
