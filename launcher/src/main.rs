//! `ovl-exec`: checks an overlay's setup, puts the shim and the overlay's
//! description into the environment, and runs the command in it.

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

fn main() {
    run::run(&cli::Cli::parse_or_exit())
}
