//! Builds the C part of the shim (the variadic exec functions) and exports
//! its symbols from the cdylib, which would otherwise keep them local.

fn main() {
    println!("cargo:rerun-if-changed=src/execl.c");
    cc::Build::new()
        .file("src/execl.c")
        .flag("-fvisibility=default")
        .compile("ovl_execl");
    // A second version script adds the symbols defined outside Rust (the C
    // exec functions; `vfork` and `syscall`, in assembly where it is
    // written for the architecture) to the ones rustc exports.
    let src = source_file("exports.map");
    let mut map = std::fs::read_to_string(&src).unwrap();
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("x86_64") {
        map = map.replace(" syscall;", "");
    }
    let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("exports.map");
    std::fs::write(&out, map).unwrap();
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        out.display()
    );
    // The shim's own calls to symbols it defines (execl -> execve, the core's
    // libc::open) bind to its definitions at link time: the dynamic loader
    // then looks up 19 symbols fewer in every process it starts.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-Bsymbolic-functions");
    lay_out_hot_symbols_first();
    link_unwinder_statically();
}

/// What a process touches of the shim when it starts and first calls each
/// hook goes first in the library (hot-symbols.txt, see
/// `hot_symbols_link_arg`): a compiler process then faults in 4-5 windows
/// of its code instead of 12, and on its variables 1-4 times instead of
/// 8-10 (measured on the build's `cc`, `cc1` and `as`). With the order come
/// the layout options below (`OVL_NO_HOT_SYMBOLS=1` leaves all of it to
/// the linker, for one without `-z separate-loadable-segments`).
fn lay_out_hot_symbols_first() {
    let Some(order) = hot_symbols_link_arg() else {
        return;
    };
    println!("cargo:rustc-cdylib-link-arg={order}");
    // Each segment starts a page of the file of its own: no page is mapped
    // twice (read-only and executable, say), and the part written at
    // relocation starts on a page boundary. `/bin/true` under the shim:
    // 60-62 page faults instead of 65-66, 917 us per start instead of 925.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,separate-loadable-segments");
    // The PLT at the start of the code rather than after all of it: every
    // hook's re-entry guard calls `__tls_get_addr` through it, so a process
    // that makes one such call faulted in the code's last window for it
    // (the build's `cc`, `cc1` and `as`: one fault fewer each).
    let plt_first = source_file("plt-first.ld");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-T,{}", plt_first.display());
}

/// A file of this crate's that the build reads or hands to the linker:
/// its path, and the build runs again when it changes.
fn source_file(name: &str) -> std::path::PathBuf {
    let path = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join(name);
    println!("cargo:rerun-if-changed={}", path.display());
    path
}

include!("hot_symbols.rs");
include!("unwinder.rs");
