//! Checks of the overlay's directories beyond `Config::validate`, and the
//! one thing ovl-exec creates: the work directory, after every check.

use ovl::config::Config;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

/// Refuses what `Config::validate` lets through but would fail later: a
/// work directory that is not a directory or would land on another
/// filesystem than upper, a trace file in a missing directory.
pub fn check(config: &Config) -> Result<(), String> {
    if let (Some(upper), Some(work)) = (&config.upper, &config.work) {
        check_work(upper, work)?;
    }
    if let Some(trace) = &config.trace {
        check_trace(trace)?;
    }
    Ok(())
}

fn device(p: &Path) -> Result<u64, String> {
    std::fs::metadata(p)
        .map(|m| m.dev())
        .map_err(|e| format!("{}: {e}", p.display()))
}

fn check_work(upper: &Path, work: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(work) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!(
            "work directory {} exists and is not a directory: remove it, or give another with -w",
            work.display()
        )),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let parent = work.parent().unwrap_or(Path::new("/"));
            if device(parent)? != device(upper)? {
                return Err(format!(
                    "work directory {} would be on another filesystem than upper {}: give one on upper's filesystem with -w",
                    work.display(),
                    upper.display()
                ));
            }
            Ok(())
        }
        Err(e) => Err(format!("work directory {}: {e}", work.display())),
    }
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
