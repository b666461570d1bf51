//! Builds the C part of the shim (the variadic exec functions) and exports
//! its symbols from the cdylib, which would otherwise keep them local.

fn main() {
    println!("cargo:rerun-if-changed=src/execl.c");
    cc::Build::new()
        .file("src/execl.c")
        .flag("-fvisibility=default")
        .compile("ovl_execl");
    // A second version script adds the C symbols to the ones rustc exports.
    let map =
        std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("exports.map");
    println!("cargo:rerun-if-changed={}", map.display());
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        map.display()
    );
    // The shim's own calls to symbols it defines (execl -> execve, the core's
    // libc::open) bind to its definitions at link time: the dynamic loader
    // then looks up 19 symbols fewer in every process it starts.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-Bsymbolic-functions");
    link_unwinder_statically();
}

include!("unwinder.rs");
