#[no_mangle] pub extern "C" fn ovl_shim_version() -> i32 {1}
