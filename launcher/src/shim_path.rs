//! Finding the shim and putting it into `LD_PRELOAD`.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The shim's file name.
pub const SHIM_NAME: &str = "libovl_shim.so";

/// `$OVL_SHIM`, else the shim next to ovl-exec, else in `../lib/ovl/`.
pub fn find() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(ovl::config::env::SHIM).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        let why = match std::fs::canonicalize(&p) {
            Ok(c) if c.is_file() => return Ok(c),
            Ok(_) => "not a file".to_string(),
            Err(e) => e.to_string(),
        };
        return Err(format!(
            "OVL_SHIM={}: {why}: point it at {SHIM_NAME}, or unset it",
            p.display()
        ));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find ovl-exec itself: {e}"))?;
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    let candidates = [dir.join(SHIM_NAME), dir.join("../lib/ovl").join(SHIM_NAME)];
    for c in &candidates {
        if c.is_file() {
            return std::fs::canonicalize(c).map_err(|e| format!("{}: {e}", c.display()));
        }
    }
    Err(format!(
        "the shim {SHIM_NAME} is not in {} nor in {}: install it there (cargo build puts it beside ovl-exec), or set OVL_SHIM to its path",
        dir.display(),
        dir.join("../lib/ovl").display()
    ))
}

/// The view this process already runs in, when it runs in one: the
/// overlay's description in the environment (`OVL_LOWER`) and a shim in
/// `LD_PRELOAD`, as a process of a view always has them (its shim puts
/// them back into every child). Its target (or topmost lower layer).
pub fn enclosing_view() -> Option<PathBuf> {
    use ovl::config::{env, split_list};
    let topmost = split_list(&std::env::var_os(env::LOWER)?)
        .into_iter()
        .next()?;
    let shim = std::env::var_os(env::SHIM).unwrap_or_default();
    let loaded = std::env::var_os("LD_PRELOAD")?
        .as_bytes()
        .split(|&b| b == b':' || b == b' ')
        .filter(|i| !i.is_empty())
        .any(|i| {
            i == shim.as_bytes() || i.rsplit(|&b| b == b'/').next() == Some(SHIM_NAME.as_bytes())
        });
    let target = std::env::var_os(env::TARGET).filter(|t| !t.is_empty());
    loaded.then(|| target.map_or(topmost, PathBuf::from))
}

/// The `LD_PRELOAD` value: the shim first, then what was there (without it).
pub fn preload_value(shim: &Path, old: Option<OsString>) -> OsString {
    let mut v = shim.as_os_str().as_bytes().to_vec();
    if let Some(old) = old {
        for item in old
            .as_bytes()
            .split(|&b| b == b':' || b == b' ')
            .filter(|i| !i.is_empty())
        {
            if item != shim.as_os_str().as_bytes() {
                v.push(b':');
                v.extend_from_slice(item);
            }
        }
    }
    OsString::from_vec(v)
}
