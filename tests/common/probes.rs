//! Shell snippets that print a view in a form fit for comparison: sorted,
//! without inode numbers or anything that differs between two identical
//! clones. Concatenate them (`format!("{LIST}{CAT_ALL}")`).

/// Every object: path, type, mode, link count, size, symlink target.
pub const LIST: &str = "find . -printf '%p %y %m %n %s %l\\n' | sort\n";

/// `stat` of every object (merged directories report link count 1).
pub const STAT_ALL: &str = "find . -print0 | sort -z | xargs -0 stat -c '%n %F %a %u %g %s %h'\n";

/// The content of every regular file, each headed by `== path`.
pub const CAT_ALL: &str =
    "find . -type f | sort | while IFS= read -r f; do echo \"== $f\"; cat \"$f\"; done\n";

/// `ls -la` of every directory, recursively, with full times.
pub const LS_LAR: &str = "ls -laR --time-style=full-iso .\n";
