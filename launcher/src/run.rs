//! The two stages. The first checks the setup, puts the shim and the
//! overlay's description into the environment, and executes ovl-exec again
//! with the shim preloaded; the second, now inside the overlay, hands the
//! command to `execvp`, whose wrapper in the shim finds it in the merged view
//! (the command may live only there) and refuses what cannot be preloaded.

use crate::cli::Cli;
use crate::{die, preload, setup, shim_path, EXIT_CANNOT_RUN, EXIT_NOT_FOUND, EXIT_OVL};
use nix::errno::Errno;
use ovl::config::{env, Config};
use std::ffi::{CString, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// Hidden first argument of the second stage.
pub const STAGE_TWO: &str = "--ovl-exec-stage-two";

/// Checks everything, creates the work directory, re-executes into stage two.
pub fn stage_one(cli: &Cli) -> ! {
    let settings = cli.settings().unwrap_or_else(|e| die(EXIT_OVL, e));
    let config = Config::validate(&settings).unwrap_or_else(|e| die(EXIT_OVL, e));
    setup::check(&config).unwrap_or_else(|e| die(EXIT_OVL, e));
    let shim = shim_path::find().unwrap_or_else(|e| die(EXIT_OVL, e));
    if let Some(why) = preload::refusal(&cli.command[0], Some(&config.target)) {
        die(EXIT_CANNOT_RUN, why);
    }
    setup::create_work(&config).unwrap_or_else(|e| die(EXIT_OVL, e));
    set_environment(&config, &shim);
    let me = std::env::current_exe()
        .unwrap_or_else(|e| die(EXIT_OVL, format!("cannot find ovl-exec itself: {e}")));
    let mut argv = vec![me.clone().into_os_string(), STAGE_TWO.into()];
    argv.extend(cli.command.iter().cloned());
    let err = match nix::unistd::execv(&cstring(me.into_os_string()), &cstrings(&argv)) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    die(
        EXIT_OVL,
        format!("cannot start the overlay: {}", err.desc()),
    )
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

/// In the overlay: refuse what cannot be preloaded (our own file calls now
/// see the view), run the command; on failure, say why with the right status.
pub fn stage_two(command: &[OsString]) -> ! {
    let Some(name) = command.first() else {
        die(EXIT_OVL, "no command given")
    };
    if let Some(why) = preload::refusal(name, None) {
        die(EXIT_CANNOT_RUN, why);
    }
    let err = match nix::unistd::execvp(&cstring(name.clone()), &cstrings(command)) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    let shown = name.to_string_lossy();
    match err {
        Errno::ENOENT if !name.as_bytes().contains(&b'/') => {
            die(EXIT_NOT_FOUND, format!("{shown}: command not found"))
        }
        Errno::ENOENT => die(EXIT_NOT_FOUND, format!("{shown}: {}", err.desc())),
        _ => die(EXIT_CANNOT_RUN, format!("{shown}: {}", err.desc())),
    }
}

fn cstring(s: OsString) -> CString {
    CString::new(s.into_vec()).unwrap_or_else(|_| {
        die(
            EXIT_OVL,
            "an argument holds a NUL byte: it cannot be passed",
        )
    })
}

fn cstrings(items: &[OsString]) -> Vec<CString> {
    items.iter().cloned().map(cstring).collect()
}
