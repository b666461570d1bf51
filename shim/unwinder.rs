// Linking the unwinder statically, shared by two build scripts (include!).

/// Std asks for `-lgcc_s` (its unwinder). Every process that loads the shim
/// (or runs ovl-exec) would then load libgcc_s.so too, and run its
/// constructor (`cpuid`, slow in a virtual machine): ~80 µs per process
/// start, which a `make` of many small compilations pays hundreds of times.
/// With panics aborting, the unwinder is only used for a panic's backtrace,
/// so the static copy from libgcc_eh.a serves; the shim's version script
/// keeps its symbols local, so the programs' own C++ unwinding never meets
/// it. (Included by the build scripts of the shim and of ovl-exec.)
fn link_unwinder_statically() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // A linker script found before the real libgcc_s.so by `-lgcc_s`.
    std::fs::write(out.join("libgcc_s.so"), "INPUT(-lgcc_eh)\n").unwrap();
    println!("cargo:rustc-link-search=native={}", out.display());
}
