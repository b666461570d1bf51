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
    let src =
        std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("exports.map");
    println!("cargo:rerun-if-changed={}", src.display());
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
    link_unwinder_statically();
}

include!("unwinder.rs");
