//! ovl: a per-process overlay filesystem. This crate holds every piece of
//! overlay logic; the shim and the launcher are thin layers over it.

pub mod config;
