//! Whether the overlay can be preloaded into a program. It cannot be into a
//! statically linked one (no loader reads `LD_PRELOAD`), nor into one the
//! loader runs in secure mode (set-user-id or set-group-id of someone else,
//! file capabilities), where `LD_PRELOAD` is ignored: either would run
//! outside the overlay, unseen. Set-id bits and capabilities count on ELF
//! files only: the kernel ignores them on `#!` scripts. The dynamic loader
//! run as a program (`ldd` does) has no `PT_INTERP` and looks static, but
//! reads `LD_PRELOAD`: it is let through. Nor can the overlay be preloaded
//! into a program whose loader is not the one it is built for (musl's
//! fails to start the program with it, a 32-bit program's ignores it and
//! runs the program unseen), nor work in a program the Go toolchain built,
//! dynamically linked (cgo) or not: its runtime makes its system calls
//! with the instruction itself, past every hook (it would read the real
//! directories, and change a lower layer where the view is over one).
//!
//! A dynamically linked program's own library search path (`DT_RUNPATH`,
//! or `DT_RPATH`) is read too, for `library_path`: the loader searches it
//! itself, unseen by the hooks.
//!
//! Works on the real file the view resolves to, with raw system calls only:
//! inside the shim, libc's file functions are our own hooks.

use crate::binfmt::{
    classify_with_phdrs, dynamic_range, holds_go_build_id, note_ranges, phdr_range,
    search_path_range, soname_range, Executable, HEAD_LEN,
};
use crate::sys::cpath;
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags, Stat, StatVfsMountFlags};
use rustix::io::Errno;
use std::borrow::Cow;
use std::sync::OnceLock;

/// What a regular file is to the overlay when it is executed.
#[derive(Debug, PartialEq, Eq)]
pub enum Program {
    /// The loader will preload the overlay into it, or `execve` refuses it
    /// (the kernel decides: it may not be an executable at all). `search`:
    /// a dynamically linked program's own library search path, its
    /// `DT_RUNPATH` (or `DT_RPATH` without one) as written, when it has one.
    Preloadable { search: Option<Vec<u8>> },
    /// The dynamic loader run as a program (`ld.so PROG`, as `ldd` runs
    /// it): it reads `LD_PRELOAD`, and opens the program it is given
    /// itself, where no hook sees it.
    Loader,
    /// A `#!` script: its interpreter runs, and decides.
    Script {
        interp: Vec<u8>,
        arg: Option<Vec<u8>>,
    },
    /// It would run without the overlay: why, as one phrase.
    Unseen(String),
}

/// Examines the regular file at the real path `real`, whose `stat` is `st`.
/// A file we cannot read is left to `execve` (execute-only programs exist).
pub fn examine(real: &[u8], st: &Stat) -> Program {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY;
    let preloadable = Program::Preloadable { search: None };
    let Ok(fd) = rustix::fs::open(cpath(real).as_c_str(), flags, Mode::empty()) else {
        return preloadable;
    };
    let Some((kind, head, phdrs)) = read_kind(&fd) else {
        return preloadable;
    };
    match kind {
        Executable::Script { interp, arg } => Program::Script { interp, arg },
        Executable::DynamicElf { interp } => match secure_mode(&fd, st) {
            Some(what) => Program::Unseen(ignores_preload(what)),
            None if foreign_loader(&interp) => Program::Unseen(format!(
                "its program interpreter {} is not the loader the overlay is built for ({}): the overlay cannot be preloaded into it (it would fail to start, or bypass the overlay)",
                String::from_utf8_lossy(&interp),
                String::from_utf8_lossy(GLIBC_LOADER.unwrap_or_default()),
            )),
            None if built_by_go(&fd, &head, &phdrs) => Program::Unseen(
                "built by the Go toolchain: its runtime makes its system calls itself, which no hook sees (it would bypass the overlay)"
                    .into(),
            ),
            None => Program::Preloadable {
                search: search_path(&fd, &head, &phdrs),
            },
        },
        Executable::StaticElf => match secure_mode(&fd, st) {
            Some(what) => Program::Unseen(ignores_preload(what)),
            None if is_own_loader(st) => Program::Loader,
            None => Program::Unseen(
                "statically linked: the overlay cannot be preloaded into it (it would bypass the overlay)"
                    .into(),
            ),
        },
        Executable::Unknown => preloadable,
    }
}

fn ignores_preload(what: &str) -> String {
    format!("{what}: the dynamic loader ignores LD_PRELOAD for it (it would bypass the overlay)")
}

/// The kind of executable open at `fd`, from its first bytes and, when they
/// lie further on, its program headers; with those bytes (the headers read
/// apart, or empty: in the first bytes). `None` when it cannot be read.
fn read_kind(fd: &OwnedFd) -> Option<(Executable, Vec<u8>, Vec<u8>)> {
    let head = read_at(fd, 0, HEAD_LEN).ok()?;
    let phdrs = match phdr_range(&head) {
        None => Vec::new(),
        Some((offset, len)) => read_at(fd, offset, len).ok()?,
    };
    Some((classify_with_phdrs(&head, &phdrs), head, phdrs))
}

/// Does the program open at `fd` carry the Go toolchain's build-id note
/// (`head` and `phdrs` as [`read_kind`] gives them)? Its notes lie in
/// `head` in every program the toolchain links; others are read.
fn built_by_go(fd: &OwnedFd, head: &[u8], phdrs: &[u8]) -> bool {
    note_ranges(head, phdrs)
        .into_iter()
        .any(|(offset, len, align)| {
            let held = usize::try_from(offset)
                .ok()
                .and_then(|start| head.get(start..start.checked_add(len)?));
            match held {
                Some(notes) => holds_go_build_id(head, notes, align),
                None => read_at(fd, offset, len)
                    .is_ok_and(|notes| holds_go_build_id(head, &notes, align)),
            }
        })
}

/// The library search path of the dynamically linked program open at `fd`
/// (`head` and `phdrs` as [`read_kind`] gives them): its dynamic section is
/// read (one `pread`, unless it is in `head`), then the string, which an
/// ordinary program holds in `head`. `None` when it has none.
fn search_path(fd: &OwnedFd, head: &[u8], phdrs: &[u8]) -> Option<Vec<u8>> {
    let (offset, len) = dynamic_range(head, phdrs)?;
    let dynamic = bytes_at(fd, head, offset, len)?;
    let (offset, len) = search_path_range(head, phdrs, &dynamic)?;
    let string = bytes_at(fd, head, offset, len)?;
    let value = string.split(|&b| b == 0).next()?;
    (!value.is_empty()).then(|| value.to_vec())
}

/// The `len` bytes at `offset` (fewer at the end of the file), taken from
/// `head` when it holds them, or holds a NUL among them (a string's end).
fn bytes_at<'a>(fd: &OwnedFd, head: &'a [u8], offset: u64, len: usize) -> Option<Cow<'a, [u8]>> {
    let start = usize::try_from(offset).ok()?;
    if let Some(held) = head.get(start..) {
        let held = &held[..held.len().min(len)];
        if held.len() == len || held.contains(&0) {
            return Some(Cow::Borrowed(held));
        }
    }
    read_at(fd, offset, len).ok().map(Cow::Owned)
}

/// Up to `len` bytes at `offset`; fewer only at the end of the file.
fn read_at(fd: &OwnedFd, offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; len];
    let mut n = 0;
    while n < len {
        match rustix::io::pread(fd, &mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(n);
    Ok(buf)
}

/// What makes the loader run the ELF file open at `fd` in secure mode for
/// us, if anything. The mount is asked last: it costs a call, and matters
/// only for the few files with a reason.
fn secure_mode(fd: &OwnedFd, st: &Stat) -> Option<&'static str> {
    let euid = rustix::process::geteuid();
    // Root already holds every capability: file capabilities change nothing.
    let why = set_id(st)
        .or_else(|| (!euid.is_root() && has_capabilities(fd)).then_some("file capabilities"))?;
    // On a nosuid mount the kernel ignores set-id bits and file capabilities alike.
    let nosuid =
        rustix::fs::fstatvfs(fd).is_ok_and(|s| s.f_flag.contains(StatVfsMountFlags::NOSUID));
    (!nosuid).then_some(why)
}

/// "setuid" or "setgid" when running the file would change our effective
/// user or group.
fn set_id(st: &Stat) -> Option<&'static str> {
    if st.st_mode & libc::S_ISUID != 0 && st.st_uid != rustix::process::geteuid().as_raw() {
        return Some("setuid");
    }
    // Without group execute permission the bit means mandatory locking.
    let group_exec = st.st_mode & libc::S_IXGRP != 0;
    let setgid = st.st_mode & libc::S_ISGID != 0 && group_exec;
    (setgid && st.st_gid != rustix::process::getegid().as_raw()).then_some("setgid")
}

/// True when the file open at `fd` carries file capabilities.
fn has_capabilities(fd: &OwnedFd) -> bool {
    rustix::fs::fgetxattr_query(fd, "security.capability").is_ok_and(|size| size > 0)
}

/// The dynamic loader the shim is built for, glibc's for this
/// architecture: its own name (`DT_SONAME`), which its file bears too in
/// every distribution.
#[cfg(target_arch = "x86_64")]
const GLIBC_LOADER: Option<&[u8]> = Some(b"ld-linux-x86-64.so.2");
#[cfg(target_arch = "aarch64")]
const GLIBC_LOADER: Option<&[u8]> = Some(b"ld-linux-aarch64.so.1");
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const GLIBC_LOADER: Option<&[u8]> = None;

/// Is `interp`, a dynamically linked program's interpreter, a loader that
/// cannot take the shim: another C library's (musl's, which fails to start
/// the program), or another class's (a 32-bit program's, whose loader
/// ignores a 64-bit library and runs the program unseen)? A file of
/// glibc's loader's name is taken for it (no call); another is read for
/// its own name (an older glibc's file is `ld-2.31.so`; musl's has none).
/// One that cannot be read, or is no ELF the kernel would load, is left to
/// `execve`.
fn foreign_loader(interp: &[u8]) -> bool {
    let Some(name) = GLIBC_LOADER else {
        return false;
    };
    if interp.is_empty() || interp.rsplit(|&b| b == b'/').next() == Some(name) {
        return false;
    }
    let flags = OFlags::RDONLY | OFlags::CLOEXEC;
    let Ok(fd) = rustix::fs::open(cpath(interp).as_c_str(), flags, Mode::empty()) else {
        return false;
    };
    match read_kind(&fd) {
        None | Some((Executable::Unknown, _, _)) => false,
        Some((_, head, phdrs)) => own_name(&fd, &head, &phdrs).as_deref() != Some(name),
    }
}

/// The own name (`DT_SONAME`) of the shared object open at `fd` (`head`
/// and `phdrs` as [`read_kind`] gives them), if it has one.
fn own_name(fd: &OwnedFd, head: &[u8], phdrs: &[u8]) -> Option<Vec<u8>> {
    let (offset, len) = dynamic_range(head, phdrs)?;
    let dynamic = bytes_at(fd, head, offset, len)?;
    let (offset, len) = soname_range(head, phdrs, &dynamic)?;
    let string = bytes_at(fd, head, offset, len)?;
    string.split(|&b| b == 0).next().map(<[u8]>::to_vec)
}

/// True when `st` is the dynamic loader of this process: it has no
/// `PT_INTERP` and so looks static, but it reads `LD_PRELOAD` when run as a
/// program (as `ldd` does).
fn is_own_loader(st: &Stat) -> bool {
    static LOADER: OnceLock<Option<Stat>> = OnceLock::new();
    LOADER
        .get_or_init(own_loader)
        .is_some_and(|l| l.st_dev == st.st_dev && l.st_ino == st.st_ino)
}

/// The file the kernel loaded as this process's program interpreter: the
/// `PT_INTERP` of our own executable. The shim and ovl-exec only run in
/// dynamically linked processes, so an executable of ours without one is
/// the loader itself, run directly.
fn own_loader() -> Option<Stat> {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC;
    let exe = rustix::fs::open("/proc/self/exe", flags, Mode::empty()).ok()?;
    match read_kind(&exe)?.0 {
        Executable::DynamicElf { interp } if !interp.is_empty() => {
            rustix::fs::stat(cpath(&interp).as_c_str()).ok()
        }
        Executable::StaticElf => rustix::fs::fstat(&exe).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binfmt::classify;

    fn examine_path(p: &str) -> Program {
        let st = rustix::fs::stat(p).unwrap();
        examine(p.as_bytes(), &st)
    }

    #[test]
    fn a_dynamic_program_is_preloadable() {
        assert_eq!(
            examine_path("/bin/sh"),
            Program::Preloadable { search: None }
        );
    }

    /// The dynamic loader of this test program (`None`: it is static).
    fn own_loader() -> Option<String> {
        let exe = std::fs::read("/proc/self/exe").unwrap();
        let Executable::DynamicElf { interp } = classify(&exe[..HEAD_LEN]) else {
            eprintln!("skipped: this test program is not dynamically linked");
            return None;
        };
        Some(String::from_utf8(interp).unwrap())
    }

    #[test]
    fn our_own_loader_is_the_loader() {
        let Some(loader) = own_loader() else { return };
        assert_eq!(examine_path(&loader), Program::Loader);
    }

    #[test]
    fn a_copy_of_the_loader_is_not_the_loader() {
        let Some(loader) = own_loader() else { return };
        let copy = std::env::temp_dir().join(format!("ovl-loader-copy-{}", std::process::id()));
        std::fs::copy(loader, &copy).unwrap();
        let kind = examine_path(copy.to_str().unwrap());
        let _ = std::fs::remove_file(&copy);
        assert!(
            matches!(&kind, Program::Unseen(why) if why.starts_with("statically linked")),
            "{kind:?}"
        );
    }

    /// A little-endian 64-bit ET_DYN ELF file whose one program header, of
    /// type `p_type`, lies at 8 KiB: past what a first read sees.
    fn elf_with_far_phdr(p_type: u32) -> Vec<u8> {
        const PHOFF: usize = 8192;
        let mut f = vec![0u8; PHOFF + 56];
        f[..6].copy_from_slice(b"\x7fELF\x02\x01");
        f[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN
        f[32..40].copy_from_slice(&(PHOFF as u64).to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&1u16.to_le_bytes());
        f[PHOFF..PHOFF + 4].copy_from_slice(&p_type.to_le_bytes());
        f
    }

    fn examine_bytes(tag: &str, bytes: &[u8]) -> Program {
        let p = std::env::temp_dir().join(format!("ovl-elf-{tag}-{}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        let kind = examine_path(p.to_str().unwrap());
        let _ = std::fs::remove_file(&p);
        kind
    }

    #[test]
    fn program_headers_beyond_the_first_read_are_read() {
        const PT_LOAD: u32 = 1;
        const PT_INTERP: u32 = 3;
        let kind = examine_bytes("static", &elf_with_far_phdr(PT_LOAD));
        assert!(
            matches!(&kind, Program::Unseen(why) if why.starts_with("statically linked")),
            "{kind:?}"
        );
        let kind = examine_bytes("dynamic", &elf_with_far_phdr(PT_INTERP));
        assert_eq!(kind, Program::Preloadable { search: None });
    }

    #[test]
    fn a_program_built_with_a_runpath_gives_it() {
        let dir = std::env::temp_dir().join(format!("ovl-runpath-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("m.c"), "int main(void) { return 0; }\n").unwrap();
        let built = std::process::Command::new("gcc")
            .current_dir(&dir)
            .args(["-o", "m", "m.c", "-Wl,-rpath,/a/b:$ORIGIN/lib"])
            .status()
            .is_ok_and(|s| s.success());
        let kind = built.then(|| examine_path(dir.join("m").to_str().unwrap()));
        let _ = std::fs::remove_dir_all(&dir);
        let Some(kind) = kind else {
            eprintln!("skipped: gcc cannot build here");
            return;
        };
        assert_eq!(
            kind,
            Program::Preloadable {
                search: Some(b"/a/b:$ORIGIN/lib".to_vec())
            }
        );
    }

    #[test]
    fn a_script_names_its_interpreter() {
        let p = std::env::temp_dir().join(format!("ovl-script-{}", std::process::id()));
        std::fs::write(&p, "#!/bin/sh -e\necho hi\n").unwrap();
        let kind = examine_path(p.to_str().unwrap());
        let _ = std::fs::remove_file(&p);
        assert_eq!(
            kind,
            Program::Script {
                interp: b"/bin/sh".to_vec(),
                arg: Some(b"-e".to_vec())
            }
        );
    }

    /// glibc's loader for this machine, by any path or file name, is the
    /// shim's; another (musl's, a 32-bit program's) is not; one that does
    /// not exist, or is no ELF, is left to `execve`.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn loaders_other_than_glibcs_for_this_machine_are_foreign() {
        assert!(!foreign_loader(b"/lib64/ld-linux-x86-64.so.2"));
        assert!(!foreign_loader(
            b"/nix/store/x-glibc/lib/ld-linux-x86-64.so.2"
        ));
        assert!(!foreign_loader(b"/nowhere/ld-musl-x86_64.so.1"));
        let dir = std::env::temp_dir().join(format!("ovl-loaders-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink("/lib64/ld-linux-x86-64.so.2", dir.join("ld-2.31.so")).unwrap();
        std::fs::write(dir.join("ld-linux.so.2"), "not an ELF").unwrap();
        let at = |name: &str| dir.join(name).to_str().unwrap().as_bytes().to_vec();
        let renamed = foreign_loader(&at("ld-2.31.so"));
        let unreadable = foreign_loader(&at("ld-linux.so.2"));
        let musl = std::path::Path::new("/lib/ld-musl-x86_64.so.1")
            .exists()
            .then(|| foreign_loader(b"/lib/ld-musl-x86_64.so.1"));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!renamed, "glibc's loader by another file name");
        assert!(!unreadable, "no ELF");
        if let Some(musl) = musl {
            assert!(musl, "musl's loader");
        }
    }
}
