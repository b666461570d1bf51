//! Programs the shim cannot be preloaded into: statically linked ones, and
//! ones the loader runs in secure mode (set-id, file capabilities), where it
//! ignores `LD_PRELOAD`. Either would run outside the overlay.
//!
//! Before the shim is loaded, only what lies outside the view can be
//! checked (`view` is the target); once it is loaded, our own file calls see
//! the view (`view` is `None`) and everything is checked, so a refusal is
//! one line from ovl-exec rather than an errno after the shim's message.

use nix::sys::statvfs::{statvfs, FsFlags};
use nix::unistd::{access, getegid, geteuid, AccessFlags};
use ovl::binfmt::{classify, classify_with_phdrs, phdr_range, Executable, HEAD_LEN};
use std::ffi::{CString, OsStr, OsString};
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// `#!` interpreters followed before giving up, as the kernel.
const MAX_INTERPRETERS: usize = 4;

/// Why `command` (a path, or a name found along `PATH`) cannot be run in
/// the overlay; `None` when it can, when `execve` will say why not, or when
/// it lies in `view` (the merged view's target) and only the shim can tell.
pub fn refusal(command: &OsStr, view: Option<&Path>) -> Option<String> {
    let path = find(command, view)?;
    let mut file = path.clone();
    for _ in 0..=MAX_INTERPRETERS {
        let interp = match reason(&file) {
            Err(why) if file == path => return Some(format!("{}: {why}", path.display())),
            Err(why) => {
                return Some(format!(
                    "{}: its interpreter {}: {why}",
                    path.display(),
                    file.display()
                ))
            }
            Ok(None) => return None,
            Ok(Some(interp)) => interp,
        };
        if in_view(&interp, view) {
            return None;
        }
        file = interp;
    }
    None
}

/// `command` itself when it holds a `/`, else the first executable file of
/// that name along `PATH`, as `execvp` would find it; `None` when the view
/// decides (the file or a `PATH` directory before it is in `view`).
fn find(command: &OsStr, view: Option<&Path>) -> Option<PathBuf> {
    if command.as_bytes().contains(&b'/') {
        let p = PathBuf::from(command);
        return (!in_view(&p, view)).then_some(p);
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
    for dir in search.as_bytes().split(|&b| b == b':') {
        let dir = if dir.is_empty() { b"." } else { dir };
        let candidate = Path::new(OsStr::from_bytes(dir)).join(command);
        if in_view(&candidate, view) {
            return None;
        }
        let is_file = std::fs::metadata(&candidate).is_ok_and(|m| m.is_file());
        if is_file && access(&candidate, AccessFlags::X_OK).is_ok() {
            return Some(candidate);
        }
    }
    None
}

/// True when `p` names something under the view's target, by its own name
/// or by where its directory really is.
fn in_view(p: &Path, view: Option<&Path>) -> bool {
    let Some(target) = view else {
        return false;
    };
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let real_dir = abs.parent().and_then(|d| std::fs::canonicalize(d).ok());
    abs.starts_with(target)
        || real_dir.is_some_and(|d| d.starts_with(target))
        || std::fs::canonicalize(&abs).is_ok_and(|r| r.starts_with(target))
}

/// `Err(why)` when `file` cannot be preloaded; `Ok(Some(interpreter))` for
/// a `#!` script; `Ok(None)` when it can run, or when `execve` will say why not.
fn reason(file: &Path) -> Result<Option<PathBuf>, String> {
    let Some(meta) = std::fs::metadata(file).ok().filter(|m| m.is_file()) else {
        return Ok(None);
    };
    if let Some(what) = secure_mode(file, &meta) {
        return Err(format!(
            "{what}: the dynamic loader ignores LD_PRELOAD for it (it would bypass the overlay)"
        ));
    }
    match read_kind(file) {
        Some(Executable::StaticElf) => Err(
            "statically linked: the overlay cannot be preloaded into it (it would bypass the overlay)"
                .into(),
        ),
        Some(Executable::Script { interp, .. }) => {
            Ok(Some(PathBuf::from(OsString::from_vec(interp))))
        }
        _ => Ok(None),
    }
}

/// What makes the loader run `file` in secure mode for us, if anything.
fn secure_mode(file: &Path, meta: &Metadata) -> Option<&'static str> {
    let nosuid = statvfs(file).is_ok_and(|s| s.flags().contains(FsFlags::ST_NOSUID));
    if nosuid {
        return None;
    }
    let mode = meta.mode();
    if mode & libc::S_ISUID != 0 && meta.uid() != geteuid().as_raw() {
        return Some("setuid");
    }
    let group_exec = mode & libc::S_IXGRP != 0;
    if mode & libc::S_ISGID != 0 && group_exec && meta.gid() != getegid().as_raw() {
        return Some("setgid");
    }
    (!geteuid().is_root() && has_capabilities(file)).then_some("file capabilities")
}

/// True when `file` carries file capabilities (`security.capability`).
fn has_capabilities(file: &Path) -> bool {
    let Ok(path) = CString::new(file.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: both names are valid C strings; a NULL buffer of size 0 only
    // asks for the value's size.
    let size = unsafe {
        libc::getxattr(
            path.as_ptr(),
            c"security.capability".as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    size > 0
}

/// The kind of executable `file` is, from its first bytes (and its program
/// headers when they lie further on).
fn read_kind(file: &Path) -> Option<Executable> {
    let f = File::open(file).ok()?;
    let mut head = Vec::with_capacity(HEAD_LEN);
    (&f).take(HEAD_LEN as u64).read_to_end(&mut head).ok()?;
    Some(match phdr_range(&head) {
        None => classify(&head),
        Some((offset, len)) => {
            let mut phdrs = vec![0; len];
            f.read_exact_at(&mut phdrs, offset).ok()?;
            classify_with_phdrs(&head, &phdrs)
        }
    })
}
