//! The exec and spawn family: programs in the view are found and run through
//! the overlay (`PATH` search, `#!` scripts), programs that would run unseen
//! are refused with a message, and every child keeps the overlay in its
//! environment, even one started with a fresh one.

use crate::{bytes, fail, hooks, Guard};
use libc::{c_char, c_int, pid_t, posix_spawn_file_actions_t, posix_spawnattr_t, FILE};
use ovl::exec::{Plan, Refusal};
use ovl::overlay::Overlay;
use rustix::io::Errno;
use std::ffi::{c_void, CString};
use std::sync::atomic::AtomicPtr;

extern "C" {
    static mut environ: *const *const c_char;
}

/// A NULL-terminated array of C strings, as read from the caller.
///
/// # Safety
/// `v` is NULL or a NULL-terminated array of valid C strings.
unsafe fn read_vec<'a>(v: *const *const c_char) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    if v.is_null() {
        return out;
    }
    let mut i = 0;
    // SAFETY: per the contract, every element up to the NULL is valid.
    unsafe {
        while !(*v.add(i)).is_null() {
            out.push(bytes(*v.add(i)).unwrap_or_default());
            i += 1;
        }
    }
    out
}

/// Owned C strings and the NULL-terminated pointer array over them.
struct CVec {
    _strings: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

impl CVec {
    fn new(items: impl IntoIterator<Item = Vec<u8>>) -> CVec {
        let strings: Vec<CString> = items.into_iter().map(|s| ovl::cpath(&s)).collect();
        let mut ptrs: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        CVec {
            _strings: strings,
            ptrs,
        }
    }
    fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }
}

/// What an exec or spawn gets after the overlay has had its say.
struct Prepared {
    path: CString,
    argv: CVec,
    envp: Option<CVec>,
}

/// Plans the execution of `path` with `argv` and `envp`; prints why when a
/// program is refused.
///
/// # Safety
/// Arguments as for `execve`.
unsafe fn prepare(
    ovl: &Overlay,
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> Result<Prepared, Errno> {
    // SAFETY: per the contract.
    let (p, args, env) = unsafe {
        (
            bytes(path).unwrap_or_default(),
            read_vec(argv),
            read_vec(envp),
        )
    };
    let tracing = env
        .iter()
        .any(|e| e.starts_with(b"LD_TRACE_LOADED_OBJECTS="));
    let plan = ovl.plan_exec(p, args.iter().map(|a| a.to_vec()).collect(), tracing);
    let Plan {
        path: real,
        argv: new_argv,
        library_dirs,
        name,
    } = match plan {
        Ok(plan) => plan,
        Err(Refusal::Errno(e)) => return Err(e),
        Err(r) => return Err(refused(r)),
    };
    crate::trace::line(p, &format!("exec {}", String::from_utf8_lossy(&real)));
    Ok(Prepared {
        path: ovl::cpath(&real),
        argv: CVec::new(new_argv),
        envp: ovl
            .child_env(&env, library_dirs.as_deref(), name.as_deref())
            .map(CVec::new),
    })
}

/// The error of a refused exec; why a program cannot run in the view is
/// printed first.
fn refused(r: Refusal) -> Errno {
    match r {
        Refusal::Errno(e) => e,
        Refusal::Unseen(msg) => {
            let line = format!("ovl: refusing to run {msg}\n");
            // SAFETY: writing a live buffer to stderr.
            unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
            Errno::PERM
        }
    }
}

/// `fexecve`, or `execveat` of a descriptor's own object: `real` runs
/// with the child's environment, unless the program is refused.
///
/// # Safety
/// `e` as for `execve`.
unsafe fn exec_descriptor(
    ovl: &Overlay,
    fd: c_int,
    e: *const *const c_char,
    real: impl FnOnce(*const *const c_char) -> c_int,
) -> c_int {
    if let Err(r) = ovl.check_exec_fd(fd) {
        return fail(refused(r));
    }
    // SAFETY: per the contract.
    let env = ovl
        .child_env(&unsafe { read_vec(e) }, None, None)
        .map(CVec::new);
    Guard::release_for_exec();
    real(env.as_ref().map_or(e, CVec::as_ptr))
}

/// Runs `real` (an exec) with the prepared arguments. The hook guard is
/// released first: after a `vfork`, the parent resumes with our memory.
///
/// # Safety
/// Arguments as for `execve`.
unsafe fn exec_in_view(
    ovl: &Overlay,
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    real: impl FnOnce(*const c_char, *const *const c_char, *const *const c_char) -> c_int,
) -> c_int {
    // SAFETY: per the contract.
    match unsafe { prepare(ovl, path, argv, envp) } {
        Ok(p) => {
            let env = p.envp.as_ref().map_or(envp, CVec::as_ptr);
            Guard::release_for_exec();
            real(p.path.as_ptr(), p.argv.as_ptr(), env)
        }
        Err(e) => fail(e),
    }
}

/// The path `execveat(dirfd, p, …, flags)` runs, for `execve` in the view:
/// a name relative to a descriptor of the view becomes the view's path, one
/// relative to another descriptor goes through `/proc/self/fd` (as the
/// kernel names it to a script's interpreter). As on the kernel, a final
/// symlink fails with `ELOOP` under `AT_SYMLINK_NOFOLLOW`, and a script
/// named relative to a close-on-exec descriptor with `ENOENT`.
///
/// # Safety
/// `p` is NULL or a valid C string.
unsafe fn exec_path_at(
    ovl: &Overlay,
    dirfd: c_int,
    p: *const c_char,
    flags: c_int,
) -> Result<CString, Errno> {
    // SAFETY: per the contract.
    let name = unsafe { bytes(p) }.ok_or(Errno::FAULT)?;
    if name.is_empty() {
        return Err(Errno::NOENT);
    }
    // SAFETY: per the contract.
    if flags & libc::AT_SYMLINK_NOFOLLOW != 0 && unsafe { is_symlink_at(ovl, dirfd, p) } {
        return Err(Errno::LOOP);
    }
    if name[0] == b'/' || dirfd == libc::AT_FDCWD {
        return Ok(ovl::cpath(name));
    }
    let path = match ovl.locate(dirfd, name) {
        ovl::locate::Where::Inside(rel) => ovl.virtual_path(&rel),
        ovl::locate::Where::Fails(e) => return Err(e),
        ovl::locate::Where::Outside => {
            let mut path = format!("/proc/self/fd/{dirfd}/").into_bytes();
            path.extend_from_slice(name);
            path
        }
    };
    // The kernel names such a script to its interpreter as /dev/fd/N/name,
    // which is gone once a close-on-exec descriptor is closed: it refuses.
    let cloexec = rustix::io::fcntl_getfd(
        // SAFETY: the caller's descriptor, for this call only.
        unsafe { rustix::fd::BorrowedFd::borrow_raw(dirfd) },
    )
    .is_ok_and(|f| f.contains(rustix::io::FdFlags::CLOEXEC));
    if cloexec && ovl.is_script(&path) {
        return Err(Errno::NOENT);
    }
    Ok(ovl::cpath(&path))
}

/// Is the last component of `(dirfd, p)` a symlink, in the view or outside it?
///
/// # Safety
/// `p` is a valid C string.
unsafe fn is_symlink_at(ovl: &Overlay, dirfd: c_int, p: *const c_char) -> bool {
    use rustix::fs::{statat, AtFlags, FileType, CWD};
    // SAFETY: per the contract.
    let found = unsafe {
        // A whiteout is no symlink: the answer stands.
        let shown = |_: &c_int| crate::path::Shown::Object;
        crate::path::reading_unless(ovl, dirfd, p, false, shown, |d, rp, node| {
            let mode = match node {
                Some(node) => node.stat.st_mode,
                None => {
                    // SAFETY: `reading` hands over a valid C string.
                    let name = std::ffi::CStr::from_ptr(rp);
                    let st = match d {
                        libc::AT_FDCWD => statat(CWD, name, AtFlags::SYMLINK_NOFOLLOW),
                        // SAFETY: the caller's descriptor, for this call only.
                        d => statat(
                            rustix::fd::BorrowedFd::borrow_raw(d),
                            name,
                            AtFlags::SYMLINK_NOFOLLOW,
                        ),
                    };
                    st.map_or(0, |st| st.st_mode)
                }
            };
            (FileType::from_raw_mode(mode) == FileType::Symlink) as c_int
        })
    };
    found == 1
}

/// The `PATH` search of `execvp`, in the view.
fn search(ovl: &Overlay, file: &[u8]) -> Result<CString, Errno> {
    let path = std::env::var_os("PATH");
    let search = path.as_ref().map_or(&b"/bin:/usr/bin"[..], |p| {
        std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str())
    });
    ovl.find_in_path(file, search).map(|f| ovl::cpath(&f))
}

/// `execvpe`: `PATH` search in the view, then a shell for files that are
/// not executables (`ENOEXEC`), as glibc does.
///
/// # Safety
/// Arguments as for `execvpe`.
unsafe fn execvpe_in_view(
    ovl: &Overlay,
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    real: unsafe extern "C" fn(*const c_char, *const *const c_char, *const *const c_char) -> c_int,
) -> c_int {
    // SAFETY: per the contract.
    let Some(f) = (unsafe { bytes(file) }) else {
        return fail(Errno::NOENT);
    };
    if f.is_empty() {
        return fail(Errno::NOENT);
    }
    let found = if f.contains(&b'/') {
        // SAFETY: file is a valid C string.
        unsafe { std::ffi::CStr::from_ptr(file) }.to_owned()
    } else {
        match search(ovl, f) {
            Ok(p) => p,
            Err(e) => return fail(e),
        }
    };
    // SAFETY: per the contract.
    let r = unsafe { exec_in_view(ovl, found.as_ptr(), argv, envp, |p, a, e| real(p, a, e)) };
    if crate::errno() == libc::ENOEXEC {
        // SAFETY: per the contract.
        let mut args: Vec<Vec<u8>> = vec![b"/bin/sh".to_vec(), found.as_bytes().to_vec()];
        args.extend(
            unsafe { read_vec(argv) }
                .into_iter()
                .skip(1)
                .map(<[u8]>::to_vec),
        );
        let a = CVec::new(args);
        let sh = c"/bin/sh";
        // SAFETY: a and envp are valid NULL-terminated arrays.
        return unsafe {
            exec_in_view(ovl, sh.as_ptr(), a.as_ptr(), envp, |p, a, e| real(p, a, e))
        };
    }
    r
}

/// `posix_spawn` with the overlay's plan (errors are returned, not in errno).
///
/// # Safety
/// Arguments as for `posix_spawn`.
unsafe fn spawn_in_view(
    ovl: &Overlay,
    pid: *mut pid_t,
    path: *const c_char,
    (fa, attr): (*const posix_spawn_file_actions_t, *const posix_spawnattr_t),
    argv: *const *const c_char,
    envp: *const *const c_char,
    real: impl FnOnce(
        *mut pid_t,
        *const c_char,
        *const posix_spawn_file_actions_t,
        *const posix_spawnattr_t,
        *const *const c_char,
        *const *const c_char,
    ) -> c_int,
) -> c_int {
    // SAFETY: per the contract.
    match unsafe { prepare(ovl, path, argv, envp) } {
        Ok(p) => {
            let env = p.envp.as_ref().map_or(envp, CVec::as_ptr);
            real(pid, p.path.as_ptr(), fa, attr, p.argv.as_ptr(), env)
        }
        Err(e) => e.raw_os_error(),
    }
}

/// Puts the overlay's variables back into this process's environment before
/// libc starts a shell with it (`system`, `popen`): the child's own entries
/// among them are taken out again by [`forget_child_entries`] once it started.
fn restore_environ(ovl: &Overlay) {
    // SAFETY: environ is the process environment, NULL-terminated.
    let env = unsafe { read_vec(environ) };
    if let Some(new) = ovl.child_env(&env, None, None) {
        for e in new {
            if let Some(eq) = e.iter().position(|&b| b == b'=') {
                let (k, v) = (ovl::cpath(&e[..eq]), ovl::cpath(&e[eq + 1..]));
                // SAFETY: two valid C strings.
                unsafe { libc::setenv(k.as_ptr(), v.as_ptr(), 1) };
            }
        }
    }
}

/// libc's exec functions, found before a `fork` (see [`look_up_before_fork`]).
static LIBC_EXEC: [AtomicPtr<c_void>; 4] = [const { AtomicPtr::new(std::ptr::null_mut()) }; 4];
const LIBC_EXEC_NAMES: [&[u8]; 4] = [b"execve\0", b"execv\0", b"execvp\0", b"execvpe\0"];
const EXECVE: usize = 0;
const EXECV: usize = 1;
const EXECVP: usize = 2;
const EXECVPE: usize = 3;

/// In the parent, before a `fork`: libc's exec functions are looked up
/// here, once, rather than in each child (`bash` forks for every command),
/// where the look-up's code and data are faulted in again and copied.
pub(crate) fn look_up_before_fork() {
    for (slot, name) in LIBC_EXEC.iter().zip(LIBC_EXEC_NAMES) {
        crate::real_symbol(slot, name);
    }
}

hooks! {
    libc_in LIBC_EXEC[EXECVE];
    fn execve(p: *const c_char, a: *const *const c_char, e: *const *const c_char) -> c_int |real, ovl| {
        exec_in_view(ovl, p, a, e, |p, a, e| real(p, a, e))
    }
    libc_in LIBC_EXEC[EXECV];
    fn execv(p: *const c_char, a: *const *const c_char) -> c_int |real, ovl| {
        exec_in_view(ovl, p, a, environ, |p, a, e| { let _ = real; libc_execve(p, a, e) })
    }
    libc_in LIBC_EXEC[EXECVP];
    fn execvp(f: *const c_char, a: *const *const c_char) -> c_int |real, ovl| {
        let _ = real;
        execvpe_in_view(ovl, f, a, environ, libc_execve)
    }
    libc_in LIBC_EXEC[EXECVPE];
    fn execvpe(f: *const c_char, a: *const *const c_char, e: *const *const c_char) -> c_int |real, ovl| {
        let _ = real;
        execvpe_in_view(ovl, f, a, e, libc_execve)
    }
    fn fexecve(fd: c_int, a: *const *const c_char, e: *const *const c_char) -> c_int |real, ovl| {
        exec_descriptor(ovl, fd, e, |env| real(fd, a, env))
    }
    fn execveat(d: c_int, p: *const c_char, a: *const *const c_char, e: *const *const c_char, fl: c_int) -> c_int |real, ovl| {
        if crate::path::names_the_descriptor(p, fl) {
            // The descriptor's own object, as `fexecve`.
            return exec_descriptor(ovl, d, e, |env| real(d, p, a, env, fl));
        }
        match exec_path_at(ovl, d, p, fl) {
            Ok(path) => exec_in_view(ovl, path.as_ptr(), a, e, |p, a, e| libc_execve(p, a, e)),
            Err(e) => fail(e),
        }
    }
    fn posix_spawn(pid: *mut pid_t, p: *const c_char, fa: *const posix_spawn_file_actions_t, at: *const posix_spawnattr_t, a: *const *const c_char, e: *const *const c_char) -> c_int |real, ovl| {
        spawn_in_view(ovl, pid, p, (fa, at), a, e, |pid, p, fa, at, a, e| real(pid, p, fa, at, a, e))
    }
    fn posix_spawnp(pid: *mut pid_t, f: *const c_char, fa: *const posix_spawn_file_actions_t, at: *const posix_spawnattr_t, a: *const *const c_char, e: *const *const c_char) -> c_int |real, ovl| {
        let _ = real;
        let file = bytes(f).unwrap_or_default();
        let found = if file.contains(&b'/') {
            std::ffi::CStr::from_ptr(f).to_owned()
        } else {
            match search(ovl, file) { Ok(p) => p, Err(e) => return e.raw_os_error() }
        };
        spawn_in_view(ovl, pid, found.as_ptr(), (fa, at), a, e, |pid, p, fa, at, a, e| libc_posix_spawn(pid, p, fa, at, a, e))
    }
    fn system(cmd: *const c_char) -> c_int |real, ovl| {
        restore_environ(ovl);
        let r = real(cmd);
        forget_child_entries();
        r
    }
    fn popen(cmd: *const c_char, ty: *const c_char) -> *mut FILE |real, ovl| {
        restore_environ(ovl);
        let r = real(cmd, ty);
        forget_child_entries();
        r
    }
}

/// After [`restore_environ`] and the start of the child: this process's
/// environment without what was the child's alone (the removed directory it
/// started in, the core limit held for it), which this process's own
/// children are told afresh.
fn forget_child_entries() {
    use ovl::config::env::{CORE_LIMIT, REMOVED_CWD};
    for name in [REMOVED_CWD, CORE_LIMIT] {
        let name = ovl::cpath(name.as_bytes());
        // SAFETY: a valid C string.
        unsafe { libc::unsetenv(name.as_ptr()) };
    }
}

/// libc's own `execve` (not our wrapper).
unsafe extern "C" fn libc_execve(
    p: *const c_char,
    a: *const *const c_char,
    e: *const *const c_char,
) -> c_int {
    type F =
        unsafe extern "C" fn(*const c_char, *const *const c_char, *const *const c_char) -> c_int;
    let real = crate::real_symbol(&LIBC_EXEC[EXECVE], LIBC_EXEC_NAMES[EXECVE]);
    // SAFETY: libc's execve has this signature.
    let f: F = unsafe { std::mem::transmute::<*mut c_void, F>(real) };
    // SAFETY: arguments as the caller's.
    unsafe { f(p, a, e) }
}

/// libc's own `posix_spawn` (not our wrapper).
unsafe fn libc_posix_spawn(
    pid: *mut pid_t,
    p: *const c_char,
    fa: *const posix_spawn_file_actions_t,
    at: *const posix_spawnattr_t,
    a: *const *const c_char,
    e: *const *const c_char,
) -> c_int {
    type F = unsafe extern "C" fn(
        *mut pid_t,
        *const c_char,
        *const posix_spawn_file_actions_t,
        *const posix_spawnattr_t,
        *const *const c_char,
        *const *const c_char,
    ) -> c_int;
    static REAL: std::sync::atomic::AtomicPtr<std::ffi::c_void> =
        std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());
    // SAFETY: libc's posix_spawn has this signature.
    let f: F = unsafe {
        std::mem::transmute::<*mut std::ffi::c_void, F>(crate::real_symbol(&REAL, b"posix_spawn\0"))
    };
    // SAFETY: arguments as the caller's.
    unsafe { f(pid, p, fa, at, a, e) }
}
