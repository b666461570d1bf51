//! `tree_dump`: a canonical, sorted, recursive listing of a real directory
//! (not through any overlay), for comparing upper layers and snapshotting
//! lower layers.

use super::sha256;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// What `tree_dump` prints besides path, type, mode, owner, size, link
/// count, content, symlink target, device number and xattrs (always shown).
#[derive(Clone, Debug, Default)]
pub struct DumpOpts {
    /// Print `mtime=<sec>.<nsec>`.
    pub mtime: bool,
    /// Print `ctime=<sec>.<nsec>` (only meaningful for the same tree
    /// before/after: a copy has new ctimes).
    pub ctime: bool,
    /// Print `ino=<n>` (same tree before/after only).
    pub ino: bool,
    /// Print the attribute flags (`chattr`'s) of regular files and
    /// directories, `flags=<hex>`.
    pub flags: bool,
    /// Print the link count of directories too (non-directories always show it).
    pub dir_nlink: bool,
    /// Xattr names starting with one of these are left out (for example
    /// `trusted.overlay.origin`, which holds a file handle that differs between
    /// runs).
    pub skip_xattrs: Vec<String>,
    /// Leave out the link count of whiteouts (char devices 0/0): the kernel
    /// hard-links its whiteouts to a shared one in the work directory.
    pub skip_whiteout_nlink: bool,
    /// Leave out the owner of whiteouts: a kernel mounted by root makes
    /// them root's, where a user's own mount (and ovl) makes them theirs.
    pub skip_whiteout_owner: bool,
    /// Regular files up to this many bytes are shown in full (escaped);
    /// larger ones by SHA-256. 0 means the default of 64.
    pub inline_limit: usize,
}

impl DumpOpts {
    /// Everything that must not change in a lower layer: times, inode
    /// numbers, directory link counts.
    pub fn exact() -> DumpOpts {
        DumpOpts {
            mtime: true,
            ctime: true,
            ino: true,
            dir_nlink: true,
            flags: true,
            ..DumpOpts::default()
        }
    }

    /// For comparing the kernel's upper layer with ovl's: leaves out the
    /// bookkeeping xattrs whose values differ (`overlay.origin`: a file
    /// handle of each clone's own lower object, compared by
    /// `tests/inode_numbers.rs` without the handle; `overlay.uuid`: random
    /// per upper), in both namespaces, and the
    /// link count of whiteouts (the kernel shares one whiteout inode).
    /// Whiteouts, opaque and impure marks stay.
    pub fn uppers() -> DumpOpts {
        let mut opts = DumpOpts {
            skip_whiteout_nlink: true,
            ..DumpOpts::default()
        };
        for ns in ["trusted", "user"] {
            for name in ["origin", "uuid"] {
                opts = opts.skip_xattr(&format!("{ns}.overlay.{name}"));
            }
        }
        opts
    }

    /// Leaves out xattrs whose names start with `prefix`.
    pub fn skip_xattr(mut self, prefix: &str) -> DumpOpts {
        self.skip_xattrs.push(prefix.to_string());
        self
    }

    /// Adds `mtime=` to every line.
    pub fn with_mtime(mut self) -> DumpOpts {
        self.mtime = true;
        self
    }
}

/// A sorted listing of everything under `dir`, one line per object,
/// `.` first:
///
/// ```text
/// ./a/file f mode=0644 uid=0 gid=0 size=6 nlink=1 data="hello\n" xattrs={user.k="v"}
/// ./a/link l mode=0777 uid=0 gid=0 size=4 nlink=1 target="file"
/// ./wh c mode=0000 uid=0 gid=0 size=0 nlink=1 rdev=0:0
/// ```
///
/// Types: `f` regular, `d` directory, `l` symlink, `c`/`b` devices, `p` fifo,
/// `s` socket. Panics with the path when anything cannot be read.
pub fn tree_dump(dir: &Path, opts: &DumpOpts) -> String {
    let mut lines = Vec::new();
    walk(dir, Path::new("."), opts, &mut lines);
    lines.sort();
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn walk(base: &Path, rel: &Path, opts: &DumpOpts, lines: &mut Vec<String>) {
    let path = base.join(rel);
    let md = fs::symlink_metadata(&path)
        .unwrap_or_else(|e| panic!("tree_dump: cannot stat {}: {e}", path.display()));
    lines.push(describe(&path, rel, &md, opts));
    if !md.is_dir() {
        return;
    }
    let entries = fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("tree_dump: cannot list {}: {e}", path.display()));
    for entry in entries {
        let entry =
            entry.unwrap_or_else(|e| panic!("tree_dump: cannot list {}: {e}", path.display()));
        walk(base, &rel.join(entry.file_name()), opts, lines);
    }
}

/// One line of the dump for the object at `path`.
fn describe(path: &Path, rel: &Path, md: &fs::Metadata, opts: &DumpOpts) -> String {
    let ft = md.file_type();
    let whiteout = ft.is_char_device() && md.rdev() == 0;
    let mut line = format!(
        "{} {} mode={:04o}",
        escape(rel.as_os_str().as_bytes()),
        type_letter(&ft),
        md.mode() & 0o7777,
    );
    if !(whiteout && opts.skip_whiteout_owner) {
        line += &format!(" uid={} gid={}", md.uid(), md.gid());
    }
    if whiteout && opts.skip_whiteout_nlink {
        line += &format!(" size={}", md.size());
    } else if !ft.is_dir() {
        line += &format!(" size={} nlink={}", md.size(), md.nlink());
    } else if opts.dir_nlink {
        line += &format!(" nlink={}", md.nlink());
    }
    if ft.is_file() {
        line += &format!(" {}", content(path, opts));
    }
    if ft.is_symlink() {
        let target = fs::read_link(path)
            .unwrap_or_else(|e| panic!("tree_dump: cannot read link {}: {e}", path.display()));
        line += &format!(" target={}", quote(target.as_os_str().as_bytes()));
    }
    if ft.is_char_device() || ft.is_block_device() {
        let rdev = md.rdev();
        line += &format!(
            " rdev={}:{}",
            rustix::fs::major(rdev),
            rustix::fs::minor(rdev)
        );
    }
    line += &xattr_field(path, opts);
    if opts.mtime {
        line += &format!(" mtime={}.{:09}", md.mtime(), md.mtime_nsec());
    }
    if opts.ctime {
        line += &format!(" ctime={}.{:09}", md.ctime(), md.ctime_nsec());
    }
    if opts.ino {
        line += &format!(" ino={}", md.ino());
    }
    if opts.flags && (ft.is_file() || ft.is_dir()) {
        line += &format!(" flags={}", attribute_flags(path));
    }
    line
}

/// The attribute flags of a regular file or directory (`FS_IOC_GETFLAGS`),
/// in hex, or the error that kept them.
fn attribute_flags(path: &Path) -> String {
    use rustix::fs::{Mode, OFlags};
    const FS_IOC_GETFLAGS: libc::c_ulong = 0x8008_6601;
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => return format!("({e})"),
    };
    let mut value: libc::c_long = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one long to the pointer it is given.
    let r = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            FS_IOC_GETFLAGS,
            &mut value,
        )
    };
    if r == 0 {
        format!("{value:#x}")
    } else {
        format!("({})", std::io::Error::last_os_error())
    }
}

fn type_letter(ft: &fs::FileType) -> char {
    if ft.is_dir() {
        'd'
    } else if ft.is_symlink() {
        'l'
    } else if ft.is_file() {
        'f'
    } else if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else if ft.is_fifo() {
        'p'
    } else {
        's'
    }
}

/// `data="..."` for small files, `sha256=...` for larger ones.
fn content(path: &Path, opts: &DumpOpts) -> String {
    let data =
        fs::read(path).unwrap_or_else(|e| panic!("tree_dump: cannot read {}: {e}", path.display()));
    let limit = if opts.inline_limit == 0 {
        64
    } else {
        opts.inline_limit
    };
    if data.len() <= limit {
        format!("data={}", quote(&data))
    } else {
        format!("sha256={}", sha256::hex_digest(&data))
    }
}

/// ` xattrs={name="value", ...}` sorted by name, or nothing when there are none.
fn xattr_field(path: &Path, opts: &DumpOpts) -> String {
    let mut pairs: Vec<String> = list_xattrs(path)
        .into_iter()
        .filter(|name| {
            !opts
                .skip_xattrs
                .iter()
                .any(|p| name.starts_with(p.as_str()))
        })
        .map(|name| {
            let value = get_xattr(path, &name).unwrap_or_else(|e| {
                panic!(
                    "tree_dump: cannot read xattr {name} of {}: {e}",
                    path.display()
                )
            });
            format!("{name}={}", quote(&value))
        })
        .collect();
    if pairs.is_empty() {
        return String::new();
    }
    pairs.sort();
    format!(" xattrs={{{}}}", pairs.join(", "))
}

/// The names of all xattrs of `path` (not following a final symlink).
pub fn list_xattrs(path: &Path) -> Vec<String> {
    let size = match rustix::fs::llistxattr_query(path) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Vec::new(),
        Err(e) => panic!("cannot list xattrs of {}: {e}", path.display()),
    };
    let mut buf = vec![0u8; size];
    let n = rustix::fs::llistxattr(path, &mut buf[..])
        .unwrap_or_else(|e| panic!("cannot list xattrs of {}: {e}", path.display()));
    buf[..n]
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect()
}

/// The value of xattr `name` of `path` (not following a final symlink).
pub fn get_xattr(path: &Path, name: &str) -> std::io::Result<Vec<u8>> {
    let size = rustix::fs::lgetxattr_query(path, name)?;
    let mut buf = vec![0u8; size];
    let n = rustix::fs::lgetxattr(path, name, &mut buf[..])?;
    buf.truncate(n);
    Ok(buf)
}

/// `bytes` in double quotes, with `"`, `\` and non-printable bytes escaped.
pub fn quote(bytes: &[u8]) -> String {
    format!("\"{}\"", escape(bytes))
}

/// `bytes` with `"` and `\` escaped, and everything outside printable
/// ASCII written as `\n`, `\t` or `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}
