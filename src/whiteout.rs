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

fn xattr_is_y(path: &CStr, attr: &str) -> bool {
    let mut buf = [0u8; 4];
    for ns in NAMESPACES {
        let full = format!("{ns}{attr}");
        if let Ok(n) = rustix::fs::lgetxattr(path, full.as_str(), &mut buf[..]) {
            if n >= 1 && (buf[0] == b'y' || buf[0] == b'x') {
                return true;
            }
        }
    }
    false
}

/// Is the object at the real `path`, whose `lstat` is `st`, a whiteout?
pub fn is_whiteout(path: &CStr, st: &Stat) -> bool {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::CharacterDevice => st.st_rdev == 0,
        FileType::Symlink => {
            st.st_size as usize == SEED_WHITEOUT_TARGET.len()
                && rustix::fs::readlinkat(CWD, path, Vec::new())
                    .is_ok_and(|t| t.as_bytes() == SEED_WHITEOUT_TARGET)
                && xattr_is_y(path, "whiteout")
        }
        // The kernel's xattr whiteout (6.7+): an empty file marked by xattr.
        FileType::RegularFile => st.st_size == 0 && xattr_is_y(path, "whiteout"),
        _ => false,
    }
}

/// Is the directory at the real `path` opaque?
pub fn is_opaque(path: &CStr) -> bool {
    // One listxattr tells whether there is anything to read at all.
    let mut names = [0u8; 1024];
    let n = match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(0) => return false,
        Ok(n) => n,
        Err(Errno::RANGE) => usize::MAX,
        Err(_) => return false,
    };
    if n != usize::MAX
        && !names[..n]
            .split(|&b| b == 0)
            .any(|a| a.ends_with(b".overlay.opaque"))
    {
        return false;
    }
    xattr_is_y(path, "opaque")
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
