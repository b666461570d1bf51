//! `dlopen` of a library by a path of the view (Python's C extensions in a
//! virtual environment held in the view, plugins): the dynamic loader opens
//! the file itself, unseen by the hooks, so the path is translated to the
//! real file first. A bare name, searched by the loader, goes as given.
//! The loader runs the library's constructors: the hook's guard is let go
//! before, so that their file calls are seen.

use crate::path::{locate, Located};
use crate::{bytes, real_symbol, Guard};
use libc::{c_char, c_int, c_void};
use std::ffi::CString;
use std::sync::atomic::AtomicPtr;

/// The real file behind a library path of the view (`None`: pass the
/// caller's path on).
///
/// # Safety
/// `path` is NULL or a valid C string.
unsafe fn real_library_path(path: *const c_char) -> Option<CString> {
    let _guard = Guard::enter()?;
    let ovl = ovl::overlay::get()?;
    // SAFETY: per the contract.
    if !unsafe { bytes(path) }?.contains(&b'/') {
        return None;
    }
    // SAFETY: per the contract.
    match unsafe { locate(ovl, libc::AT_FDCWD, path, true) } {
        Ok(Located::Node(n)) => Some(ovl::cpath(&ovl.real_path(n.layer, &n.rel))),
        Ok(Located::Redirect(real)) => Some(real),
        // Not in the view, or not found: the loader says so in its words.
        Ok(Located::Outside) | Err(_) => None,
    }
}

/// # Safety
/// As libc's `dlopen`.
#[no_mangle]
pub unsafe extern "C" fn dlopen(path: *const c_char, flags: c_int) -> *mut c_void {
    type Real = unsafe extern "C" fn(*const c_char, c_int) -> *mut c_void;
    static REAL: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
    // SAFETY: the symbol libc exports under this name has this signature.
    let real: Real = unsafe { std::mem::transmute(real_symbol(&REAL, b"dlopen\0")) };
    // SAFETY: per the contract.
    let translated = unsafe { real_library_path(path) };
    let path = translated.as_ref().map_or(path, |p| p.as_ptr());
    // SAFETY: the caller's flags, and its path or the real one.
    let handle = unsafe { real(path, flags) };
    if !handle.is_null() && ovl::overlay::peek().is_some() {
        ovl::refused_calls::refuse_where_rings_are_made();
    }
    handle
}
