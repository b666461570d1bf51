//! The command line of `ovl-exec`.

use clap::Parser;
use ovl::config::{split_list, Settings};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "ovl-exec",
    version,
    about = "Run a command with an upper directory merged over lower directories, as overlayfs would show them",
    after_help = "The exit status is the command's; errors of ovl-exec itself exit 125, a command that \
cannot be run 126, one not found 127.\n\nExample: ovl-exec -l ~/src/project -u /tmp/up -- make -C ~/src/project"
)]
pub struct Cli {
    /// A lower layer; repeat it, or separate with ':' (the first is topmost)
    #[arg(short = 'l', long = "lower", value_name = "DIR")]
    pub lower: Vec<OsString>,
    /// The upper layer (without it the overlay is read-only: writes fail with EROFS)
    #[arg(short = 'u', long = "upper", value_name = "DIR")]
    pub upper: Option<PathBuf>,
    /// Work directory: same filesystem as upper, not inside it (default: <upper>.ovl-work beside upper)
    #[arg(short = 'w', long = "work", value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// Where the merged view appears (default: the topmost lower directory, in place)
    #[arg(short = 't', long = "target", value_name = "DIR")]
    pub target: Option<PathBuf>,
    /// Mount-style options: lowerdir=A:B,upperdir=U,workdir=W[,userxattr]
    #[arg(short = 'o', value_name = "OPTIONS")]
    pub options: Vec<String>,
    /// Log every intercepted call inside the view to FILE ('-' for stderr)
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// How whiteouts are written: kernel (char device 0/0) or seed (symlink + xattr)
    #[arg(long, value_name = "FORMAT", value_parser = ["kernel", "seed"])]
    pub whiteout: Option<String>,
    /// Namespace of the opaque xattr written: trusted (default as root) or user
    #[arg(long, value_name = "NS", value_parser = ["trusted", "user"])]
    pub xattr: Option<String>,
    /// The command to run, and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<OsString>,
}

impl Cli {
    /// The overlay's settings from the options, before checks.
    pub fn settings(&self) -> Result<Settings, String> {
        let mut s = Settings {
            lower: self.lower.iter().flat_map(|l| split_list(l)).collect(),
            upper: self.upper.clone(),
            work: self.work.clone(),
            target: self.target.clone(),
            trace: self.trace.as_ref().map(absolute_unless_stderr),
            whiteout: self.whiteout.clone(),
            xattr_ns: self.xattr.clone(),
        };
        for opts in &self.options {
            for opt in opts.split(',').filter(|o| !o.is_empty()) {
                apply_mount_option(&mut s, opt, !self.lower.is_empty())?;
            }
        }
        Ok(s)
    }
}

fn absolute_unless_stderr(p: &PathBuf) -> PathBuf {
    if p.as_os_str() == "-" || p.is_absolute() {
        return p.clone();
    }
    std::env::current_dir()
        .map(|d| d.join(p))
        .unwrap_or_else(|_| p.clone())
}

fn set_once(slot: &mut Option<PathBuf>, value: &str, name: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!(
            "{name} given twice (as an option and with -o): give it once"
        ));
    }
    *slot = Some(PathBuf::from(value));
    Ok(())
}

fn apply_mount_option(s: &mut Settings, opt: &str, lower_given: bool) -> Result<(), String> {
    let (key, value) = opt.split_once('=').unwrap_or((opt, ""));
    match key {
        "lowerdir" if lower_given => {
            Err("lowerdir given both with -o and with --lower: use one".into())
        }
        "lowerdir" => {
            s.lower = split_list(std::ffi::OsStr::new(value));
            Ok(())
        }
        "upperdir" => set_once(&mut s.upper, value, "the upper directory"),
        "workdir" => set_once(&mut s.work, value, "the work directory"),
        "userxattr" => {
            s.xattr_ns = Some("user".into());
            Ok(())
        }
        _ => Err(format!(
            "unknown -o option '{opt}': ovl-exec knows lowerdir=, upperdir=, workdir= and userxattr"
        )),
    }
}
