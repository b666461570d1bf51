//! Core dumps. The kernel writes a crashing process's core file into its
//! current directory when `kernel.core_pattern` is a plain name (`core`),
//! and a crash helper run through a `|` pattern (apport) may write one there
//! too, within the process's limit. A process of the view that stands in a
//! directory of a lower layer alone stands in that real directory, which
//! must never change: there the real soft `RLIMIT_CORE` is held at 0 (no
//! core is written; the kernel's overlay would write it into the upper
//! layer), while the program reads and sets the limit it asked for (the
//! shim's `getrlimit`, `setrlimit` and `prlimit`). Anywhere else its own
//! limit is the real one. A child started while the limit is held learns
//! the program's limit from [`env::CORE_LIMIT`].

use crate::config::env;
use crate::overlay::Overlay;
use crate::spin_lock::SpinLock;
use rustix::io::Errno;
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// `RLIM_INFINITY`.
pub const UNLIMITED: u64 = u64::MAX;

/// The program's own soft limit while the real one is held at 0.
static HELD: SpinLock<Option<u64>> = SpinLock::new(None);

/// Could a core be dumped: the real soft limit, or the program's held one,
/// is above 0? While not, a change of directory looks at nothing.
static MAY_DUMP: AtomicBool = AtomicBool::new(false);

/// In a new process, before `main`: the limit held for it by its parent
/// (the variable then gone), and the hold its current directory needs.
pub fn at_start(ovl: &Overlay) {
    let inherited = env::take(env::CORE_LIMIT).and_then(|v| v.to_str()?.parse::<u64>().ok());
    if let Some(wanted) = inherited {
        *HELD.lock() = Some(wanted);
    }
    let (soft, _) = real_limit();
    MAY_DUMP.store(
        soft != 0 || inherited.is_some_and(|w| w != 0),
        Ordering::Release,
    );
    after_cwd_change(ovl);
}

/// After the process's real current directory changed: the limit held at 0
/// where a core would land in a lower layer, else the program's own.
pub fn after_cwd_change(ovl: &Overlay) {
    // A `vfork` child shares these statics with its parent, not its limits:
    // it leaves both alone (what it executes looks again at its start).
    if !MAY_DUMP.load(Ordering::Acquire) || crate::vfork::in_child() {
        return;
    }
    let hold = dump_lands_in_lower(ovl);
    let mut held = HELD.lock();
    let (soft, hard) = real_limit();
    match *held {
        None if hold && soft != 0 && set_real(0, hard).is_ok() => *held = Some(soft),
        Some(wanted) if !hold && set_real(wanted.min(hard), hard).is_ok() => *held = None,
        _ => {}
    }
}

/// The soft limit the program set, while the real one is held at 0.
pub fn held_soft_limit() -> Option<u64> {
    *HELD.lock()
}

/// A program's `setrlimit(RLIMIT_CORE, {soft, hard})`: the kernel's checks
/// (the hard limit raised only with `CAP_SYS_RESOURCE`) made by the real
/// call, whose soft limit is 0 where a core would land in a lower layer.
pub fn set_limit(ovl: &Overlay, soft: u64, hard: u64) -> Result<(), Errno> {
    if soft > hard {
        return Err(Errno::INVAL);
    }
    if crate::vfork::in_child() {
        return set_real(soft, hard);
    }
    let hold = soft != 0 && dump_lands_in_lower(ovl);
    let mut held = HELD.lock();
    set_real(if hold { 0 } else { soft }, hard)?;
    *held = hold.then_some(soft);
    MAY_DUMP.store(soft != 0, Ordering::Release);
    Ok(())
}

/// The environment entry that tells a child the program's limit held at 0
/// here; `None` while none is held (nearly always).
pub fn child_entry() -> Option<Vec<u8>> {
    let wanted = (*HELD.lock())?;
    Some(format!("{}={wanted}", env::CORE_LIMIT).into_bytes())
}

/// Would a core dumped now be written into a lower layer: is the real
/// current directory in one, and does the kernel write cores there?
fn dump_lands_in_lower(ovl: &Overlay) -> bool {
    // A current directory that is gone (`ENOENT`) takes no new file.
    let Ok(cwd) = rustix::process::getcwd(Vec::new()) else {
        return false;
    };
    ovl.in_lower_tree(cwd.as_bytes()) && dumps_go_to_cwd()
}

/// Does `kernel.core_pattern` leave cores in the current directory (a plain
/// name), or hand them to a helper that may (`|`)? Not an absolute path.
/// Read once a process; unreadable, it is taken to.
fn dumps_go_to_cwd() -> bool {
    static TO_CWD: OnceLock<bool> = OnceLock::new();
    *TO_CWD.get_or_init(|| {
        let first = read_first_byte("/proc/sys/kernel/core_pattern");
        first != Some(b'/')
    })
}

fn read_first_byte(path: &str) -> Option<u8> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut byte = [0u8; 1];
    let n = rustix::io::read(&fd, &mut byte).ok()?;
    (n == 1).then_some(byte[0])
}

/// The real `(soft, hard)` limits, [`UNLIMITED`] for none.
fn real_limit() -> (u64, u64) {
    let limit = getrlimit(Resource::Core);
    (
        limit.current.unwrap_or(UNLIMITED),
        limit.maximum.unwrap_or(UNLIMITED),
    )
}

fn set_real(soft: u64, hard: u64) -> Result<(), Errno> {
    let finite = |v: u64| (v != UNLIMITED).then_some(v);
    setrlimit(
        Resource::Core,
        Rlimit {
            current: finite(soft),
            maximum: finite(hard),
        },
    )
}
