//! `syscall(2)`: a program that makes a call on a path through libc's
//! generic entry (libuv, so Node.js, makes `statx` that way) reaches the
//! hook of that call; `io_uring_setup` is refused in a view; every other
//! number goes to libc's `syscall` as it came. The entry is a few instructions, not a Rust function: `syscall` is
//! variadic, and forwarding by a jump leaves the caller's registers and
//! stack (the sixth argument) exactly as they were, whatever the call
//! (`clone` included). Where this is not written for the architecture,
//! `syscall` is libc's, unseen.

use libc::{c_char, c_int, c_long, c_uint, c_void, size_t};
use std::sync::atomic::AtomicPtr;

/// libc's `syscall`, once looked up.
static OVL_REAL_SYSCALL: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

// The numbers routed to hooks are compared in line; the rest jump to libc's
// `syscall` (to `routed` while it is not looked up yet). `routed` takes the
// same seven arguments in the same places, so it too is reached by a jump.
std::arch::global_asm!(
    ".globl syscall",
    ".type syscall, @function",
    "syscall:",
    "    cmp $332, %rdi", // SYS_statx
    "    je {routed}",
    "    cmp $262, %rdi", // SYS_newfstatat
    "    je {routed}",
    "    cmp $257, %rdi", // SYS_openat
    "    je {routed}",
    "    cmp $269, %rdi", // SYS_faccessat
    "    je {routed}",
    "    cmp $439, %rdi", // SYS_faccessat2
    "    je {routed}",
    "    cmp $267, %rdi", // SYS_readlinkat
    "    je {routed}",
    "    cmp $425, %rdi", // SYS_io_uring_setup
    "    je {routed}",
    "    mov {real}(%rip), %rax",
    "    test %rax, %rax",
    "    jz {routed}",
    "    jmp *%rax",
    ".size syscall, . - syscall",
    routed = sym routed,
    real = sym OVL_REAL_SYSCALL,
    options(att_syntax)
);

/// Looks libc's `syscall` up, at the shim's start: its first caller may be
/// where a look-up cannot run (a `vfork` child, a lock's wait).
pub(crate) fn look_up_real() {
    crate::real_symbol(&OVL_REAL_SYSCALL, b"syscall\0");
}

type RealSyscall =
    unsafe extern "C" fn(c_long, c_long, c_long, c_long, c_long, c_long, c_long) -> c_long;

/// A routed number runs its hook (which sets `errno` and returns -1 on
/// failure, as `syscall` does); any other is passed to libc's `syscall`.
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
    // SAFETY: per the contract, each routed call's arguments are its hook's,
    // passed as the kernel's calling convention passes them.
    unsafe {
        match n {
            libc::SYS_statx => crate::stat::statx(
                a as c_int,
                b as *const c_char,
                c as c_int,
                d as c_uint,
                e as *mut libc::statx,
            ) as c_long,
            // The kernel's `struct stat` is libc's on this architecture.
            libc::SYS_newfstatat => crate::stat::fstatat(
                a as c_int,
                b as *const c_char,
                c as *mut libc::stat,
                d as c_int,
            ) as c_long,
            libc::SYS_openat => crate::fd::openat(
                a as c_int,
                b as *const c_char,
                c as c_int,
                d as libc::mode_t,
            ) as c_long,
            libc::SYS_faccessat => {
                crate::stat::faccessat(a as c_int, b as *const c_char, c as c_int, 0) as c_long
            }
            libc::SYS_faccessat2 => {
                crate::stat::faccessat(a as c_int, b as *const c_char, c as c_int, d as c_int)
                    as c_long
            }
            libc::SYS_readlinkat => crate::stat::readlinkat(
                a as c_int,
                b as *const c_char,
                c as *mut c_char,
                d as size_t,
            ) as c_long,
            // io_uring's operations are made by the kernel, where no hook
            // sees them: a relative path would reach the real directory
            // behind the view's (a lower one). Refused in a view, so that
            // the program falls back to plain calls (libuv does).
            libc::SYS_io_uring_setup if ovl::overlay::get().is_some() => {
                crate::fail(rustix::io::Errno::NOSYS)
            }
            _ => {
                let real = crate::real_symbol(&OVL_REAL_SYSCALL, b"syscall\0");
                // SAFETY: libc's `syscall`, called with the caller's
                // arguments (libc's reads six, whatever the call takes).
                std::mem::transmute::<*mut c_void, RealSyscall>(real)(n, a, b, c, d, e, f)
            }
        }
    }
}
