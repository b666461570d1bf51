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
    link_unwinder_statically();
}

/// Std asks for `-lgcc_s` (its unwinder). Every process that loads the shim
/// would then load libgcc_s.so too, and run its constructor (`cpuid`, slow in
/// a virtual machine): ~80 µs per process start, which a `make` of many small
/// compilations pays hundreds of times. With panics aborting, the unwinder is
/// only used for a panic's backtrace, so the static copy from libgcc_eh.a
/// serves; our version script keeps its symbols local, so the programs' own
/// C++ unwinding never meets it.
fn link_unwinder_statically() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // A linker script found before the real libgcc_s.so by `-lgcc_s`.
    std::fs::write(out.join("libgcc_s.so"), "INPUT(-lgcc_eh)\n").unwrap();
    println!("cargo:rustc-link-search=native={}", out.display());
}
