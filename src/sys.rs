//! Small helpers over raw system calls.

use std::ffi::CString;

/// A C string from path bytes. A path with a NUL byte cannot exist; it is cut
/// there, and the call then fails on the shorter path as the kernel would not
/// see past the NUL either.
pub fn cpath(p: &[u8]) -> CString {
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    // SAFETY-free: no interior NUL remains after the cut.
    CString::new(&p[..end]).unwrap_or_default()
}
