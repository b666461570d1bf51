//! The lower layers never change, whatever a program does: also through a
//! symlink outside the view, the lower layer's real path, `/proc/self/fd`, a
//! descriptor opened read-only, or a hard link made outside.

mod common;

use common::*;
use std::process::Command;

#[test]
fn no_path_from_outside_the_view_changes_a_lower_layer() {
    let dir = std::env::temp_dir().join(format!("ovl-protect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["l", "u", "v", "o"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(dir.join("l/f"), "secret\n").unwrap();
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    let f = std::fs::File::options()
        .write(true)
        .open(dir.join("l/f"))
        .unwrap();
    f.set_times(
        std::fs::FileTimes::new()
            .set_accessed(old)
            .set_modified(old),
    )
    .unwrap();
    drop(f);
    use std::os::unix::fs::MetadataExt;
    let ctime = || {
        let m = std::fs::metadata(dir.join("l/f")).unwrap();
        (m.ctime(), m.ctime_nsec())
    };
    let ctime_before = ctime();
    std::os::unix::fs::symlink(dir.join("l/f"), dir.join("o/link")).unwrap();
    // A link on the way, not at the end: a clean path's real place is told
    // by looking at each directory on the way.
    std::os::unix::fs::symlink(dir.join("l"), dir.join("o/dirlink")).unwrap();
    let script = r#"
        d="$1"
        echo via-link >> "$d/o/link"; echo "append via outside symlink: $?"
        echo via-dir-link >> "$d/o/dirlink/f"; echo "append via a directory symlink: $?"
        rm "$d/o/dirlink/f" 2>/dev/null; echo "rm via a directory symlink: $?"
        mkdir "$d/o/dirlink/new" 2>/dev/null; echo "mkdir via a directory symlink: $?"
        echo direct >> "$d/l/f"; echo "append by the real name: $?"
        python3 -c '
import os, sys
d = sys.argv[1]
fd = os.open(d + "/v/f", os.O_RDONLY)
w = os.open("/proc/self/fd/%d" % fd, os.O_WRONLY | os.O_APPEND)
os.write(w, b"via-proc\n")
os.fchmod(fd, 0o600)
print("proc and fchmod done")
' "$d"
        python3 - "$d" <<'EOF'
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
h = ctypes.create_string_buffer(8 + 128); struct.pack_into('I', h, 0, 128)
mount_id = ctypes.c_int()
r = libc.name_to_handle_at(-100, (sys.argv[1] + '/l/f').encode(), h, ctypes.byref(mount_id), 0)
root = os.open('/', os.O_RDONLY)
fd = libc.open_by_handle_at(root, h, os.O_WRONLY | os.O_APPEND) if r == 0 else -1
if fd >= 0: os.write(fd, b'via-handle\n')
print('handle of the real name:', r, 'open for writing:', fd, ctypes.get_errno() if fd < 0 else '')
import fcntl
fd = os.open(sys.argv[1] + '/l/f', os.O_RDONLY)
for what, change in [('fchmod', lambda: os.fchmod(fd, 0o600)), ('futimens', lambda: os.utime(fd, (7, 7))),
                     ('fsetxattr', lambda: os.setxattr(fd, 'user.w', b'1')),
                     ('chattr', lambda: fcntl.ioctl(fd, 0x40086602, struct.pack('l', 0x80080))),
                     ('setversion', lambda: fcntl.ioctl(fd, 0x40087602, struct.pack('l', 99)))]:
    try: change(); print(what, 'by the real name: done')
    except OSError as e: print(what, 'by the real name:', e.strerror)
pid = os.posix_spawn('/bin/echo', ['echo', 'via-spawn'], os.environ,
                     file_actions=[(os.POSIX_SPAWN_OPEN, 1, sys.argv[1] + '/l/f', os.O_WRONLY | os.O_APPEND, 0)])
print('spawn writing by the real name:', os.waitpid(pid, 0)[1])
for flags in [os.O_RDONLY, os.O_PATH]:
    fd = os.open(sys.argv[1] + '/l/f', flags)
    r = libc.linkat(fd, b'', -100, (sys.argv[1] + '/o/hard2').encode(), 0x1000)
    print('linkat of a descriptor by the real name:', r, os.strerror(ctypes.get_errno()) if r else '')
    r = libc.utimensat(fd, b'', None, 0x1000)
    print('utimensat of a descriptor by the real name:', r, os.strerror(ctypes.get_errno()) if r else '')
    r = libc.fchownat(fd, b'', 7, 7, 0x1000)
    print('fchownat of a descriptor by the real name:', r, os.strerror(ctypes.get_errno()) if r else '')
libc.fopen.restype = libc.freopen.restype = ctypes.c_void_p
libc.freopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
libc.fputs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
for mode in [b'a', b'w']:
    s = libc.freopen((sys.argv[1] + '/l/f').encode(), mode, libc.fopen(b'/dev/null', b'r'))
    print('freopen by the real name,', mode.decode() + ':', 'opened' if s else os.strerror(ctypes.get_errno()))
    if s: libc.fputs(b'via-freopen\n', s); libc.fclose(s)
s = libc.freopen(None, b'r+', libc.fopen((sys.argv[1] + '/l/f').encode(), b'r'))
print('freopen of a stream of the real name, r+:', 'opened' if s else os.strerror(ctypes.get_errno()))
if s: libc.fputs(b'via-reopen\n', s); libc.fclose(s)
libc.mkdtemp.restype = ctypes.c_char_p
for fn in ['mkstemp', 'mkdtemp']:
    t = ctypes.create_string_buffer((sys.argv[1] + '/l/tmpXXXXXX').encode())
    r = getattr(libc, fn)(t)
    print(fn, 'by the real name:', 'made' if r not in (None, -1) else os.strerror(ctypes.get_errno()))
EOF
        chmod 700 "$d/o/link" 2>/dev/null; echo "chmod via link: $?"
        ln "$d/l/f" "$d/o/hard" 2>/dev/null; echo "hard link out: $?"
        rm "$d/l/f" 2>/dev/null; echo "rm by the real name: $?"
        truncate -s 0 "$d/o/link" 2>/dev/null; echo "truncate via link: $?"
        cat "$d/v/f"
    "#;
    let out = Command::new(ovl_exec())
        .env("OVL_SHIM", shim())
        .args([
            "-l",
            dir.join("l").to_str().unwrap(),
            "-u",
            dir.join("u").to_str().unwrap(),
        ])
        .args([
            "-t",
            dir.join("v").to_str().unwrap(),
            "--",
            "sh",
            "-c",
            script,
            "sh",
            dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lower = std::fs::read_to_string(dir.join("l/f")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("l/f"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    let meta = std::fs::metadata(dir.join("l/f")).unwrap();
    let (mtime, uid, ctime_after) = (meta.mtime(), meta.uid(), ctime());
    let hard = dir.join("o/hard").exists() || dir.join("o/hard2").exists();
    let mut lower_names: Vec<_> = std::fs::read_dir(dir.join("l"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    lower_names.sort();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        lower, "secret\n",
        "the lower file changed; ovl said:\n{stdout}"
    );
    assert_eq!(mode, 0o644, "the lower file's mode changed");
    assert_eq!(mtime, 1_000_000_000, "the lower file's times changed");
    assert_ne!(uid, 7, "the lower file's owner changed");
    assert_eq!(ctime_after, ctime_before, "the lower file's inode changed");
    assert!(
        !hard,
        "a hard link to a lower file was made outside the view"
    );
    assert_eq!(lower_names, ["f"], "a name was made in the lower layer");
    // A file is made in the view (the directory's copy), as by `open`; a
    // directory is refused, as by `mkdir`.
    assert!(
        stdout.contains("mkstemp by the real name: made"),
        "{stdout}"
    );
    assert!(
        stdout.contains("mkdtemp by the real name: Read-only file system"),
        "{stdout}"
    );
    assert!(stdout.contains("chmod via link: 1"), "{stdout}");
    assert!(stdout.contains("rm via a directory symlink: 1"), "{stdout}");
    assert!(
        stdout.contains("mkdir via a directory symlink: 1"),
        "{stdout}"
    );
    assert!(stdout.contains("rm by the real name: 1"), "{stdout}");
    // Opened in the view (the copy), as `fopen` by that name.
    for mode in ["a", "w"] {
        assert!(
            stdout.contains(&format!("freopen by the real name, {mode}: opened")),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("freopen of a stream of the real name, r+: opened"),
        "{stdout}"
    );
    assert!(stdout.contains("proc and fchmod done"), "{stdout}");
    assert!(
        stdout.contains("handle of the real name: 0 open for writing: -1 30"),
        "{stdout}"
    );
    assert_eq!(
        stdout
            .matches("linkat of a descriptor by the real name: -1 Read-only file system")
            .count(),
        2,
        "{stdout}"
    );
    for what in ["utimensat", "fchownat"] {
        assert_eq!(
            stdout
                .matches(&format!(
                    "{what} of a descriptor by the real name: -1 Read-only file system"
                ))
                .count(),
            2,
            "{stdout}"
        );
    }
    for what in ["fchmod", "futimens", "fsetxattr", "chattr", "setversion"] {
        assert!(
            stdout.contains(&format!("{what} by the real name: Read-only file system")),
            "{stdout}"
        );
    }
}

/// `chattr` opens a file read-only and changes its attribute flags with an
/// `ioctl`: through the view the object is copied up first and the copy
/// changes, as with the kernel's overlayfs (the lower layers' snapshot
/// holds every file's and directory's flags, and their change times). A
/// request overlayfs does not serve (`lsattr -v`: ext4's own) fails with
/// `ENOTTY` there and here.
#[test]
fn attribute_flags_change_the_copy_and_other_requests_are_refused() {
    require_root!();
    let fx = Fixture::new(1);
    fx.lower(1)
        .file("f", "data\n")
        .file("d/g", "g\n")
        .file("h", "h\n");
    let (_, ovl) = compare_runs(
        &fx,
        "chattr +A f; echo \"chattr f: $?\"\n\
         chattr +d d; echo \"chattr d: $?\"\n\
         lsattr f | cut -c1-22; lsattr -d d | cut -c1-22; lsattr h | cut -c1-22\n\
         lsattr -v h 2>&1 | sed 's/^lsattr: //'\n\
         python3 -c \"import fcntl, os; fd = os.open('h', os.O_RDONLY)\n\
flags = fcntl.ioctl(fd, 0x80086601, bytes(8))\n\
try: fcntl.ioctl(fd, 0x40086602, flags)\n\
except OSError as e: print('SETFLAGS on h:', e.errno)\n\
else: print('SETFLAGS on h: ok')\"\n",
    );
    // The script ran as meant (not an error both sides would print alike).
    let out = ovl.out();
    assert!(out.contains("chattr f: 0\nchattr d: 0\n-------A"), "{out}");
    // Its own flags again (clearing ext4's extents flag, as 0 did, asks
    // ext4 to migrate the file, which fails while its data awaits
    // allocation: a race with write-back, not the overlay).
    assert!(out.contains("SETFLAGS on h: ok"), "{out}");
}

/// `linkat(fd, "", …, AT_EMPTY_PATH)` links the descriptor's own object: a
/// new name in the view is made on a copy (the lower file keeps its link
/// count), a name outside the view is refused with `EXDEV`, as across two
/// mounts, for a descriptor open for reading and an `O_PATH` one alike.
#[test]
fn linking_a_descriptors_object_never_names_a_lower_file() {
    require_root!();
    let fx = Fixture::new(1);
    fx.lower(1).file("f", "data\n").file("g", "g\n");
    let (_, ovl) = compare_runs(
        &fx,
        r#"out=$(mktemp -d)
python3 - "$out" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, AT_EMPTY_PATH = -100, 0x1000
for name, flags, to in [('f', os.O_RDONLY, sys.argv[1] + '/out-f'), ('g', os.O_PATH, sys.argv[1] + '/out-g'),
                        ('f', os.O_RDONLY, 'in-view-f'), ('g', os.O_PATH, 'in-view-g')]:
    fd = os.open(name, flags)
    r = libc.linkat(fd, b'', AT_FDCWD, to.encode(), AT_EMPTY_PATH)
    print(name, 'to', os.path.basename(to), r, os.strerror(ctypes.get_errno()) if r else '')
EOF
ls "$out"; rm -r "$out"
cat in-view-f in-view-g; stat -c '%n %h' f g in-view-f in-view-g
"#,
    );
    // The script ran (not an error both sides would print alike).
    assert!(
        ovl.out()
            .contains("f to out-f -1 Invalid cross-device link\ng to out-g -1"),
        "{}",
        ovl.out()
    );
}

/// `name_to_handle_at` on an object of the view fails with `EOPNOTSUPP`, as
/// on the kernel's overlayfs (it makes handles only with `nfs_export`).
#[test]
fn file_handles_of_the_view_are_not_made() {
    require_root!();
    let fx = Fixture::new(1);
    fx.lower(1).file("f", "data\n");
    let (_, ovl) = compare_runs(
        &fx,
        r#"python3 - <<'EOF'
import ctypes, os, struct
libc = ctypes.CDLL(None, use_errno=True)
h = ctypes.create_string_buffer(8 + 128); struct.pack_into('I', h, 0, 128)
mount_id = ctypes.c_int()
for name in ['f', os.path.abspath('f')]:
    r = libc.name_to_handle_at(-100, name.encode(), h, ctypes.byref(mount_id), 0)
    print(os.path.basename(name), r, os.strerror(ctypes.get_errno()) if r else '')
EOF
"#,
    );
    assert!(
        ovl.out().contains("f -1 Operation not supported"),
        "{}",
        ovl.out()
    );
}

/// `lchmod` (glibc calls its own `fchmodat` inside, which no hook sees)
/// changes the copy of a lower file, and refuses a symlink with
/// `EOPNOTSUPP` before anything is copied up, as `fchmodat` with
/// `AT_SYMLINK_NOFOLLOW` does; the upper layers come out the same. With
/// the view over the lower directory itself (ovl-exec's default target),
/// it used to change the lower file in place.
#[test]
fn lchmod_changes_the_copy_and_refuses_symlinks() {
    require_root!();
    let fx = Fixture::new(1);
    fx.lower(1)
        .file("f", "f\n")
        .file("g", "g\n")
        .dir("d")
        .symlink("s", "f")
        .symlink("s2", "g");
    compare_changes(
        &fx,
        r#"python3 - <<'EOF'
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
for name in ['f', 'd', 's', 'missing']:
    r = libc.lchmod(name.encode(), 0o600)
    print('lchmod', name, r, os.strerror(ctypes.get_errno()) if r else '')
r = libc.fchmodat(-100, b's2', 0o600, 0x100)
print('fchmodat nofollow s2', r, os.strerror(ctypes.get_errno()) if r else '')
EOF
stat -c '%a %n' f d g
"#,
        &["lchmod f 0 \nlchmod d 0 \nlchmod s -1"],
    );
}

/// A view over a lower directory itself (ovl-exec's default target, no
/// mount point of its own), in a scratch directory of its own: the lower
/// directory `l`, the upper `u`, the work directory `w`. Removed when
/// dropped.
struct InPlace {
    dir: std::path::PathBuf,
}

impl InPlace {
    fn new(name: &str) -> InPlace {
        let dir = std::env::temp_dir().join(format!("ovl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["l", "u", "w"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        InPlace { dir }
    }

    /// `rel` in the scratch directory (`l/f`: the lower file `f`).
    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.join(rel)
    }

    /// Writes `text` to `rel` (in the scratch directory), making its parents.
    fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// The lower directory, every file's metadata and contents.
    fn lower_dump(&self) -> String {
        tree_dump(&self.path("l"), &DumpOpts::exact())
    }

    /// Runs `command` with `args` in the view, from the lower directory.
    fn run(&self, command: &[&str], args: &[&std::ffi::OsStr]) -> std::process::Output {
        let at = |d: &str| self.path(d).into_os_string();
        Command::new(ovl_exec())
            .env("OVL_SHIM", shim())
            .current_dir(self.path("l"))
            .arg("-l")
            .arg(at("l"))
            .arg("-u")
            .arg(at("u"))
            .arg("-w")
            .arg(at("w"))
            .arg("--")
            .args(command)
            .args(args)
            .output()
            .unwrap()
    }

    /// The lower program `./program`, which appends to the lower file `a`
    /// and removes `b`, is refused with `reason`, by `ovl-exec` (exit 126)
    /// and at an `exec` in the view; the lower directory stays as it was.
    fn assert_refused(&self, program: &str, reason: &str) {
        self.write("l/a", "a\n");
        self.write("l/b", "b\n");
        let before = self.lower_dump();
        let direct = self.run(&[program], &[]);
        let shell = format!("{program}; echo \"exit $?\"; cat a b");
        let from_shell = self.run(&["sh", "-c", &shell], &[]);
        assert_eq!(direct.status.code(), Some(126), "{program}");
        let stderr = String::from_utf8_lossy(&direct.stderr);
        assert!(stderr.contains(reason), "{program}: {stderr}");
        assert_eq!(
            String::from_utf8_lossy(&from_shell.stdout),
            "exit 126\na\nb\n",
            "{program}: {}",
            String::from_utf8_lossy(&from_shell.stderr)
        );
        assert_eq!(
            self.lower_dump(),
            before,
            "{program}: the lower directory changed"
        );
    }
}

impl Drop for InPlace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The same over the lower directory itself: `lchmod` by the view's name
/// used to change the lower file in place.
#[test]
fn lchmod_in_a_view_over_the_lower_directory_changes_only_the_copy() {
    let view = InPlace::new("lchmod");
    view.write("l/f", "f\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(view.path("l/f"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = view.run(
        &["python3", "-c", r#"import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
print('lchmod', libc.lchmod(sys.argv[1].encode(), 0o600), oct(os.stat(sys.argv[1]).st_mode & 0o777))"#],
        &[view.path("l/f").as_os_str()],
    );
    let mode = |p: &str| {
        std::fs::metadata(view.path(p))
            .map(|m| m.permissions().mode() & 0o777)
            .ok()
    };
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "lchmod 0 0o600\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode("l/f"), Some(0o644), "the lower file's mode changed");
    assert_eq!(mode("u/f"), Some(0o600), "the copy has the new mode");
}

/// Calls made through libc's generic `syscall` in a view over the lower
/// directory itself: removing, renaming, writing, `chmod`, `mkdir`, xattrs
/// and a change through a read-only descriptor went to the lower directory
/// (the real directory behind the view); they reach the overlay now, and
/// the lower directory stays as it was. `openat2` and `setxattrat` are
/// refused there (`ENOSYS`: their rules of resolution, or their
/// descriptor-and-path form, are not the hooks'), so a program falls back
/// to the calls it has for older kernels.
#[test]
fn changes_made_through_syscall_leave_the_lower_directory_unchanged() {
    let view = InPlace::new("rawcalls");
    for f in ["f", "g", "h", "d/k"] {
        view.write(&format!("l/{f}"), &format!("{f}\n"));
    }
    let before = view.lower_dump();
    let out = view.run(
        &[
            "python3",
            "-c",
            r#"import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def say(what, r):
    print(what, r if r >= 0 else os.strerror(ctypes.get_errno()))
sc = libc.syscall
say('unlink', sc(87, b'f'))
say('rename', sc(82, b'g', b'g2'))
fd = sc(2, b'h', os.O_WRONLY | os.O_APPEND)
os.write(fd, b'raw\n'); os.close(fd)
say('chmod', sc(90, b'd/k', 0o600))
say('mkdir', sc(83, b'e', 0o755))
say('setxattr', sc(188, b'd', b'user.raw', b'v', 1, 0))
ro = os.open('d/k', os.O_RDONLY)
say('fchmod', sc(91, ro, 0o640))
how = (ctypes.c_uint64 * 3)(os.O_RDONLY, 0, 0)
say('openat2', sc(437, -100, b'h', how, 24))
say('setxattrat', sc(463, -100, b'h', 0, b'user.at', None, 0))
print(sorted(os.listdir('.')), open('h').read().split(), oct(os.stat('d/k').st_mode & 0o777))"#,
        ],
        &[],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "unlink 0\nrename 0\nchmod 0\nmkdir 0\nsetxattr 0\nfchmod 0\n\
         openat2 Function not implemented\nsetxattrat Function not implemented\n\
         ['d', 'e', 'g2', 'h'] ['h', 'raw'] 0o640\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(view.lower_dump(), before, "the lower directory changed");
    assert_eq!(
        std::fs::read_to_string(view.path("u/h")).ok().as_deref(),
        Some("h\nraw\n"),
        "the copy has the write"
    );
}

/// A program the Go toolchain built makes its system calls itself, past
/// every hook, even when it is dynamically linked (cgo): in a view over the
/// lower directory itself, its writes and removals changed that directory.
/// It is refused, by `ovl-exec` and at an `exec` in the view, as statically
/// linked programs are; the lower directory stays as it was. Needs `go`
/// (golang-go; `scripts/test.sh` installs it as root).
#[test]
fn programs_built_by_go_are_refused() {
    if Command::new("go").arg("version").output().is_err() {
        eprintln!("skipped: no `go` here (install golang-go)");
        return;
    }
    let view = InPlace::new("go");
    view.write(
        "src/main.go",
        "package main\n\n// #include <stdlib.h>\nimport \"C\"\nimport \"os\"\n\n\
         func main() {\n\t_ = C.abs(1)\n\tf, _ := os.OpenFile(\"a\", os.O_APPEND|os.O_WRONLY, 0)\n\
         \t_, _ = f.WriteString(\"go\\n\")\n\t_ = os.Remove(\"b\")\n}\n",
    );
    view.write("src/go.mod", "module gowrites\n\ngo 1.19\n");
    let built = Command::new("go")
        .args(["build", "-o", "../l/gowrites", "."])
        .current_dir(view.path("src"))
        .env("GOCACHE", view.path("cache"))
        .env("GOPATH", view.path("gopath"))
        .env("CGO_ENABLED", "1")
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    view.assert_refused("./gowrites", "built by the Go toolchain");
    // Given to the dynamic loader run as a program, too; `ldd`, which only
    // lists its libraries, still may.
    let before = view.lower_dump();
    let loader = "loader=$(readelf -l /bin/true | sed -n 's/.*interpreter: \\(.*\\)]/\\1/p')\n\
                  \"$loader\" ./gowrites; echo \"loader: $?\"\n\
                  ldd ./gowrites > /dev/null; echo \"ldd: $?\"\ncat a b";
    let out = view.run(&["sh", "-c", loader], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "loader: 126\nldd: 0\na\nb\n",
        "{stderr}"
    );
    assert!(stderr.contains("built by the Go toolchain"), "{stderr}");
    assert_eq!(view.lower_dump(), before, "the lower directory changed");
}

/// Programs of another loader than the one the overlay is built for are
/// refused with a clear reason, by `ovl-exec` and at an `exec` in the
/// view, and the lower directory stays as it was: a 32-bit program (its
/// loader ignored the 64-bit shim and ran it unseen: in a view over the
/// lower directory itself, its write and removal changed that directory)
/// and a musl program (its loader failed to start it with the glibc-built
/// shim). Needs `gcc -m32` (gcc-multilib) and `musl-gcc` (musl-tools);
/// `scripts/test.sh` installs them as root; each is skipped without.
#[test]
fn programs_of_another_loader_are_refused() {
    for (compiler, flags) in [("gcc", &["-m32"][..]), ("musl-gcc", &[][..])] {
        let view = InPlace::new(&format!("loader-{compiler}"));
        view.write(
            "m.c",
            "#include <stdio.h>\n#include <unistd.h>\n\
             int main(void) { FILE *f = fopen(\"a\", \"a\"); if (f) fputs(\"other\\n\", f); return unlink(\"b\"); }\n",
        );
        let built = Command::new(compiler)
            .args(flags)
            .args(["-o", "l/m", "m.c"])
            .current_dir(view.path(""))
            .output();
        if !built.is_ok_and(|b| b.status.success()) {
            eprintln!(
                "skipped: `{compiler} {}` cannot build here",
                flags.join(" ")
            );
            continue;
        }
        view.assert_refused("./m", "is not the loader the overlay is built for");
    }
}

/// io_uring's operations are made by the kernel, where no hook sees them:
/// a program linked with liburing, which sets a ring up with the system
/// call instruction itself, not through libc, could write a lower layer
/// through it. In a process that has liburing loaded the kernel refuses
/// `io_uring_setup` (and `openat2`, whose rules of resolution the hooks do
/// not follow) to it and every process it starts, with `ENOSYS`, as a
/// kernel without them would; other calls go through, and processes
/// without liburing pay nothing (no filter: `Seccomp: 0`). Needs liburing
/// (liburing-dev; `scripts/test.sh` installs it as root).
#[cfg(target_arch = "x86_64")]
#[test]
fn io_uring_set_up_by_the_instruction_itself_is_refused_in_a_view() {
    let view = InPlace::new("uring");
    view.write(
        "raw.c",
        r#"#include <stdio.h>
#include <string.h>
static long raw(long n, long a, long b, long c, long d) {
    long r;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
    return r;
}
int main(void) {
    char params[120];
    unsigned long long how[3] = {0, 0, 0};
    memset(params, 0, sizeof params);
    long r = raw(425, 4, (long)params, 0, 0);
    printf("io_uring_setup %s\n", r >= 0 ? "ring" : strerror(-r));
    r = raw(437, -100, (long)".", (long)how, 24);
    printf("openat2 %s\n", r >= 0 ? "opened" : strerror(-r));
    printf("getppid %s\n", raw(110, 0, 0, 0, 0) > 0 ? "answered" : "refused");
    return 0;
}
"#,
    );
    let built = Command::new("cc")
        .args(["-o", "raw", "raw.c", "-Wl,--no-as-needed", "-luring"])
        .current_dir(view.path(""))
        .output()
        .unwrap();
    if !built.status.success() {
        eprintln!("skipped: no liburing to link with here (install liburing-dev)");
        return;
    }
    let raw = view.path("raw");
    let native = Command::new(&raw).output().unwrap();
    let native = String::from_utf8_lossy(&native.stdout);
    if !native.contains("io_uring_setup ring") {
        eprintln!("skipped: this kernel gives no io_uring ring here: {native}");
        return;
    }
    let shell = format!("{} && grep '^Seccomp:' /proc/self/status", raw.display());
    let in_view = view.run(&["sh", "-c", &shell], &[]);
    assert_eq!(
        String::from_utf8_lossy(&in_view.stdout),
        "io_uring_setup Function not implemented\nopenat2 Function not implemented\ngetppid answered\nSeccomp:\t0\n",
        "{}",
        String::from_utf8_lossy(&in_view.stderr)
    );
}

/// `utimensat` and `fchownat` with an empty name and `AT_EMPTY_PATH`
/// change the descriptor's own object, an `O_PATH` one's too (and
/// `futimesat` with a NULL name, an open file's): on a lower
/// file of the view they copy it up and change the copy, as the kernel's
/// overlayfs does (they changed the lower file itself).
#[test]
fn empty_path_changes_of_a_descriptor_change_the_copy() {
    require_root!();
    let fx = Fixture::new(1);
    fx.lower(1)
        .file("f", "f\n")
        .file("g", "g\n")
        .file("h", "h\n")
        .file("k", "k\n");
    compare_changes(
        &fx,
        r#"python3 - <<'EOF'
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
tv = (ctypes.c_long * 4)(3000, 0, 3000, 0)
fd = os.open('k', os.O_RDONLY)
r = libc.futimesat(fd, None, tv)
print('futimesat without a name', r, os.strerror(ctypes.get_errno()) if r else '')
ts = (ctypes.c_long * 4)(1000, 0, 2000, 0)
for name, flags in [('f', os.O_PATH), ('g', os.O_RDONLY)]:
    fd = os.open(name, flags)
    r = libc.utimensat(fd, b'', ts, 0x1000)
    print('utimensat', name, r, os.strerror(ctypes.get_errno()) if r else '')
    r = libc.fchownat(fd, b'', 7, 8, 0x1000)
    print('fchownat', name, r, os.strerror(ctypes.get_errno()) if r else '')
fd = os.open('h', os.O_PATH)
r = libc.fchownat(fd, b'', 7, 8, 0)
print('fchownat without the flag', r, os.strerror(ctypes.get_errno()) if r else '')
EOF
stat -c '%n %u %g %Y' f g h k
"#,
        &[
            "f 7 8 2000\ng 7 8 2000\nh 0 0",
            "futimesat without a name 0",
            "k 0 0 3000",
        ],
    );
}

/// A pipe's reads and writes stamp its fifo's times: through the view they
/// land on a copy of a lower fifo (readers and writers still meet on one
/// pipe), never on the lower fifo, as the kernel's overlay runs the pipe on
/// its own inode. (The kernel's view keeps showing the lower fifo's times;
/// ovl's shows the copy's.)
#[test]
fn a_lower_fifo_carries_data_and_keeps_its_times() {
    require_root!();
    let fx = Fixture::new(1);
    fx.lower(1).fifo("d/pipe").mtime("d/pipe", 1_000_000_000, 0);
    compare_runs(
        &fx,
        "(echo one > d/pipe &)\ncat d/pipe\n\
         cat d/pipe & sleep 0.2; echo two > d/pipe; wait\n\
         python3 -c \"import os; fd = os.open('d/pipe', os.O_RDONLY | os.O_NONBLOCK); print(os.read(fd, 9)); os.close(fd)\"\n\
         stat -c %F d/pipe",
    );
}

/// A change made through this process's link to a descriptor of the view
/// (`/proc/self/fd/N`, `/dev/fd/N`, and names below a directory's) is made
/// in the view, as the kernel's link leads to the overlay's object: the
/// file is copied up and changed, the lower one stays as it was.
#[test]
fn changes_through_a_descriptors_link_change_the_copy() {
    require_root!();
    let fx = Fixture::new(1);
    fx.lower(1)
        .file("f", "0123456789\n")
        .file("g", "g\n")
        .file("d/h", "h\n");
    compare_changes(
        &fx,
        r#"exec 3<f; chmod 600 /proc/self/fd/3; echo "chmod $?"
python3 - <<'EOF'
import os
fd = os.open('g', os.O_RDONLY)
os.utime('/proc/self/fd/%d' % fd, (1, 1))
os.setxattr('/dev/fd/%d' % fd, 'user.k', b'v')
os.truncate('/proc/%d/fd/%d' % (os.getpid(), os.open('f', os.O_RDONLY)), 3)
d = os.open('d', os.O_RDONLY)
os.chmod('/proc/self/fd/%d/h' % d, 0o604)
print('done', os.stat('g').st_mtime, os.getxattr('g', 'user.k'))
EOF
stat -c '%a %s %n' f g d/h
"#,
        &["chmod 0", "done 1.0 b'v'"],
    );
}

/// Ways around the checks a program might take: pointing its children at
/// other layers (a child with another `OVL_LOWER` or `OVL_UPPER` gets this
/// overlay's; to one with another lower, the real lower layer would be a
/// plain directory), creating through a dangling symlink outside the view
/// that leads to a new name in a lower layer (made in upper, as the kernel
/// makes it in the overlay), running out of descriptors before a change
/// by a lower file's real name (refused: where it leads cannot be told),
/// moving a directory that holds a layer, to reach it by a path the
/// overlay does not know (refused with `EBUSY`), glibc's other names of
/// `open` and `fopen` (`__open`, `_IO_fopen`), and a symlink planted in
/// the upper layer by its real path over a directory the process knows
/// (what it knew is dropped: the view then shows the symlink, which leads
/// out of the view).
#[test]
fn ways_around_the_checks_leave_the_lower_unchanged() {
    require_root!();
    let fx = Fixture::new(1);
    fx.lower(1)
        .file("f", "f\n")
        .file("d/g", "g\n")
        .file("d/h", "h\n")
        .file("p/q/k", "k\n");
    let before = fx.snapshot_lowers();
    let out = run_ovl(
        &fx,
        r#"L="$OVL_LOWER"
OVL_LOWER=/elsewhere sh -c 'echo child >> "$0/f"' "$L"; echo "child with another lower: $?"
OVL_UPPER="$L" sh -c 'echo up >> "$0/d/g"' "$L"; echo "child with the lower as upper: $?"
OVL_TRACE="$L/trace" sh -c 'cat "$0/f" > /dev/null' "$L"
P=$(dirname "$L"); mv "$P" "$P.moved" 2>/dev/null; echo "rename of the lower's parent: $?"
echo moved >> "$P.moved/$(basename "$L")/f" 2>/dev/null
t=$(mktemp -d); ln -s "$L/d/new" "$t/dangling"; ln -s dangling "$t/chain"
echo new > "$t/chain"; echo "create through a dangling link: $?"
ln -s "$L/d/excl" "$t/x"
python3 -c "import os, sys
try:
    os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY); print('exclusive create through a dangling link: made')
except OSError as e:
    print('exclusive create through a dangling link:', e.strerror)" "$t/x"; rm -rf "$t"
python3 - "$L/d/h" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.__open(sys.argv[1].encode(), os.O_WRONLY | os.O_APPEND)
os.write(fd, b'by __open\n')
libc.__close(fd)
libc._IO_fopen.restype = ctypes.c_void_p
f = ctypes.c_void_p(libc._IO_fopen(sys.argv[1].encode(), b'a'))
libc.fputs(b'by _IO_fopen\n', f)
libc.fclose(f)
EOF
python3 - "$L" <<'EOF'
import os, resource, sys
L = sys.argv[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
fds = []
try:
    while True:
        fds.append(os.open('/dev/null', os.O_RDONLY))
except OSError:
    pass
for what, change in [('unlink', lambda: os.unlink(L + '/d/h')), ('chmod', lambda: os.chmod(L + '/f', 0o600)),
                     ('mkdir', lambda: os.mkdir(L + '/e')), ('append', lambda: os.open(L + '/d/h', os.O_WRONLY | os.O_APPEND))]:
    try:
        change()
        print(what, 'without descriptors: done')
    except OSError as e:
        print(what, 'without descriptors:', e.strerror)
EOF
[ -e "$OVL_TARGET/p/q/k" ]; ln -s "$L/p" "$OVL_UPPER/p"
(echo planted >> "$OVL_TARGET/p/q/k") 2>/dev/null && echo "planted symlink followed" || echo "write through a symlink planted in upper refused"
"#,
    );
    fx.assert_lowers_unchanged(&before);
    let stdout = out.out();
    for line in [
        "child with another lower: 0",
        "child with the lower as upper: 0",
        "create through a dangling link: 0",
        "rename of the lower's parent: 1",
        "exclusive create through a dangling link: File exists",
        "write through a symlink planted in upper refused",
    ] {
        assert!(stdout.contains(line), "{line:?} missing:\n{stdout}");
    }
    // Refused either way: as a change to a lower layer (a clean path's
    // real place is told without a descriptor), or for want of one to tell.
    for what in ["unlink", "chmod", "mkdir", "append"] {
        let refused = ["Read-only file system", "Too many open files"]
            .map(|why| format!("{what} without descriptors: {why}"));
        assert!(
            refused.iter().any(|line| stdout.contains(line)),
            "{what} without descriptors: not refused:\n{stdout}"
        );
    }
    let upper = fx.upper_dir();
    assert_eq!(
        std::fs::read_to_string(upper.join("d/new")).ok().as_deref(),
        Some("new\n"),
        "the new name is made in upper"
    );
    assert!(
        !upper.join("d/excl").exists(),
        "O_EXCL follows no final symlink"
    );
    assert_eq!(
        std::fs::read_to_string(upper.join("f")).ok().as_deref(),
        Some("f\nchild\n")
    );
    assert_eq!(
        std::fs::read_to_string(upper.join("d/g")).ok().as_deref(),
        Some("g\nup\n")
    );
    assert_eq!(
        std::fs::read_to_string(upper.join("d/h")).ok().as_deref(),
        Some("h\nby __open\nby _IO_fopen\n"),
        "glibc's other names of open and fopen go through the view"
    );
}

/// A program that crashes with core dumps allowed (`ulimit -c`) while it
/// stands in a directory of a lower layer alone dumps no core there: the
/// kernel writes a core into the real current directory, which is then the
/// lower one (the kernel's overlay would write it into the upper layer; ovl
/// holds the dump off, README Limitations). In a directory of the upper
/// layer the core is written, and the program, its subshells and its
/// children read back the limit it set wherever they stand.
#[test]
fn a_crash_in_a_lower_directory_dumps_no_core_into_it() {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    if pattern.starts_with('/') || pattern.starts_with('|') {
        eprintln!(
            "skipped: kernel.core_pattern is {:?}: cores do not go to the current directory, \
             so none could reach a lower layer here",
            pattern.trim_end()
        );
        return;
    }
    let fx = Fixture::new(1);
    fx.lower(1).file("sub/f", "data\n");
    let snapshot = fx.snapshot_lowers();
    // The soft limit by `getrlimit`, `prlimit` and `syscall(SYS_prlimit64)`.
    let read_limits = "import ctypes, resource as r\n\
        libc = ctypes.CDLL(None)\n\
        raw = (ctypes.c_int64 * 2)()\n\
        libc.syscall(302, 0, r.RLIMIT_CORE, None, raw)\n\
        soft = [r.getrlimit(r.RLIMIT_CORE)[0], r.prlimit(0, r.RLIMIT_CORE)[0], raw[0]]\n\
        print('python:', [s == r.RLIM_INFINITY for s in soft])";
    let out = run_ovl(
        &fx,
        &format!(
            "READ_LIMITS=\"{read_limits}\"\n{}",
            "ulimit -c unlimited || exit 9\n\
         echo \"set: $(ulimit -c)\"\n\
         cd sub\n\
         echo \"in lower: $(ulimit -c)\"\n\
         python3 -c \"$READ_LIMITS\"\n\
         sh -c 'echo \"child: $(ulimit -c)\"; kill -SEGV $$'\n\
         echo \"crashed in lower: $?\"\n\
         mkdir ../made && cd ../made\n\
         sh -c 'kill -SEGV $$'\n\
         echo \"crashed in upper: $?\"\n\
         ls ../sub"
        ),
    );
    if out.code == 9 {
        eprintln!(
            "skipped: the hard core limit cannot be raised here: {}",
            out.stderr
        );
        return;
    }
    assert_eq!(
        out.stdout,
        "set: unlimited\nin lower: unlimited\npython: [True, True, True]\nchild: unlimited\n\
         crashed in lower: 139\n\
         crashed in upper: 139\nf\n",
        "{out:?}"
    );
    fx.assert_lowers_unchanged(&snapshot);
    let cores = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| n.starts_with("core"))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        !cores(&fx.upper_dir().join("made")).is_empty(),
        "no core dumped in a directory of the upper layer: {out:?}"
    );
    assert!(
        cores(&fx.upper_dir().join("sub")).is_empty() && !fx.upper_dir().join("sub").exists(),
        "the lower directory was copied up: {out:?}"
    );
}

/// Reading through the view stamps no access time in a lower layer: the
/// kernel's overlay reads its layers with `O_NOATIME`, and so does ovl
/// (where the caller owns the object or may change it, the kernel's rule
/// for the flag): the program's reads of files (`open`, `fopen`, a shell's
/// redirection) and directories, and its own (merged listings, copy-ups).
/// The program does not see the flag. Every lower object's access time is
/// set before its change time first, so that this `relatime` file system
/// would stamp each at its first read.
#[test]
fn reading_through_the_view_stamps_no_lower_access_time() {
    require_root!();
    // `sed` reads its input through `fopen`.
    let script = "cat f d/g > /dev/null; head -c1 < d/e/h > /dev/null; sed -n 1p m/k > /dev/null\n\
        ls d m > /dev/null; grep -r x . > /dev/null; find . -type f > /dev/null\n\
        tar cf /dev/null .; cp -a d d2; echo more >> d/e/h\n\
        python3 -c \"import fcntl, os\n\
        fd = os.open('f', os.O_RDONLY)\n\
        fcntl.fcntl(fd, fcntl.F_SETFL, os.O_NONBLOCK)\n\
        print('flags shown:', fcntl.fcntl(fd, fcntl.F_GETFL) & (os.O_NOATIME | os.O_NONBLOCK))\n\
        print(os.read(fd, 4), open('m/k').read().strip())\"\n\
        python3 -c \"import fcntl, os; print('inherited:', fcntl.fcntl(0, fcntl.F_GETFL) & os.O_NOATIME)\" < d/g\n\
        python3 -c \"import ctypes, fcntl, os; libc = ctypes.CDLL(None); libc.fopen.restype = libc.freopen.restype = ctypes.c_void_p\n\
        s = libc.freopen(b's', b'r', ctypes.c_void_p(libc.fopen(b'/dev/null', b'r'))); fd = libc.fileno(ctypes.c_void_p(s))\n\
        print('freopen:', os.read(fd, 4), fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NOATIME)\"";
    // Each object by its name: a listing of the lower layer here would
    // stamp its directories itself.
    let atimes = |fx: &Fixture| -> Vec<String> {
        ["f", "d/g", "d/e/h", "m/k", "s", ".", "d", "d/e", "m"]
            .iter()
            .map(|n| {
                let st = rustix::fs::lstat(fx.lower_dir(1).join(n)).unwrap();
                format!("{n} {}.{:09}", st.st_atime, st.st_atime_nsec)
            })
            .collect()
    };
    for side in ["kernel", "ovl"] {
        let fx = Fixture::new(1);
        fx.lower(1)
            .file("f", "data\n")
            .file("d/g", "x\n")
            .file("d/e/h", "y\n")
            .file("m/k", "z\n")
            .file("s", "read\n");
        fx.upper().file("m/new", "n\n");
        let aged = Command::new("find")
            .arg(fx.lower_dir(1))
            .args(["-exec", "touch", "-a", "-h", "-d", "@978307200", "{}", "+"])
            .status()
            .unwrap();
        assert!(aged.success());
        let before = atimes(&fx);
        let out = match side {
            "kernel" => run_kernel(&fx, script),
            _ => run_ovl(&fx, script),
        };
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (
                0,
                "flags shown: 2048\nb'data' z\ninherited: 0\nfreopen: b'read' 0\n"
            ),
            "{side}: {out:?}"
        );
        let after = atimes(&fx);
        assert_eq!(
            after, before,
            "{side}: a read through the view stamped a lower access time"
        );
    }
}
