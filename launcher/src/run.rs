//! Checks the setup, puts the shim and the overlay's description into the
//! environment, and executes the command once: found as `execvp` would find
//! it but in the merged view (it may live only there), planned by the core
//! (`#!` scripts, programs that cannot be preloaded), and handed to `execve`.
//! ovl-exec itself runs without the shim; the core's raw system calls see
//! the view all the same.

use crate::cli::Cli;
use crate::{die, setup, shim_path, EXIT_CANNOT_RUN, EXIT_NOT_FOUND, EXIT_OVL};
use nix::errno::Errno;
use ovl::config::{env, Config};
use ovl::exec::{Plan, Refusal};
use ovl::overlay::Overlay;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// `PATH` when it is unset, as glibc's `execvp`.
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// Checks everything, creates the work directory, runs the command.
pub fn run(cli: &Cli) -> ! {
    if let Some(view) = shim_path::enclosing_view() {
        // Its shim would give the command the outer overlay back (a program
        // cannot point its children at other layers), and the new layers
        // would be plain directories to it, open to every change.
        die(
            EXIT_OVL,
            format!(
                "views do not nest: this runs in the view at {} already; run ovl-exec outside it (or unset OVL_LOWER and LD_PRELOAD if they were set by hand)",
                view.display()
            ),
        );
    }
    let settings = cli.settings().unwrap_or_else(|e| die(EXIT_OVL, e));
    let config = Config::validate(&settings).unwrap_or_else(|e| die(EXIT_OVL, e));
    setup::check(&config).unwrap_or_else(|e| die(EXIT_OVL, e));
    let shim = shim_path::find().unwrap_or_else(|e| die(EXIT_OVL, e));
    setup::create_work(&config).unwrap_or_else(|e| die(EXIT_OVL, e));
    set_environment(&config, &shim);
    let overlay = ovl::overlay::get().unwrap_or_else(|| {
        die(
            EXIT_OVL,
            "the overlay's variables did not reach the environment: report this as a bug",
        )
    });
    forget_library_path_records();
    set_preload(overlay);
    let argv: Vec<Vec<u8>> = cli
        .command
        .iter()
        .cloned()
        .map(OsString::into_vec)
        .collect();
    exec_command(overlay, argv)
}

/// The overlay's variables, `OVL_SHIM`, and the shim first in `LD_PRELOAD`;
/// variables of an outer overlay do not leak in.
fn set_environment(config: &Config, shim: &std::path::Path) {
    for k in env::ALL {
        std::env::remove_var(k);
    }
    for (k, v) in config.to_env() {
        std::env::set_var(k, v);
    }
    std::env::set_var(env::SHIM, shim);
    let preload = shim_path::preload_value(shim, std::env::var_os("LD_PRELOAD"));
    std::env::set_var("LD_PRELOAD", preload);
}

/// Drops records of a library path kept aside for another program (the
/// command's are made at its `execve`).
fn forget_library_path_records() {
    std::env::remove_var(env::LIBRARY_PATH_AS_GIVEN);
    std::env::remove_var(env::LIBRARY_PATH_UNSET);
}

/// The command's environment when it is not ours as it is: when its loader
/// is to read another `LD_LIBRARY_PATH` (its directories of the view made
/// real, and `library_dirs`, the plan's, after them; the shim puts the
/// given value back before `main`), and when the file run is named
/// otherwise than the command (`name`, the plan's: the script's name for
/// its interpreter, a link's for its target; for the shim to give the
/// process).
/// `None`: ours as it is.
fn command_env(
    overlay: &Overlay,
    library_dirs: Option<&[u8]>,
    name: Option<&[u8]>,
) -> Option<Vec<CString>> {
    let ours: Vec<Vec<u8>> = std::env::vars_os()
        .map(|(k, v)| [k.as_bytes(), b"=", v.as_bytes()].concat())
        .collect();
    let refs: Vec<&[u8]> = ours.iter().map(Vec::as_slice).collect();
    let library = overlay.library_path_env(&refs, library_dirs);
    if library.is_none() && name.is_none() {
        return None;
    }
    let replaced = library.is_some();
    let kept = ours
        .iter()
        .filter(|e| !replaced || !ovl::library_path::is_library_path_entry(e))
        .cloned();
    let added = library
        .into_iter()
        .flatten()
        .chain(name.map(ovl::exec::process_name_entry));
    Some(cstrings(kept.chain(added).collect()))
}

/// `LD_PRELOAD` with its libraries of the view made real, for the command's
/// loader (the shim stays first).
fn set_preload(overlay: &Overlay) {
    let Some(given) = std::env::var_os("LD_PRELOAD") else {
        return;
    };
    if let Some(real) = overlay.real_preload(given.as_bytes()) {
        std::env::set_var("LD_PRELOAD", OsString::from_vec(real));
    }
}

/// Runs `argv` in the view as `execvp` would; on failure, says why with the
/// right status.
fn exec_command(overlay: &Overlay, argv: Vec<Vec<u8>>) -> ! {
    let Some(name) = argv.first().cloned() else {
        die(EXIT_OVL, "no command given: put it after --")
    };
    let found = find(overlay, &name).unwrap_or_else(|e| exec_failed(&name, e));
    let err = exec_planned(overlay, &found, argv.clone());
    if err != Errno::ENOEXEC {
        exec_failed(&name, err);
    }
    // Not a program the kernel knows: a shell script without `#!`, run by
    // /bin/sh as `execvp` does.
    let mut sh_argv = vec![b"/bin/sh".to_vec(), found];
    sh_argv.extend(argv.into_iter().skip(1));
    exec_failed(&name, exec_planned(overlay, b"/bin/sh", sh_argv))
}

/// `name` itself when it holds a `/`, else the first executable file of that
/// name along `PATH`, in the view or outside.
fn find(overlay: &Overlay, name: &[u8]) -> Result<Vec<u8>, Errno> {
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if name.contains(&b'/') {
        return Ok(name.to_vec());
    }
    let search = std::env::var_os("PATH");
    let search = search.as_ref().map_or(DEFAULT_PATH, |p| p.as_bytes());
    overlay
        .find_in_path(name, search)
        .map_err(|e| Errno::from_raw(e.raw_os_error()))
}

/// Executes `path` as the core plans it; returns only on failure, with the
/// errno. A program that cannot be preloaded is refused here, with its reason.
fn exec_planned(overlay: &Overlay, path: &[u8], argv: Vec<Vec<u8>>) -> Errno {
    let Plan {
        path,
        argv,
        library_dirs,
        name,
    } = match overlay.plan_exec(
        path,
        argv,
        std::env::var_os("LD_TRACE_LOADED_OBJECTS").is_some(),
    ) {
        Ok(plan) => plan,
        Err(Refusal::Errno(e)) => return Errno::from_raw(e.raw_os_error()),
        Err(Refusal::Unseen(why)) => die(EXIT_CANNOT_RUN, why),
    };
    let (path, argv) = (cstring(path), cstrings(argv));
    let done = match command_env(overlay, library_dirs.as_deref(), name.as_deref()) {
        Some(envp) => nix::unistd::execve(&path, &argv, &envp),
        None => nix::unistd::execv(&path, &argv),
    };
    match done {
        Err(e) => e,
        Ok(never) => match never {},
    }
}

/// Dies with 127 when `name` was not found, else 126.
fn exec_failed(name: &[u8], err: Errno) -> ! {
    let shown = String::from_utf8_lossy(name);
    match err {
        Errno::ENOENT if !name.contains(&b'/') => {
            die(EXIT_NOT_FOUND, format!("{shown}: command not found"))
        }
        Errno::ENOENT => die(EXIT_NOT_FOUND, format!("{shown}: {}", err.desc())),
        _ => die(EXIT_CANNOT_RUN, format!("{shown}: {}", err.desc())),
    }
}

fn cstring(s: Vec<u8>) -> CString {
    CString::new(s).unwrap_or_else(|_| {
        die(
            EXIT_OVL,
            "an argument holds a NUL byte: it cannot be passed",
        )
    })
}

fn cstrings(items: Vec<Vec<u8>>) -> Vec<CString> {
    items.into_iter().map(cstring).collect()
}
