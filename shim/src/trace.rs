//! The trace switch (`OVL_TRACE=FILE`, or `-` for standard error): one line
//! per intercepted call inside the view, with the path and where it led.

use ovl::lookup::{ParentOf, Resolved};
use ovl::overlay::Overlay;
use rustix::io::Errno;
use std::cell::Cell;
use std::sync::atomic::{AtomicI32, Ordering};

/// Trace descriptor: -2 not yet known, -1 off.
static FD: AtomicI32 = AtomicI32::new(-2);

thread_local! {
    static CALL: Cell<&'static str> = const { Cell::new("") };
}

/// Asked by every hook: the known answer is one load, inlined.
#[inline]
fn trace_fd() -> i32 {
    match FD.load(Ordering::Relaxed) {
        -2 => first_trace_fd(),
        fd => fd,
    }
}

/// Reads the switch, once per process.
#[cold]
#[inline(never)]
fn first_trace_fd() -> i32 {
    let fd = match std::env::var_os(ovl::config::env::TRACE) {
        None => -1,
        Some(v) if v.is_empty() => -1,
        Some(v) if v == "-" || v == "stderr" => 2,
        Some(v) => {
            use std::os::unix::ffi::OsStrExt;
            let flags = rustix::fs::OFlags::WRONLY
                | rustix::fs::OFlags::APPEND
                | rustix::fs::OFlags::CREATE
                | rustix::fs::OFlags::CLOEXEC;
            match rustix::fs::open(v.as_bytes(), flags, rustix::fs::Mode::from_raw_mode(0o644)) {
                // The descriptor stays open for the life of the process.
                Ok(f) => rustix::fd::IntoRawFd::into_raw_fd(f),
                Err(_) => -1,
            }
        }
    };
    FD.store(fd, Ordering::Relaxed);
    fd
}

/// Notes which function is running (named in the lines that follow).
#[inline]
pub(crate) fn call(name: &'static str) {
    // Asks the switch once per process: while it was unknown, every hook
    // paid for a thread-local store.
    if trace_fd() >= 0 {
        CALL.with(|c| c.set(name));
    }
}

fn write_line(line: String) {
    let fd = trace_fd();
    if fd >= 0 {
        // SAFETY: fd is our trace descriptor (or stderr) and stays open.
        let fd = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
        let _ = rustix::io::write(fd, line.as_bytes());
    }
}

pub(crate) fn enabled() -> bool {
    trace_fd() >= 0
}

/// A path resolved in the view.
pub(crate) fn resolved(ovl: &Overlay, path: &[u8], r: &Result<Resolved, Errno>) {
    if !enabled() {
        return;
    }
    let to = match r {
        Ok(Resolved::Inside(n)) => format!(
            "{}",
            String::from_utf8_lossy(&ovl.real_path(n.layer, &n.rel))
        ),
        Ok(Resolved::Outside(p)) => format!("outside {}", String::from_utf8_lossy(p)),
        Err(e) => format!("error {e}"),
    };
    line(path, &to);
}

/// The parent of a name resolved in the view.
pub(crate) fn parent(ovl: &Overlay, path: &[u8], r: &ParentOf) {
    if !enabled() {
        return;
    }
    let to = match r {
        ParentOf::Inside(n, name) => format!(
            "{} + {}",
            String::from_utf8_lossy(&ovl.real_path(n.layer, &n.rel)),
            String::from_utf8_lossy(name)
        ),
        ParentOf::Special(n, _) => format!(
            "{}",
            String::from_utf8_lossy(&ovl.real_path(n.layer, &n.rel))
        ),
        ParentOf::Outside(p) => format!("outside {}", String::from_utf8_lossy(p)),
    };
    line(path, &to);
}

/// A free-form trace line for the running call.
pub(crate) fn line(path: &[u8], to: &str) {
    if !enabled() {
        return;
    }
    let name = CALL.with(|c| c.get());
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    write_line(format!(
        "ovl[{pid}] {name}({}) -> {to}\n",
        String::from_utf8_lossy(path)
    ));
}
