//! `glob`: libc's own, given the shim's directory functions (`GLOB_ALTDIRFUNC`).

use super::*;

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
