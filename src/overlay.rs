//! The overlay of this process: its layers, opened once, and the virtual
//! location (target) where the merged view appears.
//!
//! Everything here does I/O with raw system calls (`rustix`): inside the shim,
//! libc's file functions are our own hooks.

use crate::config::{env, split_list, WhiteoutFormat, XattrNs};
use crate::layer_fds::open_layer_fd;
use rustix::fs::FileType;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::OnceLock;

/// One directory of the stack.
pub struct Layer {
    /// Absolute path of the layer's root, without a trailing `/`.
    pub root: Vec<u8>,
    /// `O_PATH` descriptor of the root (`-1`: none), see `layer_fds`.
    pub(crate) fd: AtomicI32,
    /// The root's device.
    pub(crate) dev: u64,
    /// Its file system's uuid, asked when first needed (`src/origin.rs`).
    pub(crate) uuid: crate::origin::FsUuid,
    /// The root's owner: taken for its objects' where theirs is not known
    /// (see [`crate::sys::open_unstamped`]).
    pub(crate) owner: u32,
}

impl Layer {
    /// The real path of `rel` in this layer.
    pub fn real_path(&self, rel: &[u8]) -> Vec<u8> {
        let mut v = self.root.clone();
        if !rel.is_empty() {
            if v != b"/" {
                v.push(b'/');
            }
            v.extend_from_slice(rel);
        }
        v
    }
}

/// A mounted-in-process overlay.
pub struct Overlay {
    /// Where the merged view appears: absolute, without a trailing `/`.
    pub target: Vec<u8>,
    /// The target as the user spelled it through symlinks (see
    /// `env::TARGET_ALIAS`): absolute, clean, never the target itself.
    pub target_alias: Option<Vec<u8>>,
    /// Upper first (when there is one), then the lower layers, topmost first.
    pub layers: Vec<Layer>,
    /// True when `layers[0]` is a writable upper layer.
    pub has_upper: bool,
    /// Work directory (present exactly when there is an upper layer).
    pub work: Option<Layer>,
    pub whiteout: WhiteoutFormat,
    pub xattr_ns: XattrNs,
    /// The variables that describe this overlay, put back into children whose
    /// environment lost them (`env -i`, `execve` with a fresh `envp`).
    pub env: Vec<(String, Vec<u8>)>,
}

/// Index of a layer in [`Overlay::layers`].
pub type LayerIdx = usize;

/// The upper layer's index, when there is one.
pub const UPPER: LayerIdx = 0;

static OVERLAY: OnceLock<Option<Overlay>> = OnceLock::new();

/// The overlay described by this process's environment, set up on first use.
/// `None` when no overlay is configured.
pub fn get() -> Option<&'static Overlay> {
    let Some(ovl) = OVERLAY.get_or_init(from_env).as_ref() else {
        ABSENT.store(true, Ordering::Relaxed);
        return None;
    };
    let hot = &crate::hot::HOT.overlay;
    if hot.load(Ordering::Relaxed).is_null() {
        hot.store(std::ptr::from_ref(ovl).cast_mut(), Ordering::Release);
    }
    Some(ovl)
}

/// Set once this process is known to have no overlay (its environment
/// described none when it was first asked): for good, as `OVERLAY`.
static ABSENT: AtomicBool = AtomicBool::new(false);

/// Is this process known to have no overlay? The hooks then go straight to
/// libc, without asking `get` at every call (a process given the shim
/// without an overlay paid more per `stat` than one in a view).
#[inline]
pub fn known_absent() -> bool {
    ABSENT.load(Ordering::Relaxed)
}

/// The overlay, when it is already set up (never sets it up).
#[inline]
pub fn peek() -> Option<&'static Overlay> {
    // SAFETY: when set, the pointer is to the overlay in `OVERLAY`, which
    // lives as long as the process and is never changed once set.
    unsafe { crate::hot::HOT.overlay.load(Ordering::Acquire).as_ref() }
}

/// Lexically cleans an absolute path: no `//`, no `/./`, no trailing `/`.
/// (`..` is left alone: it can only be resolved against the real tree.)
pub fn clean_abs(p: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.len());
    for comp in p.split(|&b| b == b'/') {
        if comp.is_empty() || comp == b"." {
            continue;
        }
        out.push(b'/');
        out.extend_from_slice(comp);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// The layer at `path`, which must be a directory; `with_fd`: look-ups go
/// through a descriptor of it (opened first, then asked its `stat`: one
/// walk of the path, not two).
fn open_root(path: &[u8], with_fd: bool) -> Result<Layer, String> {
    let root = clean_abs(path);
    let shown = String::from_utf8_lossy(path);
    let by_path = || rustix::fs::stat(root.as_slice()).map(|st| (-1, st));
    let opened = match with_fd {
        // Out of descriptors: look-ups go by path.
        true => open_layer_fd(&root).or_else(|e| match e {
            rustix::io::Errno::MFILE | rustix::io::Errno::NFILE => by_path(),
            e => Err(e),
        }),
        false => by_path(),
    };
    match opened {
        Ok((fd, st)) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => Ok(Layer {
            dev: st.st_dev,
            fd: AtomicI32::new(fd),
            root,
            uuid: crate::origin::FsUuid::new(),
            owner: st.st_uid,
        }),
        Ok(_) | Err(rustix::io::Errno::NOTDIR) => Err(format!("{shown}: not a directory")),
        Err(e) => Err(format!("{shown}: {}", std::io::Error::from(e))),
    }
}

fn fail(msg: &str) -> ! {
    let line = format!("ovl: {msg}; the overlay cannot start (check the OVL_* variables)\n");
    // SAFETY: writing a live buffer to fd 2, then leaving the process without
    // running anything else; neither call is hooked by the shim.
    unsafe {
        libc::write(2, line.as_ptr().cast(), line.len());
        libc::_exit(125)
    }
}

/// The overlay's variables ([`env::ALL`]), read in one pass over the
/// environment: a process start then costs one scan, not one per variable
/// (each `std::env::var_os` scans it all, and allocates).
struct OverlayVars([Option<Vec<u8>>; env::ALL.len()]);

extern "C" {
    static environ: *const *const libc::c_char;
}

impl OverlayVars {
    fn read() -> OverlayVars {
        let mut found = [const { None }; env::ALL.len()];
        // SAFETY: `environ` is the C library's NULL-terminated array of
        // NUL-terminated `NAME=value` strings, read here as `getenv` reads
        // it (and, like `getenv`, not guarded against a concurrent `setenv`).
        unsafe {
            let mut entry = environ;
            while !entry.is_null() && !(*entry).is_null() {
                let text = std::ffi::CStr::from_ptr(*entry).to_bytes();
                if let Some((i, value)) = overlay_variable(text) {
                    // The first definition counts, as for `getenv`.
                    found[i].get_or_insert_with(|| value.to_vec());
                }
                entry = entry.add(1);
            }
        }
        OverlayVars(found)
    }

    fn get(&self, name: &str) -> Option<&[u8]> {
        let i = env::ALL.iter().position(|k| *k == name)?;
        self.0[i].as_deref()
    }

    /// The variables that are set, by name (for children started with a
    /// fresh environment).
    fn into_pairs(self) -> Vec<(String, Vec<u8>)> {
        env::ALL
            .iter()
            .zip(self.0)
            .filter_map(|(k, v)| Some((k.to_string(), v?)))
            .collect()
    }
}

/// Which of the overlay's variables (its index in [`env::ALL`]) the
/// environment entry `NAME=value` sets, and the value; `None` for any
/// other entry, most of them told by their first bytes.
pub(crate) fn overlay_variable(entry: &[u8]) -> Option<(usize, &[u8])> {
    if !entry.starts_with(OVL_PREFIX) {
        return None;
    }
    let eq = entry.iter().position(|&b| b == b'=')?;
    let i = env::ALL.iter().position(|k| k.as_bytes() == &entry[..eq])?;
    Some((i, &entry[eq + 1..]))
}

/// What every name in [`env::ALL`] starts with.
const OVL_PREFIX: &[u8] = b"OVL_";

const _: () = {
    let mut i = 0;
    while i < env::ALL.len() {
        let name = env::ALL[i].as_bytes();
        let mut j = 0;
        while j < OVL_PREFIX.len() {
            assert!(
                name[j] == OVL_PREFIX[j],
                "every overlay variable starts with OVL_"
            );
            j += 1;
        }
        i += 1;
    }
};

fn from_env() -> Option<Overlay> {
    let vars = OverlayVars::read();
    let lower = vars.get(env::LOWER)?;
    let var = |k: &str| vars.get(k).filter(|v| !v.is_empty());
    let lowers = split_list(std::ffi::OsStr::from_bytes(lower));
    if lowers.is_empty() {
        fail("OVL_LOWER names no directory");
    }
    let mut layers = Vec::new();
    let upper = var(env::UPPER);
    if let Some(u) = upper {
        layers.push(open_root(u, true).unwrap_or_else(|e| fail(&format!("upper {e}"))));
    }
    for l in &lowers {
        layers.push(
            open_root(l.as_os_str().as_bytes(), true)
                .unwrap_or_else(|e| fail(&format!("lower {e}"))),
        );
    }
    let work = match (upper, var(env::WORK)) {
        (Some(_), Some(w)) => {
            Some(open_root(w, false).unwrap_or_else(|e| fail(&format!("work {e}"))))
        }
        (Some(_), None) => fail("OVL_UPPER is set but OVL_WORK is not"),
        (None, _) => None,
    };
    let target = match var(env::TARGET) {
        Some(t) => clean_abs(t),
        None => clean_abs(lowers[0].as_os_str().as_bytes()),
    };
    if target.first() != Some(&b'/') {
        fail("OVL_TARGET must be an absolute path");
    }
    let target_alias = var(env::TARGET_ALIAS)
        .map(clean_abs)
        .filter(|a| a.first() == Some(&b'/') && a.len() > 1 && *a != target);
    let whiteout = match vars.get(env::WHITEOUT) {
        Some(b"seed") | Some(b"symlink") => WhiteoutFormat::SeedSymlink,
        _ => WhiteoutFormat::CharDev,
    };
    let xattr_ns = match vars.get(env::XATTR) {
        Some(b"user") => XattrNs::User,
        Some(b"trusted") => XattrNs::Trusted,
        _ if rustix::process::geteuid().is_root() => XattrNs::Trusted,
        _ => XattrNs::User,
    };
    let has_upper = upper.is_some();
    let env = vars.into_pairs();
    Some(Overlay {
        target: if target == b"/" { Vec::new() } else { target },
        target_alias,
        has_upper,
        layers,
        work,
        whiteout,
        xattr_ns,
        env,
    })
}

impl Overlay {
    /// The overlay of `upper` over `lowers` (topmost first), to be read
    /// from this process (see `changes`), not this process's own view: no
    /// work directory, no descriptors kept, nothing written.
    pub fn of_layers(upper: &[u8], lowers: &[&[u8]]) -> Result<Overlay, String> {
        let Some(&topmost) = lowers.first() else {
            return Err("no lower layer given".into());
        };
        let mut layers = vec![open_root(upper, false).map_err(|e| format!("upper {e}"))?];
        for l in lowers {
            layers.push(open_root(l, false).map_err(|e| format!("lower {e}"))?);
        }
        Ok(Overlay {
            target: clean_abs(topmost),
            target_alias: None,
            has_upper: true,
            layers,
            work: None,
            whiteout: WhiteoutFormat::CharDev,
            xattr_ns: if rustix::process::geteuid().is_root() {
                XattrNs::Trusted
            } else {
                XattrNs::User
            },
            env: Vec::new(),
        })
    }
}

/// If the absolute path `abs` lies at or under the directory `t` (a clean
/// absolute path without a trailing `/`; empty for `/`), the part after it.
#[inline]
fn below<'a>(t: &[u8], abs: &'a [u8]) -> Option<&'a [u8]> {
    if !abs.starts_with(t) {
        return None;
    }
    match abs.get(t.len()) {
        None => Some(&[]),
        Some(b'/') => Some(crate::locate::trim_leading_slashes(&abs[t.len() + 1..])),
        Some(_) => None,
    }
}

impl Overlay {
    /// If the absolute path `abs` lies inside the view, the part after the
    /// target or its alias (no leading `/`, even for `VIEW//x`; empty for
    /// the target itself).
    #[inline]
    pub fn inside<'a>(&self, abs: &'a [u8]) -> Option<&'a [u8]> {
        match &self.target_alias {
            None => below(&self.target, abs),
            Some(alias) => below(&self.target, abs).or_else(|| below(alias, abs)),
        }
    }

    /// Any of the target's spellings (its real path, the alias) for which
    /// `f` holds.
    pub fn any_target_spelling(&self, f: impl Fn(&[u8]) -> bool) -> bool {
        f(&self.target) || self.target_alias.as_deref().is_some_and(f)
    }

    /// The virtual absolute path of a relative path in the view.
    pub fn virtual_path(&self, rel: &[u8]) -> Vec<u8> {
        let mut v = self.target.clone();
        if !rel.is_empty() || v.is_empty() {
            v.push(b'/');
            v.extend_from_slice(rel);
        }
        v
    }

    /// The real directory whose file system `statfs` reports for every
    /// object of the view, as the kernel's overlay reports its upper
    /// layer's (with no upper layer, its topmost lower layer's, and the
    /// view read-only: [`Overlay::statfs_read_only`]).
    pub fn statfs_root(&self) -> std::ffi::CString {
        crate::sys::cpath(&self.layers[0].root)
    }

    /// Does `statfs` report the view read-only (`ST_RDONLY`)? Without an
    /// upper layer, as the kernel mounts such an overlay; else the upper
    /// layer's own mount decides.
    pub fn statfs_read_only(&self) -> bool {
        !self.has_upper
    }

    /// The real path of `rel` in layer `l`.
    pub fn real_path(&self, l: LayerIdx, rel: &[u8]) -> Vec<u8> {
        self.layers[l].real_path(rel)
    }

    /// Maps a real path inside one of the layers back to the view:
    /// the relative path in the view, if `real` lies in a layer.
    pub fn real_to_rel<'a>(&self, real: &'a [u8]) -> Option<&'a [u8]> {
        self.layers.iter().find_map(|l| strip_dir(real, &l.root))
    }

    /// The owner of layer `l`'s root.
    pub(crate) fn layer_owner(&self, l: LayerIdx) -> u32 {
        self.layers[l].owner
    }

    /// The owner of the bottom layer's root.
    pub(crate) fn bottom_owner(&self) -> u32 {
        self.layer_owner(self.layers.len() - 1)
    }

    /// Is layer `l` a lower layer (not the upper one)?
    pub fn is_lower_layer(&self, l: LayerIdx) -> bool {
        !(self.has_upper && l == UPPER)
    }

    /// The bottom layer: nothing lies below it, so its opaque marks mean
    /// nothing, and of its whiteouts only the kernel's own (a character
    /// device 0/0, told by its `lstat` alone) hide a name, as on the kernel.
    pub fn is_bottom(&self, l: LayerIdx) -> bool {
        l + 1 == self.layers.len()
    }

    /// True when the real path `real` lies in a lower layer's tree, the
    /// view's own target included (where a descriptor's real path lies).
    pub fn in_lower_tree(&self, real: &[u8]) -> bool {
        let first_lower = usize::from(self.has_upper);
        self.layers[first_lower..]
            .iter()
            .any(|l| strip_dir(real, &l.root).is_some())
    }

    /// True when the real path `real` lies in the upper layer's tree.
    pub(crate) fn in_upper_tree(&self, real: &[u8]) -> bool {
        self.has_upper && strip_dir(real, &self.layers[UPPER].root).is_some()
    }

    /// True when the path lies in a lower layer's real tree (outside the view):
    /// such paths are read-only for the programs under the overlay.
    pub fn in_lower_layer(&self, abs: &[u8]) -> bool {
        let first_lower = usize::from(self.has_upper);
        self.layers[first_lower..]
            .iter()
            .any(|l| strip_dir(abs, &l.root).is_some() && l.root != self.target)
    }
}

/// `path` relative to `dir` when `path` is `dir` or below it.
pub fn strip_dir<'a>(path: &'a [u8], dir: &[u8]) -> Option<&'a [u8]> {
    if dir == b"/" {
        return path.strip_prefix(b"/");
    }
    let rest = path.strip_prefix(dir)?;
    match rest.first() {
        None => Some(rest),
        Some(b'/') => Some(&rest[1..]),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_abs_folds_slashes_and_dots() {
        assert_eq!(clean_abs(b"//a/./b//"), b"/a/b");
        assert_eq!(clean_abs(b"/"), b"/");
        assert_eq!(clean_abs(b"/a/../b"), b"/a/../b");
    }

    #[test]
    fn strip_dir_respects_components() {
        assert_eq!(strip_dir(b"/a/b/c", b"/a/b"), Some(&b"c"[..]));
        assert_eq!(strip_dir(b"/a/b", b"/a/b"), Some(&b""[..]));
        assert_eq!(strip_dir(b"/a/bc", b"/a/b"), None);
    }
}
