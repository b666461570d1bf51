//! The shim's own memory comes from glibc's allocator under its internal
//! names (`__libc_malloc`, ...), never from a `malloc` the program defines.
//! A hook can run inside that allocator's own set-up: jemalloc (rustc's,
//! for one) reads `/etc/malloc.conf` with `readlink` while it initializes,
//! holding its init lock, and an allocation from that hook would wait for
//! the lock forever. Memory handed over to the program (`getcwd(NULL, 0)`,
//! `scandir`'s lists, `fts`) still comes from the program's `malloc`,
//! through `libc::malloc`, since the program frees it.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

extern "C" {
    fn __libc_malloc(size: usize) -> *mut c_void;
    fn __libc_calloc(count: usize, size: usize) -> *mut c_void;
    fn __libc_realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn __libc_memalign(align: usize, size: usize) -> *mut c_void;
    fn __libc_free(ptr: *mut c_void);
}

/// What glibc's `malloc` guarantees on x86-64 and aarch64.
const MIN_ALIGN: usize = 16;

/// Does plain `malloc` give this layout its alignment?
fn malloc_aligns(layout: &Layout) -> bool {
    layout.align() <= MIN_ALIGN && layout.align() <= layout.size()
}

struct GlibcMalloc;

// SAFETY: each function is glibc's allocator, which returns memory aligned
// for any type of the size asked (or as asked, with memalign), or NULL;
// every block is freed with `__libc_free`, the matching function.
unsafe impl GlobalAlloc for GlibcMalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain allocation calls (see the impl).
        unsafe {
            if malloc_aligns(&layout) {
                __libc_malloc(layout.size()).cast()
            } else {
                __libc_memalign(layout.align(), layout.size()).cast()
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if malloc_aligns(&layout) {
            // SAFETY: as alloc.
            unsafe { __libc_calloc(1, layout.size()).cast() }
        } else {
            // SAFETY: as alloc; the new block is `layout.size()` bytes long.
            unsafe {
                let p = self.alloc(layout);
                if !p.is_null() {
                    std::ptr::write_bytes(p, 0, layout.size());
                }
                p
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: ptr came from this allocator.
        unsafe { __libc_free(ptr.cast()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        if malloc_aligns(&new) {
            // SAFETY: ptr came from this allocator; realloc keeps malloc's alignment.
            return unsafe { __libc_realloc(ptr.cast(), new_size).cast() };
        }
        // SAFETY: a fresh block of the new layout; the old one (from this
        // allocator, `layout.size()` bytes) is copied, then freed.
        unsafe {
            let fresh = self.alloc(new);
            if !fresh.is_null() {
                std::ptr::copy_nonoverlapping(ptr, fresh, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            fresh
        }
    }
}

#[global_allocator]
static GLOBAL: GlibcMalloc = GlibcMalloc;
