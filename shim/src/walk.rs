//! libc's directory walkers, rebuilt over the functions the shim wraps.
//!
//! glibc's `scandir`, `glob`, `ftw`/`nftw` and the `fts_*` family read
//! directories through libc's internal `__opendir`, `__readdir64`,
//! `__stat64`, ..., which no preloaded object can intercept: a program
//! walking the view with them would see the real directories instead. Here
//! each one is written again on top of the exported functions — `opendir`,
//! `fdopendir`, `readdir64`, `closedir`, `dirfd`, `open`, `openat`, `close`,
//! `stat64`, `lstat64`, `fstat64`, `fstatat64`, `chdir`, `fchdir`, `getcwd`
//! — which resolve to the shim's own hooks and so give the merged view.
//! `glob` is libc's own, run with `GLOB_ALTDIRFUNC` and our directory
//! functions.
//!
//! The behaviour is glibc 2.36's on x86_64, where the plain and `64`
//! variants share one ABI (`struct stat` is `struct stat64`, `struct dirent`
//! is `struct dirent64`): the same entries in the same order, the same
//! callbacks with the same type flags, the same `errno`. Where glibc reads
//! uninitialised memory (the `fts_statp` of `FTS_NOSTAT` entries, the stat
//! buffer given with `FTW_NS`) these give zeros or NULL instead.
//!
//! In a process without an overlay every call goes straight to libc.

use crate::{errno, real_symbol, set_errno, Guard};
use libc::{c_char, c_int, c_long, c_void, dirent64, size_t, stat64, DIR};
use std::collections::HashSet;
use std::ffi::CStr;
use std::mem::{offset_of, size_of};
use std::ptr::{self, null_mut};
use std::sync::atomic::AtomicPtr;

/// libc's own definition of a function, looked up once.
macro_rules! libc_fn {
    ($name:literal as $ty:ty) => {{
        static CACHE: AtomicPtr<c_void> = AtomicPtr::new(null_mut());
        let p = real_symbol(&CACHE, concat!($name, "\0").as_bytes());
        // SAFETY: libc exports the symbol under this name with this signature.
        unsafe { std::mem::transmute::<*mut c_void, $ty>(p) }
    }};
}

/// Whether this process has an overlay (fixed for its lifetime). Without
/// one, the walkers are libc's own.
fn overlay_configured() -> bool {
    // Held (when free) while the overlay may be set up, so that the set-up's
    // own calls are not diverted into it.
    let _guard = Guard::enter();
    ovl::overlay::get().is_some()
}

/// The bytes of a NUL-terminated string.
///
/// # Safety
/// `p` points to a NUL-terminated string that outlives the result.
unsafe fn c_bytes<'a>(p: *const c_char) -> &'a [u8] {
    // SAFETY: per the contract.
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

fn is_dot_or_dotdot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

fn file_type(st: &stat64) -> u32 {
    st.st_mode & libc::S_IFMT
}

// ---------------------------------------------------------------------------
// scandir, scandirat

/// `int (*select)(const struct dirent *)`
pub type DirFilter = Option<unsafe extern "C" fn(*const dirent64) -> c_int>;
/// `int (*compar)(const struct dirent **, const struct dirent **)`
pub type DirCompare =
    Option<unsafe extern "C" fn(*const *const dirent64, *const *const dirent64) -> c_int>;
/// `qsort`'s comparison function.
type QsortCompare = unsafe extern "C" fn(*const c_void, *const c_void) -> c_int;

type ScandirFn =
    unsafe extern "C" fn(*const c_char, *mut *mut *mut dirent64, DirFilter, DirCompare) -> c_int;
type ScandiratFn = unsafe extern "C" fn(
    c_int,
    *const c_char,
    *mut *mut *mut dirent64,
    DirFilter,
    DirCompare,
) -> c_int;

#[no_mangle]
pub unsafe extern "C" fn scandir(
    dir: *const c_char,
    namelist: *mut *mut *mut dirent64,
    select: DirFilter,
    compar: DirCompare,
) -> c_int {
    if !overlay_configured() {
        let real = libc_fn!("scandir" as ScandirFn);
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { real(dir, namelist, select, compar) };
    }
    // SAFETY: `dir` is the caller's path; the stream goes to scan_stream.
    unsafe { scan_stream(libc::opendir(dir), namelist, select, compar) }
}

#[no_mangle]
pub unsafe extern "C" fn scandir64(
    dir: *const c_char,
    namelist: *mut *mut *mut dirent64,
    select: DirFilter,
    compar: DirCompare,
) -> c_int {
    // SAFETY: the same function under its LFS name.
    unsafe { scandir(dir, namelist, select, compar) }
}

#[no_mangle]
pub unsafe extern "C" fn scandirat(
    dfd: c_int,
    dir: *const c_char,
    namelist: *mut *mut *mut dirent64,
    select: DirFilter,
    compar: DirCompare,
) -> c_int {
    if !overlay_configured() {
        let real = libc_fn!("scandirat" as ScandiratFn);
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { real(dfd, dir, namelist, select, compar) };
    }
    // SAFETY: `dir` is the caller's path; the stream goes to scan_stream.
    unsafe { scan_stream(open_dir_at(dfd, dir), namelist, select, compar) }
}

#[no_mangle]
pub unsafe extern "C" fn scandirat64(
    dfd: c_int,
    dir: *const c_char,
    namelist: *mut *mut *mut dirent64,
    select: DirFilter,
    compar: DirCompare,
) -> c_int {
    // SAFETY: the same function under its LFS name.
    unsafe { scandirat(dfd, dir, namelist, select, compar) }
}

/// `opendir` relative to a directory descriptor, with the flags libc uses.
///
/// # Safety
/// `name` is a valid C string.
unsafe fn open_dir_at(dfd: c_int, name: *const c_char) -> *mut DIR {
    // SAFETY: `name` is a valid C string.
    if unsafe { *name } == 0 {
        set_errno(libc::ENOENT);
        return null_mut();
    }
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_DIRECTORY | libc::O_CLOEXEC;
    // SAFETY: plain calls on the caller's path and the descriptor we open.
    unsafe {
        let fd = libc::openat(dfd, name, flags);
        if fd < 0 {
            return null_mut();
        }
        let dir = libc::fdopendir(fd);
        if dir.is_null() {
            let e = errno();
            libc::close(fd);
            set_errno(e);
        }
        dir
    }
}

/// Bytes to copy for one directory entry: its record, as libc copies it.
///
/// # Safety
/// `d` points to a valid entry.
unsafe fn entry_size(d: *const dirent64) -> usize {
    // SAFETY: `d` is valid and its name NUL-terminated.
    let (name_len, reclen) =
        unsafe { (c_bytes((*d).d_name.as_ptr()).len(), (*d).d_reclen as usize) };
    let needed = offset_of!(dirent64, d_name) + name_len + 1;
    if reclen >= needed && reclen <= size_of::<dirent64>() {
        reclen
    } else {
        needed.next_multiple_of(8).min(size_of::<dirent64>())
    }
}

/// Frees a partial list of entries.
///
/// # Safety
/// `v` holds `count` pointers from `malloc` (or is NULL with `count` 0).
unsafe fn free_entries(v: *mut *mut dirent64, count: usize) {
    // SAFETY: per the contract.
    unsafe {
        for i in 0..count {
            libc::free((*v.add(i)).cast());
        }
        libc::free(v.cast());
    }
}

/// The body of every `scandir`: reads `dir`, keeps what `select` accepts
/// (copied with `malloc`), sorts with `compar`. `errno` is restored on
/// success; a failing `readdir` or allocation fails the call.
///
/// # Safety
/// `dir` is NULL or an open stream, which this closes; `namelist` is valid
/// for writing.
unsafe fn scan_stream(
    dir: *mut DIR,
    namelist: *mut *mut *mut dirent64,
    select: DirFilter,
    compar: DirCompare,
) -> c_int {
    if dir.is_null() {
        return -1;
    }
    let saved = errno();
    set_errno(0);
    let mut list: *mut *mut dirent64 = null_mut();
    let mut capacity = 0usize;
    let mut count = 0usize;
    // SAFETY: `dir` is open; `list` holds `count` entries of `capacity`;
    // each copy is `entry_size` bytes, all of them readable in `d`.
    unsafe {
        loop {
            let d = libc::readdir64(dir);
            if d.is_null() {
                break;
            }
            if let Some(select) = select {
                let keep = select(d);
                set_errno(0);
                if keep == 0 {
                    continue;
                }
            }
            if count == capacity {
                let wanted = if capacity == 0 { 10 } else { capacity * 2 };
                let grown = libc::realloc(list.cast(), wanted * size_of::<*mut dirent64>());
                if grown.is_null() {
                    break;
                }
                list = grown.cast();
                capacity = wanted;
            }
            let size = entry_size(d);
            let copy = libc::malloc(size);
            if copy.is_null() {
                break;
            }
            ptr::copy_nonoverlapping(d.cast::<u8>(), copy.cast::<u8>(), size);
            *list.add(count) = copy.cast();
            count += 1;
            set_errno(0);
        }
        if errno() != 0 {
            free_entries(list, count);
            libc::closedir(dir);
            return -1;
        }
        libc::closedir(dir);
        if let Some(compar) = compar {
            if count > 1 {
                let compar = std::mem::transmute::<
                    unsafe extern "C" fn(*const *const dirent64, *const *const dirent64) -> c_int,
                    QsortCompare,
                >(compar);
                libc::qsort(list.cast(), count, size_of::<*mut dirent64>(), Some(compar));
            }
        }
        *namelist = list;
    }
    set_errno(saved);
    count as c_int
}

// ---------------------------------------------------------------------------
// glob

/// `glob_t` (and `glob64_t`, the same on x86_64).
#[repr(C)]
pub struct GlobT {
    pub gl_pathc: size_t,
    pub gl_pathv: *mut *mut c_char,
    pub gl_offs: size_t,
    pub gl_flags: c_int,
    pub gl_closedir: *mut c_void,
    pub gl_readdir: *mut c_void,
    pub gl_opendir: *mut c_void,
    pub gl_lstat: *mut c_void,
    pub gl_stat: *mut c_void,
}

pub const GLOB_ALTDIRFUNC: c_int = 1 << 9;

/// `int (*errfunc)(const char *epath, int eerrno)`
pub type GlobErr = Option<unsafe extern "C" fn(*const c_char, c_int) -> c_int>;
type GlobFn = unsafe extern "C" fn(*const c_char, c_int, GlobErr, *mut GlobT) -> c_int;

unsafe extern "C" fn glob_opendir(path: *const c_char) -> *mut c_void {
    // SAFETY: glob passes a valid path.
    unsafe { libc::opendir(path).cast() }
}

unsafe extern "C" fn glob_readdir(dir: *mut c_void) -> *mut dirent64 {
    // SAFETY: glob passes a stream from glob_opendir.
    unsafe { libc::readdir64(dir.cast()) }
}

unsafe extern "C" fn glob_closedir(dir: *mut c_void) {
    // SAFETY: glob passes a stream from glob_opendir.
    unsafe { libc::closedir(dir.cast()) };
}

unsafe extern "C" fn glob_stat(path: *const c_char, st: *mut stat64) -> c_int {
    // SAFETY: glob passes a valid path and buffer.
    unsafe { libc::stat64(path, st) }
}

unsafe extern "C" fn glob_lstat(path: *const c_char, st: *mut stat64) -> c_int {
    // SAFETY: glob passes a valid path and buffer.
    unsafe { libc::lstat64(path, st) }
}

/// The caller's directory-function fields, put back after the call.
struct GlobFields([*mut c_void; 5], c_int);

impl GlobFields {
    fn take(g: &mut GlobT) -> GlobFields {
        let saved = GlobFields(
            [
                g.gl_closedir,
                g.gl_readdir,
                g.gl_opendir,
                g.gl_lstat,
                g.gl_stat,
            ],
            g.gl_flags,
        );
        g.gl_closedir = glob_closedir as *mut c_void;
        g.gl_readdir = glob_readdir as *mut c_void;
        g.gl_opendir = glob_opendir as *mut c_void;
        g.gl_lstat = glob_lstat as *mut c_void;
        g.gl_stat = glob_stat as *mut c_void;
        // glob always stores flags that include GLOB_ALTDIRFUNC: a value
        // without it afterwards means glob left the field alone.
        g.gl_flags &= !GLOB_ALTDIRFUNC;
        saved
    }

    fn restore(self, g: &mut GlobT) {
        [
            g.gl_closedir,
            g.gl_readdir,
            g.gl_opendir,
            g.gl_lstat,
            g.gl_stat,
        ] = self.0;
        if g.gl_flags & GLOB_ALTDIRFUNC != 0 {
            g.gl_flags &= !GLOB_ALTDIRFUNC;
        } else {
            g.gl_flags = self.1;
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn glob(
    pattern: *const c_char,
    flags: c_int,
    errfunc: GlobErr,
    pglob: *mut GlobT,
) -> c_int {
    let real = libc_fn!("glob" as GlobFn);
    if flags & GLOB_ALTDIRFUNC != 0 || pglob.is_null() || !overlay_configured() {
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { real(pattern, flags, errfunc, pglob) };
    }
    // SAFETY: `pglob` is the caller's glob_t, valid for the call; glob
    // calls our functions with the types it declares for them.
    unsafe {
        let saved = GlobFields::take(&mut *pglob);
        let r = real(pattern, flags | GLOB_ALTDIRFUNC, errfunc, pglob);
        saved.restore(&mut *pglob);
        r
    }
}

#[no_mangle]
pub unsafe extern "C" fn glob64(
    pattern: *const c_char,
    flags: c_int,
    errfunc: GlobErr,
    pglob: *mut GlobT,
) -> c_int {
    // SAFETY: the same function under its LFS name.
    unsafe { glob(pattern, flags, errfunc, pglob) }
}

// ---------------------------------------------------------------------------
// ftw, nftw

/// `struct FTW`
#[repr(C)]
pub struct FtwInfo {
    pub base: c_int,
    pub level: c_int,
}

/// `int (*fn)(const char *, const struct stat *, int)`
pub type FtwFunc = unsafe extern "C" fn(*const c_char, *const stat64, c_int) -> c_int;
/// `int (*fn)(const char *, const struct stat *, int, struct FTW *)`
pub type NftwFunc =
    unsafe extern "C" fn(*const c_char, *const stat64, c_int, *mut FtwInfo) -> c_int;
type FtwEntry = unsafe extern "C" fn(*const c_char, Option<FtwFunc>, c_int) -> c_int;
type NftwEntry = unsafe extern "C" fn(*const c_char, Option<NftwFunc>, c_int, c_int) -> c_int;

pub const FTW_PHYS: c_int = 1;
pub const FTW_MOUNT: c_int = 2;
pub const FTW_CHDIR: c_int = 4;
pub const FTW_DEPTH: c_int = 8;
pub const FTW_ACTIONRETVAL: c_int = 16;

pub const FTW_F: c_int = 0;
pub const FTW_D: c_int = 1;
pub const FTW_DNR: c_int = 2;
pub const FTW_NS: c_int = 3;
pub const FTW_SL: c_int = 4;
pub const FTW_DP: c_int = 5;
pub const FTW_SLN: c_int = 6;

pub const FTW_STOP: c_int = 1;
pub const FTW_SKIP_SUBTREE: c_int = 2;
pub const FTW_SKIP_SIBLINGS: c_int = 3;

/// What `ftw` callbacks are told instead of the `nftw` type flags.
const FTW_FLAGS_FOR_FTW: [c_int; 7] = [FTW_F, FTW_D, FTW_DNR, FTW_NS, FTW_F, FTW_D, FTW_NS];

#[no_mangle]
pub unsafe extern "C" fn ftw(dir: *const c_char, func: Option<FtwFunc>, nopenfd: c_int) -> c_int {
    if !overlay_configured() {
        let real = libc_fn!("ftw" as FtwEntry);
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { real(dir, func, nopenfd) };
    }
    let Some(func) = func else {
        return null_callback();
    };
    // SAFETY: `dir` is the caller's C string.
    unsafe { tree_walk(c_bytes(dir), Visitor::Ftw(func), nopenfd, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn ftw64(dir: *const c_char, func: Option<FtwFunc>, nopenfd: c_int) -> c_int {
    // SAFETY: the same function under its LFS name.
    unsafe { ftw(dir, func, nopenfd) }
}

#[no_mangle]
pub unsafe extern "C" fn nftw(
    dir: *const c_char,
    func: Option<NftwFunc>,
    nopenfd: c_int,
    flags: c_int,
) -> c_int {
    if !overlay_configured() {
        let real = libc_fn!("nftw" as NftwEntry);
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { real(dir, func, nopenfd, flags) };
    }
    if flags & !(FTW_PHYS | FTW_MOUNT | FTW_CHDIR | FTW_DEPTH | FTW_ACTIONRETVAL) != 0 {
        set_errno(libc::EINVAL);
        return -1;
    }
    let Some(func) = func else {
        return null_callback();
    };
    // SAFETY: `dir` is the caller's C string.
    unsafe { tree_walk(c_bytes(dir), Visitor::Nftw(func), nopenfd, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn nftw64(
    dir: *const c_char,
    func: Option<NftwFunc>,
    nopenfd: c_int,
    flags: c_int,
) -> c_int {
    // SAFETY: the same function under its LFS name.
    unsafe { nftw(dir, func, nopenfd, flags) }
}

/// libc calls a NULL callback and crashes; refuse instead.
fn null_callback() -> c_int {
    set_errno(libc::EINVAL);
    -1
}

#[derive(Clone, Copy)]
enum Visitor {
    Ftw(FtwFunc),
    Nftw(NftwFunc),
}

/// One directory being read: its stream, or, once the stream had to be
/// closed to respect the caller's descriptor limit, the names it had left.
struct OpenDir {
    stream: *mut DIR,
    fd: c_int,
    rest: Vec<Vec<u8>>,
}

struct TreeWalk {
    visitor: Visitor,
    flags: c_int,
    /// The path of the current object, NUL-terminated.
    path: Vec<u8>,
    ftw: FtwInfo,
    /// Directories being read, outermost first.
    dirs: Vec<OpenDir>,
    /// Which of `dirs` hold a descriptor: a ring of `nopenfd` slots, the
    /// next one to use at `slot`.
    ring: Vec<Option<usize>>,
    slot: usize,
    /// Device of the starting directory, for FTW_MOUNT.
    dev: libc::dev_t,
    /// Directories seen, when following symlinks.
    seen: HashSet<(libc::dev_t, libc::ino64_t)>,
}

fn zeroed_stat() -> stat64 {
    // SAFETY: stat64 is plain data; all zeros is a valid value.
    unsafe { std::mem::zeroed() }
}

/// The walk shared by `ftw` and `nftw`.
///
/// # Safety
/// The callback is a valid function of its type.
unsafe fn tree_walk(dir: &[u8], visitor: Visitor, nopenfd: c_int, flags: c_int) -> c_int {
    if dir.is_empty() {
        set_errno(libc::ENOENT);
        return -1;
    }
    let mut path = dir.to_vec();
    while path.len() > 1 && path.last() == Some(&b'/') {
        path.pop();
    }
    let base = path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    path.push(0);
    let mut walk = TreeWalk {
        visitor,
        flags,
        path,
        ftw: FtwInfo {
            base: base as c_int,
            level: 0,
        },
        dirs: Vec::new(),
        ring: Vec::new(),
        slot: 0,
        dev: 0,
        seen: HashSet::new(),
    };
    let mut max_open = nopenfd.max(1) as usize;
    let mut result = 0;
    let mut cwd = WayBack::None;
    if flags & FTW_CHDIR != 0 {
        match WayBack::here() {
            Some(w) => cwd = w,
            // libc gives up here, reporting success.
            None => return 0,
        }
        if matches!(cwd, WayBack::Fd(_)) && max_open > 1 {
            max_open -= 1;
        }
        result = walk.enter_start_parent(base);
    }
    walk.ring = vec![None; max_open];
    if result == 0 {
        result = walk.start(base);
        if flags & FTW_ACTIONRETVAL != 0
            && (result == FTW_SKIP_SUBTREE || result == FTW_SKIP_SIBLINGS)
        {
            result = 0;
        }
    }
    cwd.go_back();
    result
}

/// How to return to the directory a walk started in.
enum WayBack {
    None,
    Fd(c_int),
    Path(*mut c_char),
}

impl WayBack {
    /// Remembers the current directory: a descriptor, else (when it cannot
    /// be read) its name. `None` when neither works.
    fn here() -> Option<WayBack> {
        // SAFETY: plain calls; getcwd(NULL, 0) allocates its result.
        unsafe {
            let fd = libc::open(c".".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
            if fd >= 0 {
                return Some(WayBack::Fd(fd));
            }
            if errno() != libc::EACCES {
                return None;
            }
            let name = libc::getcwd(null_mut(), 0);
            (!name.is_null()).then_some(WayBack::Path(name))
        }
    }

    fn go_back(self) {
        let e = errno();
        // SAFETY: the descriptor and the malloc'ed name are ours.
        unsafe {
            match self {
                WayBack::None => {}
                WayBack::Fd(fd) => {
                    libc::fchdir(fd);
                    libc::close(fd);
                }
                WayBack::Path(name) => {
                    libc::chdir(name);
                    libc::free(name.cast());
                }
            }
        }
        set_errno(e);
    }
}

impl TreeWalk {
    fn path_ptr(&self) -> *const c_char {
        self.path.as_ptr().cast()
    }

    /// The path from `from` on (clamped to its end).
    fn path_from(&self, from: usize) -> *const c_char {
        let len = self.path.len() - 1;
        self.path[from.min(len)..].as_ptr().cast()
    }

    fn base(&self) -> usize {
        (self.ftw.base.max(0) as usize).min(self.path.len() - 1)
    }

    /// Cuts the path to `len` bytes.
    fn truncate_path(&mut self, len: usize) {
        self.path.truncate(len.min(self.path.len() - 1));
        self.path.push(0);
    }

    /// Replaces everything after the base with `name`.
    fn set_name(&mut self, name: &[u8]) {
        self.truncate_path(self.base());
        self.path.pop();
        self.path.extend_from_slice(name);
        self.path.push(0);
    }

    /// With FTW_CHDIR: moves into the directory that holds the start.
    fn enter_start_parent(&mut self, base: usize) -> c_int {
        if base == 0 {
            return 0;
        }
        // SAFETY: both are NUL-terminated strings.
        unsafe {
            if base == 1 {
                libc::chdir(c"/".as_ptr())
            } else {
                let mut parent = self.path[..base - 1].to_vec();
                parent.push(0);
                libc::chdir(parent.as_ptr().cast())
            }
        }
    }

    /// Calls the user's function on the current path.
    fn report(&mut self, st: &stat64, flag: c_int) -> c_int {
        let path = self.path_ptr();
        // SAFETY: the callback was given to us as a function of this type;
        // the path and stat buffer are valid for the call.
        unsafe {
            match self.visitor {
                Visitor::Ftw(f) => f(path, st, FTW_FLAGS_FOR_FTW[flag as usize]),
                Visitor::Nftw(f) => f(path, st, flag, &mut self.ftw),
            }
        }
    }

    /// Looks at the starting point and walks it.
    fn start(&mut self, base: usize) -> c_int {
        let name = if self.flags & FTW_CHDIR != 0 {
            if self.path[base] == 0 {
                c".".as_ptr()
            } else {
                self.path_from(base)
            }
        } else {
            self.path_ptr()
        };
        let mut st = zeroed_stat();
        let phys = self.flags & FTW_PHYS != 0;
        // SAFETY: `name` points into `self.path` or a literal; `st` is ours.
        let r = unsafe {
            if phys {
                libc::lstat64(name, &mut st)
            } else {
                libc::stat64(name, &mut st)
            }
        };
        if r < 0 {
            // SAFETY: as above.
            let dangling = !phys
                && errno() == libc::ENOENT
                && unsafe { libc::lstat64(name, &mut st) } == 0
                && file_type(&st) == libc::S_IFLNK;
            return if dangling {
                self.report(&st, FTW_SLN)
            } else {
                -1
            };
        }
        if file_type(&st) == libc::S_IFDIR {
            self.dev = st.st_dev;
            if !phys {
                self.seen.insert((st.st_dev, st.st_ino));
            }
            return self.walk_dir(&st, None);
        }
        let flag = if file_type(&st) == libc::S_IFLNK {
            FTW_SL
        } else {
            FTW_F
        };
        self.report(&st, flag)
    }

    /// Opens the directory named by the current path (its name after the
    /// base when in it, relative to `parent`'s descriptor when that is
    /// still open), first closing the oldest open one if every slot is used.
    fn open_dir(&mut self, parent: Option<usize>) -> Option<usize> {
        if let Some(oldest) = self.ring[self.slot].take() {
            self.set_aside(oldest);
        }
        let parent_fd = parent.map_or(-1, |p| self.dirs[p].fd);
        // SAFETY: the names are NUL-terminated; the descriptor is ours.
        let stream = unsafe {
            if parent_fd != -1 {
                let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NONBLOCK;
                let fd = libc::openat(parent_fd, self.path_from(self.base()), flags);
                let mut stream = null_mut();
                if fd != -1 {
                    stream = libc::fdopendir(fd);
                    if stream.is_null() {
                        let e = errno();
                        libc::close(fd);
                        set_errno(e);
                    }
                }
                stream
            } else if self.flags & FTW_CHDIR != 0 {
                let base = self.base();
                if self.path[base] == 0 {
                    libc::opendir(c".".as_ptr())
                } else {
                    libc::opendir(self.path_from(base))
                }
            } else {
                libc::opendir(self.path_ptr())
            }
        };
        if stream.is_null() {
            return None;
        }
        // SAFETY: `stream` is open.
        let fd = unsafe { libc::dirfd(stream) };
        self.dirs.push(OpenDir {
            stream,
            fd,
            rest: Vec::new(),
        });
        let index = self.dirs.len() - 1;
        self.ring[self.slot] = Some(index);
        self.slot = (self.slot + 1) % self.ring.len();
        Some(index)
    }

    /// Reads what is left of a directory into memory and closes it.
    fn set_aside(&mut self, index: usize) {
        let dir = &mut self.dirs[index];
        // SAFETY: the stream is open; each entry's name is NUL-terminated.
        unsafe {
            loop {
                let d = libc::readdir64(dir.stream);
                if d.is_null() {
                    break;
                }
                dir.rest.push(c_bytes((*d).d_name.as_ptr()).to_vec());
            }
            libc::closedir(dir.stream);
        }
        dir.stream = null_mut();
        dir.fd = -1;
    }

    /// Closes the innermost directory, which still has its stream, and
    /// frees its slot.
    fn close_innermost(&mut self, index: usize) {
        let e = errno();
        // SAFETY: the stream is open.
        unsafe { libc::closedir(self.dirs[index].stream) };
        self.dirs[index].stream = null_mut();
        self.dirs[index].fd = -1;
        set_errno(e);
        self.slot = if self.slot == 0 {
            self.ring.len() - 1
        } else {
            self.slot - 1
        };
        self.ring[self.slot] = None;
    }

    /// Walks the directory at the current path, whose status is `st`.
    fn walk_dir(&mut self, st: &stat64, parent: Option<usize>) -> c_int {
        let previous_base = self.ftw.base;
        let Some(me) = self.open_dir(parent) else {
            if errno() == libc::EACCES {
                return self.report(st, FTW_DNR);
            }
            return -1;
        };
        let mut result = self.enter_dir(st, me);
        if result != 0 {
            self.close_innermost(me);
            self.dirs.pop();
            return result;
        }
        self.ftw.level += 1;
        if self.path.len() < 2 || self.path[self.path.len() - 2] != b'/' {
            self.path.pop();
            self.path.extend_from_slice(b"/\0");
        }
        self.ftw.base = (self.path.len() - 1) as c_int;
        result = self.read_entries(me);
        if self.flags & FTW_ACTIONRETVAL != 0 && result == FTW_SKIP_SIBLINGS {
            result = 0;
        }
        self.truncate_path(self.base().saturating_sub(1));
        self.ftw.level -= 1;
        self.ftw.base = previous_base;
        if result == 0 && self.flags & FTW_DEPTH != 0 {
            result = self.report(st, FTW_DP);
        }
        let actions = self.flags & FTW_ACTIONRETVAL != 0;
        if parent.is_some()
            && self.flags & FTW_CHDIR != 0
            && (result == 0 || (actions && result != -1 && result != FTW_STOP))
            && !self.leave_dir(parent)
        {
            result = -1;
        }
        self.dirs.pop();
        result
    }

    /// Pre-order report, then, with FTW_CHDIR, moving into the directory.
    fn enter_dir(&mut self, st: &stat64, me: usize) -> c_int {
        if self.flags & FTW_DEPTH == 0 {
            let r = self.report(st, FTW_D);
            if r != 0 {
                return r;
            }
        }
        // SAFETY: the stream was just opened.
        if self.flags & FTW_CHDIR != 0
            && unsafe { libc::fchdir(libc::dirfd(self.dirs[me].stream)) } < 0
        {
            return -1;
        }
        0
    }

    /// Visits every entry of directory `me`, from its stream while it is
    /// open, then from the names set aside when it had to be closed.
    fn read_entries(&mut self, me: usize) -> c_int {
        let mut result = 0;
        while !self.dirs[me].stream.is_null() {
            // SAFETY: the stream is open; the name is NUL-terminated and
            // copied before the stream is used again.
            let name = unsafe {
                let d = libc::readdir64(self.dirs[me].stream);
                if d.is_null() {
                    break;
                }
                c_bytes((*d).d_name.as_ptr()).to_vec()
            };
            result = self.visit_entry(me, &name);
            if result != 0 {
                break;
            }
        }
        if !self.dirs[me].stream.is_null() {
            self.close_innermost(me);
        } else {
            let rest = std::mem::take(&mut self.dirs[me].rest);
            for name in &rest {
                if result != 0 {
                    break;
                }
                result = self.visit_entry(me, name);
            }
        }
        result
    }

    /// Back into the parent directory after a sub-directory, with FTW_CHDIR.
    fn leave_dir(&mut self, parent: Option<usize>) -> bool {
        let parent_stream = parent.map_or(null_mut(), |p| self.dirs[p].stream);
        // SAFETY: an open stream, and literal paths.
        unsafe {
            if !parent_stream.is_null() && libc::fchdir(libc::dirfd(parent_stream)) == 0 {
                return true;
            }
            let up = if self.ftw.base == 1 { c"/" } else { c".." };
            libc::chdir(up.as_ptr()) >= 0
        }
    }

    /// Looks at one entry of directory `dir` and reports or walks it.
    fn visit_entry(&mut self, dir: usize, name: &[u8]) -> c_int {
        if is_dot_or_dotdot(name) {
            return 0;
        }
        self.set_name(name);
        let fd = self.dirs[dir].fd;
        let phys = self.flags & FTW_PHYS != 0;
        let target = if fd != -1 || self.flags & FTW_CHDIR != 0 {
            self.path_from(self.base())
        } else {
            self.path_ptr()
        };
        let look = |st: &mut stat64, follow: bool| -> c_int {
            // SAFETY: `target` points into `self.path`, unchanged meanwhile.
            unsafe {
                if fd != -1 {
                    let at = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
                    libc::fstatat64(fd, target, st, at)
                } else if follow {
                    libc::stat64(target, st)
                } else {
                    libc::lstat64(target, st)
                }
            }
        };
        let mut st = zeroed_stat();
        let flag = if look(&mut st, !phys) < 0 {
            let e = errno();
            if e != libc::EACCES && e != libc::ENOENT {
                return -1;
            }
            if !phys && look(&mut st, false) == 0 && file_type(&st) == libc::S_IFLNK {
                FTW_SLN
            } else {
                FTW_NS
            }
        } else {
            match file_type(&st) {
                libc::S_IFDIR => FTW_D,
                libc::S_IFLNK => FTW_SL,
                _ => FTW_F,
            }
        };
        let mut result = 0;
        if flag == FTW_NS || self.flags & FTW_MOUNT == 0 || st.st_dev == self.dev {
            if flag == FTW_D {
                if phys || self.seen.insert((st.st_dev, st.st_ino)) {
                    result = self.walk_dir(&st, Some(dir));
                }
            } else {
                result = self.report(&st, flag);
            }
        }
        if self.flags & FTW_ACTIONRETVAL != 0 && result == FTW_SKIP_SUBTREE {
            result = 0;
        }
        result
    }
}

// ---------------------------------------------------------------------------
// fts

/// `FTSENT` (and `FTSENT64`, the same on x86_64).
#[repr(C)]
pub struct FtsEnt {
    pub fts_cycle: *mut FtsEnt,
    pub fts_parent: *mut FtsEnt,
    pub fts_link: *mut FtsEnt,
    pub fts_number: c_long,
    pub fts_pointer: *mut c_void,
    pub fts_accpath: *mut c_char,
    pub fts_path: *mut c_char,
    pub fts_errno: c_int,
    pub fts_symfd: c_int,
    pub fts_pathlen: u16,
    pub fts_namelen: u16,
    pub fts_ino: libc::ino_t,
    pub fts_dev: libc::dev_t,
    pub fts_nlink: libc::nlink_t,
    pub fts_level: i16,
    pub fts_info: u16,
    pub fts_flags: u16,
    pub fts_instr: u16,
    pub fts_statp: *mut stat64,
    pub fts_name: [c_char; 1],
}

/// `int (*compar)(const FTSENT **, const FTSENT **)`
pub type FtsCompare =
    Option<unsafe extern "C" fn(*const *const FtsEnt, *const *const FtsEnt) -> c_int>;

/// `FTS` (and `FTS64`).
#[repr(C)]
pub struct Fts {
    pub fts_cur: *mut FtsEnt,
    pub fts_child: *mut FtsEnt,
    pub fts_array: *mut *mut FtsEnt,
    pub fts_dev: libc::dev_t,
    pub fts_path: *mut c_char,
    pub fts_rfd: c_int,
    pub fts_pathlen: c_int,
    pub fts_nitems: c_int,
    pub fts_compar: FtsCompare,
    pub fts_options: c_int,
}

pub const FTS_COMFOLLOW: c_int = 0x0001;
pub const FTS_LOGICAL: c_int = 0x0002;
pub const FTS_NOCHDIR: c_int = 0x0004;
pub const FTS_NOSTAT: c_int = 0x0008;
pub const FTS_PHYSICAL: c_int = 0x0010;
pub const FTS_SEEDOT: c_int = 0x0020;
pub const FTS_XDEV: c_int = 0x0040;
pub const FTS_OPTIONMASK: c_int = 0x00ff;
pub const FTS_NAMEONLY: c_int = 0x0100;
pub const FTS_STOP: c_int = 0x0200;

pub const FTS_ROOTPARENTLEVEL: i16 = -1;
pub const FTS_ROOTLEVEL: i16 = 0;

pub const FTS_D: u16 = 1;
pub const FTS_DC: u16 = 2;
pub const FTS_DEFAULT: u16 = 3;
pub const FTS_DNR: u16 = 4;
pub const FTS_DOT: u16 = 5;
pub const FTS_DP: u16 = 6;
pub const FTS_ERR: u16 = 7;
pub const FTS_F: u16 = 8;
pub const FTS_INIT: u16 = 9;
pub const FTS_NS: u16 = 10;
pub const FTS_NSOK: u16 = 11;
pub const FTS_SL: u16 = 12;
pub const FTS_SLNONE: u16 = 13;

pub const FTS_DONTCHDIR: u16 = 0x01;
pub const FTS_SYMFOLLOW: u16 = 0x02;

pub const FTS_AGAIN: c_int = 1;
pub const FTS_FOLLOW: c_int = 2;
pub const FTS_NOINSTR: c_int = 3;
pub const FTS_SKIP: c_int = 4;

type FtsOpenFn = unsafe extern "C" fn(*const *mut c_char, c_int, FtsCompare) -> *mut Fts;
type FtsReadFn = unsafe extern "C" fn(*mut Fts) -> *mut FtsEnt;
type FtsChildrenFn = unsafe extern "C" fn(*mut Fts, c_int) -> *mut FtsEnt;
type FtsSetFn = unsafe extern "C" fn(*mut Fts, *mut FtsEnt, c_int) -> c_int;
type FtsCloseFn = unsafe extern "C" fn(*mut Fts) -> c_int;

/// What `fts_build` is asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Build {
    /// `fts_children`: entries with their status.
    Children,
    /// `fts_children(FTS_NAMEONLY)`: names only.
    Names,
    /// `fts_read` entering a directory.
    Read,
}

/// The longest path an entry can describe (its lengths are 16-bit).
const FTS_PATH_LIMIT: i64 = u16::MAX as i64;

#[no_mangle]
pub unsafe extern "C" fn fts_open(
    argv: *const *mut c_char,
    options: c_int,
    compar: FtsCompare,
) -> *mut Fts {
    if !overlay_configured() {
        let real = libc_fn!("fts_open" as FtsOpenFn);
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { real(argv, options, compar) };
    }
    // SAFETY: `argv` is the caller's NULL-terminated array of C strings.
    unsafe { fts::open(argv, options, compar) }
}

#[no_mangle]
pub unsafe extern "C" fn fts_read(sp: *mut Fts) -> *mut FtsEnt {
    if !overlay_configured() {
        let real = libc_fn!("fts_read" as FtsReadFn);
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { real(sp) };
    }
    // SAFETY: `sp` comes from our fts_open.
    unsafe { fts::read(&mut *sp) }
}

#[no_mangle]
pub unsafe extern "C" fn fts_children(sp: *mut Fts, instr: c_int) -> *mut FtsEnt {
    if !overlay_configured() {
        let real = libc_fn!("fts_children" as FtsChildrenFn);
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { real(sp, instr) };
    }
    // SAFETY: `sp` comes from our fts_open.
    unsafe { fts::children(&mut *sp, instr) }
}

#[no_mangle]
pub unsafe extern "C" fn fts_set(sp: *mut Fts, p: *mut FtsEnt, instr: c_int) -> c_int {
    if !overlay_configured() {
        let real = libc_fn!("fts_set" as FtsSetFn);
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { real(sp, p, instr) };
    }
    if ![0, FTS_AGAIN, FTS_FOLLOW, FTS_NOINSTR, FTS_SKIP].contains(&instr) {
        set_errno(libc::EINVAL);
        return 1;
    }
    // SAFETY: `p` is an entry the stream returned.
    unsafe { (*p).fts_instr = instr as u16 };
    0
}

#[no_mangle]
pub unsafe extern "C" fn fts_close(sp: *mut Fts) -> c_int {
    if !overlay_configured() {
        let real = libc_fn!("fts_close" as FtsCloseFn);
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { real(sp) };
    }
    // SAFETY: `sp` comes from our fts_open and is not used afterwards.
    unsafe { fts::close(sp) }
}

#[no_mangle]
pub unsafe extern "C" fn fts64_open(
    argv: *const *mut c_char,
    options: c_int,
    compar: FtsCompare,
) -> *mut Fts {
    // SAFETY: the same function under its LFS name.
    unsafe { fts_open(argv, options, compar) }
}

#[no_mangle]
pub unsafe extern "C" fn fts64_read(sp: *mut Fts) -> *mut FtsEnt {
    // SAFETY: the same function under its LFS name.
    unsafe { fts_read(sp) }
}

#[no_mangle]
pub unsafe extern "C" fn fts64_children(sp: *mut Fts, instr: c_int) -> *mut FtsEnt {
    // SAFETY: the same function under its LFS name.
    unsafe { fts_children(sp, instr) }
}

#[no_mangle]
pub unsafe extern "C" fn fts64_set(sp: *mut Fts, p: *mut FtsEnt, instr: c_int) -> c_int {
    // SAFETY: the same function under its LFS name.
    unsafe { fts_set(sp, p, instr) }
}

#[no_mangle]
pub unsafe extern "C" fn fts64_close(sp: *mut Fts) -> c_int {
    // SAFETY: the same function under its LFS name.
    unsafe { fts_close(sp) }
}

/// The fts stream. Entries are C structures from `malloc`, linked as libc
/// links them: `fts_link` to the next sibling, `fts_parent` up to a dummy
/// parent of the roots (level -1); `fts_cur` is the entry last returned.
/// All entries share the stream's path buffer, `fts_path`.
///
/// Every function here takes a stream made by `open` and entries that
/// belong to it.
mod fts {
    use super::*;

    fn has(sp: &Fts, option: c_int) -> bool {
        sp.fts_options & option != 0
    }

    /// `fchdir` unless the stream does not change directories; true on failure.
    fn fchdir_failed(sp: &Fts, fd: c_int) -> bool {
        // SAFETY: plain call.
        !has(sp, FTS_NOCHDIR) && unsafe { libc::fchdir(fd) } != 0
    }

    /// Opens "." to come back to later.
    fn open_dot() -> c_int {
        // SAFETY: a literal path.
        unsafe { libc::open(c".".as_ptr(), libc::O_RDONLY) }
    }

    /// A new entry named `name`, all fields zero but its name, stat buffer
    /// (unless FTS_NOSTAT) and defaults. NULL when out of memory.
    pub(super) unsafe fn alloc(sp: &Fts, name: &[u8]) -> *mut FtsEnt {
        let name_at = offset_of!(FtsEnt, fts_name);
        let with_stat = !has(sp, FTS_NOSTAT);
        let stat_at = (name_at + name.len() + 2).next_multiple_of(16);
        let size = if with_stat {
            stat_at + size_of::<stat64>()
        } else {
            (name_at + name.len() + 1).max(size_of::<FtsEnt>())
        };
        // SAFETY: the block is `size` bytes, enough for the header, the
        // name and its NUL, and (16-aligned, as malloc's memory) the stat.
        unsafe {
            let p = libc::malloc(size).cast::<FtsEnt>();
            if p.is_null() {
                return p;
            }
            ptr::write_bytes(p.cast::<u8>(), 0, size_of::<FtsEnt>());
            let name_ptr = p.cast::<u8>().add(name_at);
            ptr::copy_nonoverlapping(name.as_ptr(), name_ptr, name.len());
            *name_ptr.add(name.len()) = 0;
            if with_stat {
                (*p).fts_statp = p.cast::<u8>().add(stat_at).cast();
            }
            (*p).fts_namelen = name.len() as u16;
            (*p).fts_path = sp.fts_path;
            (*p).fts_instr = FTS_NOINSTR as u16;
            p
        }
    }

    fn name_ptr(p: *mut FtsEnt) -> *mut c_char {
        // SAFETY: a field address, no read.
        unsafe { ptr::addr_of_mut!((*p).fts_name).cast() }
    }

    /// The entry's name.
    unsafe fn name<'a>(p: *mut FtsEnt) -> &'a [u8] {
        // SAFETY: entries hold a NUL-terminated name.
        unsafe { c_bytes(name_ptr(p)) }
    }

    unsafe fn free_list(mut head: *mut FtsEnt) {
        // SAFETY: a list of entries from `alloc`.
        unsafe {
            while !head.is_null() {
                let next = (*head).fts_link;
                libc::free(head.cast());
                head = next;
            }
        }
    }

    /// Grows the path buffer by `more` bytes and some; false on failure
    /// (the buffer is then gone).
    unsafe fn grow_path(sp: &mut Fts, more: usize) -> bool {
        let wanted = sp.fts_pathlen as i64 + more as i64 + 256;
        // SAFETY: the buffer is ours, from malloc.
        unsafe {
            if !(0..FTS_PATH_LIMIT).contains(&wanted) {
                libc::free(sp.fts_path.cast());
                sp.fts_path = null_mut();
                sp.fts_pathlen = wanted as c_int;
                set_errno(libc::ENAMETOOLONG);
                return false;
            }
            sp.fts_pathlen = wanted as c_int;
            let grown = libc::realloc(sp.fts_path.cast(), wanted as usize);
            if grown.is_null() {
                libc::free(sp.fts_path.cast());
                sp.fts_path = null_mut();
                return false;
            }
            sp.fts_path = grown.cast();
        }
        true
    }

    /// After the path buffer moved: points every live entry at the new one.
    unsafe fn adjust_paths(sp: &mut Fts, head: *mut FtsEnt) {
        let new = sp.fts_path;
        let adjust = |p: *mut FtsEnt| {
            // SAFETY: `p` is a live entry; its accpath lies in the old
            // buffer unless it is its own name.
            unsafe {
                if (*p).fts_accpath != name_ptr(p) {
                    let offset = (*p).fts_accpath.offset_from((*p).fts_path);
                    (*p).fts_accpath = new.offset(offset);
                }
                (*p).fts_path = new;
            }
        };
        // SAFETY: the child list and the chain from `head` through links
        // and parents up to the root parent are live entries.
        unsafe {
            let mut p = sp.fts_child;
            while !p.is_null() {
                adjust(p);
                p = (*p).fts_link;
            }
            let mut p = head;
            while !p.is_null() && (*p).fts_level >= FTS_ROOTLEVEL {
                adjust(p);
                p = if (*p).fts_link.is_null() {
                    (*p).fts_parent
                } else {
                    (*p).fts_link
                };
            }
        }
    }

    /// Sorts a list of `count` entries with the stream's function; left
    /// unsorted when there is no memory for it.
    unsafe fn sort(sp: &mut Fts, head: *mut FtsEnt, count: usize) -> *mut FtsEnt {
        let Some(compar) = sp.fts_compar else {
            return head;
        };
        // SAFETY: the array is ours; the list has `count` entries.
        unsafe {
            if count > sp.fts_nitems as usize {
                let room = count + 40;
                let grown = libc::realloc(sp.fts_array.cast(), room * size_of::<*mut FtsEnt>());
                if grown.is_null() {
                    libc::free(sp.fts_array.cast());
                    sp.fts_array = null_mut();
                    sp.fts_nitems = 0;
                    return head;
                }
                sp.fts_array = grown.cast();
                sp.fts_nitems = room as c_int;
            }
            let array = sp.fts_array;
            let mut p = head;
            for i in 0..count {
                *array.add(i) = p;
                p = (*p).fts_link;
            }
            let compar = std::mem::transmute::<
                unsafe extern "C" fn(*const *const FtsEnt, *const *const FtsEnt) -> c_int,
                QsortCompare,
            >(compar);
            libc::qsort(array.cast(), count, size_of::<*mut FtsEnt>(), Some(compar));
            for i in 0..count - 1 {
                (**array.add(i)).fts_link = *array.add(i + 1);
            }
            (**array.add(count - 1)).fts_link = null_mut();
            *array
        }
    }

    /// Stats an entry by its access path (following symlinks when the walk
    /// is logical or `follow`) and classifies it.
    pub(super) unsafe fn stat_entry(sp: &Fts, p: *mut FtsEnt, follow: bool) -> u16 {
        let mut own = zeroed_stat();
        // SAFETY: `p` is a live entry; its stat buffer (when it has one)
        // and access path are valid.
        unsafe {
            let st: *mut stat64 = if has(sp, FTS_NOSTAT) {
                &mut own
            } else {
                (*p).fts_statp
            };
            let path = (*p).fts_accpath;
            if has(sp, FTS_LOGICAL) || follow {
                if libc::stat64(path, st) != 0 {
                    let e = errno();
                    if libc::lstat64(path, st) == 0 {
                        set_errno(0);
                        return FTS_SLNONE;
                    }
                    (*p).fts_errno = e;
                    ptr::write_bytes(st, 0, 1);
                    return FTS_NS;
                }
            } else if libc::lstat64(path, st) != 0 {
                (*p).fts_errno = errno();
                ptr::write_bytes(st, 0, 1);
                return FTS_NS;
            }
            let st = &*st;
            match file_type(st) {
                libc::S_IFDIR => {
                    (*p).fts_dev = st.st_dev;
                    (*p).fts_ino = st.st_ino;
                    (*p).fts_nlink = st.st_nlink;
                    if is_dot_or_dotdot(name(p)) {
                        return FTS_DOT;
                    }
                    let mut t = (*p).fts_parent;
                    while !t.is_null() && (*t).fts_level >= FTS_ROOTLEVEL {
                        if (*t).fts_ino == st.st_ino && (*t).fts_dev == st.st_dev {
                            (*p).fts_cycle = t;
                            return FTS_DC;
                        }
                        t = (*t).fts_parent;
                    }
                    FTS_D
                }
                libc::S_IFLNK => FTS_SL,
                libc::S_IFREG => FTS_F,
                _ => FTS_DEFAULT,
            }
        }
    }

    /// Changes into directory `p` through `fd`, or by opening `path` when
    /// `fd` is -1, checking that it is still the directory `p` describes.
    /// Zero on success (and always with FTS_NOCHDIR).
    unsafe fn safe_chdir(sp: &Fts, p: *mut FtsEnt, fd: c_int, path: *const c_char) -> c_int {
        if has(sp, FTS_NOCHDIR) {
            return 0;
        }
        // SAFETY: `path` is a C string when `fd` is -1; `p` is live.
        unsafe {
            let dfd = if fd < 0 {
                libc::open(path, libc::O_RDONLY)
            } else {
                fd
            };
            if dfd < 0 {
                return -1;
            }
            let mut st = zeroed_stat();
            let r = if libc::fstat64(dfd, &mut st) != 0 {
                -1
            } else if (*p).fts_dev != st.st_dev || (*p).fts_ino != st.st_ino {
                set_errno(libc::ENOENT);
                -1
            } else {
                libc::fchdir(dfd)
            };
            if fd < 0 {
                let e = errno();
                libc::close(dfd);
                set_errno(e);
            }
            r
        }
    }

    /// The length of `p`'s path without a trailing slash.
    unsafe fn path_len_for_child(p: *mut FtsEnt) -> usize {
        // SAFETY: `p`'s path holds at least `fts_pathlen` bytes.
        unsafe {
            let len = (*p).fts_pathlen as usize;
            if len > 0 && *(*p).fts_path.add(len - 1) == b'/' as c_char {
                len - 1
            } else {
                len
            }
        }
    }

    pub(super) unsafe fn open(
        argv: *const *mut c_char,
        options: c_int,
        compar: FtsCompare,
    ) -> *mut Fts {
        if options & !FTS_OPTIONMASK != 0 {
            set_errno(libc::EINVAL);
            return null_mut();
        }
        // SAFETY: `argv` is a NULL-terminated array of C strings; the
        // stream and entries are ours.
        unsafe {
            let sp = libc::malloc(size_of::<Fts>()).cast::<Fts>();
            if sp.is_null() {
                return sp;
            }
            ptr::write_bytes(sp, 0, 1);
            let s = &mut *sp;
            s.fts_compar = compar;
            s.fts_options = options;
            if has(s, FTS_LOGICAL) {
                s.fts_options |= FTS_NOCHDIR;
            }
            let mut args = Vec::new();
            let mut a = argv;
            while !(*a).is_null() {
                args.push(c_bytes(*a));
                a = a.add(1);
            }
            let longest = args.iter().map(|a| a.len()).max().unwrap_or(0) + 1;
            if !grow_path(s, longest.max(libc::PATH_MAX as usize)) {
                libc::free(sp.cast());
                return null_mut();
            }
            match roots(s, &args) {
                Some(first) => {
                    s.fts_cur = first;
                    if !has(s, FTS_NOCHDIR) {
                        s.fts_rfd = open_dot();
                        if s.fts_rfd < 0 {
                            s.fts_options |= FTS_NOCHDIR;
                        }
                    }
                    sp
                }
                None => {
                    libc::free(s.fts_path.cast());
                    libc::free(sp.cast());
                    null_mut()
                }
            }
        }
    }

    /// The entries for the command-line paths, under a root parent, behind
    /// a first "current" entry of type FTS_INIT. None on failure.
    unsafe fn roots(sp: &mut Fts, args: &[&[u8]]) -> Option<*mut FtsEnt> {
        // SAFETY: the entries are ours, from `alloc`.
        unsafe {
            let parent = alloc(sp, b"");
            if parent.is_null() {
                return None;
            }
            (*parent).fts_level = FTS_ROOTPARENTLEVEL;
            let mut head: *mut FtsEnt = null_mut();
            let mut tail: *mut FtsEnt = null_mut();
            let fail = |head: *mut FtsEnt| {
                free_list(head);
                libc::free(parent.cast());
                None
            };
            for arg in args {
                if arg.is_empty() {
                    set_errno(libc::ENOENT);
                    return fail(head);
                }
                let p = alloc(sp, arg);
                if p.is_null() {
                    return fail(head);
                }
                (*p).fts_level = FTS_ROOTLEVEL;
                (*p).fts_parent = parent;
                (*p).fts_accpath = name_ptr(p);
                (*p).fts_info = stat_entry(sp, p, has(sp, FTS_COMFOLLOW));
                if (*p).fts_info == FTS_DOT {
                    (*p).fts_info = FTS_D;
                }
                if sp.fts_compar.is_some() {
                    (*p).fts_link = head;
                    head = p;
                } else {
                    if head.is_null() {
                        head = p;
                    } else {
                        (*tail).fts_link = p;
                    }
                    tail = p;
                }
            }
            if sp.fts_compar.is_some() && args.len() > 1 {
                head = sort(sp, head, args.len());
            }
            let cur = alloc(sp, b"");
            if cur.is_null() {
                return fail(head);
            }
            (*cur).fts_link = head;
            (*cur).fts_parent = parent;
            (*cur).fts_info = FTS_INIT;
            Some(cur)
        }
    }

    /// Makes root `p` the current path: the path buffer holds it whole,
    /// its name keeps the last component.
    unsafe fn load_root(sp: &mut Fts, p: *mut FtsEnt) {
        // SAFETY: the path buffer holds every root (checked at open).
        unsafe {
            let len = (*p).fts_namelen as usize;
            (*p).fts_pathlen = len as u16;
            ptr::copy(name_ptr(p), sp.fts_path, len + 1);
            let whole = name(p);
            if let Some(slash) = whole.iter().rposition(|&b| b == b'/') {
                if slash != 0 || slash + 1 < whole.len() {
                    let rest = whole.len() - slash - 1;
                    ptr::copy(name_ptr(p).add(slash + 1), name_ptr(p), rest + 1);
                    (*p).fts_namelen = rest as u16;
                }
            }
            (*p).fts_accpath = sp.fts_path;
            (*p).fts_path = sp.fts_path;
            sp.fts_dev = (*p).fts_dev;
        }
    }

    /// Writes `p`'s path (its parent's path, a slash, its name) into the
    /// buffer.
    unsafe fn set_path(sp: &Fts, p: *mut FtsEnt) {
        // SAFETY: the buffer was sized for every entry when it was read.
        unsafe {
            let t = sp.fts_path.add(path_len_for_child((*p).fts_parent));
            *t = b'/' as c_char;
            ptr::copy(name_ptr(p), t.add(1), (*p).fts_namelen as usize + 1);
        }
    }

    /// Follows the symlink `p`; a directory reached so is left later
    /// through a descriptor on the current one.
    unsafe fn follow(sp: &Fts, p: *mut FtsEnt) {
        // SAFETY: `p` is live.
        unsafe {
            (*p).fts_info = stat_entry(sp, p, true);
            if (*p).fts_info == FTS_D && !has(sp, FTS_NOCHDIR) {
                let fd = open_dot();
                if fd < 0 {
                    (*p).fts_errno = errno();
                    (*p).fts_info = FTS_ERR;
                } else {
                    (*p).fts_symfd = fd;
                    (*p).fts_flags |= FTS_SYMFOLLOW;
                }
            }
        }
    }

    pub(super) unsafe fn read(sp: &mut Fts) -> *mut FtsEnt {
        if sp.fts_cur.is_null() || has(sp, FTS_STOP) {
            return null_mut();
        }
        let p = sp.fts_cur;
        // SAFETY: `p` is the current entry, live.
        unsafe {
            let instr = (*p).fts_instr as c_int;
            (*p).fts_instr = FTS_NOINSTR as u16;
            if instr == FTS_AGAIN {
                (*p).fts_info = stat_entry(sp, p, false);
                return p;
            }
            if instr == FTS_FOLLOW && ((*p).fts_info == FTS_SL || (*p).fts_info == FTS_SLNONE) {
                follow(sp, p);
                return p;
            }
            if (*p).fts_info == FTS_D {
                return read_into(sp, p, instr);
            }
            read_next(sp, p)
        }
    }

    /// `fts_read` on a directory in pre-order: its first entry, or itself
    /// in post-order when skipped, empty or unreadable.
    unsafe fn read_into(sp: &mut Fts, p: *mut FtsEnt, instr: c_int) -> *mut FtsEnt {
        // SAFETY: `p` and the child list are live.
        unsafe {
            if instr == FTS_SKIP || (has(sp, FTS_XDEV) && (*p).fts_dev != sp.fts_dev) {
                if (*p).fts_flags & FTS_SYMFOLLOW != 0 {
                    libc::close((*p).fts_symfd);
                }
                free_list(sp.fts_child);
                sp.fts_child = null_mut();
                (*p).fts_info = FTS_DP;
                return p;
            }
            if !sp.fts_child.is_null() && has(sp, FTS_NAMEONLY) {
                sp.fts_options &= !FTS_NAMEONLY;
                free_list(sp.fts_child);
                sp.fts_child = null_mut();
            }
            if !sp.fts_child.is_null() {
                if safe_chdir(sp, p, -1, (*p).fts_accpath) != 0 {
                    (*p).fts_errno = errno();
                    (*p).fts_flags |= FTS_DONTCHDIR;
                    let mut c = sp.fts_child;
                    while !c.is_null() {
                        (*c).fts_accpath = (*(*c).fts_parent).fts_accpath;
                        c = (*c).fts_link;
                    }
                }
            } else {
                sp.fts_child = build(sp, Build::Read);
                if sp.fts_child.is_null() {
                    return if has(sp, FTS_STOP) { null_mut() } else { p };
                }
            }
            let first = sp.fts_child;
            sp.fts_child = null_mut();
            sp.fts_cur = first;
            set_path(sp, first);
            first
        }
    }

    /// `fts_read` after anything but a pre-order directory: the next
    /// sibling, or else the parent in post-order.
    unsafe fn read_next(sp: &mut Fts, mut p: *mut FtsEnt) -> *mut FtsEnt {
        // SAFETY: the entries on the chain are live; each one left behind
        // is freed once nothing points to it.
        unsafe {
            loop {
                let done = p;
                p = (*done).fts_link;
                if p.is_null() {
                    return read_up(sp, done);
                }
                sp.fts_cur = p;
                libc::free(done.cast());
                if (*p).fts_level == FTS_ROOTLEVEL {
                    if fchdir_failed(sp, sp.fts_rfd) {
                        sp.fts_options |= FTS_STOP;
                        return null_mut();
                    }
                    load_root(sp, p);
                    return p;
                }
                if (*p).fts_instr as c_int == FTS_SKIP {
                    continue;
                }
                if (*p).fts_instr as c_int == FTS_FOLLOW {
                    follow(sp, p);
                    (*p).fts_instr = FTS_NOINSTR as u16;
                }
                set_path(sp, p);
                return p;
            }
        }
    }

    /// Back up from the last entry of a directory: the directory in
    /// post-order, or the end of the walk.
    unsafe fn read_up(sp: &mut Fts, last: *mut FtsEnt) -> *mut FtsEnt {
        // SAFETY: `last` and its parents are live.
        unsafe {
            let p = (*last).fts_parent;
            sp.fts_cur = p;
            libc::free(last.cast());
            if (*p).fts_level == FTS_ROOTPARENTLEVEL {
                libc::free(p.cast());
                set_errno(0);
                sp.fts_cur = null_mut();
                return null_mut();
            }
            *sp.fts_path.add((*p).fts_pathlen as usize) = 0;
            if (*p).fts_level == FTS_ROOTLEVEL {
                if fchdir_failed(sp, sp.fts_rfd) {
                    sp.fts_options |= FTS_STOP;
                    return null_mut();
                }
            } else if (*p).fts_flags & FTS_SYMFOLLOW != 0 {
                if fchdir_failed(sp, (*p).fts_symfd) {
                    let e = errno();
                    libc::close((*p).fts_symfd);
                    set_errno(e);
                    sp.fts_options |= FTS_STOP;
                    return null_mut();
                }
                libc::close((*p).fts_symfd);
            } else if (*p).fts_flags & FTS_DONTCHDIR == 0
                && safe_chdir(sp, (*p).fts_parent, -1, c"..".as_ptr()) != 0
            {
                sp.fts_options |= FTS_STOP;
                return null_mut();
            }
            (*p).fts_info = if (*p).fts_errno != 0 { FTS_ERR } else { FTS_DP };
            p
        }
    }

    pub(super) unsafe fn children(sp: &mut Fts, instr: c_int) -> *mut FtsEnt {
        if instr != 0 && instr != FTS_NAMEONLY {
            set_errno(libc::EINVAL);
            return null_mut();
        }
        let p = sp.fts_cur;
        set_errno(0);
        if has(sp, FTS_STOP) || p.is_null() {
            return null_mut();
        }
        // SAFETY: `p` and the child list are live.
        unsafe {
            if (*p).fts_info == FTS_INIT {
                return (*p).fts_link;
            }
            if (*p).fts_info != FTS_D {
                return null_mut();
            }
            free_list(sp.fts_child);
            sp.fts_child = null_mut();
            let kind = if instr == FTS_NAMEONLY {
                sp.fts_options |= FTS_NAMEONLY;
                Build::Names
            } else {
                Build::Children
            };
            if (*p).fts_level != FTS_ROOTLEVEL
                || *(*p).fts_accpath == b'/' as c_char
                || has(sp, FTS_NOCHDIR)
            {
                sp.fts_child = build(sp, kind);
                return sp.fts_child;
            }
            // A relative root: reading it may change directory, and only
            // a descriptor on the current one leads back.
            let fd = open_dot();
            if fd < 0 {
                return null_mut();
            }
            sp.fts_child = build(sp, kind);
            let back = libc::fchdir(fd);
            let e = errno();
            libc::close(fd);
            set_errno(e);
            if back != 0 {
                return null_mut();
            }
            sp.fts_child
        }
    }

    /// Reads the current directory into a list of entries (sorted when the
    /// stream has a comparison function). For `Build::Read` the process
    /// stays in the directory (unless FTS_NOCHDIR); on failure the
    /// directory's `fts_info` says why. NULL when empty or on failure.
    unsafe fn build(sp: &mut Fts, kind: Build) -> *mut FtsEnt {
        let cur = sp.fts_cur;
        // SAFETY: `cur` is the current directory entry, live; the stream
        // and the entries built are ours.
        unsafe {
            let dir = libc::opendir((*cur).fts_accpath);
            if dir.is_null() {
                if kind == Build::Read {
                    (*cur).fts_info = FTS_DNR;
                    (*cur).fts_errno = errno();
                }
                return null_mut();
            }
            // How many sub-directories remain to be found by stat (with
            // FTS_NOSTAT on a physical walk), 0 for none, -1 for no limit.
            let (mut nlinks, nostat): (i64, bool) = if kind == Build::Names {
                (0, false)
            } else if has(sp, FTS_NOSTAT) && has(sp, FTS_PHYSICAL) {
                let dots = if has(sp, FTS_SEEDOT) { 0 } else { 2 };
                ((*cur).fts_nlink as i64 - dots, true)
            } else {
                (-1, false)
            };
            let mut dir = dir;
            let descend = if nlinks != 0 || kind == Build::Read {
                if safe_chdir(sp, cur, libc::dirfd(dir), ptr::null()) != 0 {
                    if nlinks != 0 && kind == Build::Read {
                        (*cur).fts_errno = errno();
                    }
                    (*cur).fts_flags |= FTS_DONTCHDIR;
                    libc::closedir(dir);
                    dir = null_mut();
                    false
                } else {
                    true
                }
            } else {
                false
            };
            let nochdir = has(sp, FTS_NOCHDIR);
            let mut len = path_len_for_child(cur);
            if nochdir {
                *sp.fts_path.add(len) = b'/' as c_char;
            }
            len += 1;
            let mut room = (sp.fts_pathlen as usize).saturating_sub(len);
            let level = (*cur).fts_level + 1;
            let old_path = sp.fts_path;
            let mut head: *mut FtsEnt = null_mut();
            let mut tail: *mut FtsEnt = null_mut();
            let mut count = 0usize;
            let fail = |sp: &mut Fts, head: *mut FtsEnt, dir: *mut DIR, e: c_int| {
                free_list(head);
                libc::closedir(dir);
                (*cur).fts_info = FTS_ERR;
                sp.fts_options |= FTS_STOP;
                set_errno(e);
                null_mut()
            };
            while !dir.is_null() {
                let d = libc::readdir64(dir);
                if d.is_null() {
                    break;
                }
                let dname = c_bytes((*d).d_name.as_ptr());
                if !has(sp, FTS_SEEDOT) && is_dot_or_dotdot(dname) {
                    continue;
                }
                let p = alloc(sp, dname);
                if p.is_null() {
                    return fail(sp, head, dir, errno());
                }
                if dname.len() >= room {
                    if !grow_path(sp, dname.len() + len + 1) {
                        let e = errno();
                        libc::free(p.cast());
                        return fail(sp, head, dir, e);
                    }
                    room = (sp.fts_pathlen as usize).saturating_sub(len);
                }
                if (len + dname.len()) as i64 >= FTS_PATH_LIMIT {
                    libc::free(p.cast());
                    return fail(sp, head, dir, libc::ENAMETOOLONG);
                }
                (*p).fts_path = sp.fts_path;
                (*p).fts_level = level;
                (*p).fts_parent = cur;
                (*p).fts_pathlen = (len + dname.len()) as u16;
                let not_dir = (*d).d_type != libc::DT_DIR && (*d).d_type != libc::DT_UNKNOWN;
                if nlinks == 0 || (nostat && not_dir) {
                    (*p).fts_accpath = if nochdir { sp.fts_path } else { name_ptr(p) };
                    (*p).fts_info = FTS_NSOK;
                } else {
                    if nochdir {
                        (*p).fts_accpath = sp.fts_path;
                        ptr::copy(name_ptr(p), sp.fts_path.add(len), dname.len() + 1);
                    } else {
                        (*p).fts_accpath = name_ptr(p);
                    }
                    (*p).fts_info = stat_entry(sp, p, false);
                    if nlinks > 0 && matches!((*p).fts_info, FTS_D | FTS_DC | FTS_DOT) {
                        nlinks -= 1;
                    }
                }
                if head.is_null() {
                    head = p;
                } else {
                    (*tail).fts_link = p;
                }
                tail = p;
                count += 1;
            }
            if !dir.is_null() {
                libc::closedir(dir);
            }
            if sp.fts_path != old_path {
                adjust_paths(sp, head);
            }
            if nochdir {
                let end = if len == sp.fts_pathlen as usize || count == 0 {
                    len - 1
                } else {
                    len
                };
                *sp.fts_path.add(end) = 0;
            }
            if descend && (kind == Build::Children || count == 0) {
                let failed = if (*cur).fts_level == FTS_ROOTLEVEL {
                    fchdir_failed(sp, sp.fts_rfd)
                } else {
                    safe_chdir(sp, (*cur).fts_parent, -1, c"..".as_ptr()) != 0
                };
                if failed {
                    (*cur).fts_info = FTS_ERR;
                    sp.fts_options |= FTS_STOP;
                    free_list(head);
                    return null_mut();
                }
            }
            if count == 0 {
                if kind == Build::Read {
                    (*cur).fts_info = FTS_DP;
                }
                return null_mut();
            }
            if count > 1 {
                head = sort(sp, head, count);
            }
            head
        }
    }

    pub(super) unsafe fn close(sp: *mut Fts) -> c_int {
        // SAFETY: `sp` and every entry reachable from it are ours; nothing
        // is used after being freed.
        unsafe {
            let s = &mut *sp;
            let mut p = s.fts_cur;
            if !p.is_null() {
                while (*p).fts_level >= FTS_ROOTLEVEL {
                    let done = p;
                    p = if (*p).fts_link.is_null() {
                        (*p).fts_parent
                    } else {
                        (*p).fts_link
                    };
                    libc::free(done.cast());
                }
                libc::free(p.cast());
            }
            free_list(s.fts_child);
            libc::free(s.fts_array.cast());
            libc::free(s.fts_path.cast());
            let mut result = 0;
            if !has(s, FTS_NOCHDIR) {
                let back = libc::fchdir(s.fts_rfd);
                let e = errno();
                libc::close(s.fts_rfd);
                if back != 0 {
                    set_errno(e);
                    result = -1;
                }
            }
            libc::free(sp.cast());
            result
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// C source printing, and Rust text giving, the size of each structure
    /// and the offset of each field.
    macro_rules! layouts {
        ($($c:literal => $rust:ty { $($field:ident),* })*) => {{
            let mut c = String::new();
            let mut rust = String::new();
            $(
                c += &format!("printf(\"{0} %zu\\n\", sizeof({0}));\n", $c);
                rust += &format!("{} {}\n", $c, size_of::<$rust>());
                $(
                    c += &format!(
                        "printf(\"{0}.{1} %zu\\n\", offsetof({0}, {1}));\n",
                        $c,
                        stringify!($field)
                    );
                    rust += &format!("{}.{} {}\n", $c, stringify!($field), offset_of!($rust, $field));
                )*
            )*
            (c, rust)
        }};
    }

    /// The same for constants.
    macro_rules! constants {
        ($($name:ident)*) => {{
            let mut c = String::new();
            let mut rust = String::new();
            $(
                c += &format!("printf(\"{0} %d\\n\", (int){0});\n", stringify!($name));
                rust += &format!("{} {}\n", stringify!($name), $name);
            )*
            (c, rust)
        }};
    }

    /// Compiles and runs a C program with `body` in `main`, in a scratch
    /// directory named after `name`.
    fn run_c(name: &str, body: &str) -> String {
        let dir = std::env::temp_dir().join(format!("ovl-walk-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating a directory for the C program");
        let src = dir.join("layout.c");
        let exe = dir.join("layout");
        let text = format!(
            "#define _GNU_SOURCE\n#include <stdio.h>\n#include <stddef.h>\n#include <dirent.h>\n\
             #include <fts.h>\n#include <ftw.h>\n#include <glob.h>\nint main(void) {{\n{body}return 0;\n}}\n"
        );
        std::fs::write(&src, text).expect("writing the C program");
        let cc = Command::new("cc").arg("-o").arg(&exe).arg(&src).status();
        assert!(
            cc.is_ok_and(|s| s.success()),
            "cc could not build {}",
            src.display()
        );
        let out = Command::new(&exe).output().expect("running the C program");
        std::fs::remove_dir_all(&dir).ok();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn structures_are_laid_out_as_in_the_c_headers() {
        let (c, rust) = layouts! {
            "FTSENT" => FtsEnt {
                fts_cycle, fts_parent, fts_link, fts_number, fts_pointer, fts_accpath, fts_path,
                fts_errno, fts_symfd, fts_pathlen, fts_namelen, fts_ino, fts_dev, fts_nlink,
                fts_level, fts_info, fts_flags, fts_instr, fts_statp, fts_name
            }
            "FTS" => Fts {
                fts_cur, fts_child, fts_array, fts_dev, fts_path, fts_rfd, fts_pathlen,
                fts_nitems, fts_compar, fts_options
            }
            "glob_t" => GlobT {
                gl_pathc, gl_pathv, gl_offs, gl_flags, gl_closedir, gl_readdir, gl_opendir,
                gl_lstat, gl_stat
            }
            "glob64_t" => GlobT { gl_pathc, gl_pathv, gl_offs, gl_flags, gl_stat }
            "struct FTW" => FtwInfo { base, level }
            "struct dirent64" => dirent64 { d_ino, d_off, d_reclen, d_type, d_name }
        };
        assert_eq!(run_c("layout", &c), rust);
    }

    #[test]
    fn constants_have_the_c_headers_values() {
        let (c, rust) = constants! {
            GLOB_ALTDIRFUNC
            FTW_PHYS FTW_MOUNT FTW_CHDIR FTW_DEPTH FTW_ACTIONRETVAL
            FTW_F FTW_D FTW_DNR FTW_NS FTW_SL FTW_DP FTW_SLN
            FTW_STOP FTW_SKIP_SUBTREE FTW_SKIP_SIBLINGS
            FTS_COMFOLLOW FTS_LOGICAL FTS_NOCHDIR FTS_NOSTAT FTS_PHYSICAL FTS_SEEDOT FTS_XDEV
            FTS_OPTIONMASK FTS_NAMEONLY FTS_STOP FTS_ROOTPARENTLEVEL FTS_ROOTLEVEL
            FTS_D FTS_DC FTS_DEFAULT FTS_DNR FTS_DOT FTS_DP FTS_ERR FTS_F FTS_INIT FTS_NS
            FTS_NSOK FTS_SL FTS_SLNONE FTS_DONTCHDIR FTS_SYMFOLLOW
            FTS_AGAIN FTS_FOLLOW FTS_NOINSTR FTS_SKIP
        };
        assert_eq!(run_c("constants", &c), rust);
    }
}
