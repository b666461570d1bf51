//! System calls refused in a view, with `ENOSYS`, as on a kernel without
//! them: their work is done by the kernel where no hook sees it (io_uring's
//! operations), or they reach paths by rules the hooks do not follow
//! (`openat2`'s `resolve` flags, the path-and-descriptor forms of the xattr
//! and attribute calls). Each has a plain call that programs fall back to.
//!
//! The shim refuses them when they come through libc's `syscall`. A process
//! that has loaded liburing, which makes them with the system call
//! instruction itself, also has the kernel refuse them to it and to every
//! process it starts (a seccomp filter): so io_uring cannot reach a lower
//! layer there either. Not in every process: with any filter, every system
//! call takes the kernel's slower way in (+12-20 ns here, 2% of a `find`).
//! The numbers are the same on every architecture (system calls added
//! since Linux 5.1 are numbered alike).

use rustix::io::Errno;
use std::sync::atomic::{AtomicBool, Ordering};

/// `io_uring_setup`, `openat2`, `setxattrat`, `getxattrat`, `listxattrat`,
/// `removexattrat`, `file_getattr`, `file_setattr`.
pub const REFUSED_IN_VIEW: [i64; 8] = [425, 437, 463, 464, 465, 466, 468, 469];

/// The libraries that make io_uring's calls with the instruction itself.
const RING_LIBRARIES: [&[u8]; 1] = [b"liburing"];

/// Set once this process has the kernel refuse [`REFUSED_IN_VIEW`].
static REFUSED_BY_KERNEL: AtomicBool = AtomicBool::new(false);

/// In a process that has loaded a library of [`RING_LIBRARIES`] (at its
/// start, or by `dlopen`), has the kernel refuse [`REFUSED_IN_VIEW`] to it
/// and its descendants; elsewhere nothing. A walk of the loaded objects'
/// names, no call, until then.
pub fn refuse_where_rings_are_made() {
    if !REFUSED_BY_KERNEL.load(Ordering::Acquire)
        && loaded_object_named(&RING_LIBRARIES)
        && refuse_in_descendants().is_ok()
    {
        REFUSED_BY_KERNEL.store(true, Ordering::Release);
    }
}

/// Is an object whose file name starts with one of `prefixes` loaded in
/// this process?
fn loaded_object_named(prefixes: &[&[u8]]) -> bool {
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid entry, and our own `data`.
        let (name, prefixes) = unsafe { ((*info).dlpi_name, &*data.cast::<&[&[u8]]>()) };
        if name.is_null() {
            return 0;
        }
        // SAFETY: the loader's NUL-terminated name of a loaded object.
        let path = unsafe { std::ffi::CStr::from_ptr(name) }.to_bytes();
        let file = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
        prefixes.iter().any(|p| file.starts_with(p)) as libc::c_int
    }
    let mut data: &[&[u8]] = prefixes;
    // SAFETY: `visit` reads only what the loader passes and `data`, which
    // outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&mut data as *mut &[&[u8]]).cast()) != 0 }
}

/// x32's flag in a system call's number (x86-64): its calls are the same.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Has the kernel refuse [`REFUSED_IN_VIEW`] to this process and every
/// process it starts from now on. Unprivileged, it sets `no_new_privs`
/// first, as the kernel requires (it changes nothing in a view, where
/// set-id and file-capability programs are refused anyway). Every other
/// call is allowed whatever its arguments, which the kernel's cache of
/// such answers turns into a bit test: no cost to other calls.
pub fn refuse_in_descendants() -> Result<(), Errno> {
    let filter = filter();
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points to `filter`, alive for the call; the kernel
    // copies the program.
    let install = || unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    };
    if install() == 0 {
        return Ok(());
    }
    let first = Errno::from_raw_os_error(errno());
    if first != Errno::ACCESS {
        return Err(first);
    }
    // SAFETY: a `prctl` with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(Errno::from_raw_os_error(errno()));
    }
    match install() {
        0 => Ok(()),
        _ => Err(Errno::from_raw_os_error(errno())),
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The filter: the call's number (x32's flag cleared) compared with each
/// refused one; `ENOSYS` on a match, else allowed.
fn filter() -> Vec<libc::sock_filter> {
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let n = REFUSED_IN_VIEW.len();
    let mut prog = vec![
        // `seccomp_data.nr`, at offset 0.
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        stmt(
            libc::BPF_ALU | libc::BPF_AND | libc::BPF_K,
            !X32_SYSCALL_BIT,
        ),
    ];
    for (i, &nr) in REFUSED_IN_VIEW.iter().enumerate() {
        // On a match, jump over the remaining comparisons and the `allow`.
        let to_refuse = (n - i) as u8;
        prog.push(libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: to_refuse,
            jf: 0,
            k: nr as u32,
        });
    }
    prog.push(stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW));
    prog.push(stmt(
        libc::BPF_RET | libc::BPF_K,
        libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
    ));
    prog
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the filter as the kernel would on the call numbered `nr`.
    fn answer(nr: u32) -> u32 {
        let prog = filter();
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let ins = &prog[pc];
            let code = u32::from(ins.code);
            match code {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => a = nr,
                c if c == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => a &= ins.k,
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                    pc += usize::from(if a == ins.k { ins.jt } else { ins.jf });
                }
                c if c == libc::BPF_RET | libc::BPF_K => return ins.k,
                _ => panic!("unexpected instruction {code:#x}"),
            }
            pc += 1;
        }
    }

    #[test]
    fn the_filter_refuses_its_calls_and_allows_every_other() {
        let refused = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        for &nr in &REFUSED_IN_VIEW {
            assert_eq!(answer(nr as u32), refused, "{nr}");
            assert_eq!(answer(nr as u32 | X32_SYSCALL_BIT), refused, "x32 {nr}");
        }
        for nr in (0..600).filter(|n| !REFUSED_IN_VIEW.contains(&i64::from(*n))) {
            assert_eq!(answer(nr), libc::SECCOMP_RET_ALLOW, "{nr}");
        }
    }
}
