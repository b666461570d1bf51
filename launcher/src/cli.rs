//! The command line of `ovl-exec`.

use clap::Parser;
use ovl::config::{split_list, Settings};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

const AFTER_HELP: &str = "\
The command is looked up in the merged view (through PATH too): it may live only there.
Statically linked, set-id and file-capability programs cannot be run, nor programs of another loader
(musl's, 32-bit ones) or built by Go: the overlay could not be preloaded into them, or they would bypass it.

The shim libovl_shim.so is taken from $OVL_SHIM, else beside ovl-exec, else in ../lib/ovl/ from it.

Exit status: the command's; 125 when ovl-exec itself fails (bad options or layers),
126 when the command cannot be run, 127 when it is not found.

Examples:
  ovl-exec -l ~/src/project -u /tmp/up -- make -C ~/src/project
  ovl-exec -o lowerdir=/a:/b,upperdir=/up,workdir=/work -t /merged -- ls /merged";

#[derive(Parser, Debug)]
#[command(
    name = "ovl-exec",
    version,
    about = "Run a command with an upper directory merged over lower directories, as overlayfs would show them",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// A lower layer; repeat it, or separate with ':' (the first is topmost)
    #[arg(short = 'l', long = "lower", value_name = "DIR")]
    pub lower: Vec<OsString>,
    /// The upper layer (without it the overlay is read-only: writes fail with EROFS)
    #[arg(short = 'u', long = "upper", value_name = "DIR")]
    pub upper: Option<PathBuf>,
    /// Work directory: same filesystem as upper, not inside it; made when missing (default: <upper>.ovl-work beside upper)
    #[arg(short = 'w', long = "work", value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// Where the merged view appears; must exist (default: the topmost lower directory, in place)
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
    /// Namespace of the overlay's xattrs (opaque, whiteout): trusted (default with CAP_SYS_ADMIN: root outside containers) or user
    #[arg(long, value_name = "NS", value_parser = ["trusted", "user"])]
    pub xattr: Option<String>,
    /// The command to run, and its arguments
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

impl Cli {
    /// The parsed command line; usage errors exit 125 (help and version 0).
    pub fn parse_or_exit() -> Cli {
        Cli::try_parse().unwrap_or_else(|e| {
            let _ = e.print();
            std::process::exit(if e.use_stderr() { crate::EXIT_OVL } else { 0 })
        })
    }

    /// The overlay's settings from the options, before checks.
    pub fn settings(&self) -> Result<Settings, String> {
        let mut s = Settings {
            lower: self.lower.iter().flat_map(|l| split_list(l)).collect(),
            upper: self.upper.clone(),
            work: self.work.clone(),
            target: self.target.clone(),
            trace: self.trace.as_deref().map(absolute_unless_stderr),
            whiteout: self.whiteout.clone(),
            xattr_ns: self.xattr.clone(),
        };
        s.apply_mount_options(&self.options, !self.lower.is_empty())?;
        Ok(s)
    }
}

/// The trace file as an absolute path (the command may change directory),
/// or `-`/`stderr` as they are.
fn absolute_unless_stderr(p: &Path) -> PathBuf {
    if p == Path::new("-") || p == Path::new("stderr") {
        return p.to_path_buf();
    }
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Result<Settings, String> {
        let mut argv = vec!["ovl-exec"];
        argv.extend(args);
        argv.extend(["--", "true"]);
        Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .settings()
    }

    #[test]
    fn lower_is_repeatable_and_colon_separated() {
        let s = settings(&["-l", "/a:/b", "--lower", "/c", "-l", "/d::"]).unwrap();
        let want: Vec<PathBuf> = ["/a", "/b", "/c", "/d"].iter().map(PathBuf::from).collect();
        assert_eq!(s.lower, want);
    }

    #[test]
    fn mount_style_options() {
        let s = settings(&[
            "-o",
            "lowerdir=/a:/b,upperdir=/u",
            "-o",
            "workdir=/w,userxattr",
        ])
        .unwrap();
        assert_eq!(s.lower, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(s.upper, Some(PathBuf::from("/u")));
        assert_eq!(s.work, Some(PathBuf::from("/w")));
        assert_eq!(s.xattr_ns.as_deref(), Some("user"));
    }

    #[test]
    fn conflicting_options_are_errors() {
        for args in [
            &["-l", "/a", "-o", "lowerdir=/b"][..],
            &["-o", "lowerdir=/b", "-l", "/a"],
            &["-o", "lowerdir=/a", "-o", "lowerdir=/b"],
            &["-l", "/a", "-u", "/u", "-o", "upperdir=/v"],
            &["-l", "/a", "-w", "/w", "-o", "workdir=/v"],
            &["-l", "/a", "--xattr", "trusted", "-o", "userxattr"],
            &["-l", "/a", "-o", "index=on"],
        ] {
            assert!(settings(args).is_err(), "{args:?} was accepted");
        }
    }

    #[test]
    fn trace_is_made_absolute_except_stderr() {
        let s = settings(&["-l", "/a", "--trace", "log"]).unwrap();
        assert!(s.trace.unwrap().is_absolute());
        let s = settings(&["-l", "/a", "--trace", "-"]).unwrap();
        assert_eq!(s.trace, Some(PathBuf::from("-")));
    }

    #[test]
    fn the_command_keeps_its_own_options() {
        let argv = ["ovl-exec", "-l", "/a", "ls", "-l", "--", "x"];
        let cli = Cli::try_parse_from(argv).unwrap();
        assert_eq!(cli.command, ["ls", "-l", "--", "x"]);
        assert_eq!(cli.lower, ["/a"]);
    }
}
