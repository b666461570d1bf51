//! `syscall(2)`: a program that makes a call on a path or a descriptor
//! through libc's generic entry (libuv, so Node.js, makes `statx` that way)
//! reaches the hook of that call, so that such a change never goes past the
//! overlay to a lower layer; calls the overlay cannot make for a program
//! (io_uring, `openat2`, the `*xattrat` family: `ovl::refused_calls`) are
//! refused in a view with `ENOSYS`, as on a kernel without them, so the
//! program falls back to calls the hooks see. Every other number goes to
//! libc's `syscall` as it came. The entry is a few instructions, not a Rust function: `syscall` is
//! variadic, and forwarding by a jump leaves the caller's registers and
//! stack (the sixth argument) exactly as they were, whatever the call
//! (`clone` included). Where this is not written for the architecture,
//! `syscall` is libc's, unseen.

use libc::{c_char, c_int, c_long, c_void};
use std::sync::atomic::AtomicPtr;

/// libc's `syscall`, once looked up.
static OVL_REAL_SYSCALL: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

/// Refused in a view (`ENOSYS`; see `ovl::refused_calls`).
const REFUSED_IN_VIEW: [c_long; 8] = ovl::refused_calls::REFUSED_IN_VIEW;

/// The table of routed numbers: each with its hook, called with the six
/// arguments as `syscall` took them (`as _` gives each the hook's type; an
/// `int` the kernel takes is cut to 32 bits, as the kernel cuts it).
macro_rules! routes {
    (($($arg:ident),*) $($nr:path => $call:expr;)*) => {
        /// The numbers that reach a hook.
        const ROUTED: &[c_long] = &[$($nr),*];

        /// Runs the hook of a routed number; `None` for any other.
        ///
        /// # Safety
        /// The arguments are those of a `syscall` call of number `n`.
        #[allow(unused_variables, clippy::unnecessary_cast)]
        unsafe fn hook_of(n: c_long, $($arg: c_long),*) -> Option<c_long> {
            // SAFETY: per the contract, each routed call's arguments are
            // its hook's, passed as the kernel's calling convention passes them.
            unsafe {
                match n {
                    $($nr => Some($call as c_long),)*
                    _ => None,
                }
            }
        }
    };
}

routes! {
    (a, b, c, d, e, f)
    // Looking and opening.
    libc::SYS_open => crate::fd::open(a as _, b as _, c as _);
    libc::SYS_openat => crate::fd::openat(a as _, b as _, c as _, d as _);
    libc::SYS_creat => crate::fd::creat(a as _, b as _);
    // The kernel's `struct stat` and `struct statfs` are libc's here.
    libc::SYS_stat => crate::stat::stat(a as _, b as _);
    libc::SYS_lstat => crate::stat::lstat(a as _, b as _);
    libc::SYS_fstat => crate::stat::fstat(a as _, b as _);
    libc::SYS_newfstatat => crate::stat::fstatat(a as _, b as _, c as _, d as _);
    libc::SYS_statx => crate::stat::statx(a as _, b as _, c as _, d as _, e as _);
    libc::SYS_statfs => crate::stat::statfs(a as _, b as _);
    libc::SYS_fstatfs => crate::stat::fstatfs(a as _, b as _);
    libc::SYS_access => crate::stat::access(a as _, b as _);
    libc::SYS_faccessat => crate::stat::faccessat(a as _, b as _, c as _, 0);
    libc::SYS_faccessat2 => crate::stat::faccessat(a as _, b as _, c as _, d as _);
    libc::SYS_readlink => crate::stat::readlink(a as _, b as _, c as _);
    libc::SYS_readlinkat => crate::stat::readlinkat(a as _, b as _, c as _, d as _);
    libc::SYS_getxattr => crate::modify::getxattr(a as _, b as _, c as _, d as _);
    libc::SYS_lgetxattr => crate::modify::lgetxattr(a as _, b as _, c as _, d as _);
    libc::SYS_fgetxattr => crate::modify::fgetxattr(a as _, b as _, c as _, d as _);
    libc::SYS_listxattr => crate::modify::listxattr(a as _, b as _, c as _);
    libc::SYS_llistxattr => crate::modify::llistxattr(a as _, b as _, c as _);
    libc::SYS_flistxattr => crate::modify::flistxattr(a as _, b as _, c as _);
    libc::SYS_getdents64 => crate::dir::getdents64(a as _, b as _, c as _);
    libc::SYS_getcwd => getcwd(a as _, b as _);
    libc::SYS_chdir => crate::dir::chdir(a as _);
    libc::SYS_fchdir => crate::dir::fchdir(a as _);
    libc::SYS_inotify_add_watch => crate::stat::inotify_add_watch(a as _, b as _, c as u32);
    libc::SYS_name_to_handle_at => crate::fd::name_to_handle_at(a as _, b as _, c as _, d as _, e as _);
    libc::SYS_open_by_handle_at => crate::fd::open_by_handle_at(a as _, b as _, c as _);
    libc::SYS_bind => crate::socket::bind(a as _, b as _, c as _);
    libc::SYS_connect => crate::socket::connect(a as _, b as _, c as _);
    libc::SYS_execve => crate::exec::execve(a as _, b as _, c as _);
    libc::SYS_execveat => crate::exec::execveat(a as _, b as _, c as _, d as _, e as _);
    // Changing names.
    libc::SYS_mkdir => crate::modify::mkdir(a as _, b as _);
    libc::SYS_mkdirat => crate::modify::mkdirat(a as _, b as _, c as _);
    libc::SYS_mknod => crate::modify::mknod(a as _, b as _, c as u32 as _);
    libc::SYS_mknodat => crate::modify::mknodat(a as _, b as _, c as _, d as u32 as _);
    libc::SYS_rmdir => crate::modify::rmdir(a as _);
    libc::SYS_unlink => crate::modify::unlink(a as _);
    libc::SYS_unlinkat => crate::modify::unlinkat(a as _, b as _, c as _);
    libc::SYS_rename => crate::modify::rename(a as _, b as _);
    libc::SYS_renameat => crate::modify::renameat(a as _, b as _, c as _, d as _);
    libc::SYS_renameat2 => crate::modify::renameat2(a as _, b as _, c as _, d as _, e as _);
    libc::SYS_link => crate::modify::link(a as _, b as _);
    libc::SYS_linkat => crate::modify::linkat(a as _, b as _, c as _, d as _, e as _);
    libc::SYS_symlink => crate::modify::symlink(a as _, b as _);
    libc::SYS_symlinkat => crate::modify::symlinkat(a as _, b as _, c as _);
    // Changing objects.
    libc::SYS_truncate => crate::modify::truncate(a as _, b as _);
    libc::SYS_chmod => crate::modify::chmod(a as _, b as _);
    libc::SYS_fchmod => crate::fd::fchmod(a as _, b as _);
    libc::SYS_fchmodat => crate::modify::fchmodat(a as _, b as _, c as _, 0);
    libc::SYS_fchmodat2 => crate::modify::fchmodat(a as _, b as _, c as _, d as _);
    libc::SYS_chown => crate::modify::chown(a as _, b as _, c as _);
    libc::SYS_lchown => crate::modify::lchown(a as _, b as _, c as _);
    libc::SYS_fchown => crate::fd::fchown(a as _, b as _, c as _);
    libc::SYS_fchownat => crate::modify::fchownat(a as _, b as _, c as _, d as _, e as _);
    libc::SYS_utime => crate::modify::utime(a as _, b as _);
    libc::SYS_utimes => crate::modify::utimes(a as _, b as _);
    libc::SYS_futimesat => crate::modify::futimesat(a as _, b as _, c as _);
    libc::SYS_utimensat => utimensat(a as _, b as _, c as _, d as _);
    libc::SYS_setxattr => crate::modify::setxattr(a as _, b as _, c as _, d as _, e as _);
    libc::SYS_lsetxattr => crate::modify::lsetxattr(a as _, b as _, c as _, d as _, e as _);
    libc::SYS_fsetxattr => crate::fd::fsetxattr(a as _, b as _, c as _, d as _, e as _);
    libc::SYS_removexattr => crate::modify::removexattr(a as _, b as _);
    libc::SYS_lremovexattr => crate::modify::lremovexattr(a as _, b as _);
    libc::SYS_fremovexattr => crate::fd::fremovexattr(a as _, b as _);
    libc::SYS_ioctl => crate::fd::ioctl(a as _, b as u32 as _, c as _);
    // The overlay's own descriptors (the layers' roots) kept.
    libc::SYS_close => crate::fd::close(a as _);
    libc::SYS_close_range => crate::fd::close_range(a as _, b as _, c as _);
    libc::SYS_dup2 => crate::fd::dup2(a as _, b as _);
    libc::SYS_dup3 => crate::fd::dup3(a as _, b as _, c as _);
    libc::SYS_fcntl => crate::fd::fcntl(a as _, b as _, c as _);
    // The core dump limit, held where a core would land in a lower layer.
    libc::SYS_getrlimit => crate::limits::getrlimit(a as _, b as _);
    libc::SYS_setrlimit => crate::limits::setrlimit(a as _, b as _);
    libc::SYS_prlimit64 => crate::limits::prlimit64(a as _, b as _, c as _, d as _);
}

/// Bit `n` set for each number `syscall` does not hand straight to libc.
#[used]
static ROUTED_BITS: [u64; 8] = {
    let mut bits = [0u64; 8];
    let mut i = 0;
    while i < ROUTED.len() + REFUSED_IN_VIEW.len() {
        let n = if i < ROUTED.len() {
            ROUTED[i]
        } else {
            REFUSED_IN_VIEW[i - ROUTED.len()]
        };
        assert!(
            n >= 0 && n < 512,
            "the entry's bit table holds numbers below 512"
        );
        bits[n as usize / 64] |= 1 << (n % 64);
        i += 1;
    }
    bits
};

// Numbers with their bit set go to `routed`; the rest jump to libc's
// `syscall` (to `routed` while it is not looked up yet). `routed` takes the
// same seven arguments in the same places, so it too is reached by a jump.
std::arch::global_asm!(
    ".globl syscall",
    ".type syscall, @function",
    "syscall:",
    "    cmp $511, %rdi",
    "    ja 1f",
    "    btq %rdi, {bits}(%rip)",
    "    jc {routed}",
    "1:",
    "    mov {real}(%rip), %rax",
    "    test %rax, %rax",
    "    jz {routed}",
    "    jmp *%rax",
    ".size syscall, . - syscall",
    routed = sym routed,
    real = sym OVL_REAL_SYSCALL,
    bits = sym ROUTED_BITS,
    options(att_syntax)
);

/// The kernel's `getcwd` answers the length of the path with its NUL.
///
/// # Safety
/// `buf` is NULL or writable for `size` bytes.
unsafe fn getcwd(buf: *mut c_char, size: libc::size_t) -> c_long {
    if buf.is_null() {
        return crate::fail::<c_long>(rustix::io::Errno::FAULT);
    }
    // SAFETY: per the contract.
    match unsafe { crate::dir::getcwd(buf, size) } {
        // SAFETY: a path `getcwd` wrote, NUL-terminated.
        p if !p.is_null() => unsafe { libc::strlen(p) as c_long + 1 },
        _ => -1,
    }
}

/// The kernel's `utimensat` takes a NULL name as the descriptor's own
/// object (how `futimens` is made); glibc's refuses it.
///
/// # Safety
/// `p` is NULL or a C string; `t` NULL or two `timespec`s.
unsafe fn utimensat(fd: c_int, p: *const c_char, t: *const libc::timespec, fl: c_int) -> c_int {
    match (p.is_null(), fl) {
        // SAFETY: per the contract.
        (true, 0) => unsafe { crate::fd::futimens(fd, t) },
        (true, _) => crate::fail(rustix::io::Errno::INVAL),
        // SAFETY: per the contract.
        (false, _) => unsafe { crate::modify::utimensat(fd, p, t, fl) },
    }
}

/// Looks libc's `syscall` up, at the shim's start: its first caller may be
/// where a look-up cannot run (a `vfork` child, a lock's wait).
pub(crate) fn look_up_real() {
    crate::real_symbol(&OVL_REAL_SYSCALL, b"syscall\0");
}

type RealSyscall =
    unsafe extern "C" fn(c_long, c_long, c_long, c_long, c_long, c_long, c_long) -> c_long;

/// A routed number runs its hook (which sets `errno` and returns -1 on
/// failure, as `syscall` does); a refused one fails in a view; any other
/// is passed to libc's `syscall`.
///
/// # Safety
/// The arguments are a `syscall` caller's: for a routed number, those of
/// that call (valid pointers where it takes them).
unsafe extern "C" fn routed(
    n: c_long,
    a: c_long,
    b: c_long,
    c: c_long,
    d: c_long,
    e: c_long,
    f: c_long,
) -> c_long {
    // SAFETY: per the contract.
    if let Some(r) = unsafe { hook_of(n, a, b, c, d, e, f) } {
        return r;
    }
    if REFUSED_IN_VIEW.contains(&n) && ovl::overlay::get().is_some() {
        return crate::fail::<c_long>(rustix::io::Errno::NOSYS);
    }
    let real = crate::real_symbol(&OVL_REAL_SYSCALL, b"syscall\0");
    // SAFETY: libc's `syscall`, called with the caller's arguments (libc's
    // reads six, whatever the call takes).
    unsafe { std::mem::transmute::<*mut c_void, RealSyscall>(real)(n, a, b, c, d, e, f) }
}
