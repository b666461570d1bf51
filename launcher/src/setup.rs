//! Checks of the overlay's settings beyond `Config::validate`, and the
//! one thing ovl-exec creates: the work directory, after every check.

use ovl::config::Config;
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

/// Refuses what `Config::validate` lets through but would fail later: a
/// trace file in a missing directory. (The work directory, existing or
/// to be made, `Config::validate` has checked: a directory, or a name in
/// one, on upper's filesystem.)
pub fn check(config: &Config) -> Result<(), String> {
    if let Some(trace) = &config.trace {
        check_trace(trace)?;
    }
    Ok(())
}

fn check_trace(trace: &Path) -> Result<(), String> {
    if trace == Path::new("-") || trace == Path::new("stderr") {
        return Ok(());
    }
    if trace.is_dir() {
        return Err(format!(
            "trace file {} is a directory: name a file",
            trace.display()
        ));
    }
    let dir = trace.parent().unwrap_or(Path::new("/"));
    if !dir.is_dir() {
        return Err(format!(
            "trace file {}: directory {} does not exist: create it first",
            trace.display(),
            dir.display()
        ));
    }
    Ok(())
}

/// Creates the work directory (mode 0700) when it is missing.
pub fn create_work(config: &Config) -> Result<(), String> {
    let Some(work) = &config.work else {
        return Ok(());
    };
    match std::fs::DirBuilder::new().mode(0o700).create(work) {
        Err(e) if e.kind() != ErrorKind::AlreadyExists => Err(format!(
            "cannot create work directory {}: {e}",
            work.display()
        )),
        _ => Ok(()),
    }
}
