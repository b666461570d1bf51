//! The on-disk records of the overlay: whiteouts and opaque directories, in
//! every format the kernel and the seed have used (all are read; the
//! configured one is written).

use crate::config::{WhiteoutFormat, XattrNs};
use crate::overlay::Overlay;
use rustix::fs::{FileType, Mode, Stat, CWD};
use rustix::io::Errno;
use std::ffi::CStr;

/// Target of the seed's symlink whiteout.
pub const SEED_WHITEOUT_TARGET: &[u8] = b"(overlay-whiteout)";

const NAMESPACES: [&str; 2] = ["trusted.overlay.", "user.overlay."];

/// True when the xattr belongs to the overlay itself (never shown, never set
/// through the view).
pub fn is_private_xattr(name: &[u8]) -> bool {
    NAMESPACES.iter().any(|ns| name.starts_with(ns.as_bytes()))
}

/// Does the object carry `<ns>.overlay.<attr>` (in either namespace) whose
/// value starts with one of `values` (any value when empty)?
fn xattr_has(path: &CStr, attr: &str, values: &[u8]) -> bool {
    let mut buf = [0u8; 4];
    for ns in NAMESPACES {
        let full = format!("{ns}{attr}");
        match rustix::fs::lgetxattr(path, full.as_str(), &mut buf[..]) {
            Ok(n) if values.is_empty() || (n >= 1 && values.contains(&buf[0])) => return true,
            Err(Errno::RANGE) if values.is_empty() => return true,
            _ => {}
        }
    }
    false
}

fn xattr_is_y(path: &CStr, attr: &str) -> bool {
    xattr_has(path, attr, b"y")
}

/// The overlay xattr names set on an object (one `llistxattr`).
fn overlay_names(path: &CStr) -> Vec<Vec<u8>> {
    let mut names = [0u8; 1024];
    let n = match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(n) => n,
        Err(Errno::RANGE) => {
            let mut big = vec![0u8; 65536];
            let n = rustix::fs::llistxattr(path, &mut big[..]).unwrap_or(0);
            return big[..n]
                .split(|&b| b == 0)
                .filter(|a| is_private_xattr(a))
                .map(<[u8]>::to_vec)
                .collect();
        }
        Err(_) => 0,
    };
    names[..n]
        .split(|&b| b == 0)
        .filter(|a| is_private_xattr(a))
        .map(<[u8]>::to_vec)
        .collect()
}

/// Is this empty file of a lower layer a whiteout of the kernel's xattr
/// form (6.7+)? It counts only in a directory marked for them
/// (`overlay.opaque=x`, or the older `overlay.whiteouts`).
pub fn is_xattr_whiteout(path: &CStr, st: &Stat, dir_marked: impl FnOnce() -> bool) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
        && st.st_size == 0
        && xattr_has(path, "whiteout", b"")
        && dir_marked()
}

/// Does the directory at `path` hold xattr whiteouts?
pub fn marks_xattr_whiteouts(path: &CStr) -> bool {
    let names = overlay_names(path);
    if names.iter().any(|n| n.ends_with(b".overlay.whiteouts")) {
        return true;
    }
    names.iter().any(|n| n.ends_with(b".overlay.opaque")) && xattr_has(path, "opaque", b"x")
}

/// Is the object at the real `path`, whose `lstat` is `st`, a whiteout (a
/// character device 0/0, or the seed's symlink)? See also `is_xattr_whiteout`.
pub fn is_whiteout(path: &CStr, st: &Stat) -> bool {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::CharacterDevice => st.st_rdev == 0,
        FileType::Symlink => {
            st.st_size as usize == SEED_WHITEOUT_TARGET.len()
                && rustix::fs::readlinkat(CWD, path, Vec::new())
                    .is_ok_and(|t| t.as_bytes() == SEED_WHITEOUT_TARGET)
                && xattr_is_y(path, "whiteout")
        }
        _ => false,
    }
}

/// Is the directory at the real `path` opaque (`overlay.opaque=y`; the
/// value `x` marks a directory holding xattr whiteouts, not an opaque one)?
pub fn is_opaque(path: &CStr) -> bool {
    // One listxattr tells whether there is anything to read at all.
    let names = overlay_names(path);
    names.iter().any(|n| n.ends_with(b".overlay.opaque")) && xattr_is_y(path, "opaque")
}

/// Creates a whiteout at the real `path` (in the upper or work tree).
pub fn make_whiteout(ovl: &Overlay, path: &CStr) -> Result<(), Errno> {
    match ovl.whiteout {
        WhiteoutFormat::CharDev => {
            rustix::fs::mknodat(CWD, path, FileType::CharacterDevice, Mode::empty(), 0)
        }
        WhiteoutFormat::SeedSymlink => {
            rustix::fs::symlinkat(SEED_WHITEOUT_TARGET, CWD, path)?;
            let attr = format!("{}whiteout", ovl.xattr_ns.prefix());
            rustix::fs::lsetxattr(path, attr.as_str(), b"y", rustix::fs::XattrFlags::empty())
        }
    }
}

/// Marks the directory at the real `path` opaque.
pub fn make_opaque(ns: XattrNs, path: &CStr) -> Result<(), Errno> {
    let attr = format!("{}opaque", ns.prefix());
    rustix::fs::lsetxattr(path, attr.as_str(), b"y", rustix::fs::XattrFlags::empty())
}
