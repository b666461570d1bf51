//! `ovl-changes`: lists what an upper layer changed in the view of its lower
//! layers (after `ovl-exec`, or the kernel's overlayfs: the format is one),
//! one line a name, as `docker diff`: `A` added, `C` changed, `D` removed.
//! It reads the layers and writes nothing.

use clap::Parser;
use ovl::changes::Entry;
use ovl::config::{split_list, Settings};
use ovl::overlay::Overlay;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Each line is a mark and a path of the view, relative to its root (a directory's ends in '/'):
  A  added: no lower layer has the name
  C  changed: the upper layer's object shows where a lower one did (a copy whose data or
     metadata changed, a new object of that name, a directory something below changed in)
  D  removed: a lower layer has the name, the view does not (a whiteout, an opaque directory)
Below an added directory every name is listed; below a removed one none.

Exit status: 0, or 2 when a layer cannot be found or a directory of the view cannot be read
in one of them (nothing is listed then).

Examples:
  ovl-exec -l ~/src/project -u /tmp/up -- make -C ~/src/project && ovl-changes -l ~/src/project -u /tmp/up
  ovl-changes -o lowerdir=/a:/b,upperdir=/up";

#[derive(Parser, Debug)]
#[command(
    name = "ovl-changes",
    version,
    about = "List what an upper layer changed in the view of its lower layers (A added, C changed, D removed)",
    after_help = AFTER_HELP
)]
struct Cli {
    /// A lower layer; repeat it, or separate with ':' (the first is topmost)
    #[arg(short = 'l', long = "lower", value_name = "DIR")]
    lower: Vec<OsString>,
    /// The upper layer
    #[arg(short = 'u', long = "upper", value_name = "DIR")]
    upper: Option<PathBuf>,
    /// Mount-style options: lowerdir=A:B,upperdir=U (workdir= and userxattr are taken and not used)
    #[arg(short = 'o', value_name = "OPTIONS")]
    options: Vec<String>,
    /// Taken and not used, so that ovl-exec's options can be given as they are
    #[arg(short = 'w', long = "work", value_name = "DIR")]
    work: Option<PathBuf>,
    /// Taken and not used, as --work
    #[arg(short = 't', long = "target", value_name = "DIR")]
    target: Option<PathBuf>,
    /// End each line with NUL instead of a newline (for names with newlines)
    #[arg(short = 'z', long = "null")]
    null: bool,
}

impl Cli {
    /// The upper layer and the lower layers (topmost first), made absolute.
    fn layers(&self) -> Result<(PathBuf, Vec<PathBuf>), String> {
        let mut s = Settings {
            lower: self.lower.iter().flat_map(|l| split_list(l)).collect(),
            upper: self.upper.clone(),
            work: self.work.clone(),
            target: self.target.clone(),
            ..Settings::default()
        };
        s.apply_mount_options(&self.options, !self.lower.is_empty())?;
        let (Some(upper), lower) = (s.upper, s.lower) else {
            return Err("no upper layer: give it with -u DIR (or -o upperdir=DIR)".into());
        };
        if lower.is_empty() {
            return Err("no lower layer: give one with -l DIR (or -o lowerdir=DIR)".into());
        }
        let real =
            |p: &PathBuf| std::fs::canonicalize(p).map_err(|e| format!("{}: {e}", p.display()));
        Ok((
            real(&upper)?,
            lower.iter().map(real).collect::<Result<_, _>>()?,
        ))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match list(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("ovl-changes: {msg}");
            ExitCode::from(2)
        }
    }
}

fn list(cli: &Cli) -> Result<(), String> {
    let (upper, lowers) = cli.layers()?;
    let lowers: Vec<&[u8]> = lowers.iter().map(|l| l.as_os_str().as_bytes()).collect();
    let ovl = Overlay::of_layers(upper.as_os_str().as_bytes(), &lowers)?;
    let changes = ovl.changes().map_err(|e| {
        let dir = match e.rel.is_empty() {
            true => "the view's root".to_string(),
            false => format!("the view's {}", String::from_utf8_lossy(&e.rel)),
        };
        format!(
            "{dir}: {} (reading the layers there)",
            std::io::Error::from(e.errno)
        )
    })?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let end = if cli.null { b'\0' } else { b'\n' };
    let written = changes
        .iter()
        .try_for_each(|e| write_line(&mut out, e, end))
        .and_then(|()| out.flush());
    match written {
        // A reader that has seen enough (`| head`) is no failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("standard output: {e}"))
        }
        _ => Ok(()),
    }
}

fn write_line(out: &mut impl Write, e: &Entry, end: u8) -> std::io::Result<()> {
    write!(out, "{} ", e.change.letter())?;
    out.write_all(&e.rel)?;
    if e.dir {
        out.write_all(b"/")?;
    }
    out.write_all(&[end])
}
