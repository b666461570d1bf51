//! `ioctl` on a descriptor of the view, answered as the kernel's overlayfs
//! answers it. Overlayfs passes on no file-system specific request: the
//! VFS serves its own generic ones (descriptor flags, `FIEMAP`, clones,
//! reading the file's attribute flags), and a regular file or directory
//! of the view answers any other with `ENOTTY`. A change of attribute
//! flags (`chattr`) copies a lower object up first and is made on the copy:
//! passed on as it came, it would change the lower layer (a descriptor
//! opened read-only is enough for it). A deduplication involving a lower
//! file is refused with `EPERM`, as the kernel refuses it.

/// A Linux `_IOC` request number (the layout of x86-64 and aarch64).
const fn ioc(dir: u32, kind: u8, nr: u8, size: usize) -> u32 {
    dir << 30 | (size as u32) << 16 | (kind as u32) << 8 | nr as u32
}
const NONE: u32 = 0;
const WRITE: u32 = 1;
const READ: u32 = 2;

pub const FS_IOC_GETFLAGS: u32 = ioc(READ, b'f', 1, 8);
pub const FS_IOC_SETFLAGS: u32 = ioc(WRITE, b'f', 2, 8);
pub const FS_IOC32_GETFLAGS: u32 = ioc(READ, b'f', 1, 4);
pub const FS_IOC32_SETFLAGS: u32 = ioc(WRITE, b'f', 2, 4);
/// `struct fsxattr` is 28 bytes.
pub const FS_IOC_FSGETXATTR: u32 = ioc(READ, b'X', 31, 28);
pub const FS_IOC_FSSETXATTR: u32 = ioc(WRITE, b'X', 32, 28);
const FS_IOC_FIEMAP: u32 = ioc(READ | WRITE, b'f', 11, 32);
const FIGETBSZ: u32 = ioc(NONE, 0, 2, 0);
const FIBMAP: u32 = ioc(NONE, 0, 1, 0);
const FICLONE: u32 = ioc(WRITE, 0x94, 9, 4);
const FICLONERANGE: u32 = ioc(WRITE, 0x94, 13, 32);
pub const FIDEDUPERANGE: u32 = ioc(READ | WRITE, 0x94, 54, 24);
pub(crate) const FS_IOC_GETFSUUID: u32 = ioc(READ, 0x15, 0, 17);
const FS_IOC_GETFSSYSFSPATH: u32 = ioc(READ, 0x15, 1, 129);
/// Space reservations (`struct space_resv`, 48 bytes), served by the VFS
/// for regular files; they need a descriptor open for writing.
const FS_IOC_RESVSP: u32 = ioc(WRITE, b'X', 40, 48);
const FS_IOC_RESVSP64: u32 = ioc(WRITE, b'X', 42, 48);
const FS_IOC_UNRESVSP: u32 = ioc(WRITE, b'X', 41, 48);
const FS_IOC_UNRESVSP64: u32 = ioc(WRITE, b'X', 43, 48);
const FS_IOC_ZERO_RANGE: u32 = ioc(WRITE, b'X', 57, 48);
/// The terminal-style requests the VFS serves for every file.
const FIONCLEX: u32 = 0x5450;
const FIOCLEX: u32 = 0x5451;
const FIOASYNC: u32 = 0x5452;
const FIONBIO: u32 = 0x5421;
const FIONREAD: u32 = 0x541B;
const FIOQSIZE: u32 = 0x5460;

/// What to do with a request on a descriptor of the view.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Pass it on to the descriptor as it is.
    AsGiven,
    /// Copy the object up if it is a lower one, then make the request on
    /// the copy (a change of attribute flags).
    OnUpperCopy,
    /// A deduplication: refused when a file of it is a lower one.
    Dedupe,
    /// Answer `ENOTTY`: overlayfs serves no other request.
    NotTty,
}

/// The plan for `request` on a regular file or directory of the view.
/// (Devices, fifos and sockets of the view take every request as given:
/// the kernel hands them to their driver.)
pub fn plan(request: libc::c_ulong) -> Plan {
    // glibc takes the request as `unsigned long`; the kernel reads 32 bits.
    match (request & 0xffff_ffff) as u32 {
        FS_IOC_SETFLAGS | FS_IOC32_SETFLAGS | FS_IOC_FSSETXATTR => Plan::OnUpperCopy,
        FIDEDUPERANGE => Plan::Dedupe,
        FIONCLEX
        | FIOCLEX
        | FIOASYNC
        | FIONBIO
        | FIONREAD
        | FIOQSIZE
        | FS_IOC_FIEMAP
        | FIGETBSZ
        | FIBMAP
        | FICLONE
        | FICLONERANGE
        | FS_IOC_GETFLAGS
        | FS_IOC32_GETFLAGS
        | FS_IOC_FSGETXATTR
        | FS_IOC_GETFSUUID
        | FS_IOC_GETFSSYSFSPATH
        | FS_IOC_RESVSP
        | FS_IOC_RESVSP64
        | FS_IOC_UNRESVSP
        | FS_IOC_UNRESVSP64
        | FS_IOC_ZERO_RANGE => Plan::AsGiven,
        _ => Plan::NotTty,
    }
}

/// Can `request` change nothing of a file or directory, whatever the
/// descriptor it is made through? The VFS's generic requests (those that
/// write need a descriptor open for writing), pure getters (the request
/// only copies data out) and terminal requests. Anything else may change
/// the object through a read-only descriptor (attribute flags, ext4's
/// `FS_IOC_SETVERSION`, fs-verity, encryption policies, btrfs snapshots):
/// on a lower layer's file opened by its real name it is refused.
pub fn harmless_anywhere(request: libc::c_ulong) -> bool {
    let r = (request & 0xffff_ffff) as u32;
    let terminal = r >> 16 == 0 && (r >> 8) & 0xff == u32::from(b'T');
    plan(request) == Plan::AsGiven || r >> 30 == READ || terminal
}

/// The destination descriptors of a `FIDEDUPERANGE` request's argument
/// (`struct file_dedupe_range`: a 24-byte header whose `dest_count` is at
/// offset 16, then 32-byte records starting with the descriptor).
///
/// # Safety
/// `arg` is NULL or points to such a structure, as the kernel requires.
pub unsafe fn dedupe_destinations(arg: *const u8) -> Vec<i32> {
    if arg.is_null() {
        return Vec::new();
    }
    // SAFETY: per the contract: the header, then `count` records.
    unsafe {
        let count = arg.add(16).cast::<u16>().read_unaligned() as usize;
        (0..count)
            .map(|i| arg.add(24 + 32 * i).cast::<i64>().read_unaligned() as i32)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_are_the_kernels() {
        // As <linux/fs.h> and <linux/fiemap.h> give them to a C program here
        // (`FS_IOC_ZERO_RANGE`: the kernel's include/linux/falloc.h).
        assert_eq!(FS_IOC_GETFLAGS, 0x8008_6601);
        assert_eq!(FS_IOC_SETFLAGS, 0x4008_6602);
        assert_eq!(FS_IOC32_SETFLAGS, 0x4004_6602);
        assert_eq!(FS_IOC_FSGETXATTR, 0x801c_581f);
        assert_eq!(FS_IOC_FSSETXATTR, 0x401c_5820);
        assert_eq!(FS_IOC_FIEMAP, 0xc020_660b);
        assert_eq!(FICLONE, 0x4004_9409);
        assert_eq!(FICLONERANGE, 0x4020_940d);
        assert_eq!(FIDEDUPERANGE, 0xc018_9436);
        assert_eq!(FIGETBSZ, 2);
        assert_eq!(FS_IOC_ZERO_RANGE, 0x4030_5839);
    }

    #[test]
    fn attribute_changes_go_to_the_copy_and_unknown_requests_are_refused() {
        let plan_of = |r: u32| plan(libc::c_ulong::from(r));
        assert_eq!(plan_of(FS_IOC_SETFLAGS), Plan::OnUpperCopy);
        assert_eq!(plan_of(FS_IOC_FSSETXATTR), Plan::OnUpperCopy);
        assert_eq!(plan_of(FS_IOC_GETFLAGS), Plan::AsGiven);
        assert_eq!(plan_of(FIDEDUPERANGE), Plan::Dedupe);
        // FS_IOC_GETVERSION (`lsattr -v`): ext4's own, not the VFS's.
        assert_eq!(plan_of(ioc(READ, b'v', 1, 8)), Plan::NotTty);
        // Through a lower file's own descriptor: getters and terminal
        // requests only (TCGETS, FS_IOC_GETVERSION; not FS_IOC_SETVERSION,
        // FS_IOC_ENABLE_VERITY, ext4's migration).
        assert!(harmless_anywhere(0x5401) && harmless_anywhere(0x8008_7601));
        assert!(harmless_anywhere(libc::c_ulong::from(FS_IOC_FIEMAP)));
        for r in [
            FS_IOC_SETFLAGS,
            FS_IOC_FSSETXATTR,
            0x4008_7602,
            0x4080_6685,
            0x6609,
        ] {
            assert!(!harmless_anywhere(libc::c_ulong::from(r)), "{r:#x}");
        }
        // A request passed sign-extended through a 32-bit int.
        #[cfg(target_pointer_width = "64")]
        assert_eq!(
            plan(0xffff_ffff_0000_0000 | libc::c_ulong::from(FS_IOC_SETFLAGS)),
            Plan::OnUpperCopy
        );
    }
}
