//! The kernel checks a write against the overlay's object, which has the
//! lower object's owner and mode, before it copies anything up. A process
//! that is not root makes copies of its own (it cannot give them the lower
//! owner), so the real call on the copy would no longer refuse: the check
//! is made here first, on the lower object's `stat`.

use rustix::fs::Stat;
use rustix::io::Errno;

const MAY_WRITE: u32 = 2;

/// May this process write to the object `st` describes (`EACCES` if not)?
/// Root may; others by the owner, group or other bits that apply to them.
/// (Access control lists are not read.)
pub fn may_write(st: &Stat) -> Result<(), Errno> {
    let euid = rustix::process::geteuid().as_raw();
    if euid == 0 {
        return Ok(());
    }
    let bits = if st.st_uid == euid {
        st.st_mode >> 6
    } else if in_group(st.st_gid) {
        st.st_mode >> 3
    } else {
        st.st_mode
    };
    if bits & MAY_WRITE != 0 {
        Ok(())
    } else {
        Err(Errno::ACCESS)
    }
}

/// Is `gid` this process's effective group or one of its supplementary ones?
fn in_group(gid: u32) -> bool {
    if rustix::process::getegid().as_raw() == gid {
        return true;
    }
    // SAFETY: a count query writes nothing.
    let count = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    if count <= 0 {
        return false;
    }
    let mut groups = vec![0 as libc::gid_t; count as usize];
    // SAFETY: the buffer holds `count` entries, as the call is told.
    let n = unsafe { libc::getgroups(count, groups.as_mut_ptr()) };
    n > 0 && groups[..n as usize].contains(&gid)
}
