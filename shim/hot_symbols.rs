// The linker's order for what a binary runs first, shared by two build
// scripts (include!).

/// `-Wl,--symbol-ordering-file=` for the crate's `hot-symbols.txt` (written
/// by `scripts/hot-symbols.py`), or `None` where the order is not used:
/// only with the linker Rust uses on x86_64 Linux (its own lld), whose
/// option this is; names the file lists that a build lacks are skipped
/// silently. `OVL_NO_HOT_SYMBOLS=1` leaves the layout to the linker (for a
/// linker without the option). (Included by the build scripts of the shim
/// and of ovl-exec.)
fn hot_symbols_link_arg() -> Option<String> {
    println!("cargo:rerun-if-env-changed=OVL_NO_HOT_SYMBOLS");
    if std::env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu")
        || std::env::var_os("OVL_NO_HOT_SYMBOLS").is_some()
    {
        return None;
    }
    let list = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("hot-symbols.txt");
    println!("cargo:rerun-if-changed={}", list.display());
    Some(format!(
        "-Wl,--symbol-ordering-file={},--no-warn-symbol-ordering",
        list.display()
    ))
}
