//! Extended attributes through the view: the top object's are shown, the
//! overlay's own (`trusted.overlay.*`, `user.overlay.*`) never are, and
//! cannot be set or removed (`EPERM`, as the kernel).

use crate::whiteout::is_private_xattr;

/// Removes the overlay's own names from a `listxattr` buffer (NUL-separated
/// names) in place; returns the new length.
pub fn filter_list(buf: &mut [u8], len: usize) -> usize {
    let mut out = 0;
    let mut start = 0;
    while start < len {
        let end = buf[start..len]
            .iter()
            .position(|&b| b == 0)
            .map_or(len, |i| start + i);
        let keep = !is_private_xattr(&buf[start..end]);
        let n = (end + 1).min(len) - start;
        if keep {
            buf.copy_within(start..start + n, out);
            out += n;
        }
        start = end + 1;
    }
    out
}

/// The length `listxattr` would report once the overlay's names are removed,
/// or `None` when the caller's buffer size query needs the real list.
pub fn is_hidden(name: &[u8]) -> bool {
    is_private_xattr(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_names_are_removed_from_lists() {
        let mut b = b"user.a\0trusted.overlay.opaque\0user.b\0".to_vec();
        let n = b.len();
        let m = filter_list(&mut b, n);
        assert_eq!(&b[..m], b"user.a\0user.b\0");
    }
}
