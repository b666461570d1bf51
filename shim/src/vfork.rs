//! `vfork`. The real one cannot be called from a Rust function: its child
//! would return through that function's frame and leave the parent a
//! clobbered stack. So, as libc's own, it is a few instructions that keep
//! the return address in a register across the system call; around it, the
//! core is told when a child starts on this memory and when the parent
//! resumes (see `ovl::vfork`), so that the child's descriptor and directory
//! changes stay out of the parent's tables. Where this is not written for
//! the architecture, `vfork` is a `fork`, which POSIX allows.

use libc::pid_t;

#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(
    ".globl vfork",
    ".type vfork, @function",
    "vfork:",
    // One child at a time shares this memory; another thread's vfork forks.
    "    sub $8, %rsp",
    "    call {claim}",
    "    add $8, %rsp",
    "    test %al, %al",
    "    jz {fork_instead}",
    // The return address leaves the stack, which the child is about to use.
    "    pop %rdi",
    "    mov $58, %eax", // SYS_vfork
    "    syscall",
    "    push %rdi",
    "    cmp $-4095, %rax",
    "    jae 3f",
    "    test %rax, %rax",
    "    jz 2f",
    // The parent, once the child exec'd or exited (rsp+8 aligned for the call).
    "    push %rax",
    "    call {parent}",
    "    pop %rax",
    "    ret",
    "2:",
    "    sub $8, %rsp",
    "    call {child}",
    "    add $8, %rsp",
    "    xor %eax, %eax",
    "    ret",
    "3:",
    "    mov %eax, %edi",
    "    neg %edi",
    "    sub $8, %rsp",
    "    call {failed}",
    "    add $8, %rsp",
    "    ret",
    ".size vfork, . - vfork",
    claim = sym claim,
    fork_instead = sym fork_instead,
    parent = sym parent_resumed,
    child = sym child_started,
    failed = sym failed,
    options(att_syntax)
);

#[cfg(target_arch = "x86_64")]
extern "C" fn claim() -> bool {
    ovl::vfork::claim()
}

#[cfg(target_arch = "x86_64")]
/// A `fork` in place of the `vfork` (reached by a jump: it returns to the
/// caller of `vfork`).
extern "C" fn fork_instead() -> pid_t {
    // SAFETY: fork has no preconditions; the caller treats the child as a
    // vfork child, which asks less of it.
    unsafe { libc::fork() }
}

#[cfg(target_arch = "x86_64")]
extern "C" fn child_started() {
    ovl::vfork::child_started();
}

#[cfg(target_arch = "x86_64")]
extern "C" fn parent_resumed() {
    ovl::vfork::parent_resumed();
}

#[cfg(target_arch = "x86_64")]
/// The `vfork` failed: sets `errno` to `e` and returns -1.
extern "C" fn failed(e: i32) -> pid_t {
    ovl::vfork::release();
    crate::set_errno(e);
    -1
}

/// Elsewhere: a `fork` (the child may only exec or exit either way).
#[cfg(not(target_arch = "x86_64"))]
#[no_mangle]
pub extern "C" fn vfork() -> pid_t {
    // SAFETY: fork has no preconditions.
    unsafe { libc::fork() }
}
