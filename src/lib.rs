//! ovl: a per-process overlay filesystem. This crate holds every piece of
//! overlay logic; the shim and the launcher are thin layers over it.
//!
//! Inside the shim, libc's file functions are our own hooks: the library does
//! its I/O with raw system calls (`rustix`), never with `std::fs`.

pub mod above;
pub mod binfmt;
pub mod changes;
pub mod config;
pub mod copy_up;
pub mod core_dump;
pub mod create;
pub mod cwd;
pub mod dircache;
pub mod exec;
pub mod fd_follow;
pub mod fd_table;
pub mod generation;
pub mod getdents;
pub mod hot;
pub mod ioctl;
pub mod layer_fds;
pub mod library_path;
pub mod listing;
pub mod listing_cache;
pub mod locate;
pub mod lookup;
pub mod magic;
pub mod open;
pub mod origin;
pub mod overlay;
pub mod padded;
pub mod permission;
pub mod preloadable;
pub mod protect;
pub mod quick_stat;
pub mod readdir;
pub mod refused_calls;
pub mod remove;
pub mod rename;
mod scan;
pub mod spin_lock;
mod sys;
pub mod tmpfile;
pub mod vfork;
pub mod watch;
pub mod whiteout;
pub mod xattr;

pub use sys::{cpath, socket_path_at};
