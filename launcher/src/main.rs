//! `ovl-exec`: checks an overlay's setup, puts the shim and the overlay's
//! description into the environment, and runs the command in it.
//!
//! It runs in two stages. The first parses and checks, then executes itself
//! again with the shim preloaded; the second, now inside the overlay, hands
//! the command to `execvp`, whose wrapper finds it in the merged view (the
//! command may live only there) and refuses what cannot be preloaded.

mod cli;
mod shim_path;

use clap::Parser;
use cli::Cli;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::exit;

/// Exit status for errors of ovl-exec itself (as `env` and `chroot`).
const EXIT_OVL: i32 = 125;
/// The command was found but cannot be run.
const EXIT_CANNOT_RUN: i32 = 126;
/// The command was not found.
const EXIT_NOT_FOUND: i32 = 127;

/// Hidden first argument of the second stage.
const STAGE_TWO: &str = "--ovl-exec-stage-two";

fn die(code: i32, msg: impl std::fmt::Display) -> ! {
    eprintln!("ovl-exec: {msg}");
    exit(code)
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == STAGE_TWO) {
        stage_two(&args[2..]);
    }
    let cli = Cli::parse();
    let settings = cli.settings().unwrap_or_else(|e| die(EXIT_OVL, e));
    let config = ovl::config::Config::validate(&settings).unwrap_or_else(|e| die(EXIT_OVL, e));
    if let Some(work) = &config.work {
        if !work.exists() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(work)
                .unwrap_or_else(|e| {
                    die(
                        EXIT_OVL,
                        format!("cannot create work directory {}: {e}", work.display()),
                    )
                });
        }
    }
    let shim = shim_path::find().unwrap_or_else(|e| die(EXIT_OVL, e));
    let mut env: Vec<(OsString, OsString)> = config
        .to_env()
        .into_iter()
        .map(|(k, v)| (OsString::from(k), v))
        .collect();
    env.push((ovl::config::env::SHIM.into(), shim.clone().into_os_string()));
    env.push((
        "LD_PRELOAD".into(),
        shim_path::preload_value(&shim, std::env::var_os("LD_PRELOAD")),
    ));
    // Variables of an outer overlay must not leak into this one.
    for k in ovl::config::env::ALL {
        std::env::remove_var(k);
    }
    for (k, v) in &env {
        std::env::set_var(k, v);
    }
    let me = std::env::current_exe()
        .unwrap_or_else(|e| die(EXIT_OVL, format!("cannot find ovl-exec itself: {e}")));
    let mut argv = vec![me.clone().into_os_string(), STAGE_TWO.into()];
    argv.extend(cli.command.iter().cloned());
    let err = exec(&me.into_os_string(), &argv);
    die(EXIT_OVL, format!("cannot start the overlay: {err}"))
}

/// In the overlay: run the command; on failure, say why with the right status.
fn stage_two(command: &[OsString]) -> ! {
    let Some(name) = command.first() else {
        die(EXIT_OVL, "no command given")
    };
    let err = exec_path(name, command);
    let code = match err.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => EXIT_NOT_FOUND,
        _ => EXIT_CANNOT_RUN,
    };
    let what = if code == EXIT_NOT_FOUND && !name.as_bytes().contains(&b'/') {
        "command not found".to_string()
    } else {
        err.to_string()
    };
    die(code, format!("{}: {what}", name.to_string_lossy()))
}

fn cstrings(items: &[OsString]) -> Vec<CString> {
    items
        .iter()
        .map(|a| {
            CString::new(a.clone().into_vec())
                .unwrap_or_else(|_| die(EXIT_OVL, "an argument holds a NUL byte"))
        })
        .collect()
}

/// `execv`; returns only on failure.
fn exec(path: &OsString, argv: &[OsString]) -> std::io::Error {
    let path = cstrings(std::slice::from_ref(path)).remove(0);
    match nix::unistd::execv(&path, &cstrings(argv)) {
        Err(e) => std::io::Error::from_raw_os_error(e as i32),
        Ok(never) => match never {},
    }
}

/// `execvp` (through the shim's wrapper); returns only on failure.
fn exec_path(name: &OsString, argv: &[OsString]) -> std::io::Error {
    let name = cstrings(std::slice::from_ref(name)).remove(0);
    match nix::unistd::execvp(&name, &cstrings(argv)) {
        Err(e) => std::io::Error::from_raw_os_error(e as i32),
        Ok(never) => match never {},
    }
}
