//! `ftw` and `nftw`: a walk of a tree, with a callback for each object.

use super::*;

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
    libc_without_overlay!("ftw" as FtwEntry, (dir, func, nopenfd));
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
    libc_without_overlay!("nftw" as NftwEntry, (dir, func, nopenfd, flags));
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
