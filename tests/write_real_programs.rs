//! Real programs changing a tree held in a lower layer: under `ovl-exec`
//! they must leave the tree the kernel's overlayfs leaves (the same view,
//! the same upper records), and the lower layer unchanged.

mod common;

use common::*;
use std::process::Command;

/// Runs `script` on both sides, then compares the final views and uppers.
/// Returns ovl's run of the script.
fn same_as_kernel(fx: &Fixture, script: &str, probe: &str) -> Outcome {
    let pair = fx.pair();
    let (_, ran) = pair.run(&format!("set +e\n{script}\n{probe}"));
    let k = run_kernel(&pair.kernel, probe);
    let o = run_kernel(&pair.ovl, probe);
    compare(&k, &o);
    ran
}

/// Panics unless the run's output holds each of `steps`: the two sides
/// did not just fail alike.
fn assert_ran(out: &Outcome, steps: &[&str]) {
    for step in steps {
        assert!(
            out.out().contains(step),
            "expected {step:?} in:\n{}",
            out.out()
        );
    }
}

fn source_tree() -> Fixture {
    let fx = Fixture::new(1);
    fx.lower(1)
        .file("src/main.c", "#include \"util.h\"\nint main(void) { return util(); }\n")
        .file("src/util.c", "int util(void) { return 0; }\n")
        .file("src/util.h", "int util(void);\n")
        .file(
            "src/Makefile",
            "prog: main.o util.o\n\t$(CC) -o $@ $^\n%.o: %.c util.h\n\t$(CC) -c $< -o $@\nclean:\n\trm -f *.o prog\n",
        )
        .file("doc/readme.txt", "hello\nworld\n")
        .file_mode("doc/run.sh", "#!/bin/sh\necho run\n", 0o755)
        .dir("doc/empty");
    fx
}

#[test]
fn coreutils_change_the_tree_as_under_the_kernel() {
    require_root!();
    same_as_kernel(
        &source_tree(),
        "cp -a doc doc2 && echo cp $?\n\
         mv doc2/readme.txt doc2/README && echo mv $?\n\
         sed -i s/world/there/ doc/readme.txt && echo sed $?\n\
         chmod -R go-rwx doc && echo chmod $?\n\
         touch -d '2010-01-01' doc/readme.txt && echo touch $?\n\
         ln -s readme.txt doc/link && ln doc/run.sh doc/run2.sh && echo ln $?\n\
         tar cf /tmp/ovl-tar-$$.tar -C doc . && mkdir unpacked && tar xf /tmp/ovl-tar-$$.tar -C unpacked && echo tar $?\n\
         rm -f /tmp/ovl-tar-$$.tar\n\
         rm -rf src && echo rm $?",
        &format!("{LIST}{CAT_ALL}"),
    );
}

/// Editors and file tools on files held in lower, each its own way of
/// writing: `ed` (rewrites in place), `shred -u` (overwrites, then renames
/// and removes), `fallocate` (punches a hole, extends, collapses a range),
/// `split`/`csplit`, `sort -o` onto its input, `install -D`, `touch -r`,
/// `truncate` through a symlink, and Python's write-to-a-temporary and
/// `os.replace` then a hard link. The kernel then shows ovl's upper as it
/// showed its own; the lower layer stays as it was.
#[test]
fn editors_and_file_tools_change_the_tree_as_under_the_kernel() {
    require_root!();
    let fx = source_tree();
    let numbers: String = (1..=3000).map(|i| format!("{i}\n")).collect();
    fx.lower(1)
        .file("data/a", &numbers)
        .file("data/b", &numbers)
        .file("data/c", &numbers)
        .file("data/e", &numbers)
        .symlink("data/sa", "a");
    let ran = same_as_kernel(
        &fx,
        "cd data\n\
         printf '1,2d\\nw\\nq\\n' | ed -s ../doc/readme.txt && echo ed\n\
         shred -u a && echo shred\n\
         fallocate -p -o 0 -l 4096 b && fallocate -l 100000 c && echo fallocate\n\
         fallocate -c -o 0 -l 4096 e; echo \"collapse $?\"\n\
         split -l 700 b part_ && csplit -s -f cs_ c 1000 && echo split\n\
         sort -rn -o e e && echo sort\n\
         install -D -m 600 ../src/util.c deep/er/util.c && touch -r ../src/util.h deep && echo install\n\
         truncate -s 10 sa && echo truncate\n\
         python3 -c \"import os, tempfile\n\
fd, t = tempfile.mkstemp(dir='.')\n\
os.write(fd, b'atomic\\n'); os.fsync(fd); os.close(fd)\n\
os.replace(t, 'b'); os.link('b', 'b.hard'); print('replaced')\"\n\
         cd ..",
        &format!("{LIST}{CAT_ALL}"),
    );
    assert_ran(
        &ran,
        &[
            "ed",
            "shred",
            "fallocate",
            "split",
            "sort",
            "install",
            "truncate",
            "replaced",
        ],
    );
}

#[test]
fn make_builds_in_place() {
    require_root!();
    same_as_kernel(
        &source_tree(),
        "make -s -C src && ./src/prog; echo built $?\n\
         make -s -C src && echo nothing to do\n\
         touch src/util.h && make -C src | sort\n\
         make -s -C src clean && echo cleaned",
        LIST,
    );
}

#[test]
fn git_commits_and_checks_out_in_a_repository_held_in_lower() {
    require_root!();
    let fx = source_tree();
    fx.kernel_prepare(
        "git init -q . && git -c user.name=t -c user.email=t@t add -A && \
         GIT_COMMITTER_DATE='2020-01-01T00:00:00Z' git -c user.name=t -c user.email=t@t \
         commit -qm first --date='2020-01-01T00:00:00Z'",
    );
    // The kernel wrote the repository into upper: make it the lower layer.
    let fx = fx.stacked(true);
    let env = "export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t \
               GIT_AUTHOR_DATE='2021-01-01T00:00:00Z' GIT_COMMITTER_DATE='2021-01-01T00:00:00Z'";
    same_as_kernel(
        &fx,
        &format!(
            "{env}\n\
             echo change >> doc/readme.txt && git add doc && git commit -qm second && echo committed\n\
             git checkout -q -b topic && rm doc/run.sh && git commit -qam third && echo topic\n\
             git checkout -q master 2>/dev/null || git checkout -q main\n\
             git status --porcelain; git log --format=%s | cat"
        ),
        "git status --porcelain; git log --all --format=%s | sort; find doc src | sort",
    );
}

/// git's history rewriting and tree moves in a repository held in lower:
/// `stash`, `rebase`, `cherry-pick`, `mv` of a directory (a lower
/// directory: `rename` fails with `EXDEV` on both, and git reports it),
/// `worktree add`, `gc` (packs written, loose objects removed: whiteouts),
/// `reset --hard` and `clean -fdx`. The kernel then shows ovl's upper as it
/// showed its own.
#[test]
fn git_rewrites_history_and_moves_trees_as_under_the_kernel() {
    require_root!();
    let fx = source_tree();
    fx.kernel_prepare(
        "git init -q -b main . && git -c user.name=t -c user.email=t@t add -A && \
         GIT_COMMITTER_DATE='2020-01-01T00:00:00Z' git -c user.name=t -c user.email=t@t \
         commit -qm first --date='2020-01-01T00:00:00Z'",
    );
    let fx = fx.stacked(true);
    let env = "export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t \
               GIT_AUTHOR_DATE='2021-01-01T00:00:00Z' GIT_COMMITTER_DATE='2021-01-01T00:00:00Z'";
    let ran = same_as_kernel(
        &fx,
        &format!(
            "{env}\n\
             echo stashed >> doc/readme.txt && git stash -q && git stash list | wc -l && echo stash\n\
             git checkout -q -b side && echo side > src/side.c && git add src && git commit -qm side && echo side\n\
             git checkout -q main && echo more >> src/util.h && git commit -qam main && echo main\n\
             git rebase -q main side && git log --format=%s | cat && echo rebased\n\
             git checkout -q main && git cherry-pick side >/dev/null && echo picked\n\
             git stash pop -q && git commit -qam popped && echo popped\n\
             git mv doc manual; echo \"mv $?\"\n\
             git mv doc/readme.txt doc/README && git commit -qm renamed && echo renamed\n\
             git worktree add -q wt side && echo worktree\n\
             git gc -q --prune=now && echo gc\n\
             echo junk > junk.txt && mkdir -p build && touch build/x && git clean -fdxq && echo cleaned\n\
             echo lost >> src/main.c && git reset -q --hard && echo reset\n\
             git fsck --no-progress 2>&1 | grep -v '^dangling' | cat; git status --porcelain"
        ),
        "git log --all --format=%s | sort; git worktree list --porcelain | grep -c worktree; \
         find . -path ./.git/objects -prune -o -path ./.git/logs -prune -o -print | grep -v '/index$' | sort; \
         ls .git/objects/pack | sed 's/-[0-9a-f]*\\./-X./' | sort",
    );
    assert_ran(
        &ran,
        &[
            "stash", "side", "main", "rebased", "picked", "popped", "renamed", "worktree", "gc",
            "cleaned", "reset",
        ],
    );
}

/// `git clone` of a repository held in lower hard-links its objects and
/// checks that each link has the source's inode number: the link copies
/// the object up, and the copy must keep its origin's number, as on the
/// kernel's overlayfs (else git refuses: "hardlink different from source").
#[test]
fn git_clones_a_repository_held_in_lower() {
    require_root!();
    let fx = source_tree();
    fx.kernel_prepare(
        "git init -q . && git -c user.name=t -c user.email=t@t add -A && \
         git -c user.name=t -c user.email=t@t commit -qm first",
    );
    let fx = fx.stacked(true);
    same_as_kernel(
        &fx,
        "git clone -q . clone && echo cloned\ngit -C clone log --format=%s | cat",
        "git -C clone status --porcelain; find clone/doc clone/src | sort",
    );
}

/// npm installs a local package into a project held in lower (offline):
/// `node_modules`, its `.bin` link, `package.json` rewritten by rename;
/// `npx` runs the installed program. The kernel then shows ovl's upper as
/// it showed its own.
#[test]
fn npm_installs_a_local_package_into_a_project_in_lower() {
    require_root!();
    let fx = Fixture::new(1);
    fx.lower(1)
        .file(
            "proj/package.json",
            "{\"name\":\"proj\",\"version\":\"1.0.0\"}\n",
        )
        .file(
            "pkg/package.json",
            "{\"name\":\"pkg\",\"version\":\"1.0.0\",\"bin\":{\"pkg\":\"bin/pkg.js\"}}\n",
        )
        .file_mode(
            "pkg/bin/pkg.js",
            "#!/usr/bin/env node\nconsole.log('pkg ran')\n",
            0o755,
        );
    same_as_kernel(
        &fx,
        "cd proj && npm install --offline --no-audit --no-fund --install-links ../pkg > /dev/null 2>&1; \
         echo npm $?; npx pkg; cd ..",
        "cat proj/package.json; find proj/node_modules -path '*/.package-lock.json' -prune -o -print | sort; \
         readlink proj/node_modules/.bin/pkg",
    );
}

#[test]
fn sqlite_writes_a_database_held_in_lower() {
    require_root!();
    let fx = Fixture::new(1);
    fx.lower(1).dir("db");
    fx.kernel_prepare("sqlite3 db/app.db 'create table t(x); insert into t values (1),(2);'");
    let fx = fx.stacked(true);
    same_as_kernel(
        &fx,
        "sqlite3 db/app.db 'insert into t values (3); update t set x = x * 10;' && echo wrote\n\
         sqlite3 db/app.db 'select sum(x) from t;'",
        "sqlite3 db/app.db 'select group_concat(x) from t;'; ls db",
    );
}

/// Programs that change a lower file in their own ways: `chattr` (the
/// `FS_IOC_SETFLAGS` ioctl, on a descriptor opened read-only), `gzip`
/// (a new file given the old one's mode and times through its descriptor,
/// then the old one removed), `zip`/`unzip`, SQLite in WAL mode (the
/// database switched, written, checkpointed, its `-wal` and `-shm` files
/// made beside it and removed), a `lockf` lock taken before a write, and
/// `touch -r`.
#[test]
fn file_flags_compressors_and_sqlite_wal_as_under_the_kernel() {
    require_root!();
    let fx = Fixture::new(1);
    fx.lower(1)
        .file("log/app.log", "started\n")
        .file("log/old.log", "old\nold\nold\n")
        .file("docs/a.txt", "alpha\n")
        .file("docs/b.txt", "beta\n")
        .file("ref", "reference\n")
        .dir("db");
    fx.kernel_prepare("touch -d '2001-02-03 04:05:06' ref && sqlite3 db/app.db 'create table t(x); insert into t values (1),(2);'");
    let fx = fx.stacked(true);
    // File flags are a feature of the upper layer's file system (ext4, XFS,
    // btrfs; not tmpfs): where it has none, both sides fail alike.
    let has_flags = Command::new("lsattr")
        .arg("-d")
        .arg(fx.upper_dir())
        .output()
        .is_ok_and(|o| o.status.success());
    let mut ran = vec![
        "gzip 0",
        "zip 0",
        "wal 0",
        "checkpoint 0",
        "lockf 0",
        "1,2,3",
    ];
    if has_flags {
        ran.extend(["appendonly 0", "append 0", "-----a", "immutable 1"]);
    } else {
        eprintln!("the upper layer's file system has no file flags: chattr's part compared only");
    }
    compare_changes(
        &fx,
        "set +e\n\
         chattr +a log/app.log && echo appendonly $?\n\
         echo more >> log/app.log; echo append $?\n\
         echo over > log/app.log 2>/dev/null; echo overwrite $?\n\
         lsattr log/app.log | cut -d' ' -f1\n\
         chattr -a log/app.log; chattr +i docs/b.txt; rm -f docs/b.txt 2>/dev/null; echo immutable $?\n\
         chattr -i docs/b.txt; lsattr docs/b.txt | cut -d' ' -f1\n\
         gzip log/old.log && echo gzip $?\n\
         ls log; gzip -dc log/old.log.gz\n\
         zip -qrX docs.zip docs && mkdir out && (cd out && unzip -q ../docs.zip) && rm docs.zip && echo zip $?\n\
         cat out/docs/a.txt\n\
         sqlite3 db/app.db 'pragma journal_mode=wal; insert into t values (3); select sum(x) from t;' && echo wal $?\n\
         sqlite3 db/app.db 'pragma wal_checkpoint(truncate); pragma journal_mode=delete;' && echo checkpoint $?\n\
         ls db\n\
         python3 -c 'import fcntl, os; fd = os.open(\"docs/a.txt\", os.O_RDWR | os.O_APPEND); fcntl.lockf(fd, fcntl.LOCK_EX); os.write(fd, b\"locked\\n\"); os.close(fd)' && echo lockf $?\n\
         touch -r ref docs/a.txt && stat -c '%Y' ref docs/a.txt | uniq | wc -l\n\
         sqlite3 db/app.db 'select group_concat(x) from t;'",
        &ran,
    );
}

#[test]
fn python_venv_with_a_local_package_installed() {
    require_root!();
    let fx = Fixture::new(1);
    fx.lower(1)
        .file("proj/pkg/mypkg/__init__.py", "VALUE = 42\n")
        .file("proj/pkg/setup.py", "from setuptools import setup\nsetup(name='mypkg', version='0.1', packages=['mypkg'])\n");
    same_as_kernel(
        &fx,
        "python3 -m venv proj/venv && echo venv $?\n\
         (cd proj/pkg && ../venv/bin/python setup.py -q install > /dev/null 2>&1; echo install $?)\n\
         (cd / && $MNT/proj/venv/bin/python -c 'import mypkg, sys; print(mypkg.VALUE, sys.prefix.endswith(\"venv\"))')",
        "ls proj proj/venv/bin | sort; ls proj/venv/lib/python3*/site-packages | grep -c mypkg",
    );
}

#[test]
fn concurrent_copy_ups_of_one_file_both_succeed() {
    require_root!();
    let fx = Fixture::new(1);
    for i in 0..20 {
        fx.lower(1).file(&format!("f{i}"), "lower\n");
    }
    same_as_kernel(
        &fx,
        "for i in $(seq 0 19); do (echo a >> f$i & echo b >> f$i & chmod 600 f$i & wait); done; echo done",
        "for i in $(seq 0 19); do sort f$i | tr '\\n' ' '; stat -c %a f$i; done",
    );
}

/// `inotify_add_watch` on paths of the view watches the real object the
/// view shows: `tail -f` follows a file without complaining, and a watch
/// on a directory of upper reports what is made in it, as on the kernel's
/// mount. (A watch on a lower object misses changes after its copy-up:
/// README limitations.)
#[test]
fn inotify_watches_objects_of_the_view() {
    require_root!();
    same_as_kernel(
        &source_tree(),
        "mkdir up && echo x > up/f\n\
         timeout 1 tail -f doc/readme.txt; echo \"tail: $?\"\n\
         python3 -c \"\n\
import ctypes, os, struct\n\
libc = ctypes.CDLL(None, use_errno=True)\n\
fd = libc.inotify_init1(os.O_NONBLOCK)\n\
IN_MODIFY, IN_CREATE, IN_DONT_FOLLOW = 0x2, 0x100, 0x02000000\n\
watch = lambda p, m: print(p, 'watched' if libc.inotify_add_watch(fd, p.encode(), m) > 0 else os.strerror(ctypes.get_errno()))\n\
[watch(p, m) for p, m in [('up', IN_CREATE), ('up/f', IN_MODIFY), ('doc/readme.txt', IN_MODIFY), ('src', IN_CREATE), ('missing', IN_MODIFY), ('doc/run.sh', IN_MODIFY | IN_DONT_FOLLOW)]]\n\
open('up/new', 'w').close()\n\
f = open('up/f', 'a'); f.write('more'); f.close()\n\
buf, offsets, i = os.read(fd, 4096), [], 0\n\
while i < len(buf): offsets.append(i); i += 16 + struct.unpack_from('iIII', buf, i)[3]\n\
event = lambda o: (hex(struct.unpack_from('iIII', buf, o)[1] & 0xfff), buf[o + 16:o + 16 + struct.unpack_from('iIII', buf, o)[3]].rstrip(bytes(1)).decode())\n\
print(sorted(event(o) for o in offsets))\n\
\"",
        &format!("{LIST}{CAT_ALL}"),
    );
}

/// A watch on a lower file stays on the file across its copy-up, as the
/// kernel's watch on the overlay's object does: events of another
/// process's append, `chmod` and `touch`, its removal and its replacement
/// by `sed -i` (the watch ends), and of this process's own append
/// (a second watch on the name is the same watch), are the kernel's. The
/// watcher reads what another process did once it has all happened (what
/// a copy had before its watch is told summarily: see the README).
#[test]
fn inotify_watches_on_lower_files_follow_their_copy_up() {
    require_root!();
    same_as_kernel(
        &source_tree(),
        r#"cat > /tmp/ovl-watch-$$.py <<'PY'
import ctypes, os, struct, subprocess
libc = ctypes.CDLL(None, use_errno=True)
ALL = 0xfff

def events(fd):
    seen = []
    while True:
        try:
            buf, i = os.read(fd, 4096), 0
        except BlockingIOError:
            return seen
        while i < len(buf):
            wd, mask, _, n = struct.unpack_from('iIII', buf, i)
            seen.append((wd, hex(mask)))
            i += 16 + n

for path, change in [
    ('doc/readme.txt', 'echo more >> doc/readme.txt'),
    ('src/util.c', 'chmod 600 src/util.c'),
    ('src/util.h', 'touch src/util.h'),
    ('src/main.c', 'rm src/main.c'),
    ('src/Makefile', 'sed -i s/prog/app/ src/Makefile'),
]:
    fd = libc.inotify_init1(os.O_NONBLOCK)
    wd = libc.inotify_add_watch(fd, path.encode(), ALL & ~0x31)
    subprocess.run(change, shell=True)
    print(path, wd, events(fd))

fd = libc.inotify_init1(os.O_NONBLOCK)
first = libc.inotify_add_watch(fd, b'doc/run.sh', ALL)
open('doc/run.sh', 'a').write('echo more\n')
print('same watch:', libc.inotify_add_watch(fd, b'doc/run.sh', ALL) == first)
libc.inotify_rm_watch(fd, first)
print(events(fd))
PY
python3 /tmp/ovl-watch-$$.py; rm -f /tmp/ovl-watch-$$.py"#,
        &format!("{LIST}{CAT_ALL}"),
    );
}

/// A watch on a directory follows the directory's upper copy, and reads
/// its events as the kernel reports the merged directory's: a file created
/// in a directory held in lower, a removal (a whiteout made), a directory
/// made and one removed, a copy-up of a file written to (no event of its
/// own), a rename. The watcher reads what another process did once it has
/// all happened (what a copy had before its watch is told summarily).
#[test]
fn inotify_watches_on_directories_follow_their_copy_up() {
    require_root!();
    same_as_kernel(
        &source_tree(),
        r#"cat > /tmp/ovl-watch-dir-$$.py <<'PY'
import ctypes, os, struct, subprocess
libc = ctypes.CDLL(None, use_errno=True)

def events(fd):
    seen = []
    while True:
        try:
            buf, i = os.read(fd, 65536), 0
        except BlockingIOError:
            return seen
        while i < len(buf):
            wd, mask, _, n = struct.unpack_from('iIII', buf, i)
            seen.append((hex(mask), buf[i + 16:i + 16 + n].rstrip(bytes(1)).decode()))
            i += 16 + n

for path, change in [
    ('doc', 'echo n > doc/new.txt'),
    ('doc', 'rm doc/readme.txt; mkdir doc/d; rmdir doc/empty'),
    ('src', 'echo more >> src/util.c'),
    ('src', 'echo n > src/new.c; mv src/new.c src/moved.c; rm src/main.c'),
]:
    fd = libc.inotify_init1(os.O_NONBLOCK)
    libc.inotify_add_watch(fd, path.encode(), 0xfff & ~0x31)
    subprocess.run(change, shell=True)
    print(path, change, events(fd))
PY
python3 /tmp/ovl-watch-dir-$$.py; rm -f /tmp/ovl-watch-dir-$$.py"#,
        &format!("{LIST}{CAT_ALL}"),
    );
}

/// A descriptor whose watches follow copy-ups also hears the overlay's own
/// events; a wait (`select`, `poll`, `epoll`) does not count those: a copy-up of
/// another file does not wake a watcher (it would then block in `read`
/// past its timeout), a change to the watched one does, and `FIONREAD`
/// counts what the wait read ahead.
#[test]
fn inotify_waits_wake_for_the_programs_events_only() {
    require_root!();
    same_as_kernel(
        &source_tree(),
        r#"python3 - <<'PY'
import array, ctypes, fcntl, os, select, struct, subprocess, termios, time
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(0)
wd = libc.inotify_add_watch(fd, b'doc/readme.txt', 0x2)
subprocess.run('echo x >> src/util.c', shell=True)
start = time.monotonic()
print('select', select.select([fd], [], [], 1.5)[0], round(time.monotonic() - start))
p = select.poll(); p.register(fd, select.POLLIN)
print('poll', p.poll(500))
ep = select.epoll(); ep.register(fd, select.EPOLLIN)
print('epoll', ep.poll(0.5))
subprocess.Popen('sleep 0.3; echo y >> doc/readme.txt', shell=True)
print('select', select.select([fd], [], [], 5)[0] == [fd])
n = array.array('i', [0]); fcntl.ioctl(fd, termios.FIONREAD, n)
print('fionread', n[0] >= 16)
buf = os.read(fd, 4096)
print('event', struct.unpack_from('iIII', buf)[:2] == (wd, 0x2))
PY"#,
        &format!("{LIST}{CAT_ALL}"),
    );
}

/// cargo builds a crate held in lower, then rebuilds only what changed
/// (rustc allocates with jemalloc: see `shim/src/alloc.rs`). Uses the
/// toolchain that runs this test (`$CARGO`, rustc beside it).
#[test]
fn cargo_builds_a_crate_held_in_lower() {
    require_root!();
    let Some(cargo) = std::env::var_os("CARGO").map(std::path::PathBuf::from) else {
        eprintln!("skipped: $CARGO is not set (run under cargo test)");
        return;
    };
    let rustc = cargo.with_file_name("rustc");
    let fx = Fixture::new(1);
    fx.lower(1)
        .file(
            "proj/Cargo.toml",
            "[package]\nname = \"p\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        )
        .file(
            "proj/src/main.rs",
            "fn main() { println!(\"hi {}\", 6 * 7); }\n",
        );
    let env = format!(
        "export CARGO_HOME=\"$HOME/.cargo\" RUSTC='{}' CARGO_TERM_COLOR=never\n",
        rustc.display()
    );
    let cargo = cargo.display();
    same_as_kernel(
        &fx,
        &format!(
            "{env}cd proj && timeout 120 '{cargo}' build -q --offline; echo \"build $?\"\n\
             ./target/debug/p\n\
             '{cargo}' build -q --offline && echo unchanged\n\
             touch src/main.rs && '{cargo}' build --offline 2>&1 | grep -c Compiling"
        ),
        "ls proj proj/target/debug | sort",
    );
}

/// A small C project's sources, for the build systems below.
fn c_project(fx: &Fixture) {
    fx.lower(1)
        .file(
            "hello.c",
            "#include <stdio.h>\n#include \"util.h\"\nint main(void) { printf(\"%d\\n\", twice(21)); return 0; }\n",
        )
        .file("util.c", "#include \"util.h\"\nint twice(int x) { return 2 * x; }\n")
        .file("util.h", "int twice(int x);\n")
        .file_mode("t1.sh", "#!/bin/sh\ntest \"$(./hello)\" = 42\n", 0o755);
}

/// An autotools package whose generated files (`configure`, `Makefile.in`,
/// made by `autoreconf` through the kernel's overlay) sit in a layer over
/// its sources: `configure`, `make`, `make check`, `make distcheck` (a
/// tarball made, unpacked, made read-only, built out of tree, checked and
/// removed), `make install` and `make distclean`, as on the kernel's mount.
#[test]
fn autotools_configure_make_check_and_distcheck_as_under_the_kernel() {
    require_root!();
    let fx = Fixture::new(1);
    c_project(&fx);
    fx.lower(1)
        .file(
            "configure.ac",
            "AC_INIT([hello], [1.0])\nAM_INIT_AUTOMAKE([foreign -Wall])\nAC_PROG_CC\n\
             AC_CHECK_HEADERS([unistd.h sys/stat.h])\nAC_CHECK_FUNCS([strdup mkstemp])\n\
             AC_CONFIG_HEADERS([config.h])\nAC_CONFIG_FILES([Makefile])\nAC_OUTPUT\n",
        )
        .file(
            "Makefile.am",
            "bin_PROGRAMS = hello\nhello_SOURCES = hello.c util.c util.h\n\
             TESTS = t1.sh\nEXTRA_DIST = t1.sh\n",
        );
    fx.kernel_prepare("autoreconf -i > /dev/null 2>&1");
    let fx = fx.stacked(true);
    let ran = same_as_kernel(
        &fx,
        "./configure -q && echo configured\n\
         make -s > /dev/null && ./hello\n\
         make -s check > /dev/null && echo checked\n\
         make -s distcheck > /dev/null 2>&1; echo distcheck $?\n\
         tar tzf hello-1.0.tar.gz | sort; rm hello-1.0.tar.gz\n\
         make -s install DESTDIR=\"$PWD/inst\" > /dev/null && inst/usr/local/bin/hello\n\
         make -s distclean && echo distclean",
        LIST,
    );
    assert_ran(
        &ran,
        &[
            "configured\n42\nchecked\ndistcheck 0\n",
            "hello-1.0/configure\n",
            "42\ndistclean",
        ],
    );
}

/// A CMake project built with Ninja in a tree held in lower: configured,
/// built, tested by `ctest`, installed, rebuilt after a header changed,
/// cleaned, as on the kernel's mount.
#[test]
fn cmake_and_ninja_build_as_under_the_kernel() {
    require_root!();
    let fx = Fixture::new(1);
    c_project(&fx);
    fx.lower(1).file(
        "CMakeLists.txt",
        "cmake_minimum_required(VERSION 3.10)\nproject(hello C)\n\
         add_library(util STATIC util.c)\nadd_executable(hello hello.c)\n\
         target_link_libraries(hello util)\nenable_testing()\n\
         add_test(NAME t COMMAND hello)\ninstall(TARGETS hello DESTINATION bin)\n",
    );
    let ran = same_as_kernel(
        &fx,
        "cmake -S . -B build -G Ninja > /dev/null && echo configured\n\
         ninja -C build > /dev/null && ./build/hello\n\
         (cd build && ctest -Q) && echo tested\n\
         DESTDIR=\"$PWD/inst\" ninja -C build install > /dev/null && inst/usr/local/bin/hello\n\
         touch util.h && ninja -C build | tail -1\n\
         ninja -C build -t clean > /dev/null && echo cleaned",
        "ls build | sort; find inst | sort; ls -l util.h | cut -c1-10",
    );
    assert_ran(
        &ran,
        &[
            "configured\n42\ntested\n42\n",
            "Linking C executable hello\ncleaned",
        ],
    );
}

/// Unix sockets bound at paths of the view: the socket's file is made in
/// upper (also over a whiteout, and when its real path is too long for a
/// socket address), clients connect through the view, and `bind` over a
/// name the view has says EADDRINUSE, as on the kernel's mount.
#[test]
fn unix_sockets_bound_in_the_view() {
    require_root!();
    let deep = "d".repeat(90);
    same_as_kernel(
        &source_tree(),
        &format!(
            "mkdir -p {deep}\n\
             python3 -c \"\n\
import os, socket\n\
def sock(): return socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n\
def attempt(what, f):\n\
\x20   try: f(); print(what, 'ok')\n\
\x20   except OSError as e: print(what, e.strerror)\n\
s = sock(); s.bind('doc/s'); s.listen(1)\n\
attempt('connect', lambda: sock().connect('doc/s'))\n\
attempt('connect absolute', lambda: sock().connect(os.path.abspath('doc/s')))\n\
attempt('bind over a lower file', lambda: sock().bind('doc/readme.txt'))\n\
attempt('bind in a missing directory', lambda: sock().bind('nowhere/s'))\n\
attempt('connect to a file', lambda: sock().connect('doc/readme.txt'))\n\
attempt('connect to nothing', lambda: sock().connect('doc/none'))\n\
os.unlink('src/util.h'); w = sock(); w.bind('src/util.h'); w.listen(1)\n\
attempt('connect over a whiteout', lambda: sock().connect('src/util.h'))\n\
d = sock(); d.bind('{deep}/s'); d.listen(1)\n\
attempt('connect deep', lambda: sock().connect('{deep}/s'))\n\
print(s.getsockname(), w.getsockname(), d.getsockname() == '{deep}/s')\n\
c = sock(); c.connect('src/util.h'); print(c.getpeername())\n\
\"\n\
             find . -type s | sort"
        ),
        "find . -type s | sort",
    );
}

/// Real programs changing everything they can, in a view over the lower
/// directory itself (ovl-exec's default target): there is no mount point
/// of its own there, so any call the overlay missed would land in the lower
/// layer. It stays as it was, to the byte, the time and the inode.
#[test]
fn real_programs_in_a_view_over_the_lower_directory_leave_it_alone() {
    require_root!();
    let fx = source_tree();
    fx.kernel_prepare(
        "git init -q . && git -c user.name=t -c user.email=t@t add -A && \
         git -c user.name=t -c user.email=t@t commit -qm first && \
         mkdir db && sqlite3 db/app.db 'create table t(x); insert into t values (1);' && \
         ln -s readme.txt doc/link && echo a > keep1 && echo b > keep2",
    );
    let fx = fx.stacked(false);
    let before = fx.snapshot_lowers();
    let top = fx.lower_dir(1);
    let script = r#"set -e
echo more >> doc/readme.txt; sed -i s/hello/bye/ doc/readme.txt
chmod -R go-rwx doc; chmod 644 doc/readme.txt; touch -d 2010-01-01 doc/run.sh; touch -h doc/link
chown -R 1:1 src; chown -h 2:2 doc/link; ln -sf run.sh doc/link2; ln doc/run.sh doc/hard
mv doc/readme.txt doc/README; cp -a doc doc2; cp -r --preserve=all src src2
install -m 600 doc/run.sh doc/inst.sh; truncate -s 3 doc/README
dd if=/dev/zero of=doc/run.sh bs=1 count=2 seek=1 conv=notrunc 2>/dev/null
setfattr -n user.x -v 1 doc/hard
tar cf "$TMPDIR/t.tar" doc && tar xf "$TMPDIR/t.tar" -C src2 && tar xpf "$TMPDIR/t.tar"
make -s -C src && ./src/prog && make -s -C src clean
sqlite3 db/app.db 'insert into t values (2); vacuum;'
git add -A && git -c user.name=t -c user.email=t@t commit -qm two && git gc -q --prune=now
git checkout -q HEAD~1 -- doc
python3 - <<'EOF'
import ctypes, os, shutil, sys
libc = ctypes.CDLL(None, use_errno=True)
os.utime('src/main.c', ns=(1, 2)); shutil.copystat('doc/run.sh', 'src/Makefile')
os.truncate('src/main.c', 5); os.rename('src/Makefile', 'src/GNUmakefile'); os.link('src/main.c', 'src/m2.c')
fd = os.open('src', os.O_RDONLY)
os.unlink('util.c', dir_fd=fd); os.mkdir('sub', dir_fd=fd); os.symlink('x', 'sl', dir_fd=fd)
os.chmod('GNUmakefile', 0o600, dir_fd=fd); os.utime('m2.c', (3, 3), dir_fd=fd)
os.rename('m2.c', 'm3.c', src_dir_fd=fd, dst_dir_fd=fd)
p = os.open('keep1', os.O_PATH)
r = [libc.utimensat(p, b'', None, 0x1000), libc.fchownat(p, b'', 5, 5, 0x1000), libc.lchmod(b'keep2', 0o600)]
if r != [0, 0, 0]: print('empty-path and lchmod changes:', r, file=sys.stderr)
shutil.rmtree('doc2'); os.removedirs('src/sub')
EOF
perl -pi -e 's/run/walk/' doc/run.sh
find . -path ./.git -prune -o -name '*.sh' -exec chmod 700 {} +
rm -rf src doc; find db src2 -type f -delete
echo done
"#;
    let tmp = fx.root_dir().join("tmp");
    let (upper, work) = (
        fx.root_dir().join("in-place-upper"),
        fx.root_dir().join("in-place-work"),
    );
    for d in [&tmp, &upper, &work] {
        std::fs::create_dir_all(d).unwrap();
    }
    let out = std::process::Command::new(ovl_exec())
        .env("OVL_SHIM", shim())
        .env("TMPDIR", &tmp)
        .arg("-l")
        .arg(&top)
        .arg("-l")
        .arg(fx.lower_dir(2))
        .arg("-u")
        .arg(&upper)
        .arg("-w")
        .arg(&work)
        .args(["--", "sh", "-c", script])
        .current_dir(&top)
        .output()
        .unwrap();
    fx.assert_lowers_unchanged(&before);
    assert_eq!(
        (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        ("done\n".into(), "".into())
    );
}

/// A build tree held in lower, its program's search path the absolute
/// build directory (as CMake writes it), rebuilt in a view over the lower
/// directory itself, where that path is the lower layer's real directory
/// too: the program must load the library rebuilt in the view, not the
/// stale one of the lower layer. Run by `ovl-exec` itself and by a shell
/// in the view; the kernel's overlay, mounted there afterwards over the
/// same layers, runs it alike.
#[test]
fn a_library_rebuilt_in_place_is_found_through_the_runpath() {
    require_root!();
    let fx = Fixture::new(1);
    fx.lower(1)
        .file("lib/greet.c", "const char *greet(void) { return \"old\"; }\n")
        .file(
            "hello.c",
            "#include <stdio.h>\nconst char *greet(void);\nint main(void) { puts(greet()); return 0; }\n",
        );
    let top = fx.lower_dir(1);
    let build = format!(
        "mkdir b && cc -shared -fPIC -o b/libgreet.so lib/greet.c && \
         cc -o b/hello hello.c -Lb -lgreet -Wl,--enable-new-dtags,-rpath,{}/b",
        top.display()
    );
    let built = std::process::Command::new("sh")
        .args(["-c", &build])
        .current_dir(&top)
        .status()
        .unwrap();
    assert!(built.success(), "built in lower");
    let before = fx.snapshot_lowers();
    let (upper, work) = (
        fx.root_dir().join("runpath-upper"),
        fx.root_dir().join("runpath-work"),
    );
    for d in [&upper, &work] {
        std::fs::create_dir_all(d).unwrap();
    }
    let ovl = |command: &[&str]| {
        let out = std::process::Command::new(ovl_exec())
            .env("OVL_SHIM", shim())
            .arg("-l")
            .arg(&top)
            .arg("-u")
            .arg(&upper)
            .arg("-w")
            .arg(&work)
            .arg("--")
            .args(command)
            .current_dir(&top)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let rebuilt = ovl(&[
        "sh",
        "-c",
        "b/hello && sed -i s/old/new/ lib/greet.c && \
         cc -shared -fPIC -o b/libgreet.so lib/greet.c && b/hello",
    ]);
    let direct = ovl(&["b/hello"]);
    fx.assert_lowers_unchanged(&before);
    assert_eq!((rebuilt.as_str(), direct.as_str()), ("old\nnew\n", "new\n"));
    // The kernel, mounted over the lower directory itself.
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        top.display(),
        upper.display(),
        work.display()
    );
    let mounted = common::mount::KernelMount::mount(&opts, &top);
    let kernel = std::process::Command::new(top.join("b/hello")).output();
    drop(mounted);
    assert_eq!(String::from_utf8_lossy(&kernel.unwrap().stdout), "new\n");
}
