//! `scandir` and `scandirat`: a directory's entries, filtered and sorted.

use super::*;

/// `int (*select)(const struct dirent *)`
pub type DirFilter = Option<unsafe extern "C" fn(*const dirent64) -> c_int>;
/// `int (*compar)(const struct dirent **, const struct dirent **)`
pub type DirCompare =
    Option<unsafe extern "C" fn(*const *const dirent64, *const *const dirent64) -> c_int>;

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
    libc_without_overlay!("scandir" as ScandirFn, (dir, namelist, select, compar));
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
    libc_without_overlay!(
        "scandirat" as ScandiratFn,
        (dfd, dir, namelist, select, compar)
    );
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
