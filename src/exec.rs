//! Running programs: finding them in the view (also through `PATH`), `#!`
//! scripts (the interpreter found in the view, the script passed by its
//! virtual path, as the kernel would), refusing what cannot be preloaded
//! (see [`crate::preloadable`]), and keeping the overlay in the environment
//! of every child.

use crate::config::env;
use crate::library_path::is_library_path_entry;
use crate::locate::Where;
use crate::lookup::Resolved;
use crate::overlay::{overlay_variable, Overlay};
use crate::preloadable::{examine, Program};
use crate::sys::cpath;
use rustix::io::Errno;

/// Interpreters followed through `#!` lines before `ELOOP`, as the kernel.
const MAX_INTERPRETERS: usize = 4;

/// What to hand the real `execve`.
pub struct Plan {
    /// The real file to execute.
    pub path: Vec<u8>,
    /// The arguments (changed only for `#!` scripts).
    pub argv: Vec<Vec<u8>>,
    /// Real directories, `:`-joined, for the loader to search after the
    /// program's own `LD_LIBRARY_PATH` (see [`Overlay::child_env`]): those
    /// holding the directories of the view its own search path names
    /// (`library_path`). `None` for most programs.
    pub library_dirs: Option<Vec<u8>>,
    /// The process's name (`comm`, what `ps` and `pgrep` show) when the
    /// file run is named otherwise than the one the caller named: an
    /// interpreter run in a `#!` script's stead, or the target of a
    /// symbolic link of the view. The kernel names a process after the
    /// name it was given (the script's, the link's); the shim does so from
    /// this (see [`Overlay::child_env`]). `None` when the names agree.
    pub name: Option<Vec<u8>>,
}

/// An executable as the view shows it.
struct Target {
    /// The real file.
    real: Vec<u8>,
    /// Its `stat`.
    st: rustix::fs::Stat,
    /// Its directory as the view names it (symlinks followed), when it is
    /// in the view: the `$ORIGIN` the kernel's overlay would give it.
    view_dir: Option<Vec<u8>>,
}

/// Why a program is refused.
#[derive(Debug)]
pub enum Refusal {
    /// An errno, as `execve` would fail.
    Errno(Errno),
    /// It cannot be preloaded: the message says why.
    Unseen(String),
}

impl From<Errno> for Refusal {
    fn from(e: Errno) -> Self {
        Refusal::Errno(e)
    }
}

/// The plan of running the program `target`, which the caller named `named`.
fn plan(target: Target, named: &[u8], argv: Vec<Vec<u8>>, library_dirs: Option<Vec<u8>>) -> Plan {
    let name = (file_name(&target.real) != file_name(named)).then(|| file_name(named).to_vec());
    Plan {
        path: target.real,
        argv,
        library_dirs,
        name,
    }
}

/// The dynamic loader's arguments, and the library directories for the
/// program it runs (as [`Plan::library_dirs`]).
type LoaderArguments = (Vec<Vec<u8>>, Option<Vec<u8>>);

/// Where the program's path lies among the dynamic loader's arguments
/// (after its options, glibc's `rtld` reads them so), whether `--argv0` is
/// among those options, and whether the loader is to run the program (not
/// only list or check it: `--list`, `--verify`). `None`: no program
/// (`--help`).
fn loader_program_index(argv: &[Vec<u8>]) -> Option<(usize, bool, bool)> {
    const WITH_VALUE: [&[u8]; 7] = [
        b"--library-path",
        b"--inhibit-rpath",
        b"--audit",
        b"--preload",
        b"--argv0",
        b"--glibc-hwcaps-prepend",
        b"--glibc-hwcaps-mask",
    ];
    let mut i = 1;
    let mut argv0 = false;
    let mut runs = true;
    while let Some(arg) = argv.get(i) {
        if WITH_VALUE.contains(&arg.as_slice()) {
            argv0 |= arg == b"--argv0";
            i += 2;
        } else if arg.starts_with(b"--") {
            runs &= arg != b"--list" && arg != b"--verify";
            i += 1;
        } else {
            return Some((i, argv0, runs));
        }
    }
    None
}

/// Does the dynamic loader take `--argv0` (glibc 2.33 and later)?
fn loader_takes_argv0() -> bool {
    // SAFETY: glibc's own static string.
    let version = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
    let mut parts = version.to_bytes().split(|&b| b == b'.');
    let mut number = || {
        parts
            .next()
            .and_then(|p| std::str::from_utf8(p).ok()?.parse::<u32>().ok())
    };
    (number(), number()) >= (Some(2), Some(33))
}

impl Overlay {
    /// The executable named by `path` (relative to the current directory):
    /// its real path, its `lstat`-followed stat, its directory in the view.
    fn exec_target(&self, path: &[u8]) -> Result<Target, Errno> {
        let (real, view_dir) = match self.locate(libc::AT_FDCWD, path) {
            Where::Outside => (path.to_vec(), None),
            Where::Fails(e) => return Err(e),
            Where::Inside(rel) => match self.resolve(&rel, true)? {
                Resolved::Inside(node) => {
                    let dir = crate::lookup::split_last(&node.rel).0;
                    let view_dir = self.virtual_path(dir);
                    (self.real_path(node.layer, &node.rel), Some(view_dir))
                }
                Resolved::Outside(p) => (p, None),
            },
        };
        let st = rustix::fs::stat(cpath(&real).as_c_str())?;
        Ok(Target { real, st, view_dir })
    }

    /// Is `path` (as [`Overlay::plan_exec`] takes it) a `#!` script? The
    /// kernel refuses to run one named relative to a close-on-exec
    /// descriptor (`execveat`): its interpreter could not open it.
    pub fn is_script(&self, path: &[u8]) -> bool {
        self.exec_target(path)
            .is_ok_and(|t| matches!(examine(&t.real, &t.st), Program::Script { .. }))
    }

    /// Whether the program open at `fd` may run (`fexecve`, `execveat` of a
    /// descriptor's own object): as [`Overlay::plan_exec`] decides for a
    /// path, a statically linked program (or a script whose interpreter
    /// is one) is refused. The kernel decides the rest.
    pub fn check_exec_fd(&self, fd: i32) -> Result<(), Refusal> {
        // SAFETY: the caller's descriptor, for this call only.
        let st = rustix::fs::fstat(unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) })?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Ok(());
        }
        // The descriptor's own object, an `O_PATH` one's too.
        let link = format!("/proc/self/fd/{fd}").into_bytes();
        let named = rustix::fs::readlink(link.as_slice(), Vec::new())
            .map_or_else(|_| link.clone(), |p| p.into_bytes());
        match examine(&link, &st) {
            Program::Unseen(why) => Err(Refusal::Unseen(refusal(&named, None, &why))),
            Program::Script { interp, .. } => self
                .plan_exec(&interp, vec![interp.clone()], false)
                .map(|_| ())
                .map_err(|r| match r {
                    Refusal::Unseen(why) => {
                        Refusal::Unseen(format!("{}: {why}", String::from_utf8_lossy(&named)))
                    }
                    r => r,
                }),
            Program::Preloadable { .. } | Program::Loader => Ok(()),
        }
    }

    /// Works out how to run `path` with `argv`, or why not. A refusal
    /// names `path` as given, and the interpreter that is refused when it
    /// is one of a `#!` chain. `tracing`: the new environment asks the
    /// dynamic loader only to list a program's libraries
    /// (`LD_TRACE_LOADED_OBJECTS`, as `ldd` does), not to run it.
    pub fn plan_exec(
        &self,
        path: &[u8],
        argv: Vec<Vec<u8>>,
        tracing: bool,
    ) -> Result<Plan, Refusal> {
        let named = path.to_vec();
        let mut path = path.to_vec();
        let mut argv = argv;
        for depth in 0..=MAX_INTERPRETERS {
            let target = self.exec_target(&path)?;
            if target.st.st_mode & libc::S_IFMT != libc::S_IFREG {
                return Err(Errno::ACCESS.into());
            }
            match examine(&target.real, &target.st) {
                Program::Script { interp, arg } => {
                    let mut next = vec![interp.clone()];
                    next.extend(arg);
                    next.push(path);
                    next.extend(argv.into_iter().skip(1));
                    argv = next;
                    path = interp;
                }
                Program::Unseen(why) => {
                    let interpreter = (depth > 0).then_some(path.as_slice());
                    return Err(Refusal::Unseen(refusal(&named, interpreter, &why)));
                }
                Program::Preloadable { search } => {
                    let library_dirs = search.and_then(|search| {
                        self.search_path_dirs(&search, &target.real, target.view_dir.as_deref())
                    });
                    return Ok(plan(target, &named, argv, library_dirs));
                }
                Program::Loader => {
                    let (argv, library_dirs) = self.loader_arguments(argv, tracing)?;
                    return Ok(plan(target, &named, argv, library_dirs));
                }
            }
        }
        Err(Errno::LOOP.into())
    }

    /// The dynamic loader run as a program (`ld.so [OPTIONS] PROG ARGS`, as
    /// `ldd` runs it) opens PROG itself, where no hook sees it: a program
    /// of the view is given to it by its real file, under the name it was
    /// given (`--argv0`: the program's `argv[0]`, as when it is executed),
    /// with the real directories its own search path names in the view, as
    /// for the program executed itself. A program `execve` would refuse (a
    /// Go program, dynamically linked) is refused to it too, unless it is
    /// only to be listed or checked (`tracing`, `--list`, `--verify`).
    fn loader_arguments(
        &self,
        mut argv: Vec<Vec<u8>>,
        tracing: bool,
    ) -> Result<LoaderArguments, Refusal> {
        let Some((at, argv0_given, runs)) = loader_program_index(&argv) else {
            return Ok((argv, None));
        };
        let Ok(target) = self.exec_target(&argv[at]) else {
            return Ok((argv, None)); // the loader says why
        };
        let program = examine(&target.real, &target.st);
        if let Program::Unseen(why) = &program {
            if runs && !tracing {
                return Err(Refusal::Unseen(refusal(&argv[at], None, why)));
            }
        }
        let Some(view_dir) = target.view_dir.as_deref() else {
            return Ok((argv, None)); // outside the view: as given
        };
        let library_dirs = match program {
            Program::Preloadable {
                search: Some(search),
            } => self.search_path_dirs(&search, &target.real, Some(view_dir)),
            _ => None,
        };
        let given = std::mem::replace(&mut argv[at], target.real);
        if !argv0_given && loader_takes_argv0() {
            argv.splice(at..at, [b"--argv0".to_vec(), given]);
        }
        Ok((argv, library_dirs))
    }

    /// Finds `file` (no `/`) along `search` (a `PATH` value) in the view and
    /// outside, as `execvp` does: the first executable regular file.
    pub fn find_in_path(&self, file: &[u8], search: &[u8]) -> Result<Vec<u8>, Errno> {
        let mut err = Errno::NOENT;
        for dir in search.split(|&b| b == b':') {
            let mut cand = if dir.is_empty() {
                b".".to_vec()
            } else {
                dir.to_vec()
            };
            cand.push(b'/');
            cand.extend_from_slice(file);
            match self.exec_target(&cand) {
                Ok(t) if t.st.st_mode & libc::S_IFMT == libc::S_IFREG => {
                    match rustix::fs::access(cpath(&t.real).as_c_str(), rustix::fs::Access::EXEC_OK)
                    {
                        Ok(()) => return Ok(cand),
                        Err(_) => err = Errno::ACCESS,
                    }
                }
                Ok(_) => err = Errno::ACCESS,
                Err(Errno::ACCESS) => err = Errno::ACCESS,
                Err(_) => {}
            }
        }
        Err(err)
    }

    /// Does `envp` describe this overlay as it is: each of its variables
    /// (the first definition, as `getenv` reads) as this process's, none
    /// this process does not have, and no process name left for the shim?
    fn describes_this_overlay(&self, envp: &[&[u8]]) -> bool {
        // One pass over `envp`: it is long, and this runs at every `exec`.
        let mut given = [None; env::ALL.len()];
        for e in envp {
            if let Some((i, value)) = overlay_variable(e) {
                given[i].get_or_insert(value);
            } else if is_for_the_shim(e) {
                // A variable left for the shim (a program passing on its
                // first environment as `/proc/self/environ` keeps it): the
                // child is to lose it, so `envp` is written anew.
                return false;
            }
        }
        env::ALL.iter().zip(given).all(|(k, given)| {
            let own = self
                .env
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_slice());
            given == own
        })
    }

    /// The environment of a child: `envp` with the overlay's variables (as
    /// this process's: a program cannot point its children at other layers,
    /// to which a lower layer would be a plain directory) and the shim in
    /// `LD_PRELOAD` put back where they went missing or were changed, and the
    /// loader's library path and preloaded libraries made real
    /// (`library_path`), with `library_dirs` (a [`Plan`]'s) after the
    /// program's own entries; and `name` (a [`Plan`]'s) for the shim to give
    /// the process. `None`: `envp` as it is.
    pub fn child_env(
        &self,
        envp: &[&[u8]],
        library_dirs: Option<&[u8]>,
        name: Option<&[u8]>,
    ) -> Option<Vec<Vec<u8>>> {
        let library = self.library_path_env(envp, library_dirs);
        let shim = self
            .env
            .iter()
            .find(|(k, _)| k == env::SHIM)
            .map(|(_, v)| v.clone());
        let given_preload = envp.iter().find_map(|e| e.strip_prefix(b"LD_PRELOAD="));
        let real_preload = given_preload.and_then(|v| self.real_preload(v));
        let preload_ok = real_preload.is_none()
            && shim.as_ref().is_none_or(|s| {
                given_preload.is_some_and(|v| {
                    v.split(|&b| b == b':' || b == b' ')
                        .any(|p| p == s.as_slice())
                })
            });
        let ours = self.describes_this_overlay(envp);
        let removed_cwd = self.removed_cwd_entry();
        let core_limit = crate::core_dump::child_entry();
        if ours
            && preload_ok
            && library.is_none()
            && name.is_none()
            && removed_cwd.is_none()
            && core_limit.is_none()
        {
            return None;
        }
        let mut out: Vec<Vec<u8>> = Vec::with_capacity(envp.len() + self.env.len() + 4);
        for e in envp {
            let replaced = (!ours && overlay_variable(e).is_some())
                || (!preload_ok && e.starts_with(b"LD_PRELOAD="))
                || (library.is_some() && is_library_path_entry(e))
                || is_for_the_shim(e);
            if !replaced {
                out.push(e.to_vec());
            }
        }
        out.extend(library.into_iter().flatten());
        out.extend(name.map(process_name_entry));
        out.extend(removed_cwd);
        out.extend(core_limit);
        for (k, v) in self.env.iter().filter(|_| !ours) {
            let mut e = k.as_bytes().to_vec();
            e.push(b'=');
            e.extend_from_slice(v);
            out.push(e);
        }
        if !preload_ok {
            let shim = shim.unwrap_or_default();
            let mut e = b"LD_PRELOAD=".to_vec();
            e.extend_from_slice(&shim);
            let rest = real_preload
                .as_deref()
                .or(given_preload)
                .unwrap_or_default();
            for item in rest.split(|&b| b == b':' || b == b' ') {
                if !item.is_empty() && item != shim.as_slice() {
                    if !e.ends_with(b"=") {
                        e.push(b':');
                    }
                    e.extend_from_slice(item);
                }
            }
            out.push(e);
        }
        Some(out)
    }
}

/// Is the environment entry `e` one the shim takes before `main`?
fn is_for_the_shim(e: &[u8]) -> bool {
    [env::PROCESS_NAME, env::REMOVED_CWD, env::CORE_LIMIT]
        .iter()
        .any(|name| env::is_entry(e, name))
}

/// The environment entry that gives a process `name` ([`Plan::name`]).
pub fn process_name_entry(name: &[u8]) -> Vec<u8> {
    [env::PROCESS_NAME.as_bytes(), b"=", name].concat()
}

/// The last component of `path`, as the kernel names a process after the
/// file it was started from.
fn file_name(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
}

/// In a new process, before `main`: the name it was started by
/// ([`Plan::name`]), and the variable that carried it gone. The kernel
/// keeps the first 15 bytes (`PR_SET_NAME` cuts it), as at `execve`.
pub fn take_process_name() {
    let Some(name) = env::take(env::PROCESS_NAME) else {
        return;
    };
    if let Ok(name) = std::ffi::CString::new(name.into_encoded_bytes()) {
        // A name the kernel refuses leaves the interpreter's: nothing else changes.
        let _ = rustix::thread::set_name(&name);
    }
}

/// In a new process, before `main`: the removed directory of the view it
/// was started in ([`env::REMOVED_CWD`]), taken as its current directory
/// when it still stands in it; the variable gone.
pub fn take_removed_cwd(ovl: &Overlay) {
    let Some(value) = env::take(env::REMOVED_CWD) else {
        return;
    };
    let value = value.into_encoded_bytes();
    let mut parts = value.splitn(3, |&b| b == b':');
    let number = |p: Option<&[u8]>| std::str::from_utf8(p?).ok()?.parse::<u64>().ok();
    let (Some(dev), Some(ino), Some(rel)) =
        (number(parts.next()), number(parts.next()), parts.next())
    else {
        return;
    };
    // A child that was given another directory (`posix_spawn`'s `chdir`
    // action) keeps its own.
    if rustix::fs::stat(".").is_ok_and(|st| st.st_dev == dev && st.st_ino == ino) {
        ovl.adopt_removed_cwd(rel.to_vec());
    }
}

/// `<named>: <why>`, or `<named>: its interpreter <interpreter>: <why>`.
fn refusal(named: &[u8], interpreter: Option<&[u8]>, why: &str) -> String {
    let named = String::from_utf8_lossy(named);
    match interpreter {
        None => format!("{named}: {why}"),
        Some(i) => format!(
            "{named}: its interpreter {}: {why}",
            String::from_utf8_lossy(i)
        ),
    }
}
