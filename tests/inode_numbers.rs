//! Inode numbers across copy-up, against the kernel (layers on one file
//! system): a copied-up object keeps the number its lower object had, in
//! `stat`, `fstat`, `statx` and its directory's listing, unless the lower
//! file has other hard links; the copy records its origin as the kernel
//! does (`overlay.origin`, the parent marked `overlay.impure`; not for a
//! file with other hard links).

mod common;

use common::dump::get_xattr;
use common::*;
use std::path::Path;

fn layers() -> Fixture {
    let fx = Fixture::new(2);
    fx.lower(2).file("deep/d2/x", "x\n");
    fx.lower(1)
        .file("a/f", "f\n")
        .file("a/g", "g\n")
        .file("a/h", "h\n")
        .hardlink("a/h2", "a/h")
        .symlink("a/s", "f")
        .file("a/keep", "keep\n");
    fx
}

/// Which objects keep their inode numbers through copy-ups and renames,
/// whether listings, `fstat` and `statx` agree with `lstat`.
const SCRIPT: &str = r#"python3 - <<'EOF'
import os
def ino(p): return os.lstat(p).st_ino
names = ['a', 'a/f', 'a/g', 'a/h', 'a/s', 'a/keep', 'deep', 'deep/d2', 'deep/d2/x']
before = {p: ino(p) for p in names}
with open('a/f', 'a') as f: f.write('more\n')
os.chmod('a/g', 0o600)
with open('a/h', 'a') as f: f.write('more\n')
os.lchown('a/s', 0, 0)
with open('deep/d2/x', 'a') as f: f.write('y\n')
os.rename('a/g', 'a/g-moved')
os.rename('a/f', 'deep/f-moved')
now = {'a/f': 'deep/f-moved', 'a/g': 'a/g-moved'}
for p in names:
    print(p, 'kept' if ino(now.get(p, p)) == before[p] else 'new')
for d in ['.', 'a', 'deep', 'deep/d2']:
    for e in sorted(os.scandir(d), key=lambda e: e.name):
        print('listed', d, e.name, e.inode() == ino(e.path))
for p, flags in [('deep/d2/x', os.O_RDONLY), ('a', os.O_RDONLY | os.O_DIRECTORY),
                 ('a/g-moved', os.O_PATH), ('deep/f-moved', os.O_WRONLY)]:
    fd = os.open(p, flags)
    print('fstat', p, os.fstat(fd).st_ino == ino(p), os.stat('', dir_fd=fd, follow_symlinks=False).st_ino == ino(p))
    os.close(fd)
EOF
for p in a a/g-moved deep/d2/x a/h; do
  [ "$(stat -c %i $p)" = "$(python3 -c "import os; print(os.lstat('$p').st_ino)")" ] && echo statx $p same
done
"#;

#[test]
fn copied_up_objects_keep_their_inode_numbers() {
    require_root!();
    compare_changes(
        &layers(),
        SCRIPT,
        &["a/g kept", "a/h new", "deep/d2/x kept", "statx a/h same"],
    );
}

/// The value's header (version, magic, length, flags, handle type, uuid):
/// all of it but the handle, which names each clone's own lower object.
fn origin_header(path: &Path, ns: &str) -> Option<Vec<u8>> {
    get_xattr(path, &format!("{ns}.overlay.origin"))
        .ok()
        .map(|v| v[..21.min(v.len())].to_vec())
}

#[test]
fn a_copy_records_its_origin_as_the_kernel_does() {
    require_root!();
    let pair = layers().pair();
    pair.run(
        "echo more >> a/f; chmod 600 a/g; ln -s x a/new; echo y >> deep/d2/x; \
         mkdir fresh; mv a/g fresh/g; echo more >> a/h; mkdir linked; mv a/h linked/h",
    );
    let ns = "trusted";
    for rel in [
        "a",
        "a/f",
        "fresh/g",
        "a/new",
        "deep",
        "deep/d2",
        "deep/d2/x",
        "fresh",
        "linked/h",
    ] {
        let k = origin_header(&pair.kernel.upper_dir().join(rel), ns);
        let o = origin_header(&pair.ovl.upper_dir().join(rel), ns);
        assert_eq!(k, o, "overlay.origin of {rel}: kernel's header, then ovl's");
    }
    for rel in ["", "a", "deep", "deep/d2", "fresh", "linked"] {
        let impure = |fx: &Fixture| {
            get_xattr(&fx.upper_dir().join(rel), &format!("{ns}.overlay.impure")).ok()
        };
        assert_eq!(
            impure(&pair.kernel),
            impure(&pair.ovl),
            "overlay.impure of /{rel}: kernel's, then ovl's"
        );
    }
}

/// A directory that no longer holds a copy keeps its `overlay.impure` mark
/// through the checks that it is empty made by a failed `rmdir` (`n`) and
/// a failed rename over it (`o`), as on the kernel, and loses it when a
/// program lists it (`q`). ovl's checks took the mark off, as a listing
/// (found by the random sequences of `write_sequences`, seed 3025133).
#[test]
fn an_impure_mark_outlives_the_checks_that_a_directory_is_empty() {
    require_root!();
    let pair = layers().pair();
    pair.run(
        "mkdir -p n/m o/m p q; ln a/f n/x; mv n/x a/f2; ln a/g o/y; mv o/y a/g2; \
         ln a/keep q/z; mv q/z a/keep2; ! rmdir n && ! mv -T p o && ls q",
    );
    let impure = |fx: &Fixture, rel: &str| {
        get_xattr(&fx.upper_dir().join(rel), "trusted.overlay.impure").ok()
    };
    for rel in ["n", "o", "q"] {
        assert_eq!(
            impure(&pair.kernel, rel),
            impure(&pair.ovl, rel),
            "overlay.impure of /{rel}: kernel's, then ovl's"
        );
    }
    assert!(impure(&pair.ovl, "n").is_some() && impure(&pair.ovl, "o").is_some());
    assert!(impure(&pair.ovl, "q").is_none());
}

/// A copy holds the overlay's records, which the view does not list: as on
/// the kernel, a length query answers the real list's length (room for the
/// view's), and a buffer of that length gets the view's list (`mv` of a
/// copied-up directory to a new name failed with `ERANGE` when the query
/// answered the view's shorter length, and lost the files' xattrs).
#[test]
fn a_copys_xattrs_list_into_room_for_the_views_list() {
    require_root!();
    compare_changes(
        &layers(),
        r#"python3 - <<'EOF'
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
os.setxattr('a/keep', 'user.t', b'1')
for call in (libc.llistxattr, libc.listxattr):
    n = call(b'a/keep', None, 0)
    buf = ctypes.create_string_buffer(n)
    print(n, call(b'a/keep', buf, n), buf.raw, call(b'a/keep', buf, n - 1), ctypes.get_errno())
fd = os.open('a/keep', os.O_RDONLY)
n = libc.flistxattr(fd, None, 0)
buf = ctypes.create_string_buffer(n)
print('f', n, libc.flistxattr(fd, buf, n), buf.raw)
EOF
mv a b && getfattr -n user.t --only-values b/keep && echo"#,
        &["30 7 b'user.t\\x00", "f 30 7", "\n1\n"],
    );
}

/// Which names of the view are one object (same device and inode number),
/// and whether every listing's `d_ino` is what `lstat` says, after copy-ups
/// of files with and without other lower links, links and renames made in
/// the view (into upper-only directories too: `n` lists its copy with the
/// origin's number; `m`, left without one, loses its impure mark when it is
/// listed, as on the kernel); then what `tar`, `cp -a` and `du` make of it
/// (hard links kept, counted once).
#[test]
fn names_of_one_object_agree_with_the_kernel() {
    require_root!();
    let fx = layers();
    fx.lower(1).hardlink("a/h3", "a/h").file("b/one", "1\n");
    compare_changes(
        &fx,
        r#"echo x >> a/keep; ln a/keep a/keep2; ln a/f b/f-link; mv a/keep2 b/; chmod 600 a/h2
mkdir n m && mv a/g n/g && mv a/s m/s && rm m/s && ls m n
python3 - <<'EOF'
import os
groups, bad = {}, []
for top, dirs, files in os.walk('.'):
    for e in os.scandir(top):
        st = os.lstat(e.path)
        groups.setdefault((st.st_dev, st.st_ino), []).append(e.path)
        if e.inode() != st.st_ino:
            bad.append(e.path)
for names in sorted(groups.values()):
    if len(names) > 1:
        print('one object:', ' '.join(sorted(names)))
print('listed differently:', sorted(bad))
EOF
tar cf - a b | tar tvf - | awk '{print $1, $6, $7, $8}' | sort
cp -a a /tmp/ovl-cp-$$ && ls -li /tmp/ovl-cp-$$ | awk 'NR > 1 {print $3, $NF}' | sort; rm -rf /tmp/ovl-cp-$$
du -a --inodes b | sort -k2
"#,
        &["one object: ./a/f ./b/f-link", "listed differently: []"],
    );
}

/// On a lower file system with a uuid (most are; the tests' temporary
/// directory may be on one without), a copy's origin records that uuid, as
/// the kernel's does: the kernel follows an origin only when its uuid is
/// the lower file system's. So the kernel, mounted over the upper ovl
/// wrote, shows a copy with the inode number ovl showed, and keeps the
/// `overlay.impure` mark of the upper-only directory the copy was moved
/// into (a listing that finds no copy with a usable origin removes it).
/// The upper root, first marked impure by ovl, gets its `overlay.uuid`, as
/// the kernel gives one to a new upper.
#[test]
fn origins_on_a_file_system_with_a_uuid_are_the_kernels() {
    require_root!();
    let fx = Fixture::new(1);
    // An ext4 file system with a uuid (as `mkfs.ext4` makes it).
    let Some(ext4) = common::mount::LoopFs::new(fx.root_dir(), "ext4", 16 << 20) else {
        return;
    };
    let dir = |name: &str| {
        let p = ext4.mnt.join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    };
    let (lower, upper, work, mnt) = (dir("lower"), dir("upper"), dir("work"), dir("mnt"));
    std::fs::create_dir_all(lower.join("d")).unwrap();
    std::fs::write(lower.join("f"), "f\n").unwrap();
    std::fs::write(lower.join("d/g"), "g\n").unwrap();
    let ino =
        |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::symlink_metadata(p).unwrap());
    let lower_inos = format!("{} {}", ino(&lower.join("f")), ino(&lower.join("d/g")));

    let shown = std::process::Command::new(ovl_exec())
        .arg("-l")
        .arg(&lower)
        .arg("-u")
        .arg(&upper)
        .arg("-w")
        .arg(&work)
        .arg("-t")
        .arg(&mnt)
        .args(["--", "sh", "-c"])
        .arg(format!(
            "cd {} && echo more >> f && echo more >> d/g && mkdir n && mv f n/f && \
             echo $(stat -c %i n/f d/g)",
            mnt.display()
        ))
        .output()
        .unwrap();
    assert!(
        shown.status.success(),
        "ovl-exec failed: {}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let shown = String::from_utf8_lossy(&shown.stdout).trim().to_string();
    assert_eq!(
        shown, lower_inos,
        "ovl shows the lower objects' inode numbers"
    );

    let kernel = {
        let _mount = common::mount::KernelMount::mount(
            &format!(
                "lowerdir={},upperdir={},workdir={}",
                lower.display(),
                upper.display(),
                work.display()
            ),
            &mnt,
        );
        let listed: Vec<_> = std::fs::read_dir(mnt.join("n"))
            .unwrap()
            .map(|e| std::os::unix::fs::DirEntryExt::ino(&e.unwrap()))
            .collect();
        let stat = format!("{} {}", ino(&mnt.join("n/f")), ino(&mnt.join("d/g")));
        (stat, listed)
    };
    assert_eq!(
        kernel.0, shown,
        "inode numbers of n/f and d/g: the kernel's over ovl's upper, then ovl's"
    );
    assert_eq!(
        kernel.1,
        vec![ino(&lower.join("f"))],
        "the kernel's listing of n"
    );
    assert_eq!(
        get_xattr(&upper.join("n"), "trusted.overlay.impure").ok(),
        Some(b"y".to_vec()),
        "n keeps its impure mark after the kernel listed it"
    );
    let uuid = get_xattr(&upper, "trusted.overlay.uuid");
    assert_eq!(
        uuid.as_ref().map(Vec::len).ok(),
        Some(16),
        "the upper root's overlay.uuid: {uuid:?}"
    );
}
