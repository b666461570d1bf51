//! Links ovl-exec and ovl-changes without libgcc_s.so (see
//! `link_unwinder_statically`), where the C library's static archives are
//! installed without any shared library at all (see `link_statically`),
//! and ovl-exec with the code it runs before the command's `execve` laid
//! out first (see `lay_out_hot_symbols_first`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=OVL_EXEC_DYNAMIC");
    link_unwinder_statically();
    link_statically();
    lay_out_hot_symbols_first();
}

/// What ovl-exec runs before it executes the command (hot-symbols.txt,
/// written by `scripts/hot-symbols.py --launcher`; see
/// `hot_symbols_link_arg`) goes first in the executable: its 360 functions
/// (the C library's start among them) spread over 1.4 MB of code cost 17
/// page faults of code at each start, laid out together 6 (31 faults in
/// all instead of 46; ~50 us less before every command here).
fn lay_out_hot_symbols_first() {
    if let Some(order) = hot_symbols_link_arg() {
        println!("cargo:rustc-link-arg-bin=ovl-exec={order}");
    }
}

/// The libraries std asks for, each with the archive that stands for it.
const STATIC_STAND_INS: [(&str, &str); 6] = [
    ("c", "GROUP(libc.a libgcc.a libgcc_eh.a)"),
    ("m", "INPUT(libm.a)"),
    ("rt", "INPUT(librt.a)"),
    ("pthread", "INPUT(libpthread.a)"),
    ("dl", "INPUT(libdl.a)"),
    ("util", "INPUT(libutil.a)"),
];

/// ovl-exec runs once before every command: as a static executable it
/// starts ~0.3 ms sooner (no dynamic loader, no libc.so to map and
/// relocate). Rustc has no per-crate `crt-static` on stable and always
/// links std's libraries with `-Bdynamic -lc`, so `-lc` (and the others)
/// are pointed at linker scripts naming the static archives, and the
/// executable is made static and not position-independent: a static PIE
/// relocates itself at every start, which costs copy-on-write faults on its
/// relocated data (~5 per run, ~0.04 ms here); ovl-exec runs for a moment
/// and then becomes the command, so its own image gains nothing from a
/// random address. Without `libc.a` (some distributions
/// package it apart, e.g. glibc-static) ovl-exec stays dynamic; so it does
/// with OVL_EXEC_DYNAMIC=1 in the build's environment.
fn link_statically() {
    // A directory of their own, searched by ovl-exec's link only: the
    // package's tests, and the doctests of the workspace (rustdoc is handed
    // every build script's search paths), link dynamically.
    let dir = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("static-libc");
    let _ = std::fs::remove_dir_all(&dir);
    if std::env::var_os("OVL_EXEC_DYNAMIC").is_some() || !static_libc_installed() {
        return;
    }
    std::fs::create_dir_all(&dir).unwrap();
    for (lib, script) in STATIC_STAND_INS {
        std::fs::write(dir.join(format!("lib{lib}.so")), script).unwrap();
    }
    println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
    println!("cargo:rustc-link-arg-bins=-no-pie");
    println!("cargo:rustc-link-arg-bins=-static");
}

/// Does the C compiler find every archive the stand-ins name?
fn static_libc_installed() -> bool {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    [
        "libc.a",
        "libm.a",
        "libgcc.a",
        "libgcc_eh.a",
        "libpthread.a",
        "libdl.a",
        "librt.a",
        "libutil.a",
    ]
    .iter()
    .all(|archive| {
        Command::new(&cc)
            .arg(format!("-print-file-name={archive}"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            // An archive not found is printed back as its bare name.
            .is_some_and(|p| Path::new(&p).is_absolute() && Path::new(&p).exists())
    })
}

include!("../shim/hot_symbols.rs");
include!("../shim/unwinder.rs");
