//! Links ovl-exec without libgcc_s.so (see `link_unwinder_statically`).

fn main() {
    link_unwinder_statically();
}

include!("../shim/unwinder.rs");
