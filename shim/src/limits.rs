//! Resource limits: the core dump limit, which the overlay holds at 0 where
//! a core would land in a lower layer (`ovl::core_dump`), read and set as
//! the program set it. Every other limit goes straight to libc.

use crate::hooks;
use crate::path::done;
use libc::{c_int, pid_t};

/// `RLIMIT_CORE`, the one limit the overlay has a part in.
const CORE: c_int = libc::RLIMIT_CORE as c_int;

/// A limit as glibc and the kernel lay it out: `rlimit` and `rlimit64` are
/// one layout on a 64-bit target.
#[repr(C)]
pub(crate) struct Limit {
    soft: u64,
    hard: u64,
}

const _: () = assert!(
    size_of::<libc::rlimit>() == size_of::<Limit>()
        && size_of::<libc::rlimit64>() == size_of::<Limit>()
);

/// After the real read of the core limit into `out` (result `r`): the
/// program's own soft limit where the real one is held at 0.
///
/// # Safety
/// `out` is NULL or the caller's writable `Limit`, filled when `r` is 0.
unsafe fn shown(r: c_int, out: *mut Limit) -> c_int {
    if r == 0 && !out.is_null() {
        if let Some(soft) = ovl::core_dump::held_soft_limit() {
            // SAFETY: per the contract.
            unsafe { (*out).soft = soft };
        }
    }
    r
}

/// Sets the core limit to `*new` (NULL: `real`, which fails as the kernel
/// does).
///
/// # Safety
/// `new` is NULL or points to a readable `Limit`.
unsafe fn set(
    ovl: &ovl::overlay::Overlay,
    new: *const Limit,
    real: impl FnOnce() -> c_int,
) -> c_int {
    if new.is_null() {
        return real();
    }
    // SAFETY: per the contract.
    let Limit { soft, hard } = unsafe { new.read() };
    done(ovl::core_dump::set_limit(ovl, soft, hard))
}

/// `prlimit` of the core limit: this process's is read and set as by
/// `getrlimit` and `setrlimit` (the old limit read before the new one is
/// set, as the kernel reports it); another process's goes to `real`.
///
/// # Safety
/// `new` and `old` are NULL or valid, as `prlimit` takes them.
unsafe fn prlimit_core(
    ovl: &ovl::overlay::Overlay,
    pid: pid_t,
    new: *const Limit,
    old: *mut Limit,
    real: impl Fn(pid_t, *const Limit, *mut Limit) -> c_int,
) -> c_int {
    if pid != 0 && pid != rustix::process::getpid().as_raw_nonzero().get() {
        return real(pid, new, old);
    }
    if !old.is_null() {
        // SAFETY: `old` is the caller's, filled by the real call.
        let r = unsafe { shown(real(pid, std::ptr::null(), old), old) };
        if r != 0 || new.is_null() {
            return r;
        }
    }
    // SAFETY: per the contract.
    unsafe { set(ovl, new, || real(pid, new, std::ptr::null_mut())) }
}

hooks! {
    unless_needed resource != CORE;
    fn getrlimit(resource: c_int, out: *mut Limit) -> c_int |real, _ovl| {
        shown(real(resource, out), out)
    }
    unless_needed resource != CORE;
    fn getrlimit64(resource: c_int, out: *mut Limit) -> c_int |real, _ovl| {
        shown(real(resource, out), out)
    }
    unless_needed resource != CORE;
    fn setrlimit(resource: c_int, new: *const Limit) -> c_int |real, ovl| {
        set(ovl, new, || real(resource, new))
    }
    unless_needed resource != CORE;
    fn setrlimit64(resource: c_int, new: *const Limit) -> c_int |real, ovl| {
        set(ovl, new, || real(resource, new))
    }
    unless_needed resource != CORE;
    fn prlimit(pid: pid_t, resource: c_int, new: *const Limit, old: *mut Limit) -> c_int |real, ovl| {
        prlimit_core(ovl, pid, new, old, |p, n, o| real(p, resource, n, o))
    }
    unless_needed resource != CORE;
    fn prlimit64(pid: pid_t, resource: c_int, new: *const Limit, old: *mut Limit) -> c_int |real, ovl| {
        prlimit_core(ovl, pid, new, old, |p, n, o| real(p, resource, n, o))
    }
}
