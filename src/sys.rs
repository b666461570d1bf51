//! Small helpers over raw system calls.

use rustix::fd::AsRawFd;
use std::ffi::CString;

/// A C string from path bytes. A path with a NUL byte cannot exist; it is cut
/// there, and the call then fails on the shorter path as the kernel would not
/// see past the NUL either.
pub fn cpath(p: &[u8]) -> CString {
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    // SAFETY-free: no interior NUL remains after the cut.
    CString::new(&p[..end]).unwrap_or_default()
}

/// Makes a system call through libc's `syscall` (for what rustix has no
/// form of), leaving the program's `errno` as it was: the overlay's own
/// calls must not change what the program reads there (`readdir` tells its
/// end from an error by `errno`).
pub fn syscall_keeping_errno(
    call: impl FnOnce() -> libc::c_long,
) -> Result<libc::c_long, rustix::io::Errno> {
    // SAFETY: libc's pointer to this thread's errno, valid for the thread's life.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: as above.
    let saved = unsafe { *errno };
    let r = call();
    if r != -1 {
        return Ok(r);
    }
    // SAFETY: as above.
    let e = unsafe { std::mem::replace(&mut *errno, saved) };
    Err(rustix::io::Errno::from_raw_os_error(e))
}

/// Opens `path` to read it without stamping its access time (`O_NOATIME`),
/// as the kernel's overlay reads its layers: a read through the view never
/// changes a lower layer. The kernel grants the flag to the object's owner
/// and to root: it is asked for only where `owner` (when known) says it
/// would be granted, and where it is refused all the same (`EPERM`) the
/// object is opened plainly. Also tells whether the flag was added. `path`
/// is relative to `dir` (`rustix::fs::CWD`: as `open` takes it).
pub fn open_unstamped(
    dir: rustix::fd::BorrowedFd<'_>,
    path: &std::ffi::CStr,
    flags: rustix::fs::OFlags,
    mode: rustix::fs::Mode,
    owner: Option<u32>,
) -> Result<(rustix::fd::OwnedFd, bool), rustix::io::Errno> {
    use rustix::fs::{openat, OFlags};
    if flags.contains(OFlags::NOATIME) || !owner.is_none_or(may_skip_atime) {
        return openat(dir, path, flags, mode).map(|fd| (fd, false));
    }
    match openat(dir, path, flags | OFlags::NOATIME, mode) {
        Err(rustix::io::Errno::PERM) => openat(dir, path, flags, mode).map(|fd| (fd, false)),
        opened => opened.map(|fd| (fd, true)),
    }
}

/// Would the kernel let this process open an object of `owner` with
/// `O_NOATIME`: is it root, or the owner? By the effective user id the
/// process started with, asked once (a process that changes it meets an
/// `EPERM` at worst, and opens again without the flag).
pub fn may_skip_atime(owner: u32) -> bool {
    static EUID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let euid = *EUID.get_or_init(|| rustix::process::geteuid().as_raw());
    euid == 0 || euid == owner
}

/// A `stat` buffer to be filled: all zeros (plain integers, a valid value).
pub fn zeroed_stat() -> rustix::fs::Stat {
    // SAFETY: `Stat` is a C struct of integers; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// FNV-1a: for names and paths, short, in tables and file names of our own
/// (no adversary to resist).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The entries of the real directory `dir` (without `.` and `..`): name, and
/// whether it is a directory. Empty when the directory cannot be read.
pub fn entries(dir: &std::ffi::CStr) -> Vec<(Vec<u8>, bool)> {
    read_entries(dir).unwrap_or_default()
}

/// [`entries`], or why the directory could not be read (whole).
pub fn read_entries(dir: &std::ffi::CStr) -> Result<Vec<(Vec<u8>, bool)>, rustix::io::Errno> {
    use rustix::fs::{FileType, Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let (fd, _) = open_unstamped(rustix::fs::CWD, dir, flags, Mode::empty(), None)?;
    let mut buf = vec![std::mem::MaybeUninit::<u8>::uninit(); 8192];
    let mut names = Vec::new();
    let mut it = rustix::fs::RawDir::new(&fd, &mut buf);
    while let Some(e) = it.next() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push((n.to_vec(), e.file_type() == FileType::Directory));
        }
    }
    Ok(names)
}

/// `dir/name` as a C string.
pub fn child(dir: &std::ffi::CStr, name: &[u8]) -> CString {
    let mut p = dir.to_bytes().to_vec();
    p.push(b'/');
    p.extend_from_slice(name);
    cpath(&p)
}

/// The real path of an open descriptor, from `/proc/self/fd` (`None` for
/// objects with no path: pipes, sockets, anonymous files).
pub(crate) fn real_path_of_fd(fd: i32) -> Option<Vec<u8>> {
    let link = format!("/proc/self/fd/{fd}");
    let real = rustix::fs::readlinkat(rustix::fs::CWD, link.as_str(), Vec::new()).ok()?;
    Some(real.into_bytes()).filter(|r| r.first() == Some(&b'/'))
}

/// Room for a path in a Unix socket's address, its NUL included.
const SUN_PATH_LEN: usize = 108;

/// A path naming `path` (relative to `dir`, or absolute) short enough for a
/// Unix socket's address: its absolute real path when that fits (what
/// `getsockname` will then say), else `/proc/self/fd/N/name` with N its
/// directory opened here (kept open until the address is used: the second
/// value).
pub fn socket_path_at(
    dir: rustix::fd::BorrowedFd<'_>,
    path: &std::ffi::CStr,
) -> Result<(CString, Option<rustix::fd::OwnedFd>), rustix::io::Errno> {
    let bytes = path.to_bytes();
    let absolute = if bytes.first() == Some(&b'/') {
        Some(bytes.to_vec())
    } else if dir.as_raw_fd() == rustix::fs::CWD.as_raw_fd() {
        None
    } else {
        real_path_of_fd(dir.as_raw_fd()).map(|d| crate::lookup::join(&d, bytes))
    };
    if let Some(a) = absolute.filter(|a| a.len() < SUN_PATH_LEN) {
        return Ok((cpath(&a), None));
    }
    let (parent, name) = match bytes.iter().rposition(|&b| b == b'/') {
        Some(0) => (&b"/"[..], &bytes[1..]),
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (&b"."[..], bytes),
    };
    let flags =
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC;
    let parent_fd = rustix::fs::openat(
        dir,
        cpath(parent).as_c_str(),
        flags,
        rustix::fs::Mode::empty(),
    )?;
    let mut short = format!("/proc/self/fd/{}/", parent_fd.as_raw_fd()).into_bytes();
    short.extend_from_slice(name);
    if short.len() >= SUN_PATH_LEN {
        return Err(rustix::io::Errno::NAMETOOLONG);
    }
    Ok((cpath(&short), Some(parent_fd)))
}
