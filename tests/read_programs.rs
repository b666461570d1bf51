//! Real programs reading the merged view: tar, grep, python's walkers, shell
//! scripts that live in the view, git, make, sqlite3; the form without the
//! launcher (`LD_PRELOAD` + `OVL_*`), and children started with an empty
//! environment. Each runs under the kernel's overlayfs and under ovl with the
//! same output required; lower layers must not change.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// A small source tree over two lower layers, changed by the kernel in upper
/// (a copy-up, a whiteout, an opaque directory, new files).
fn source_tree() -> Fixture {
    let fx = Fixture::new(2);
    fx.lower(2)
        .file(
            "src/main.c",
            "int main(void) { return helper(); } /* foo */\n",
        )
        .file("src/util.c", "int helper(void) { return 0; }\n")
        .file("src/old.c", "/* foo: obsolete */\n")
        .file("docs/readme.md", "# readme\nfoo appears here\n")
        .file("docs/api/index.md", "api foo\n")
        .symlink("docs/latest", "api")
        .file("build/cache/junk", "junk foo\n")
        .file("links/one", "hard\n")
        .hardlink("links/two", "links/one");
    fx.lower(1)
        .file("src/util.c", "int helper(void) { return 1; } /* foo */\n")
        .file("notes.txt", "foo bar\nbaz\n")
        .exe("bin/run", "#!/bin/sh\necho run\n")
        .mtime("notes.txt", 1_600_000_000, 0);
    fx.kernel_prepare(
        "echo 'foo in upper' > up.txt; rm src/old.c; rm -r build; mkdir build; \
         echo fresh > build/out; echo '/* foo again */' >> src/main.c",
    );
    fx
}

#[test]
fn tar_lists_the_view() {
    require_root!();
    let fx = source_tree();
    // --sort=name: otherwise tar follows directory order, which the kernel
    // does not define.
    compare_runs(
        &fx,
        "tar --sort=name -cf - . | tar -tvf - --full-time\n\
         tar --sort=name -cf - src | tar -xOf - src/main.c\n",
    );
}

#[test]
fn grep_searches_the_view() {
    require_root!();
    let fx = source_tree();
    compare_runs(
        &fx,
        "grep -rn foo . | sort; grep -rl foo . | sort; grep -rc foo --include='*.c' . | sort\n\
         grep -rn obsolete .; echo \"obsolete: $?\"; grep -R foo docs | sort\n",
    );
}

#[test]
fn python_os_walk_and_stat() {
    require_root!();
    let fx = source_tree();
    compare_runs(
        &fx,
        r#"python3 - <<'EOF'
import os, stat
lines = []
for root, dirs, files in os.walk('.'):
    for name in dirs + files:
        p = os.path.join(root, name)
        st = os.stat(p, follow_symlinks=False)
        line = f'{p} {stat.filemode(st.st_mode)} {st.st_size}'
        if not stat.S_ISDIR(st.st_mode):
            line += f' nlink={st.st_nlink}'
        lines.append(line)
print('\n'.join(sorted(lines)))
print(sorted((r, sorted(d), sorted(f)) for r, d, f in os.walk('docs', followlinks=True)))
EOF
"#,
    );
}

#[test]
fn python_scandir() {
    require_root!();
    let fx = source_tree();
    compare_runs(
        &fx,
        r#"python3 - <<'EOF'
import os
for d in ['.', 'src', 'docs', 'build', 'docs/latest']:
    with os.scandir(d) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        print(d, e.name, e.path, e.is_dir(), e.is_file(), e.is_symlink(),
              e.is_dir(follow_symlinks=False), e.stat().st_size)
print(sorted(os.listdir('src')))
EOF
"#,
    );
}

#[test]
fn python_glob() {
    require_root!();
    let fx = source_tree();
    compare_runs(
        &fx,
        r#"python3 - <<'EOF'
import glob
print(sorted(glob.glob('**', recursive=True)))
print(sorted(glob.glob('src/*.c')))
print(sorted(glob.glob('*/*.md')))
print(sorted(glob.glob('**/index.md', recursive=True)))
print(sorted(glob.glob('src/old.c')))
EOF
"#,
    );
}

#[test]
fn shell_runs_scripts_that_live_in_the_view() {
    require_root!();
    let fx = Fixture::new(1);
    let interpreter = format!(
        "#!{}/bin/mysh\necho via an interpreter in the view\n",
        fx.mnt().display()
    );
    fx.lower(1)
        .exe("bin/hello", "#!/bin/sh\necho \"hello $*\"\n")
        .file("run.sh", ". ./lib.sh\necho run \"$@\" \"$(greet)\"\n")
        .file("lib.sh", "greet() { echo greeting; }\n")
        .symlink("bin/mysh", "/bin/sh")
        .exe("bin/viaview", &interpreter)
        .exe("bin/envsh", "#!/usr/bin/env sh\necho \"env found $0\"\n")
        .exe("bin/gone", "#!/bin/sh\necho must not run\n");
    fx.kernel_prepare(
        "printf '#!/bin/sh\\necho upper-only \"$@\"\\n' > up.sh; chmod +x up.sh; \
         printf '#!/bin/sh\\necho upper hello\\n' > bin/uphello; chmod +x bin/uphello; \
         rm bin/gone",
    );
    compare_runs(
        &fx,
        "sh run.sh a b; ./bin/hello x; bin/hello relative; ./up.sh y; sh up.sh z\n\
         PATH=\"$MNT/bin:$PATH\" hello from-path\n\
         PATH=\"$MNT/bin:$PATH\"; export PATH; hello exported; uphello; command -v hello uphello\n\
         gone; echo \"gone: $?\"; ./bin/viaview; bin/envsh; ./run.sh; echo \"not executable: $?\"\n\
         cd bin && ./hello in-bin && sh -c './uphello; hello nested'\n",
    );
}

/// A process is named after the name it was started by (what `ps` and
/// `pgrep` show): a script's, not its interpreter's, wherever the script
/// or the interpreter lies; a link's of the view, not its target's; and
/// never after a name left in the environment it was given.
#[test]
fn programs_are_named_as_they_were_called() {
    require_root!();
    let fx = Fixture::new(1);
    let show = "#!/bin/sh\ncat /proc/$$/comm\n";
    let in_view = format!(
        "#!{}/bin/shell-link\ncat /proc/$$/comm\n",
        fx.mnt().display()
    );
    fx.lower(1)
        .exe("tool.sh", show)
        .exe("bin/a-rather-long-script-name", show)
        .symlink("bin/shell-link", "/bin/sh")
        .exe("bin/inview", &in_view)
        .exe("bin/viaenv", "#!/usr/bin/env sh\ncat /proc/$$/comm\n");
    fx.kernel_prepare("printf '#!/bin/sh\\ncat /proc/$$/comm\\n' > up.sh; chmod +x up.sh");
    compare_runs(
        &fx,
        "./tool.sh; sh -c ./tool.sh; bin/a-rather-long-script-name; ./up.sh\n\
         bin/shell-link -c 'cat /proc/$$/comm'; bin/inview; bin/viaenv\n\
         PATH=\"$MNT/bin:$PATH\" a-rather-long-script-name; cat /proc/$$/comm\n\
         env OVL_PROCESS_NAME=not-mine cat /proc/self/comm\n",
    );
}

#[test]
fn python_getcwd_after_chdir() {
    require_root!();
    let fx = Fixture::new(2);
    fx.lower(2).file("sub/deep/f", "deep f\n");
    fx.lower(1)
        .symlink("sublink", "sub/deep")
        .file("sub/g", "g\n");
    compare_runs(
        &fx,
        r#"python3 - <<'EOF'
import os
print(os.getcwd())
os.chdir('sub'); print(os.getcwd(), sorted(os.listdir('.')), open('g').read().strip())
os.chdir('../sublink'); print(os.getcwd(), os.path.realpath('.'), open('f').read().strip())
os.chdir('..'); print(os.getcwd())
fd = os.open('deep', os.O_RDONLY | os.O_DIRECTORY)
os.fchdir(fd); print(os.getcwd(), open('f').read().strip())
os.chdir(os.environ['MNT'] + '/sub'); print(os.getcwd(), os.path.abspath('deep/f'))
EOF
"#,
    );
}

/// Runs git in `dir` directly (not through any overlay), with fixed
/// identities and dates so every clone holds the same history.
fn git(dir: &Path, home: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_AUTHOR_DATE", "2020-01-01T00:00:00Z")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_DATE", "2020-01-01T00:00:00Z")
        .status()
        .unwrap_or_else(|e| panic!("cannot run git: {e}"));
    assert!(status.success(), "git {args:?} failed in {}", dir.display());
}

#[test]
fn git_reads_a_repository_in_lower() {
    require_root!();
    let fx = Fixture::new(1);
    let repo = fx.lower_dir(1);
    fx.lower(1)
        .file("tracked.txt", "one\n")
        .file("removed.txt", "bye\n")
        .file("dir/inner.txt", "inner\n");
    git(&repo, &fx.home(), &["init", "-q", "-b", "main"]);
    git(&repo, &fx.home(), &["add", "."]);
    git(&repo, &fx.home(), &["commit", "-q", "-m", "first"]);
    fx.lower(1).file("tracked.txt", "one\ntwo\n");
    git(&repo, &fx.home(), &["commit", "-q", "-a", "-m", "second"]);
    fx.kernel_prepare(
        "echo three >> tracked.txt; rm removed.txt; echo new > untracked.txt; \
         mkdir newdir; echo n > newdir/f",
    );
    compare_runs(
        &fx,
        "export GIT_OPTIONAL_LOCKS=0 GIT_CONFIG_NOSYSTEM=1\n\
         git status --porcelain; git log --oneline; git diff --stat; git ls-files\n\
         git show HEAD~1:tracked.txt; git rev-parse --show-toplevel; git status --short dir\n\
         cd dir && git rev-parse --show-prefix && git status --porcelain .\n",
    );
}

#[test]
fn make_reads_makefile_and_timestamps() {
    require_root!();
    let fx = Fixture::new(1);
    fx.lower(1)
        .file(
            "Makefile",
            "VERSION := $(shell cat VERSION)\n\
             SRCS := $(sort $(wildcard src/*.c))\n\
             prog: $(SRCS)\n\t@echo \"build prog $(VERSION) from $(SRCS)\"\n\
             show:\n\t@echo \"version $(VERSION) sources $(SRCS)\"\n\
             .PHONY: show\n",
        )
        .file("VERSION", "1.0\n")
        .file("src/a.c", "a\n")
        .file("src/b.c", "b\n")
        .file("src/gone.c", "g\n")
        .file("prog", "built\n")
        .mtime("src/a.c", 1_500_000_000, 0)
        .mtime("src/b.c", 1_500_000_000, 0)
        .mtime("src/gone.c", 1_500_000_000, 0)
        .mtime("prog", 1_600_000_000, 0);
    let probe = "make -s show; make -n prog; make -q prog; echo \"up to date: $?\"\n";
    compare_runs(&fx, probe);
    fx.kernel_prepare("echo 2.0 > VERSION; rm src/gone.c; touch -d @1700000000 src/b.c");
    compare_runs(&fx, probe);
}

#[test]
fn sqlite3_reads_a_database_in_lower() {
    require_root!();
    let fx = Fixture::new(1);
    let db = fx.lower(1).at("data.db");
    let status = Command::new("sqlite3")
        .arg(&db)
        .arg("create table t(x, y); insert into t values (1, 'one'), (2, 'two'), (3, 'three');")
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run sqlite3 (install it: apt-get install sqlite3): {e}")
        });
    assert!(
        status.success(),
        "sqlite3 could not create {}",
        db.display()
    );
    compare_runs(
        &fx,
        "sqlite3 -readonly data.db 'select sum(x), group_concat(y) from t'\n\
         sqlite3 -readonly \"$MNT/data.db\" 'select count(*) from t where x > 1'\n",
    );
}

#[test]
fn shim_preloaded_by_hand_gives_the_same_view() {
    require_root!();
    let fx = source_tree();
    fx.pair().run_env(&format!(
        "{LIST}{CAT_ALL}pwd; cd src && pwd -P && ls; sh -c 'cat ../up.txt'\n"
    ));
}

#[test]
fn child_with_an_empty_environment_still_sees_the_view() {
    require_root!();
    let fx = source_tree();
    compare_runs(
        &fx,
        "env -i PATH=/usr/bin:/bin sh -c 'cat \"$1/up.txt\"; ls \"$1/src\"; cat src/main.c' sh \"$MNT\"\n\
         cd src && env -i /bin/cat util.c && env -i /bin/pwd && env -i /bin/ls -a\n\
         env -i /bin/sh -c 'cat old.c; echo \"old: $?\"'\n",
    );
}

#[test]
fn python_subprocess_with_an_empty_environment() {
    require_root!();
    let fx = source_tree();
    compare_runs(
        &fx,
        r#"python3 - <<'EOF'
import os, subprocess, sys
subprocess.run(['/bin/cat', 'up.txt'], env={})
subprocess.run(['/bin/ls', '-a', 'src'], env={})
subprocess.run(['/bin/sh', '-c', 'cat main.c; pwd'], env={}, cwd='src')
r = subprocess.run(['/bin/cat', 'src/old.c'], env={}, capture_output=True, text=True)
print(r.returncode, r.stderr.strip(), flush=True)
subprocess.run('cat notes.txt', shell=True, env={'PATH': '/usr/bin:/bin'})
print(subprocess.check_output(['cat', 'src/util.c'], env={'PATH': '/bin'}).decode().strip())
sys.stdout.flush()
os.system('cat build/out')
EOF
"#,
    );
}

#[test]
fn python_posix_spawn() {
    require_root!();
    let fx = source_tree();
    compare_runs(
        &fx,
        r#"python3 - <<'EOF'
import os
def wait(pid):
    print('exit', os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
wait(os.posix_spawn('/bin/cat', ['cat', 'up.txt'], {}))
wait(os.posix_spawnp('cat', ['cat', 'src/util.c'], {'PATH': '/usr/bin:/bin'}))
wait(os.posix_spawn('/bin/sh', ['sh', '-c', 'ls -a src; cat notes.txt'], {}))
wait(os.posix_spawn('/bin/cat', ['cat', 'src/old.c'], {}))
wait(os.posix_spawn(os.environ['MNT'] + '/bin/run', ['run'], {}))
EOF
"#,
    );
}

#[test]
fn programs_that_close_every_descriptor_still_see_the_view() {
    require_root!();
    let fx = source_tree();
    // A child with close_fds (python's default), a process that closes every
    // descriptor from 3 on, redirections onto low and high descriptors.
    compare_runs(
        &fx,
        "python3 -c \"import subprocess; print(subprocess.run(['cat', 'src/util.c'], capture_output=True).stdout.decode().strip())\"\n\
         python3 -c \"import os; os.closerange(3, 4096); print(sorted(os.listdir('src')), open('docs/readme.md').read().split()[0])\"\n\
         exec 3< src/main.c 4>&1 5< docs; cat <&3 >&4; ls src docs/api; exec 3<&- 4>&- 5<&-\n\
         python3 -c \"import os; d = os.open('docs', os.O_RDONLY); [os.dup2(d, fd) for fd in range(950, 1000)]; print(sorted(os.listdir('src')), open('src/util.c').read().strip())\"\n",
    );
}

/// A C program that starts `sh -c 'exit 7'` with `vfork` and reports its status.
const VFORK_PROGRAM: &str = r#"#include <stdio.h>
#include <unistd.h>
#include <sys/wait.h>
int main(void) {
    int status = 0;
    pid_t pid = vfork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "exit 7", (char *)0);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid) { perror("vfork"); return 1; }
    printf("child exited %d\n", WEXITSTATUS(status));
    return 0;
}
"#;

/// A C program whose `vfork` child changes what a child changes before its
/// exec (descriptors duplicated over, one closed, the current directory)
/// and runs a shell in the view; the parent then uses the view through the
/// same descriptor, current directory and relative paths.
const VFORK_CHILD_CHANGES: &str = r#"#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
int main(void) {
    int d = open("src", O_RDONLY | O_DIRECTORY), p[2], status = 0;
    if (d < 0 || pipe(p) != 0) { perror("setup"); return 1; }
    pid_t pid = vfork();
    if (pid == 0) {
        for (int fd = 900; fd < 1024; fd++) dup2(p[1], fd);
        dup2(p[1], 1);
        close(d);
        if (chdir("src") != 0) _exit(120);
        execl("/bin/sh", "sh", "-c", "cd .. && cd src && pwd && cat main.c && ls", (char *)0);
        _exit(127);
    }
    close(p[1]);
    char buf[4096], cwd[4096];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0) fwrite(buf, 1, n, stdout);
    waitpid(pid, &status, 0);
    printf("child exited %d\n", WEXITSTATUS(status));
    printf("parent in %s\n", getcwd(cwd, sizeof cwd) ? cwd : "?");
    struct stat st;
    printf("util.c by descriptor: %d, by relative path: %d, old.c: %d\n",
           fstatat(d, "util.c", &st, 0), stat("src/util.c", &st), stat("src/old.c", &st));
    print_names("src has", d);
    return 0;
}
"#;

/// Two threads start children with `vfork` at the same time, each child
/// closing every descriptor before its `exec`; then the parent lists a
/// merged directory through a descriptor it opened first.
const VFORK_FROM_THREADS: &str = r#"#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
static int d;
static void *spawn(void *arg) {
    (void)arg;
    for (int i = 0; i < 10; i++) {
        pid_t pid = vfork();
        if (pid == 0) {
            for (int fd = 3; fd < 64; fd++) close(fd);
            usleep(20000);
            execl("/bin/true", "true", (char *)0);
            _exit(127);
        }
        waitpid(pid, 0, 0);
    }
    return 0;
}
int main(void) {
    d = open("src", O_RDONLY | O_DIRECTORY);
    pthread_t a, b;
    pthread_create(&a, 0, spawn, 0);
    pthread_create(&b, 0, spawn, 0);
    pthread_join(a, 0);
    pthread_join(b, 0);
    print_names("src has", d);
    return 0;
}
"#;

/// Put before every C program: `print_names(prefix, fd)` prints the names
/// (but dot files) of the directory open as `fd`, sorted, one a line.
const C_HELPERS: &str = r#"#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static void print_names(const char *prefix, int fd) {
    DIR *dir = fdopendir(fd);
    char *names[64];
    int count = 0;
    struct dirent *e;
    while (dir && (e = readdir(dir)) && count < 64)
        if (e->d_name[0] != '.') names[count++] = strdup(e->d_name);
    qsort(names, count, sizeof *names, by_name);
    for (int i = 0; i < count; i++) printf("%s %s\n", prefix, names[i]);
}
"#;

/// Builds a C program from `source` (after [`C_HELPERS`]) in the fixture's
/// scratch space.
fn build_c(fx: &Fixture, name: &str, source: &str) -> std::path::PathBuf {
    let dir = fx.root_dir().join("cprogs");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{name}.c")),
        format!("{C_HELPERS}{source}"),
    )
    .unwrap();
    let built = Command::new("cc")
        .args(["-pthread", "-o", name, &format!("{name}.c")])
        .current_dir(&dir)
        .status()
        .expect("cc runs");
    assert!(built.success(), "cc could not build {name}.c");
    dir.join(name)
}

/// Builds the C program `source` as `name` in a [`source_tree`] fixture and
/// compares its runs on the kernel and under ovl; `then` follows the
/// program's path on the command line (`""`, `" | sort"`).
fn compare_c_program(name: &str, source: &str, then: &str) {
    let fx = source_tree();
    let probe = build_c(&fx, name, source);
    compare_runs(&fx, &format!("{}{then}\n", probe.display()));
}

/// As [`compare_c_program`], for a program that changes the view: the two
/// upper layers must come out the same, and ovl's output hold each of `ran`.
fn compare_c_changes(name: &str, source: &str, then: &str, ran: &[&str]) {
    let fx = source_tree();
    let probe = build_c(&fx, name, source);
    compare_changes(&fx, &format!("{}{then}\n", probe.display()), ran);
}

#[test]
fn vfork_works_with_the_shim_loaded_with_or_without_an_overlay() {
    require_root!();
    let fx = source_tree();
    let probe = build_c(&fx, "vfork", VFORK_PROGRAM);
    let mut idle = Command::new(&probe);
    for (k, _) in std::env::vars_os().filter(|(k, _)| k.to_string_lossy().starts_with("OVL_")) {
        idle.env_remove(k);
    }
    let idle = idle.env("LD_PRELOAD", shim()).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&idle.stdout),
        "child exited 7\n",
        "shim preloaded without an overlay: {}",
        String::from_utf8_lossy(&idle.stderr)
    );
    compare_runs(&fx, &format!("{} && cat up.txt\n", probe.display()));
}

/// With the shim preloaded and no overlay described, the path calls that
/// go straight to libc (`stat`, `lstat`, `fstatat`, `statx`, `access`,
/// `realpath`: told so once, not asked at every call) answer as without it,
/// for names that exist, dangle, climb or are missing.
#[test]
fn the_shim_without_an_overlay_answers_as_libc() {
    let fx = Fixture::new(1);
    fx.lower(1)
        .file("d/f", "data\n")
        .exe("d/x", "#!/bin/sh\n")
        .symlink("d/up", "../d")
        .symlink("d/dangling", "nowhere")
        .dir("e");
    let script = "find . -printf '%p %s %n %y %Y %m\\n' | sort\n\
                  stat -c '%n %s %h %F' d/f d/up d/dangling e missing 2>&1\n\
                  python3 -c \"import os\n\
for n in ['d/f', 'd/x', 'd/up/f', 'd/up/../x', 'd/dangling', 'missing', '../nowhere']:\n\
    try: st = os.stat(n); s = (st.st_size, st.st_nlink, oct(st.st_mode))\n\
    except OSError as e: s = e.errno\n\
    print(n, s, os.access(n, os.X_OK), os.path.realpath(n), os.path.lexists(n))\"\n\
                  test -x d/x && echo executable";
    let run = |preload: Option<std::path::PathBuf>| {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]).current_dir(fx.lower_dir(1));
        for (k, _) in std::env::vars_os().filter(|(k, _)| k.to_string_lossy().starts_with("OVL_")) {
            cmd.env_remove(k);
        }
        match preload {
            Some(shim) => cmd.env("LD_PRELOAD", shim),
            None => cmd.env_remove("LD_PRELOAD"),
        };
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let plain = run(None);
    assert!(
        plain.contains("executable") && plain.contains("d/dangling"),
        "{plain}"
    );
    assert_eq!(run(Some(shim())), plain);
}

#[test]
fn a_vfork_childs_changes_stay_out_of_its_parents_view() {
    require_root!();
    compare_c_program("vfork_child_changes", VFORK_CHILD_CHANGES, "");
}

/// Merged streams read in turn, one closed half read and another opened in
/// its place (glibc often hands out the same `DIR*` again, merged or
/// plain), a plain stream read between merged ones, and two threads each reading its own streams at
/// once: every stream must show its own names, whatever was read before.
const STREAMS_IN_TURN: &str = r#"#include <pthread.h>
static int names_of(const char *path, char *out, size_t len) {
    DIR *d = opendir(path);
    struct dirent *e;
    char *names[64];
    int count = 0;
    while (d && (e = readdir(d)) && count < 64)
        if (e->d_name[0] != '.') names[count++] = strdup(e->d_name);
    if (d) closedir(d);
    qsort(names, count, sizeof *names, by_name);
    out[0] = 0;
    for (int i = 0; i < count; i++) { strncat(out, names[i], len - strlen(out) - 2); strcat(out, " "); free(names[i]); }
    return count;
}
static const char *dirs[] = {"src", "docs", "build", "."};
/* merged, plain, merged, merged, plain, merged: each half read, closed, and
   the next one opened (often at the same address) and read whole */
static const char *in_turn[] = {"src", "/", "src", ".", "/", "."};
static void *reader(void *arg) {
    const char *path = dirs[(long)arg];
    static char expected[2][1024];
    char got[1024];
    names_of(path, expected[(long)arg], sizeof expected[0]);
    for (int i = 0; i < 300; i++) {
        names_of(path, got, sizeof got);
        if (strcmp(got, expected[(long)arg])) { printf("thread %ld: %s became %s\n", (long)arg, expected[(long)arg], got); return 0; }
    }
    printf("thread %ld read %s 300 times: %s\n", (long)arg, path, got);
    return 0;
}
int main(void) {
    char buf[1024];
    DIR *hold = opendir("."); /* a merged stream open all along */
    readdir(hold);
    for (int round = 0; round < 5; round++) {
        DIR *a = opendir(in_turn[round]);
        readdir(a);
        closedir(a);
        names_of(in_turn[round + 1], buf, sizeof buf);
        printf("%s after a half-read %s: %s\n", in_turn[round + 1], in_turn[round], buf);
    }
    DIR *s = opendir("src"), *d = opendir("docs"), *p = opendir("/");
    struct dirent *e;
    int live = 3, n[3] = {0, 0, 0};
    while (live) {
        live = 0;
        if (s && (e = readdir(s))) { live++; if (e->d_name[0] != '.') printf("src: %s\n", e->d_name), n[0]++; }
        if (p && (e = readdir(p))) { live++; n[2]++; }
        if (d && (e = readdir(d))) { live++; if (e->d_name[0] != '.') printf("docs: %s\n", e->d_name), n[1]++; }
    }
    int roots = 0;
    DIR *r = opendir("/");
    while (r && readdir(r)) roots++;
    printf("in turn: src %d names, docs %d, / as many as alone: %d\n", n[0], n[1], roots == n[2]);
    pthread_t t[2];
    for (long i = 0; i < 2; i++) pthread_create(&t[i], 0, reader, (void *)i);
    for (int i = 0; i < 2; i++) pthread_join(t[i], 0);
    return 0;
}
"#;

#[test]
fn merged_streams_read_in_turn_or_from_two_threads_keep_their_own_names() {
    require_root!();
    // The names of the streams read in turn come in directory order, which
    // the kernel does not define: sorted, they must match.
    compare_c_program("streams_in_turn", STREAMS_IN_TURN, " | sort");
}

/// `errno` after calls that succeed, and after `readdir` reaches the end of
/// a directory: the overlay's own failed look-ups (a name absent from upper
/// and from the first lower layer) must not show there. `find` took an
/// `ENOENT` left by one for a `readdir` error.
const ERRNO_AFTER_SUCCESS: &str = r#"#include <errno.h>
#include <sys/stat.h>
int main(void) {
    const char *paths[] = {"docs/readme.md", "docs/api/index.md", "src/main.c", "docs/latest", "notes.txt"};
    struct stat st;
    for (int i = 0; i < 5; i++) {
        errno = 0;
        int r = lstat(paths[i], &st);
        printf("lstat %s: %d, errno %d\n", paths[i], r, errno);
        errno = 0;
        r = stat(paths[i], &st);
        printf("stat %s: %d, errno %d\n", paths[i], r, errno);
    }
    const char *dirs[] = {"docs", "docs/api", "src", "."};
    for (int i = 0; i < 4; i++) {
        DIR *d = opendir(dirs[i]);
        int n = 0;
        errno = 0;
        while (d && readdir(d)) {
            n++;
            errno = 0;
        }
        printf("readdir %s: %d names, errno %d at the end\n", dirs[i], n, errno);
        if (d) closedir(d);
    }
    return 0;
}
"#;

#[test]
fn errno_is_left_alone_by_the_overlays_own_look_ups() {
    require_root!();
    compare_c_program("errno_after_success", ERRNO_AFTER_SUCCESS, "");
}

#[test]
fn vforks_from_two_threads_at_once_leave_the_parents_view_alone() {
    require_root!();
    compare_c_program("vfork_from_threads", VFORK_FROM_THREADS, "");
}

/// A program with its own `malloc` that reads a file while that allocator
/// sets itself up (as jemalloc reads `/etc/malloc.conf`; rustc is one),
/// first called from a library's constructor, before the shim's own
/// constructor has run: the hook it reaches must not allocate from that
/// allocator (it waited for the allocator's lock forever).
#[test]
fn program_with_its_own_malloc_set_up_by_a_file_read() {
    require_root!();
    let fx = Fixture::new(1);
    fx.lower(1)
        .file("own_malloc.c", include_str!("data/own_malloc.c"))
        .file("early_ctor.c", include_str!("data/early_ctor.c"));
    compare_runs(
        &fx,
        "cc -shared -fPIC -o libearly.so early_ctor.c && \
         cc -o prog own_malloc.c -Wl,--no-as-needed -L. -learly -Wl,-rpath,'$ORIGIN' && \
         timeout 20 ./prog; echo \"exit $?\"",
    );
}

/// Compiles `source` in the layer directory `dir` into the shared library
/// `output` (made before the runs: a library a lower layer holds).
fn build_shared_library(dir: &Path, source: &str, output: &str) {
    let built = Command::new("cc")
        .args(["-shared", "-fPIC", "-o", output, source])
        .current_dir(dir)
        .status()
        .expect("cc runs");
    assert!(built.success(), "cc built {output}");
}

/// Libraries loaded by a path of the view (`dlopen`: Python's C extensions
/// in a virtual environment held in the view, `ctypes`, plugins): the
/// loader opens the file itself, so the path must reach the real file,
/// in a lower layer or in upper.
#[test]
fn libraries_loaded_by_paths_of_the_view() {
    require_root!();
    let fx = Fixture::new(1);
    fx.lower(1)
        .file("lowlib/low.c", "int low(void) { return 41; }\n")
        .file("up.c", "int up(void) { return 42; }\n");
    build_shared_library(&fx.lower_dir(1).join("lowlib"), "low.c", "liblow.so");
    compare_runs(
        &fx,
        "mkdir -p up && cc -shared -fPIC -o up/libup.so up.c && echo built\n\
         python3 -c \"\n\
import ctypes, os\n\
print(ctypes.CDLL(os.path.abspath('lowlib/liblow.so')).low())\n\
print(ctypes.CDLL(os.path.abspath('up/libup.so')).up())\n\
print(ctypes.CDLL('lowlib/liblow.so').low())\n\
os.chdir('lowlib'); print(ctypes.CDLL('./liblow.so').low())\n\
\"\n\
         python3 -c \"import ctypes; ctypes.CDLL('./none.so')\" 2>&1 | tail -n 1 | sed \"s|$MNT|MNT|\"",
    );
}

/// `LD_PRELOAD` naming libraries of the view (one held in lower, one built
/// in upper): the loader opens them before any hook runs, so they are
/// given to it by their real files; by absolute and relative paths, set
/// for one command and inherited by a shell's children.
#[test]
fn preloaded_libraries_of_the_view() {
    require_root!();
    let fx = Fixture::new(1);
    fx.lower(1).file(
        "lib/low.c",
        "#include <stdio.h>\n__attribute__((constructor)) static void hi(void) { fputs(\"low preloaded\\n\", stderr); }\n",
    );
    build_shared_library(&fx.lower_dir(1).join("lib"), "low.c", "liblow.so");
    compare_runs(
        &fx,
        r#"printf '#include <stdio.h>\n__attribute__((constructor)) static void hi(void) { fputs("up preloaded\\n", stderr); }\n' > up.c
cc -shared -fPIC -o lib/libup.so up.c && echo built
LD_PRELOAD="$PWD/lib/liblow.so $PWD/lib/libup.so" cat up.c 2>&1 | head -n 2
cd lib && LD_PRELOAD=./libup.so true 2>&1; cd ..
LD_PRELOAD=$PWD/lib/liblow.so bash -c 'true; echo child' 2>&1"#,
    );
}

/// `LD_LIBRARY_PATH` naming directories of the view (libtool's wrappers,
/// `make check`, test runners): the loader searches them itself, so each
/// must reach its real copies, a library in a lower layer and one built in
/// upper in the same merged directory; the program still sees the value it
/// was given.
#[test]
fn library_path_into_the_view() {
    require_root!();
    let fx = Fixture::new(1);
    fx.lower(1)
        .file("lib/low.c", "int low(void) { return 40; }\n")
        .file("lib/up.c", "int up(void) { return 2; }\n")
        .file(
            "m.c",
            "int low(void); int up(void);\nint main(void) { return low() + up(); }\n",
        );
    build_shared_library(&fx.lower_dir(1).join("lib"), "low.c", "liblow.so");
    compare_runs(
        &fx,
        "cc -shared -fPIC -o lib/libup.so lib/up.c && cc -o m m.c -Llib -llow -lup && echo built\n\
         LD_LIBRARY_PATH=\"$MNT/lib\" ./m; echo \"absolute: $?\"\n\
         (cd /tmp && LD_LIBRARY_PATH=\"$MNT/lib:/usr/lib\" \"$MNT/m\"; echo \"from outside: $?\")\n\
         LD_LIBRARY_PATH=lib ./m; echo \"relative: $?\"\n\
         LD_LIBRARY_PATH=\"$MNT/lib\" sh -c 'echo \"$LD_LIBRARY_PATH\" | sed \"s|$MNT|MNT|\"; env | grep -c ^OVL_LD_'\n\
         LD_LIBRARY_PATH=\"$MNT/lib\" python3 -c \"import ctypes; print(ctypes.CDLL('liblow.so').low())\"",
    );
}

/// A program that prints its libraries' sum, the `LD_LIBRARY_PATH` it sees
/// and how many `OVL_LD_` variables, then runs its arguments, if any.
const SHOWS_ITS_LIBRARY_PATH: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
extern char **environ;
int low(void); int up(void);
int main(int argc, char **argv) {
  const char *v = getenv("LD_LIBRARY_PATH");
  int ovl = 0;
  for (char **e = environ; *e; e++) ovl += strncmp(*e, "OVL_LD_", 7) == 0;
  printf("%d LD_LIBRARY_PATH=%s OVL_LD_=%d\n", low() + up(), v ? v : "(unset)", ovl);
  fflush(stdout);
  if (argc > 1) { execvp(argv[1], argv + 1); return 127; }
  return 0;
}
"#;

/// Programs built in the view whose own library search path names
/// directories of the view, as build systems write it: absolute (CMake's
/// build trees), `$ORIGIN/...` (Meson), and an old-style `DT_RPATH`. The
/// loader searches it itself; each must find its libraries, one held in
/// lower and one built in upper in the same merged directory (with the
/// program in upper, the loader's own `$ORIGIN` holds only the latter),
/// run from the view and from outside it, and still see its own
/// `LD_LIBRARY_PATH`, or none.
#[test]
fn runpath_into_the_view() {
    require_root!();
    let fx = Fixture::new(1);
    fx.lower(1)
        .file("lib/low.c", "int low(void) { return 40; }\n")
        .file("lib/up.c", "int up(void) { return 2; }\n")
        .file("m.c", SHOWS_ITS_LIBRARY_PATH);
    build_shared_library(&fx.lower_dir(1).join("lib"), "low.c", "liblow.so");
    let (_, ovl) = compare_runs(
        &fx,
        r#"cc -shared -fPIC -o lib/libup.so lib/up.c && mkdir b && echo built
cc -o abs m.c -Llib -llow -lup -Wl,--enable-new-dtags,-rpath,"$MNT/lib"
cc -o b/origin m.c -Llib -llow -lup -Wl,--enable-new-dtags,-rpath,'$ORIGIN/../lib'
cc -o rpath m.c -Llib -llow -lup -Wl,--disable-new-dtags,-rpath,"$MNT/lib"
readelf -d abs b/origin rpath | grep -E 'R(UN)?PATH' | sed "s|$MNT|MNT|"
./abs; echo "absolute: $?"
b/origin; echo "origin: $?"
./rpath; echo "rpath: $?"
(cd /tmp && "$MNT/b/origin"; echo "from outside: $?")
LD_LIBRARY_PATH=/usr/lib ./abs b/origin; echo "given: $?"
LD_LIBRARY_PATH= ./abs sh -c 'echo "${LD_LIBRARY_PATH-unset}"'; echo "empty: $?"
./abs sh -c 'echo "${LD_LIBRARY_PATH-unset}"; env | grep -c ^OVL_LD_'
"#,
    );
    let out = ovl.out();
    for ran in [
        "42 LD_LIBRARY_PATH=(unset) OVL_LD_=0\nabsolute: 0\n",
        "origin: 0",
        "rpath: 0",
        "from outside: 0",
        "42 LD_LIBRARY_PATH=/usr/lib OVL_LD_=0\n42 LD_LIBRARY_PATH=/usr/lib OVL_LD_=0\ngiven: 0",
        "42 LD_LIBRARY_PATH= OVL_LD_=0\n\nempty: 0",
    ] {
        assert!(out.contains(ran), "expected {ran:?} in:\n{out}");
    }
}

/// One lower layer holding the library `lib/libgreet.so` (its `greet()`
/// says "old", from `lib/greet.c`) and the program `bin/<name>`, built from
/// `source` (also there as `bin/hello.c`), which finds the library by
/// `$ORIGIN/../lib`.
fn greeting_layers(name: &str, source: &str) -> Fixture {
    let fx = Fixture::new(1);
    fx.lower(1)
        .file(
            "lib/greet.c",
            "const char *greet(void) { return \"old\"; }\n",
        )
        .file("bin/hello.c", source);
    let lower = fx.lower_dir(1);
    build_shared_library(&lower.join("lib"), "greet.c", "libgreet.so");
    let built = Command::new("cc")
        .args([
            "-o",
            &format!("bin/{name}"),
            "bin/hello.c",
            "-Llib",
            "-lgreet",
        ])
        .arg("-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib")
        .current_dir(&lower)
        .status()
        .expect("cc runs");
    assert!(built.success(), "cc built bin/{name}");
    fx
}

/// A program held in lower whose `$ORIGIN` search path leads to a library
/// rebuilt in the view: it must load the new one (the loader's own
/// `$ORIGIN` is the lower layer's directory, with the stale library).
#[test]
fn runpath_finds_a_library_rebuilt_in_the_view() {
    require_root!();
    let fx = greeting_layers(
        "hello",
        "#include <stdio.h>\nconst char *greet(void);\nint main(void) { puts(greet()); return 0; }\n",
    );
    let (_, ovl) = compare_runs(
        &fx,
        "bin/hello\n\
         sed -i s/old/new/ lib/greet.c && cc -shared -fPIC -o lib/libgreet.so lib/greet.c && echo rebuilt\n\
         bin/hello; (cd bin && ./hello)\n\
         sh -c \"$MNT/bin/hello\"",
    );
    ovl.assert_stdout("old\nrebuilt\nnew\nnew\nnew\n");
}

/// The dynamic loader run as a program (`ldd PROG`, `ld.so PROG`, which
/// open PROG themselves) finds the view's programs, as on the kernel: one
/// built in the view (upper only), by a relative and an absolute name, and
/// one of lower alone in a directory the view has copied up; the program
/// gets the name it was given as `argv[0]` (or `--argv0`'s), and its
/// `$ORIGIN` library rebuilt in the view.
#[test]
fn the_loader_run_as_a_program_finds_the_programs_of_the_view() {
    require_root!();
    let fx = greeting_layers(
        "low",
        "#include <stdio.h>\nconst char *greet(void);\n\
         int main(int c, char **v) { printf(\"%s %s\\n\", v[0], greet()); return 0; }\n",
    );
    let (_, ovl) = compare_runs(
        &fx,
        r#"loader=$(readelf -l bin/low | sed -n 's/.*interpreter: \(.*\)]/\1/p')
cc -o bin/new bin/hello.c -Llib -lgreet -Wl,--enable-new-dtags,-rpath,'$ORIGIN/../lib' && echo built
sed -i s/old/new/ lib/greet.c && cc -shared -fPIC -o lib/libgreet.so lib/greet.c && echo rebuilt
# (The loader names a library of the view by its real path: Limitations.)
for p in bin/new "$MNT/bin/new" bin/low; do ldd "$p" | grep -o 'libgreet.so => [^ ]*' | sed 's|=> .*/|=> |'; done
"$loader" bin/new | sed "s|$MNT|MNT|"
"$loader" "$MNT/bin/new" | sed "s|$MNT|MNT|"
(cd bin && "$loader" ./low)
"$loader" --argv0 named bin/low
"$loader" --verify bin/new; echo "verify: $?"
"$loader" bin/missing 2>/dev/null; echo "missing: $?"
"#,
    );
    ovl.assert_stdout(
        "built\nrebuilt\n\
         libgreet.so => libgreet.so\nlibgreet.so => libgreet.so\nlibgreet.so => libgreet.so\n\
         bin/new new\nMNT/bin/new new\n./low new\nnamed new\nverify: 0\nmissing: 127\n",
    );
}

/// `execveat` runs the view's program: by a name relative to the current
/// directory or to a descriptor of the view (a script, a copied program),
/// not a removed one; a script named relative to a close-on-exec
/// descriptor fails with `ENOENT` and a symlink with `AT_SYMLINK_NOFOLLOW`
/// with `ELOOP`, as on the kernel; `AT_EMPTY_PATH` runs the descriptor's
/// own file.
#[test]
fn execveat_runs_the_programs_of_the_view() {
    require_root!();
    let fx = Fixture::new(1);
    let echo = std::fs::read("/bin/echo").expect("/bin/echo");
    fx.lower(1)
        .file_mode("bin/hello", "#!/bin/sh\necho \"lower hello $1\"\n", 0o755)
        .file_mode("bin/echo", &echo, 0o755)
        .symlink("bin/link", "hello");
    let (_, ovl) = compare_runs(
        &fx,
        r#"python3 - <<'EOF'
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def arr(a): return (ctypes.c_char_p * (len(a) + 1))(*[x.encode() for x in a], None)
env = arr([k + '=' + v for k, v in os.environ.items()])
def run(label, fd, name, flags):
    pid = os.fork()
    if pid == 0:
        libc.execveat(fd, name, arr(['x', label]), env, flags)
        print(label, 'failed:', os.strerror(ctypes.get_errno()), flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
closing = os.open('bin', os.O_RDONLY)
kept = os.open('bin', os.O_RDONLY)
os.set_inheritable(kept, True)
run('script-cwd', -100, b'bin/hello', 0)
run('script-cloexec', closing, b'hello', 0)
run('script-kept', kept, b'hello', 0)
run('elf-cloexec', closing, b'echo', 0)
run('symlink-nofollow', kept, b'link', 0x100)
run('symlink', kept, b'link', 0)
run('empty-path', os.open('bin/echo', os.O_RDONLY), b'', 0x1000)
with open('bin/hello', 'a') as f: f.write('echo "upper too $1"\n')
run('copied-script', kept, b'hello', 0)
os.unlink('bin/echo')
run('removed', kept, b'echo', 0)
EOF
"#,
    );
    // The script ran (not an error both sides would print alike).
    assert!(
        ovl.out()
            .contains("lower hello script-cwd\nscript-cloexec failed: No such file"),
        "{}",
        ovl.out()
    );
    assert!(
        ovl.out().contains("upper too copied-script"),
        "{}",
        ovl.out()
    );
}

/// Calls made through libc's generic `syscall` on paths of the view reach
/// the overlay (libuv, so Node.js, stats that way): `statx`, `newfstatat`,
/// `openat`, `faccessat`/`faccessat2`, `readlinkat`, with the kernel's
/// answers (a removed file is gone, a file of upper reads as upper's); any
/// other number goes through as it came.
#[test]
fn calls_made_through_syscall_reach_the_view() {
    require_root!();
    compare_c_program(
        "rawcalls",
        r#"#include <errno.h>
#include <fcntl.h>
#include <linux/stat.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    struct statx sx;
    struct stat st;
    char buf[256];
    long r = syscall(SYS_statx, AT_FDCWD, "src/util.c", 0, STATX_BASIC_STATS, &sx);
    printf("statx %ld size %lld\n", r, r == 0 ? (long long)sx.stx_size : -1LL);
    r = syscall(SYS_statx, AT_FDCWD, "docs/latest", AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx);
    printf("statx nofollow %ld link %d\n", r, r == 0 && S_ISLNK(sx.stx_mode));
    r = syscall(SYS_newfstatat, AT_FDCWD, "notes.txt", &st, 0);
    printf("newfstatat %ld size %lld\n", r, r == 0 ? (long long)st.st_size : -1LL);
    errno = 0;
    r = syscall(SYS_newfstatat, AT_FDCWD, "src/old.c", &st, 0);
    printf("newfstatat removed %ld errno %d\n", r, errno);
    long fd = syscall(SYS_openat, AT_FDCWD, "up.txt", O_RDONLY);
    long n = fd >= 0 ? read((int)fd, buf, sizeof buf - 1) : -1;
    printf("openat %d read %.*s", fd >= 0, (int)(n > 0 ? n : 0), buf);
    printf("faccessat %ld %ld\n", syscall(SYS_faccessat, AT_FDCWD, "bin/run", X_OK),
           syscall(SYS_faccessat2, AT_FDCWD, "bin/run", X_OK, AT_EACCESS));
    r = syscall(SYS_readlinkat, AT_FDCWD, "docs/latest", buf, sizeof buf);
    printf("readlinkat %.*s\n", (int)(r > 0 ? r : 0), buf);
    printf("getpid %d\n", syscall(SYS_getpid) == getpid());
    return 0;
}
"#,
        "",
    );
}

/// Changes made through libc's generic `syscall` (a program's own way to a
/// call libc has no wrapper for, or its way around other libraries' hooks)
/// reach the overlay as the same calls made through libc do: names removed,
/// renamed and made, a lower file opened for writing, its mode, times,
/// size and xattrs changed (also through a read-only descriptor), each
/// copied up as on the kernel (they went to the real directory behind the
/// view, a lower layer where the view is over it). `openat2` and the
/// `*xattrat` calls are refused in a view (`ENOSYS`; see
/// `changes_made_through_syscall_leave_the_lower_directory_unchanged` in
/// `lower_protection.rs` for the kernel's own answer).
#[test]
fn changes_made_through_syscall_change_the_view() {
    require_root!();
    compare_c_changes(
        "rawchanges",
        r#"#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
static void say(const char *what, long r) {
    printf("%s %ld %s\n", what, r < 0 ? -1L : r, r < 0 ? strerror(errno) : "");
}
int main(void) {
    struct stat st;
    struct timespec ts[2] = {{1500000000, 0}, {1500000000, 0}};
    char buf[4096];
    say("unlink", syscall(SYS_unlink, "src/util.c"));
    say("access after unlink", syscall(SYS_access, "src/util.c", F_OK));
    say("rename", syscall(SYS_rename, "notes.txt", "notes.old"));
    say("stat renamed", syscall(SYS_stat, "notes.old", &st) == 0 ? (long)st.st_size : -1);
    long fd = syscall(SYS_open, "src/main.c", O_WRONLY | O_APPEND);
    say("open for writing", fd >= 0 ? 0 : -1);
    if (fd >= 0) {
        say("write", write((int)fd, "/* raw */\n", 10));
        say("close", syscall(SYS_close, fd));
    }
    say("chmod", syscall(SYS_chmod, "bin/run", 0700));
    say("fchmodat", syscall(SYS_fchmodat, AT_FDCWD, "docs/readme.md", 0600));
    say("truncate", syscall(SYS_truncate, "docs/api/index.md", 3));
    say("utimensat", syscall(SYS_utimensat, AT_FDCWD, "docs/api/index.md", ts, 0));
    say("mkdir", syscall(SYS_mkdir, "docs/new", 0755));
    say("mkdirat", syscall(SYS_mkdirat, AT_FDCWD, "docs/gone", 0755));
    say("rmdir", syscall(SYS_rmdir, "docs/gone"));
    say("unlinkat", syscall(SYS_unlinkat, AT_FDCWD, "docs/api/index.md", 0));
    say("unlinkat a directory", syscall(SYS_unlinkat, AT_FDCWD, "docs/api", AT_REMOVEDIR));
    say("symlink", syscall(SYS_symlink, "main.c", "src/link"));
    say("link", syscall(SYS_link, "links/one", "links/three"));
    say("renameat2", syscall(SYS_renameat2, AT_FDCWD, "links/two", AT_FDCWD, "src/two", RENAME_NOREPLACE));
    say("setxattr", syscall(SYS_setxattr, "docs/readme.md", "user.raw", "v", 1, 0));
    say("getxattr", syscall(SYS_getxattr, "docs/readme.md", "user.raw", buf, sizeof buf));
    say("mknod", syscall(SYS_mknod, "fifo", S_IFIFO | 0644, 0));
    long ro = syscall(SYS_openat, AT_FDCWD, "links/one", O_RDONLY);
    say("fchmod of a read-only descriptor", syscall(SYS_fchmod, ro, 0640));
    say("fsetxattr of a read-only descriptor", syscall(SYS_fsetxattr, ro, "user.fd", "w", 1, 0));
    say("utimensat of a descriptor", syscall(SYS_utimensat, ro, NULL, ts, 0));
    say("fstat", syscall(SYS_fstat, ro, &st) == 0 ? (long)(st.st_mode & 07777) : -1);
    long cwd = syscall(SYS_getcwd, buf, sizeof buf);
    say("getcwd", cwd > 0 && (size_t)cwd == strlen(buf) + 1 && strcmp(buf, getcwd(buf + 2048, 2048)) == 0);
    say("chdir", syscall(SYS_chdir, "src"));
    say("readlink", syscall(SYS_readlink, "link", buf, sizeof buf));
    say("getpid", syscall(SYS_getpid) == getpid());
    return 0;
}
"#,
        " && cat src/main.c links/three notes.old && find docs links src bin fifo -printf '%p %M %n %s %l\\n' | sort && stat -c '%n %Y' links/one links/three && getfattr -d docs/readme.md links/one",
        &["unlink 0", "open for writing 0", "getcwd 1", "fsetxattr of a read-only descriptor 0"],
    );
}

/// The rest of the calls `syscall` hands to their hooks (see
/// `changes_made_through_syscall_change_the_view`), each once, as the
/// kernel answers them: so that no row of the shim's table takes its
/// arguments in another order than the call's.
#[test]
fn every_call_routed_through_syscall_answers_as_on_the_kernel() {
    require_root!();
    compare_c_changes(
        "rawcalls2",
        r#"#include <errno.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utime.h>
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
extern char **environ;
static void say(const char *what, long r) {
    printf("%s %ld %s\n", what, r < 0 ? -1L : r, r < 0 ? strerror(errno) : "");
}
static long mtime(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_mtime : -1;
}
int main(void) {
    struct stat st;
    struct statfs sf;
    char buf[256];
    struct utimbuf ub = {1400000000, 1400000000};
    struct timeval tv[2] = {{1450000000, 0}, {1450000000, 0}};
    long fd = syscall(SYS_creat, "made.txt", 0640);
    say("creat", fd >= 0 ? 0 : -1);
    say("lstat is a link", syscall(SYS_lstat, "docs/latest", &st) == 0 && S_ISLNK(st.st_mode));
    say("statfs overlay", syscall(SYS_statfs, "src", &sf) == 0 && sf.f_type == 0x794c7630);
    say("fstatfs overlay", syscall(SYS_fstatfs, fd, &sf) == 0 && sf.f_type == 0x794c7630);
    say("setxattr", syscall(SYS_setxattr, "notes.txt", "user.k", "v1", 2, 0));
    long nf = syscall(SYS_open, "notes.txt", O_RDONLY);
    say("lgetxattr", syscall(SYS_lgetxattr, "notes.txt", "user.k", buf, sizeof buf));
    say("fgetxattr", syscall(SYS_fgetxattr, nf, "user.k", buf, sizeof buf));
    say("listxattr", syscall(SYS_listxattr, "notes.txt", buf, sizeof buf));
    say("llistxattr of a link", syscall(SYS_llistxattr, "docs/latest", buf, sizeof buf));
    say("flistxattr", syscall(SYS_flistxattr, nf, buf, sizeof buf));
    say("lsetxattr user on a link", syscall(SYS_lsetxattr, "docs/latest", "user.k", "v", 1, 0));
    say("removexattr", syscall(SYS_removexattr, "notes.txt", "user.k"));
    say("lremovexattr absent", syscall(SYS_lremovexattr, "notes.txt", "user.k"));
    say("fsetxattr", syscall(SYS_fsetxattr, nf, "user.f", "f", 1, 0));
    say("fremovexattr", syscall(SYS_fremovexattr, nf, "user.f"));
    say("renameat", syscall(SYS_renameat, AT_FDCWD, "src/main.c", AT_FDCWD, "src/main2.c"));
    say("linkat", syscall(SYS_linkat, AT_FDCWD, "src/util.c", AT_FDCWD, "src/util2.c", 0));
    say("symlinkat", syscall(SYS_symlinkat, "util.c", AT_FDCWD, "src/ulink"));
    say("mknodat fifo", syscall(SYS_mknodat, AT_FDCWD, "pipe", S_IFIFO | 0600, 0));
    say("fchmodat2", syscall(SYS_fchmodat2, AT_FDCWD, "src/util.c", 0600, AT_SYMLINK_NOFOLLOW));
    say("chown", syscall(SYS_chown, "docs/readme.md", 0, 0));
    say("lchown", syscall(SYS_lchown, "docs/latest", 0, 0));
    say("fchown", syscall(SYS_fchown, nf, 0, 0));
    say("fchownat", syscall(SYS_fchownat, AT_FDCWD, "links/one", 0, 0, 0));
    say("utime", syscall(SYS_utime, "docs/readme.md", &ub));
    say("utimes", syscall(SYS_utimes, "links/one", tv));
    say("futimesat", syscall(SYS_futimesat, AT_FDCWD, "src/util2.c", tv));
    printf("times %ld %ld %ld\n", mtime("docs/readme.md"), mtime("links/one"), mtime("src/util.c"));
    int n = -1;
    say("ioctl FIONREAD", syscall(SYS_ioctl, nf, FIONREAD, &n) == 0 ? n : -1);
    say("fcntl dup", syscall(SYS_fcntl, nf, F_DUPFD_CLOEXEC, 50) >= 50);
    say("dup2", syscall(SYS_dup2, nf, 100));
    say("dup3", syscall(SYS_dup3, nf, 101, O_CLOEXEC));
    say("fstat of the duplicate", syscall(SYS_fstat, 101, &st) == 0 ? (long)st.st_size : -1);
    say("close_range", syscall(SYS_close_range, 100, 101, 0));
    say("fstat after close_range", syscall(SYS_fstat, 100, &st));
    say("inotify_add_watch", syscall(SYS_inotify_add_watch, inotify_init1(0), "src", IN_CREATE) > 0);
    struct { unsigned int bytes; int type; unsigned char h[128]; } handle = {128, 0, {0}};
    int mnt;
    say("name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, "notes.txt", &handle, &mnt, 0));
    struct sockaddr_un sa = {AF_UNIX, "sock"};
    int srv = socket(AF_UNIX, SOCK_STREAM, 0), cli = socket(AF_UNIX, SOCK_STREAM, 0);
    say("bind", syscall(SYS_bind, srv, &sa, sizeof sa));
    listen(srv, 1);
    say("connect", syscall(SYS_connect, cli, &sa, sizeof sa));
    long dir = syscall(SYS_open, "docs", O_RDONLY | O_DIRECTORY);
    say("fchdir", syscall(SYS_fchdir, dir));
    printf("now in %s\n", strrchr(getcwd(buf, sizeof buf), '/') + 1);
    say("chdir back", syscall(SYS_chdir, ".."));
    fflush(stdout);
    char *run[] = {"run", NULL};
    if (fork() == 0) {
        syscall(SYS_execveat, AT_FDCWD, "bin/run", run, environ, 0);
        _exit(99);
    }
    int status;
    wait(&status);
    char *echo[] = {"echo", "execve done", NULL};
    syscall(SYS_execve, "/bin/echo", echo, environ);
    say("execve", -1);
    return 1;
}
"#,
        " && find . -path ./sock -prune -o -printf '%p %M %n %s %l\\n' | sort && ls -l sock | cut -c1",
        &["creat 0", "renameat 0", "utimes 0", "execve done"],
    );
}

/// `getdents64` called by the program itself (the function glibc exports,
/// and through `syscall`) on a descriptor of a merged directory reads the
/// merged directory, as on the kernel (it read the upper directory alone:
/// a whiteout showed, the lower layers' names did not): whole records that
/// fit, `EINVAL` for a buffer too small for the next one, a position
/// shared by a duplicate, a seek back to the start, and a directory of one
/// layer, an opaque one, the root, and one removed while open.
#[test]
fn getdents64_reads_the_merged_directory() {
    require_root!();
    compare_c_program(
        "getdents",
        r#"#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
/* glibc's (declared for _GNU_SOURCE); its records are `struct dirent`'s
   on a 64-bit system. */
ssize_t getdents64(int fd, void *buf, size_t n);
static long get(int fd, char *buf, size_t n, int raw) {
    return raw ? syscall(SYS_getdents64, fd, buf, n) : getdents64(fd, buf, n);
}
/* Reads `fd` to its end, `n` bytes at a time; prints the names sorted. */
static void names(const char *what, int fd, size_t n, int raw) {
    char buf[8192], *all[64];
    int count = 0;
    long got;
    while ((got = get(fd, buf, n, raw)) > 0)
        for (long at = 0; at < got && count < 64;) {
            struct dirent *e = (struct dirent *)(buf + at);
            all[count++] = strdup(e->d_name);
            at += e->d_reclen;
        }
    qsort(all, count, sizeof *all, by_name);
    printf("%s:", what);
    for (int i = 0; i < count; i++) printf(" %s", all[i]);
    printf(" (end %ld%s)\n", got, got < 0 ? strerror(errno) : "");
}
int main(void) {
    const char *dirs[] = {"src", "docs", "build", ".", "docs/api"};
    for (int i = 0; i < 5; i++) {
        int fd = open(dirs[i], O_RDONLY | O_DIRECTORY);
        names(dirs[i], fd, 8192, 0);
        lseek(fd, 0, SEEK_SET);
        names("again, through syscall, 40 bytes a call", fd, 40, 1);
        close(fd);
    }
    char buf[64];
    int fd = open("src", O_RDONLY | O_DIRECTORY);
    long tiny = getdents64(fd, buf, 8);
    printf("8 bytes: %ld %s\n", tiny, tiny < 0 ? strerror(errno) : "");
    long first = getdents64(fd, buf, 32);
    int twin = dup(fd);
    printf("first record %d, duplicate at the same place %d\n", first > 0,
           lseek(twin, 0, SEEK_CUR) == lseek(fd, 0, SEEK_CUR));
    names("the rest, through the duplicate", twin, 8192, 0);
    printf("seek from the end: %ld\n", (long)lseek(fd, 0, SEEK_END));
    close(fd);
    close(twin);
    mkdir("gone", 0755);
    close(open("gone/f", O_CREAT | O_WRONLY, 0644));
    fd = open("src", O_RDONLY | O_DIRECTORY);
    int gone = open("gone", O_RDONLY | O_DIRECTORY);
    unlink("gone/f");
    rmdir("gone");
    names("removed while open", gone, 8192, 0);
    unlink("src/util.c");
    names("src after an unlink", fd, 8192, 0);
    return 0;
}
"#,
        "",
    );
}

/// `readlink` of the process's own magic links names the view, as the
/// kernel's overlay shows them: `/proc/self/exe` of a program held in the
/// view (one that finds its files beside itself), `/proc/self/cwd` in
/// directories of every layer, `/proc/self/fd/N` and `/dev/fd/N` of files,
/// a directory and a copy.
#[test]
fn magic_links_of_the_process_name_the_view() {
    require_root!();
    compare_runs(
        &source_tree(),
        r#"cp "$(command -v readlink)" bin/rl && bin/rl /proc/self/exe
cd src && readlink /proc/self/cwd /proc/thread-self/cwd
exec 3<util.c 4<../docs 5<../up.txt 6<../links/one
readlink /proc/self/fd/3 /proc/self/fd/4 /dev/fd/5 /proc/self/fd/6
echo more >> ../links/one && exec 6<../links/one && readlink /proc/self/fd/6
cd ../build && python3 -c 'import os; print(os.readlink("/proc/self/cwd"), os.readlink("/proc/%d/cwd" % os.getpid()))'
"#,
    );
}

/// Node.js asked to use io_uring (`UV_USE_IO_URING=1`): the kernel makes
/// io_uring's operations where no hook sees them, and a relative path
/// reached the real (lower) directory behind the current one. The ring is
/// refused in a view; libuv falls back to plain calls, which the view sees.
#[test]
fn node_asked_for_io_uring_writes_through_the_view() {
    require_root!();
    let fx = source_tree();
    compare_changes(
        &fx,
        r#"cd src && UV_USE_IO_URING=1 node - <<'EOF'
const fs = require('fs');
(async () => {
  await fs.promises.appendFile('util.c', '/* ring */\n');
  const fh = await fs.promises.open('main.c', 'r+');
  await fh.write('/*', 0);
  await fh.close();
  await fs.promises.writeFile('new.txt', 'new\n');
  console.log('done', (await fs.promises.readFile('util.c', 'utf8')).split('\n').length);
})();
EOF
"#,
        &["done"],
    );
}

/// Node.js in the view: libuv stats through `syscall`, reads directories
/// through libc; reading, writing, copying and removing trees, symlinks,
/// an inode number kept across a copy-up.
#[test]
fn node_reads_and_writes_the_view() {
    require_root!();
    let fx = source_tree();
    compare_changes(
        &fx,
        r#"node - <<'EOF'
const fs = require('fs'), path = require('path');
const walk = d => fs.readdirSync(d, {withFileTypes: true}).flatMap(e =>
    e.isDirectory() ? [path.join(d, e.name) + '/', ...walk(path.join(d, e.name))] : [path.join(d, e.name)]);
const ino = fs.statSync('src/util.c').ino;
fs.appendFileSync('src/util.c', '/* more */\n');
console.log('ino kept', fs.statSync('src/util.c').ino === ino, fs.statSync('src/util.c').size);
fs.cpSync('docs', 'docs-copy', {recursive: true});
fs.rmSync('links', {recursive: true});
fs.renameSync('notes.txt', 'src/notes.txt');
fs.mkdirSync('x/y', {recursive: true});
fs.symlinkSync('../src/main.c', 'x/main');
console.log(fs.readlinkSync('x/main'), fs.readFileSync('x/main', 'utf8').split('\n')[0]);
console.log(fs.lstatSync('docs/latest').isSymbolicLink(), fs.existsSync('src/old.c'), fs.existsSync('links'));
fs.promises.stat('up.txt').then(s => console.log('async', s.size));
console.log(walk('.').sort().join('\n'));
EOF
"#,
        &["ino kept true", "../src/main.c int main(void)"],
    );
}
