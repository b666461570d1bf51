//! The `fts_*` family: a tree walked as a stream of entries.

use super::*;

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
    libc_without_overlay!("fts_open" as FtsOpenFn, (argv, options, compar));
    // SAFETY: `argv` is the caller's NULL-terminated array of C strings.
    unsafe { stream::open(argv, options, compar) }
}

#[no_mangle]
pub unsafe extern "C" fn fts_read(sp: *mut Fts) -> *mut FtsEnt {
    libc_without_overlay!("fts_read" as FtsReadFn, (sp));
    // SAFETY: `sp` comes from our fts_open.
    unsafe { stream::read(&mut *sp) }
}

#[no_mangle]
pub unsafe extern "C" fn fts_children(sp: *mut Fts, instr: c_int) -> *mut FtsEnt {
    libc_without_overlay!("fts_children" as FtsChildrenFn, (sp, instr));
    // SAFETY: `sp` comes from our fts_open.
    unsafe { stream::children(&mut *sp, instr) }
}

#[no_mangle]
pub unsafe extern "C" fn fts_set(sp: *mut Fts, p: *mut FtsEnt, instr: c_int) -> c_int {
    libc_without_overlay!("fts_set" as FtsSetFn, (sp, p, instr));
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
    libc_without_overlay!("fts_close" as FtsCloseFn, (sp));
    // SAFETY: `sp` comes from our fts_open and is not used afterwards.
    unsafe { stream::close(sp) }
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
mod stream {
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
