//! libc's directory walkers, rebuilt over the functions the shim wraps.
//!
//! glibc's `scandir`, `glob`, `ftw`/`nftw` and the `fts_*` family read
//! directories through libc's internal `__opendir`, `__readdir64`,
//! `__stat64`, ..., which no preloaded object can intercept: a program
//! walking the view with them would see the real directories instead. Here
//! each one is written again on top of the exported functions — `opendir`,
//! `fdopendir`, `readdir64`, `closedir`, `dirfd`, `open`, `openat`, `close`,
//! `stat64`, `lstat64`, `fstat64`, `fstatat64`, `chdir`, `fchdir`, `getcwd`
//! — which resolve to the shim's own hooks and so give the merged view.
//! `glob` is libc's own, run with `GLOB_ALTDIRFUNC` and our directory
//! functions.
//!
//! The behaviour is glibc 2.36's on x86_64, where the plain and `64`
//! variants share one ABI (`struct stat` is `struct stat64`, `struct dirent`
//! is `struct dirent64`): the same entries in the same order, the same
//! callbacks with the same type flags, the same `errno`. Where glibc reads
//! uninitialised memory (the `fts_statp` of `FTS_NOSTAT` entries, the stat
//! buffer given with `FTW_NS`) these give zeros or NULL instead.
//!
//! In a process without an overlay every call goes straight to libc.

use crate::{errno, real_symbol, set_errno, Guard};
use libc::{c_char, c_int, c_long, c_void, dirent64, size_t, stat64, DIR};
use std::collections::HashSet;
use std::ffi::CStr;
use std::mem::{offset_of, size_of};
use std::ptr::{self, null_mut};
use std::sync::atomic::AtomicPtr;

/// libc's own definition of a function, looked up once.
macro_rules! libc_fn {
    ($name:literal as $ty:ty) => {{
        static CACHE: AtomicPtr<c_void> = AtomicPtr::new(null_mut());
        let p = real_symbol(&CACHE, concat!($name, "\0").as_bytes());
        // SAFETY: libc exports the symbol under this name with this signature.
        unsafe { std::mem::transmute::<*mut c_void, $ty>(p) }
    }};
}

/// Without an overlay the walkers are libc's own: returns libc's answer to
/// the caller's arguments from the function this stands in.
macro_rules! libc_without_overlay {
    ($name:literal as $ty:ty, ($($arg:expr),*)) => {
        if !overlay_configured() {
            let real = libc_fn!($name as $ty);
            // SAFETY: the caller's arguments, passed on unchanged.
            return unsafe { real($($arg),*) };
        }
    };
}

/// Whether this process has an overlay (fixed for its lifetime). Without
/// one, the walkers are libc's own.
fn overlay_configured() -> bool {
    // Held (when free) while the overlay may be set up, so that the set-up's
    // own calls are not diverted into it.
    let _guard = Guard::enter();
    ovl::overlay::get().is_some()
}

/// The bytes of a NUL-terminated string.
///
/// # Safety
/// `p` points to a NUL-terminated string that outlives the result.
unsafe fn c_bytes<'a>(p: *const c_char) -> &'a [u8] {
    // SAFETY: per the contract.
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

fn is_dot_or_dotdot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

fn file_type(st: &stat64) -> u32 {
    st.st_mode & libc::S_IFMT
}

/// `qsort`'s comparison function.
type QsortCompare = unsafe extern "C" fn(*const c_void, *const c_void) -> c_int;

fn zeroed_stat() -> stat64 {
    // SAFETY: stat64 is plain data; all zeros is a valid value.
    unsafe { std::mem::zeroed() }
}

mod fts;
mod ftw;
mod glob;
mod scandir;

#[cfg(test)]
mod tests {
    use super::fts::*;
    use super::ftw::*;
    use super::glob::*;
    use super::*;
    use std::process::Command;

    /// C source printing, and Rust text giving, the size of each structure
    /// and the offset of each field.
    macro_rules! layouts {
        ($($c:literal => $rust:ty { $($field:ident),* })*) => {{
            let mut c = String::new();
            let mut rust = String::new();
            $(
                c += &format!("printf(\"{0} %zu\\n\", sizeof({0}));\n", $c);
                rust += &format!("{} {}\n", $c, size_of::<$rust>());
                $(
                    c += &format!(
                        "printf(\"{0}.{1} %zu\\n\", offsetof({0}, {1}));\n",
                        $c,
                        stringify!($field)
                    );
                    rust += &format!("{}.{} {}\n", $c, stringify!($field), offset_of!($rust, $field));
                )*
            )*
            (c, rust)
        }};
    }

    /// The same for constants.
    macro_rules! constants {
        ($($name:ident)*) => {{
            let mut c = String::new();
            let mut rust = String::new();
            $(
                c += &format!("printf(\"{0} %d\\n\", (int){0});\n", stringify!($name));
                rust += &format!("{} {}\n", stringify!($name), $name);
            )*
            (c, rust)
        }};
    }

    /// Compiles and runs a C program with `body` in `main`, in a scratch
    /// directory named after `name`.
    fn run_c(name: &str, body: &str) -> String {
        let dir = std::env::temp_dir().join(format!("ovl-walk-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating a directory for the C program");
        let src = dir.join("layout.c");
        let exe = dir.join("layout");
        let text = format!(
            "#define _GNU_SOURCE\n#include <stdio.h>\n#include <stddef.h>\n#include <dirent.h>\n\
             #include <fts.h>\n#include <ftw.h>\n#include <glob.h>\nint main(void) {{\n{body}return 0;\n}}\n"
        );
        std::fs::write(&src, text).expect("writing the C program");
        let cc = Command::new("cc").arg("-o").arg(&exe).arg(&src).status();
        assert!(
            cc.is_ok_and(|s| s.success()),
            "cc could not build {}",
            src.display()
        );
        let out = Command::new(&exe).output().expect("running the C program");
        std::fs::remove_dir_all(&dir).ok();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn structures_are_laid_out_as_in_the_c_headers() {
        let (c, rust) = layouts! {
            "FTSENT" => FtsEnt {
                fts_cycle, fts_parent, fts_link, fts_number, fts_pointer, fts_accpath, fts_path,
                fts_errno, fts_symfd, fts_pathlen, fts_namelen, fts_ino, fts_dev, fts_nlink,
                fts_level, fts_info, fts_flags, fts_instr, fts_statp, fts_name
            }
            "FTS" => Fts {
                fts_cur, fts_child, fts_array, fts_dev, fts_path, fts_rfd, fts_pathlen,
                fts_nitems, fts_compar, fts_options
            }
            "glob_t" => GlobT {
                gl_pathc, gl_pathv, gl_offs, gl_flags, gl_closedir, gl_readdir, gl_opendir,
                gl_lstat, gl_stat
            }
            "glob64_t" => GlobT { gl_pathc, gl_pathv, gl_offs, gl_flags, gl_stat }
            "struct FTW" => FtwInfo { base, level }
            "struct dirent64" => dirent64 { d_ino, d_off, d_reclen, d_type, d_name }
        };
        assert_eq!(run_c("layout", &c), rust);
    }

    #[test]
    fn constants_have_the_c_headers_values() {
        let (c, rust) = constants! {
            GLOB_ALTDIRFUNC
            FTW_PHYS FTW_MOUNT FTW_CHDIR FTW_DEPTH FTW_ACTIONRETVAL
            FTW_F FTW_D FTW_DNR FTW_NS FTW_SL FTW_DP FTW_SLN
            FTW_STOP FTW_SKIP_SUBTREE FTW_SKIP_SIBLINGS
            FTS_COMFOLLOW FTS_LOGICAL FTS_NOCHDIR FTS_NOSTAT FTS_PHYSICAL FTS_SEEDOT FTS_XDEV
            FTS_OPTIONMASK FTS_NAMEONLY FTS_STOP FTS_ROOTPARENTLEVEL FTS_ROOTLEVEL
            FTS_D FTS_DC FTS_DEFAULT FTS_DNR FTS_DOT FTS_DP FTS_ERR FTS_F FTS_INIT FTS_NS
            FTS_NSOK FTS_SL FTS_SLNONE FTS_DONTCHDIR FTS_SYMFOLLOW
            FTS_AGAIN FTS_FOLLOW FTS_NOINSTR FTS_SKIP
        };
        assert_eq!(run_c("constants", &c), rust);
    }
}
