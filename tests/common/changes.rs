//! What `ovl-changes` must list for a fixture, told by the kernel alone:
//! its overlay mounted (the view) against its lower layers mounted without
//! the upper (their own view), and which names the upper layer itself
//! holds. Nothing here shares code with the overlay's look-up.

use super::fixture::Fixture;
use super::mount::KernelMount;
use super::run::ovl_exec;
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Every name under `root` (relative, `/`-separated), and whether it is a
/// directory; symlinks are not followed.
fn tree(root: &Path) -> BTreeMap<Vec<u8>, bool> {
    fn walk(dir: &Path, rel: &[u8], out: &mut BTreeMap<Vec<u8>, bool>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.unwrap();
            let mut path = rel.to_vec();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(entry.file_name().as_bytes());
            let is_dir = entry.file_type().unwrap().is_dir();
            if is_dir {
                walk(&entry.path(), &path, out);
            }
            out.insert(path, is_dir);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, b"", &mut out);
    out
}

/// Does the upper layer hold an object (not a whiteout) at `rel`?
fn upper_holds(upper: &Path, rel: &[u8]) -> bool {
    let path = upper.join(std::ffi::OsStr::from_bytes(rel));
    match std::fs::symlink_metadata(&path) {
        Ok(m) => {
            use std::os::unix::fs::MetadataExt;
            !(m.file_type().is_char_device() && m.rdev() == 0)
        }
        Err(_) => false,
    }
}

fn parent(rel: &[u8]) -> Option<&[u8]> {
    rel.iter().rposition(|&b| b == b'/').map(|i| &rel[..i])
}

fn line(mark: char, rel: &[u8], dir: bool) -> String {
    format!(
        "{mark} {}{}",
        String::from_utf8_lossy(rel),
        if dir { "/" } else { "" }
    )
}

/// The lines `ovl-changes` must print for `fx` (sorted): `A` for a name
/// the view has and the lower layers' view lacks; `C` for one both have
/// where the upper layer holds the view's object; `D` for one only the
/// lower layers' view has, in a directory the view has. Needs root and two
/// lower layers or more (the kernel mounts no overlay of one layer alone).
pub fn expected_changes(fx: &Fixture) -> Vec<String> {
    let view = {
        let _m = fx.mount_kernel();
        tree(&fx.mnt())
    };
    let lowers = fx.root_dir().join("lowers-alone");
    std::fs::create_dir_all(&lowers).unwrap();
    let below = {
        let dirs: Vec<String> = fx
            .lower_dirs()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        // With the fixture's options: with `userxattr` a layer's records
        // are `user.overlay.` xattrs, which a mount without it would not read.
        let opts = std::iter::once(format!("lowerdir={}", dirs.join(":")))
            .chain(fx.kernel_opts().iter().cloned())
            .collect::<Vec<_>>()
            .join(",");
        let _m = KernelMount::mount(&opts, &lowers);
        tree(&lowers)
    };
    let upper = fx.upper_dir();
    let mut lines = Vec::new();
    for (rel, &dir) in &view {
        match below.get(rel) {
            None => lines.push(line('A', rel, dir)),
            Some(_) if upper_holds(&upper, rel) => lines.push(line('C', rel, dir)),
            Some(_) => {}
        }
    }
    for (rel, &dir) in &below {
        let parent_shown = match parent(rel) {
            None => true,
            Some(p) => view.get(p) == Some(&true),
        };
        if !view.contains_key(rel) && parent_shown {
            lines.push(line('D', rel, dir));
        }
    }
    lines.sort();
    lines
}

/// `ovl-changes`, built beside `ovl-exec`.
pub fn ovl_changes() -> PathBuf {
    ovl_exec().with_file_name("ovl-changes")
}

/// `ovl-changes -u UPPER -l LOWER... EXTRA...`, run.
pub fn run_ovl_changes(upper: &Path, lowers: &[PathBuf], extra: &[&str]) -> Output {
    let mut cmd = Command::new(ovl_changes());
    cmd.arg("-u").arg(upper);
    for l in lowers {
        cmd.arg("-l").arg(l);
    }
    cmd.args(extra).output().expect("run ovl-changes")
}

/// What `ovl-changes` prints for `fx`'s upper over its lowers; panics
/// unless it succeeds.
pub fn changes_listing(fx: &Fixture) -> String {
    let out = run_ovl_changes(&fx.upper_dir(), &fx.lower_dirs(), &[]);
    assert!(
        out.status.success(),
        "ovl-changes failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// [`changes_listing`]'s lines, sorted.
pub fn listed_changes(fx: &Fixture) -> Vec<String> {
    let mut lines: Vec<String> = changes_listing(fx).lines().map(str::to_string).collect();
    lines.sort();
    lines
}
