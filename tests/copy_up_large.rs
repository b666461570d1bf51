//! Copy-up of large files: a 1 GiB sparse file stays sparse, one with data
//! islands keeps its holes, a 1 GiB dense file arrives whole, on a file
//! system that shares blocks between files a copy shares the lower file's
//! blocks, and a copy-up killed at random moments never shows a partial
//! file in the view nor changes the lower layer, and one that runs out of
//! space leaves nothing behind.

mod common;

use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const GIB: u64 = 1 << 30;

struct Layers {
    dir: PathBuf,
}

impl Layers {
    fn new(tag: &str) -> Layers {
        Layers::under(&std::env::temp_dir(), tag)
    }
    /// Layers `l`, `u`, `w` and the view `v` in a new directory under `base`.
    fn under(base: &Path, tag: &str) -> Layers {
        let dir = base.join(format!("ovl-copyup-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["l", "u", "w", "v"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        Layers { dir }
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
    fn ovl(&self, script: &str) -> Command {
        self.ovl_with_upper("u", "w", script)
    }
    /// As `ovl`, with the upper and work directories at `upper` and `work`.
    fn ovl_with_upper(&self, upper: &str, work: &str, script: &str) -> Command {
        let mut c = Command::new(ovl_exec());
        c.env("OVL_SHIM", shim()).args([
            "-l",
            self.s("l"),
            "-u",
            self.s(upper),
            "-w",
            self.s(work),
            "-t",
            self.s("v"),
        ]);
        c.args(["--", "sh", "-c", script]);
        c
    }
    /// Appends one byte to `v/NAME` under the overlay (a copy-up), which
    /// must succeed.
    fn append_byte(&self, name: &str) {
        let out = self
            .ovl(&format!("printf x >> {}/v/{name}", self.dir.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fn s(&self, rel: &str) -> &str {
        Box::leak(self.p(rel).to_str().unwrap().to_owned().into_boxed_str())
    }
}

impl Drop for Layers {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn digest(p: &Path) -> String {
    let out = Command::new("sha256sum").arg(p).output().unwrap();
    first_word(&out.stdout)
}

/// What `sha256sum` printed before the file's name: the digest.
fn first_word(out: &[u8]) -> String {
    String::from_utf8_lossy(out)
        .split(' ')
        .next()
        .unwrap_or("")
        .to_owned()
}

/// Runs `script` with `sh -c`, outside the overlay.
fn sh(script: &str) -> std::process::Output {
    Command::new("sh").args(["-c", script]).output().unwrap()
}

/// The digest of the first `len` bytes of `path`.
fn digest_of_first(path: &Path, len: u64) -> String {
    first_word(&sh(&format!("head -c {len} {} | sha256sum", path.display())).stdout)
}

/// Writes `size` random bytes to `path`; returns their digest.
fn random_file(path: &Path, size: u64) -> String {
    let out = sh(&format!("head -c {size} /dev/urandom > {}", path.display()));
    assert!(out.status.success(), "cannot write {}", path.display());
    digest(path)
}

#[test]
fn sparse_gigabyte_stays_sparse() {
    let l = Layers::new("sparse");
    let f = std::fs::File::create(l.p("l/sparse")).unwrap();
    f.set_len(GIB).unwrap();
    drop(f);
    std::fs::write(l.p("l/marker"), "m").unwrap();
    l.append_byte("sparse");
    let m = std::fs::metadata(l.p("u/sparse")).unwrap();
    assert_eq!(m.len(), GIB + 1);
    assert!(
        m.blocks() * 512 < 1 << 20,
        "the copy is not sparse: {} bytes allocated",
        m.blocks() * 512
    );
    assert_eq!(
        std::fs::metadata(l.p("l/sparse")).unwrap().len(),
        GIB,
        "the lower file changed"
    );
}

/// A file of data islands in a sea of holes: the islands arrive whole (their
/// blocks are reserved before they are copied), the sea stays unallocated.
#[test]
fn data_islands_arrive_and_holes_stay_holes() {
    let l = Layers::new("islands");
    let island: u64 = 4 << 20;
    let starts = [0, 300 << 20, GIB - island];
    let make = starts
        .iter()
        .map(|at| {
            format!(
                "head -c {island} /dev/urandom | dd of={} bs=1M seek={} conv=notrunc status=none",
                l.p("l/islands").display(),
                at >> 20
            )
        })
        .collect::<Vec<_>>()
        .join(" && ");
    assert!(sh(&make).status.success(), "cannot write the islands");
    let before = digest(&l.p("l/islands"));
    l.append_byte("islands");
    let m = std::fs::metadata(l.p("u/islands")).unwrap();
    assert_eq!(m.len(), GIB + 1);
    let allocated = m.blocks() * 512;
    assert!(
        allocated < 4 * island,
        "holes were filled: {allocated} bytes allocated for {} of data",
        3 * island
    );
    assert_eq!(
        digest_of_first(&l.p("u/islands"), GIB),
        before,
        "the copy's data differs"
    );
    assert_eq!(digest(&l.p("l/islands")), before, "the lower file changed");
}

#[test]
fn dense_gigabyte_is_copied_whole() {
    let l = Layers::new("dense");
    let before = random_file(&l.p("l/dense"), GIB);
    l.append_byte("dense");
    assert_eq!(digest(&l.p("l/dense")), before, "the lower file changed");
    let up = std::fs::read(l.p("u/dense")).map(|v| v.len()).unwrap_or(0);
    assert_eq!(up as u64, GIB + 1);
    assert_eq!(
        digest_of_first(&l.p("u/dense"), GIB),
        before,
        "the copy's data differs"
    );
}

/// Free bytes of the file system holding `dir`, once its writes are on disk.
fn free_bytes(dir: &Path) -> u64 {
    let out = sh(&format!(
        "sync -f {0} && stat -f -c '%a %S' {0}",
        dir.display()
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace().map(|w| w.parse::<u64>().unwrap());
    words.next().unwrap() * words.next().unwrap()
}

/// On a file system that shares blocks between files (XFS, made in a loop
/// image), a copy-up is a reflink: the copy takes next to no space whatever
/// the file's size (its data is not copied), reads as the lower file did,
/// and the lower file is unchanged.
#[test]
fn copy_up_on_a_reflink_file_system_shares_the_lower_files_blocks() {
    require_root!();
    // A directory of its own for the image (removed last, after the unmount).
    let images = Layers::new("reflink-image");
    let Some(xfs) = common::mount::LoopFs::new(&images.dir, "xfs", 1 << 30) else {
        return;
    };
    let l = Layers::under(&xfs.mnt, "reflink");
    let size: u64 = 256 << 20;
    let before = random_file(&l.p("l/big"), size);
    let free = free_bytes(&l.dir);
    l.append_byte("big");
    let taken = free.saturating_sub(free_bytes(&l.dir));
    assert!(
        taken < size / 16,
        "the copy-up took {taken} bytes of the file system for a {size}-byte file: its data was copied, not shared"
    );
    assert_eq!(std::fs::metadata(l.p("u/big")).unwrap().len(), size + 1);
    assert_eq!(
        digest_of_first(&l.p("u/big"), size),
        before,
        "the copy's data differs"
    );
    assert_eq!(digest(&l.p("l/big")), before, "the lower file changed");
    drop(l);
}

#[test]
fn killed_copy_ups_never_show_a_partial_file() {
    let l = Layers::new("kill");
    let size: u64 = 100 << 20;
    let lower_digest = random_file(&l.p("l/big"), size);
    let mut seed: u64 = 12345;
    let mut completed = 0;
    for round in 0..20 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let delay = (seed >> 33) % 160;
        let mut child = l
            .ovl(&format!("printf x >> {}/v/big", l.dir.display()))
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        // What the view shows now: the lower file, or the whole copy.
        let up = l.p("u/big");
        match std::fs::metadata(&up) {
            Err(_) => {}
            Ok(m) => {
                assert!(
                    m.len() == size || m.len() == size + 1,
                    "round {round} (killed after {delay} ms): upper shows {} bytes",
                    m.len()
                );
                completed += 1;
                let _ = std::fs::remove_file(&up);
            }
        }
        assert_eq!(
            digest(&l.p("l/big")),
            lower_digest,
            "round {round}: the lower file changed"
        );
    }
    // Interrupted copies stay in the work directory only, never in upper.
    let leftovers: Vec<_> = std::fs::read_dir(l.p("u"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "upper holds {leftovers:?}");
    eprintln!("{completed} of 20 copy-ups completed before the kill");
}

/// Layers on two file systems (the lower on a tmpfs, upper and work on the
/// test directory's): the copy-up copies between them (`copy_file_range`
/// refuses most such pairs since Linux 5.19; it failed with `EXDEV`), keeps
/// the holes, and the copy keeps the lower file's inode number.
#[test]
fn copy_up_from_a_lower_layer_on_another_file_system() {
    require_root!();
    let l = Layers::new("crossfs");
    let _tmpfs = common::mount::Tmpfs::mount(l.p("l"));
    std::fs::write(l.p("l/small"), "small\n").unwrap();
    let island = 2u64 << 20;
    let make = format!(
        "head -c {island} /dev/urandom | dd of={} bs=1M seek=3 status=none && truncate -s 8M {}",
        l.p("l/holes").display(),
        l.p("l/holes").display()
    );
    assert!(sh(&make).status.success());
    let lower_digest = digest(&l.p("l/holes"));
    let lower_ino = std::fs::metadata(l.p("l/holes")).unwrap().ino();
    let out = l
        .ovl(&format!(
            "cd {}/v && echo more >> small && printf x >> holes && stat -c %i holes",
            l.dir.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        lower_ino.to_string()
    );
    assert_eq!(
        std::fs::read_to_string(l.p("u/small")).unwrap(),
        "small\nmore\n"
    );
    assert_eq!(digest_of_first(&l.p("u/holes"), 8 << 20), lower_digest);
    let m = std::fs::metadata(l.p("u/holes")).unwrap();
    assert_eq!(m.len(), (8 << 20) + 1);
    assert!(
        m.blocks() * 512 < 3 << 20,
        "the holes were filled: {} bytes",
        m.blocks() * 512
    );
    assert_eq!(
        digest(&l.p("l/holes")),
        lower_digest,
        "the lower file changed"
    );
    assert_eq!(std::fs::read_to_string(l.p("l/small")).unwrap(), "small\n");
}

/// An upper layer too small for a copy-up (a 2 MiB tmpfs, a 3 MiB lower
/// file): the write that needed it fails with `ENOSPC`, as on the kernel,
/// and leaves nothing half-done: no partial copy in upper or work, the
/// lower file whole, and the view still showing it; a small file's
/// copy-up beside it then succeeds.
#[test]
fn a_copy_up_that_runs_out_of_space_leaves_nothing_behind() {
    require_root!();
    let l = Layers::new("nospace");
    let lower_digest = random_file(&l.p("l/big"), 3 << 20);
    std::fs::write(l.p("l/small"), "small\n").unwrap();
    std::fs::create_dir(l.p("t")).unwrap();
    let _tmpfs = common::mount::Tmpfs::mount_sized(l.p("t"), "2m");
    for d in ["t/u", "t/w"] {
        std::fs::create_dir(l.p(d)).unwrap();
    }
    let out = l
        .ovl_with_upper(
            "t/u",
            "t/w",
            &format!(
                "cd {}/v; (printf x >> big) && echo \"big written\" || echo \"big refused\"; \
                 echo more >> small && echo \"small written\"; \
                 cat small; wc -c < big; sha256sum < big",
                l.dir.display()
            ),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stdout.lines().take(5).collect::<Vec<_>>(),
        [
            "big refused",
            "small written",
            "small",
            "more",
            &(3u64 << 20).to_string()
        ],
        "stderr: {stderr}"
    );
    assert!(
        stderr.contains("No space left on device"),
        "the error is not ENOSPC: {stderr}"
    );
    assert_eq!(
        first_word(stdout.lines().nth(5).unwrap_or("").as_bytes()),
        lower_digest
    );
    let names = |d: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(l.p(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names("t/u"),
        ["small"],
        "upper holds more than the small copy"
    );
    let left: Vec<String> = names("t/w")
        .into_iter()
        .filter(|n| n != "ovl-generation")
        .collect();
    assert!(left.is_empty(), "the work directory keeps {left:?}");
    let used = sh(&format!("du -sk {} | cut -f1", l.p("t").display()));
    let used_kib: u64 = String::from_utf8_lossy(&used.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(used_kib < 64, "the tmpfs still holds {used_kib} KiB");
    assert_eq!(
        digest(&l.p("l/big")),
        lower_digest,
        "the lower file changed"
    );
}
