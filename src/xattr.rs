//! Extended attributes through the view: the top object's are shown, the
//! overlay's own never are. A name in the overlay's namespace given through
//! the view is escaped on the real object (`trusted.overlay.x` is stored as
//! `trusted.overlay.overlay.x`), as the kernel's overlayfs does since Linux
//! 6.7, so an overlay's records can be made inside a view without becoming
//! this overlay's; the other namespace's overlay names, which ovl also reads
//! as records, cannot be set or removed (`EPERM`).

use crate::config::XattrNs;
use crate::whiteout::is_private_xattr;
use rustix::io::Errno;
use std::borrow::Cow;

/// What an escaped name adds after the namespace's prefix.
const ESCAPE: &[u8] = b"overlay.";

/// What the kernel checks of an xattr change before it looks the path up:
/// the flags (`EINVAL`), the name (empty or 256 bytes and more: `ERANGE`),
/// the value's size (`E2BIG` past 64 KiB). `flags` and `size` are `None`
/// for a removal. Nothing is copied up for a call that fails so.
pub fn check_change(name: &[u8], size: Option<usize>, flags: Option<i32>) -> Result<(), Errno> {
    if flags.is_some_and(|f| f & !(libc::XATTR_CREATE | libc::XATTR_REPLACE) != 0) {
        return Err(Errno::INVAL);
    }
    if name.is_empty() || name.len() >= 256 {
        return Err(Errno::RANGE);
    }
    if size.is_some_and(|s| s > 65536) {
        return Err(Errno::TOOBIG);
    }
    Ok(())
}

/// Is a change of the xattr `name` refused on an object of type `ty` before
/// anything is copied up? `user.` names belong to regular files and
/// directories only (`EPERM` elsewhere), as the kernel checks them on the
/// overlay's object.
pub fn change_refused(name: &[u8], ty: rustix::fs::FileType) -> Option<Errno> {
    use rustix::fs::FileType;
    let own_kind = matches!(ty, FileType::RegularFile | FileType::Directory);
    (name.starts_with(b"user.") && !own_kind).then_some(Errno::PERM)
}

/// The real object's name for the view's xattr `name`: escaped in the
/// overlay's namespace `ns`, as given outside both; `EPERM` for the other
/// namespace's overlay names.
pub fn real_name(ns: XattrNs, name: &[u8]) -> Result<Cow<'_, [u8]>, Errno> {
    let prefix = ns.prefix().as_bytes();
    match name.strip_prefix(prefix) {
        Some(rest) => Ok(Cow::Owned([prefix, ESCAPE, rest].concat())),
        None if is_private_xattr(name) => Err(Errno::PERM),
        None => Ok(Cow::Borrowed(name)),
    }
}

/// Does the view show the real object's xattr `real` (not one of the
/// overlay's records; an escaped name shows unescaped)? A copy-up copies
/// exactly these.
pub fn shown(ns: XattrNs, real: &[u8]) -> bool {
    match real.strip_prefix(ns.prefix().as_bytes()) {
        Some(rest) => rest.starts_with(ESCAPE),
        None => !is_private_xattr(real),
    }
}

/// Rewrites a `listxattr` buffer (NUL-separated names) of a real object as
/// the view shows it, in place: the overlay's records removed, escaped
/// names unescaped. Returns the new length.
pub fn filter_list(ns: XattrNs, buf: &mut [u8], len: usize) -> usize {
    let prefix_len = ns.prefix().len();
    let mut out = 0;
    let mut start = 0;
    while start < len {
        let end = buf[start..len]
            .iter()
            .position(|&b| b == 0)
            .map_or(len, |i| start + i);
        if shown(ns, &buf[start..end]) {
            let escaped = buf[start..end].starts_with(ns.prefix().as_bytes());
            // An escaped name loses the escape: its prefix, then the rest.
            let (from, n) = if escaped {
                buf.copy_within(start..start + prefix_len, out);
                out += prefix_len;
                let from = start + prefix_len + ESCAPE.len();
                (from, (end + 1).min(len) - from)
            } else {
                (start, (end + 1).min(len) - start)
            };
            buf.copy_within(from..from + n, out);
            out += n;
        }
        start = end + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_in_the_overlays_namespace_only() {
        let t = XattrNs::Trusted;
        assert_eq!(&*real_name(t, b"user.a").unwrap(), b"user.a");
        assert_eq!(
            &*real_name(t, b"trusted.overlay.opaque").unwrap(),
            b"trusted.overlay.overlay.opaque"
        );
        assert_eq!(real_name(t, b"user.overlay.opaque"), Err(Errno::PERM));
        let u = XattrNs::User;
        assert_eq!(
            &*real_name(u, b"user.overlay.x").unwrap(),
            b"user.overlay.overlay.x"
        );
        assert_eq!(real_name(u, b"trusted.overlay.x"), Err(Errno::PERM));
    }

    #[test]
    fn lists_hide_records_and_unescape_names() {
        let mut b = b"user.a\0trusted.overlay.opaque\0trusted.overlay.overlay.mine\0user.overlay.q\0user.b\0".to_vec();
        let n = b.len();
        let m = filter_list(XattrNs::Trusted, &mut b, n);
        assert_eq!(&b[..m], b"user.a\0trusted.overlay.mine\0user.b\0");
    }
}
