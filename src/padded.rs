//! Locks that every thread takes, each on cache lines of its own. Taking
//! even a read lock writes the lock's word; a read-mostly value on the same
//! line (the overlay, the flags of the current directory) would then be
//! fetched again by every other core on each call.

use std::ops::Deref;

/// `T`, alone on its cache lines (two lines: adjacent-line prefetch pairs them).
#[repr(align(128))]
pub struct Padded<T>(pub T);

impl<T> Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
