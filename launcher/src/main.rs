//! `ovl-exec`: checks an overlay's setup, puts the shim and the overlay's
//! description into the environment, and runs the command in it.
//!
//! Std's own `main` is not used: it would set `SIGPIPE` to be ignored (which
//! the command would inherit, so that `yes | head` complains of a broken
//! pipe) and reopen closed standard descriptors; the command must start with
//! the signal dispositions and descriptors ovl-exec was given.

#![cfg_attr(not(test), no_main)]

mod cli;
mod run;
mod setup;
mod shim_path;

/// Exit status for errors of ovl-exec itself (as `env` and `chroot`).
const EXIT_OVL: i32 = 125;
/// The command was found but cannot be run.
const EXIT_CANNOT_RUN: i32 = 126;
/// The command was not found.
const EXIT_NOT_FOUND: i32 = 127;

/// Prints `ovl-exec: <msg>` on one line and exits with `code`.
fn die(code: i32, msg: impl std::fmt::Display) -> ! {
    eprintln!("ovl-exec: {msg}");
    std::process::exit(code)
}

/// The C entry point; std still reads the arguments (glibc hands them to
/// its initialisers). Unit tests keep the harness's own.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    run::run(&cli::Cli::parse_or_exit())
}
