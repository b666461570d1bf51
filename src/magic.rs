//! The process's own magic links as the kernel's overlay shows them:
//! `readlink` of `/proc/self/exe`, `/proc/self/cwd`, `/proc/self/fd/N` (also
//! by `/proc/thread-self/`, `/proc/<own pid>/` and `/dev/fd/N`) gives the
//! view's path where the real target lies in a layer: the program was
//! loaded from a layer, the real current directory is a copy of one of the
//! view's (see `cwd`), a descriptor is open on a layer's object. A
//! program that finds its files beside its own executable, or prints where
//! it runs, then names the view, as under the kernel.

use crate::overlay::Overlay;

/// Could the path `p` name a magic link of this process? A prefix test, for
/// a hook's quick path.
#[inline]
pub fn may_be_own_link(p: &[u8]) -> bool {
    p.starts_with(b"/proc/") || p.starts_with(b"/dev/fd/")
}

/// Is `p` a link of this process's that leads to a file or directory (its
/// program, current or root directory, a descriptor)?
pub fn is_own_link(p: &[u8]) -> bool {
    if let Some(n) = p.strip_prefix(b"/dev/fd/") {
        return is_number(n);
    }
    let Some(rest) = p.strip_prefix(b"/proc/") else {
        return false;
    };
    let Some(slash) = rest.iter().position(|&b| b == b'/') else {
        return false;
    };
    let (who, what) = (&rest[..slash], &rest[slash + 1..]);
    let own = who == b"self"
        || who == b"thread-self"
        || who
            == rustix::process::getpid()
                .as_raw_nonzero()
                .to_string()
                .as_bytes();
    own && match what.strip_prefix(b"fd/") {
        Some(n) => is_number(n),
        None => matches!(what, b"exe" | b"cwd" | b"root"),
    }
}

/// The descriptor number and the rest of a path through one of this
/// process's descriptor links (`/proc/self/fd/N/rest`, `/dev/fd/N`...).
fn own_fd_link(p: &[u8]) -> Option<(i32, &[u8])> {
    let after = match p.strip_prefix(b"/dev/fd/") {
        Some(after) => after,
        None => {
            let rest = p.strip_prefix(b"/proc/")?;
            let slash = rest.iter().position(|&b| b == b'/')?;
            let pid = rustix::process::getpid().as_raw_nonzero().to_string();
            let who = &rest[..slash];
            if !(who == b"self" || who == b"thread-self" || who == pid.as_bytes()) {
                return None;
            }
            rest[slash + 1..].strip_prefix(b"fd/")?
        }
    };
    let end = after.iter().position(|&b| b == b'/').unwrap_or(after.len());
    let fd = std::str::from_utf8(&after[..end]).ok()?.parse().ok()?;
    is_number(&after[..end]).then_some((fd, &after[end..]))
}

fn is_number(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

impl Overlay {
    /// The view's path behind `p` when it goes through this process's link
    /// to a descriptor of the view (`/proc/self/fd/N`, `/dev/fd/N`, and what
    /// follows it): a change made through it is made in the view, as the
    /// kernel's link leads to the overlay's object. The descriptor's name
    /// when it was opened (not its object's, if it was renamed since).
    pub fn view_path_of_fd_link(&self, p: &[u8]) -> Option<Vec<u8>> {
        let (fd, rest) = own_fd_link(p)?;
        let info = crate::fd_table::fd_info(fd)?;
        let mut view = self.virtual_path(&info.rel);
        view.extend_from_slice(rest);
        Some(view)
    }

    /// What `readlink` of one of this process's magic links, `link`, shows,
    /// whose real target is `real`: the view's path when `real` lies in a
    /// layer; for an object the view no longer shows (the current
    /// directory, a descriptor's object), its path in the view marked
    /// removed, as the kernel marks it (the real one may still be there, a
    /// lower object, or be no name of the view, an upper one that hid a
    /// lower one, removed by the work directory).
    pub fn shown_link_target(&self, link: &[u8], real: &[u8]) -> Option<Vec<u8>> {
        let removed = match own_fd_link(link) {
            Some((fd, b"")) => crate::fd_table::fd_info(fd)
                .filter(|i| self.in_work_dir(real) || self.fd_object_is_gone(fd, i))
                .map(|i| i.rel.clone()),
            None if link.ends_with(b"/cwd") && crate::cwd::cwd_is_gone() => self.cwd_rel(),
            _ => None,
        };
        if let Some(rel) = removed {
            return Some([&self.virtual_path(&rel)[..], b" (deleted)"].concat());
        }
        // (A removed upper object's real path ends so already.)
        let rel = self.real_to_rel(real)?;
        Some(self.virtual_path(rel))
    }

    /// Does the real path `real` lie in the work directory (where an upper
    /// object that hid a lower one goes to be removed, as on the kernel)?
    fn in_work_dir(&self, real: &[u8]) -> bool {
        self.work
            .as_ref()
            .is_some_and(|w| crate::overlay::strip_dir(real, &w.root).is_some())
    }

    /// Has the object the view's descriptor `fd` (described by `info`) is
    /// open on gone from the view: a directory removed, a lower file whose
    /// name shows nothing or another object now?
    fn fd_object_is_gone(&self, fd: i32, info: &crate::fd_table::FdInfo) -> bool {
        // SAFETY: `fd` is open: the table follows closes.
        let is_dir = rustix::fs::fstat(unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) })
            .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir());
        if is_dir {
            self.fd_dir_is_gone(fd)
        } else {
            info.lower && matches!(self.shown_lower_object_of_fd(fd, &info.rel), Ok(Err(_)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_links_are_told_apart() {
        let pid = rustix::process::getpid().as_raw_nonzero().to_string();
        for own in [
            "/proc/self/exe".to_string(),
            "/proc/thread-self/cwd".to_string(),
            format!("/proc/{pid}/fd/3"),
            "/dev/fd/12".to_string(),
        ] {
            assert!(is_own_link(own.as_bytes()), "{own}");
        }
        assert_eq!(own_fd_link(b"/dev/fd/3"), Some((3, &b""[..])));
        assert_eq!(
            own_fd_link(b"/proc/self/fd/12/x/y"),
            Some((12, &b"/x/y"[..]))
        );
        assert_eq!(own_fd_link(b"/proc/self/cwd/x"), None);
        assert_eq!(own_fd_link(b"/proc/1/fd/3"), None);
        for other in [
            "/proc/1/cwd",
            "/proc/self/fd/",
            "/proc/self/fd/3/x",
            "/proc/self/maps",
            "/proc/self",
            "/dev/fd/x",
            "/tmp/proc/self/exe",
        ] {
            assert!(!is_own_link(other.as_bytes()), "{other}");
        }
    }
}
