//! The LD_PRELOAD shim: C ABI symbols of libc, each translated into calls of
//! the `ovl` core library. No overlay logic lives here: a hook decodes its
//! arguments, asks the core where the path lies and what to do, calls the
//! real function (found with `dlsym(RTLD_NEXT)`), and returns its result with
//! `errno` set as libc would.
//!
//! Paths outside the view cost one prefix comparison and go straight to the
//! real function.

#![allow(clippy::missing_safety_doc)]

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicPtr, Ordering};

mod alloc;
mod dir;
mod dl;
mod exec;
mod fd;
mod limits;
mod modify;
mod path;
mod read;
mod socket;
mod spawn_actions;
mod stat;
#[cfg(target_arch = "x86_64")]
mod syscall;
mod trace;
mod vfork;
mod wait;
mod walk;

/// The hooks whose libc function sits on the hot cache line.
pub(crate) const HOT_FSTATAT: usize = 0;
pub(crate) const HOT_READDIR: usize = 1;
const _: () = assert!(HOT_READDIR < ovl::hot::HOT_LIBC_FNS);

/// Finds the next definition of a symbol (libc's), once; a race only
/// repeats the look-up. A missing symbol is fatal: we cannot emulate it.
#[inline]
pub(crate) fn real_symbol(cache: &AtomicPtr<c_void>, name: &'static [u8]) -> *mut c_void {
    let p = cache.load(Ordering::Relaxed);
    if !p.is_null() {
        return p;
    }
    look_up_real_symbol(cache, name)
}

/// The first call of a wrapper: finds libc's function and caches it.
#[cold]
#[inline(never)]
fn look_up_real_symbol(cache: &AtomicPtr<c_void>, name: &'static [u8]) -> *mut c_void {
    // SAFETY: `name` is a NUL-terminated literal; RTLD_NEXT is valid in a shared object.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) };
    if p.is_null() {
        let msg = b"ovl: a libc function the overlay wraps is missing: ";
        // SAFETY: writing live buffers to fd 2, then aborting.
        unsafe {
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::write(2, name.as_ptr().cast(), name.len() - 1);
            libc::write(2, b"\n".as_ptr().cast(), 1);
            libc::abort();
        }
    }
    cache.store(p, Ordering::Relaxed);
    p
}

thread_local! {
    /// Set while a hook runs: calls made meanwhile (by the core or by libc on
    /// our behalf) go straight to libc. `const` and without destructor, so
    /// it never allocates.
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// Held while a hook runs.
pub(crate) struct Guard;

impl Guard {
    /// `None` when a hook is already running on this thread.
    #[inline]
    pub(crate) fn enter() -> Option<Guard> {
        IN_HOOK.with(|g| if g.replace(true) { None } else { Some(Guard) })
    }
}

impl Guard {
    /// Before a successful exec can leave this thread (or, after `vfork`,
    /// hand our memory back to the parent): no hook is running any more.
    pub(crate) fn release_for_exec() {
        IN_HOOK.with(|g| g.set(false));
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        IN_HOOK.with(|g| g.set(false));
    }
}

/// The value a function of this return type reports failure with.
pub(crate) trait Failure {
    fn failure() -> Self;
}
impl Failure for c_int {
    fn failure() -> Self {
        -1
    }
}
impl Failure for isize {
    fn failure() -> Self {
        -1
    }
}
impl Failure for i64 {
    fn failure() -> Self {
        -1
    }
}
impl<T> Failure for *mut T {
    fn failure() -> Self {
        std::ptr::null_mut()
    }
}

/// Sets `errno` and returns the failure value.
pub(crate) fn fail<R: Failure>(e: rustix::io::Errno) -> R {
    set_errno(e.raw_os_error());
    R::failure()
}

pub(crate) fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = e }
}

pub(crate) fn errno() -> c_int {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() }
}

/// The bytes of a C string argument (`None` for NULL).
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn bytes<'a>(p: *const c_char) -> Option<&'a [u8]> {
    if p.is_null() {
        None
    } else {
        // SAFETY: per the function's contract.
        Some(unsafe { CStr::from_ptr(p) }.to_bytes())
    }
}

/// Where a hook keeps libc's function: a static of its own, slot `$slot`
/// of the hot cache line, or a place named elsewhere (`in $place`).
#[macro_export]
macro_rules! libc_fn_slot {
    () => {{
        static OWN: std::sync::atomic::AtomicPtr<std::ffi::c_void> =
            std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());
        &OWN
    }};
    ($slot:expr) => {
        &ovl::hot::HOT.libc_fns[$slot]
    };
    (in $place:expr) => {
        &$place
    };
}

/// Defines exported wrappers. Each entry names the symbol, its C signature,
/// and a body that sees `real` (libc's function) and `ovl` (the overlay). The
/// body runs only when an overlay is configured and no hook is running on
/// this thread; otherwise the call goes straight to `real`. An optional
/// `unless_needed COND;` before `fn` sends the call straight to `real` when COND holds,
/// before anything else (for calls made in bulk, like `readdir`); COND must
/// call nothing. `unless_outside(DIRFD, PATH);` does the same for a path
/// plainly outside the view: settled on the spot for a relative name that
/// cannot climb, else first thing out of line. An optional
/// `quick EXPR;` after it is tried next: `Some(result)` is the call's result
/// (EXPR made the call itself, lock-free, outside the view), `None` goes on
/// to the body. An optional `libc_at SLOT;` keeps libc's function on the hot
/// cache line, for the hooks programs call once per name; `libc_in PLACE;`
/// keeps it in a static named elsewhere, which others may fill first.
#[macro_export]
macro_rules! hooks {
    ($(
        $(unless_needed $skip:expr;)?
        $(unless_outside($od:expr, $op:expr);)?
        $(quick $quick:expr;)?
        $(libc_at $slot:expr;)?
        $(libc_in $place:expr;)?
        fn $name:ident($($arg:ident : $ty:ty),* $(,)?) -> $ret:ty
            |$real:ident, $ovl:ident| $body:block
    )*) => {$(
        #[no_mangle]
        // Every body handles the caller's raw C pointers: it is unsafe code
        // by nature, written where the symbol is listed.
        #[allow(clippy::macro_metavars_in_unsafe)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            type Real = unsafe extern "C" fn($($ty),*) -> $ret;
            // libc's function, found at the first call: in a static of its
            // own, or on the hot cache line (`libc_at`).
            static REAL: &std::sync::atomic::AtomicPtr<std::ffi::c_void> =
                $crate::libc_fn_slot!($($slot)? $(in $place)?);
            // Is the overlay not needed for this call (`unless_needed`)?
            #[inline(always)]
            #[allow(unused_variables)]
            unsafe fn needless($($arg: $ty),*) -> bool {
                false $(|| $skip)? $(|| $crate::path::quickly_outside($od, $op))?
            }
            // The way straight to libc calls nothing before its final jump,
            // so it saves no registers: everything else is out of line, the
            // symbol's first look-up included (that first call asks
            // `needless` there).
            let known = REAL.load(std::sync::atomic::Ordering::Relaxed);
            // SAFETY: the caller's arguments, as they came.
            if !known.is_null() && unsafe { needless($($arg),*) } {
                // SAFETY: the symbol libc exports under this name has this
                // signature; the caller's arguments are passed on as they came.
                return unsafe { std::mem::transmute::<*mut std::ffi::c_void, Real>(known)($($arg),*) };
            }
            #[inline(never)]
            #[allow(clippy::macro_metavars_in_unsafe)]
            unsafe fn in_overlay($($arg: $ty,)* first: bool) -> $ret {
                // SAFETY: the symbol libc exports under this name has this signature.
                let $real: Real = unsafe {
                    std::mem::transmute::<*mut std::ffi::c_void, Real>(
                        $crate::real_symbol(REAL, concat!(stringify!($name), "\0").as_bytes()))
                };
                // SAFETY: the caller's arguments, passed on as they came.
                if first && unsafe { needless($($arg),*) } {
                    return unsafe { $real($($arg),*) };
                }
                // A path the quick test left open is settled here (its
                // absolute form measured, a `..` placed exactly).
                #[allow(unused_unsafe)]
                if false $(|| unsafe { $crate::path::plainly_outside($od, $op) })? {
                    return unsafe { $real($($arg),*) };
                }
                $(if let Some(r) = $quick { return r; })?
                let Some(_guard) = $crate::Guard::enter() else { return unsafe { $real($($arg),*) } };
                let Some($ovl) = ovl::overlay::get() else { return unsafe { $real($($arg),*) } };
                $crate::trace::call(stringify!($name));
                #[allow(unused_unsafe)]
                unsafe { $body }
            }
            // SAFETY: the caller's arguments, passed on as they came.
            unsafe { in_overlay($($arg,)* known.is_null()) }
        }
    )*};
}

extern "C" {
    // Defined in execl.c; referenced so the linker keeps them.
    fn execl(path: *const c_char, arg0: *const c_char, ...) -> c_int;
    fn execlp(file: *const c_char, arg0: *const c_char, ...) -> c_int;
    fn execle(path: *const c_char, arg0: *const c_char, ...) -> c_int;
}

#[used]
static KEEP_EXECL: [unsafe extern "C" fn(*const c_char, *const c_char, ...) -> c_int; 3] =
    [execl, execlp, execle];

/// Sets the overlay up before `main`, while the environment still describes
/// it (a program may clear it before its first file call). Hooks also set it
/// up on first use, for calls made by other libraries' constructors.
/// Inherited descriptors are looked at later, one by one, when they matter.
extern "C" fn init() {
    #[cfg(target_arch = "x86_64")]
    syscall::look_up_real();
    if let Some(_g) = Guard::enter() {
        if let Some(ovl) = ovl::overlay::get() {
            ovl::library_path::restore_library_path();
            ovl::exec::take_process_name();
            ovl::exec::take_removed_cwd(ovl);
            ovl::core_dump::at_start(ovl);
            ovl::refused_calls::refuse_where_rings_are_made();
        }
    }
    // SAFETY: registers handlers that look up libc's functions (before the
    // fork, in the parent) and only store to atomics and try a lock (see
    // `ovl::vfork::parent_resumed`), safe in a new child.
    unsafe { libc::pthread_atfork(Some(before_fork), None, Some(after_fork_in_child)) };
}

extern "C" fn before_fork() {
    exec::look_up_before_fork();
}

extern "C" fn after_fork_in_child() {
    ovl::vfork::after_fork_in_child();
}

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;
