//! The lower layers never change, whatever a program does: also through a
//! symlink outside the view, the lower layer's real path, `/proc/self/fd`, a
//! descriptor opened read-only, or a hard link made outside.

mod common;

use common::*;
use std::process::Command;

#[test]
fn no_path_from_outside_the_view_changes_a_lower_layer() {
    let dir = std::env::temp_dir().join(format!("ovl-protect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["l", "u", "v", "o"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(dir.join("l/f"), "secret\n").unwrap();
    std::os::unix::fs::symlink(dir.join("l/f"), dir.join("o/link")).unwrap();
    let script = r#"
        d="$1"
        echo via-link >> "$d/o/link"; echo "append via outside symlink: $?"
        echo direct >> "$d/l/f"; echo "append by the real name: $?"
        python3 -c '
import os, sys
d = sys.argv[1]
fd = os.open(d + "/v/f", os.O_RDONLY)
w = os.open("/proc/self/fd/%d" % fd, os.O_WRONLY | os.O_APPEND)
os.write(w, b"via-proc\n")
os.fchmod(fd, 0o600)
print("proc and fchmod done")
' "$d"
        chmod 700 "$d/o/link" 2>/dev/null; echo "chmod via link: $?"
        ln "$d/l/f" "$d/o/hard" 2>/dev/null; echo "hard link out: $?"
        rm "$d/l/f" 2>/dev/null; echo "rm by the real name: $?"
        truncate -s 0 "$d/o/link" 2>/dev/null; echo "truncate via link: $?"
        cat "$d/v/f"
    "#;
    let out = Command::new(ovl_exec())
        .env("OVL_SHIM", shim())
        .args([
            "-l",
            dir.join("l").to_str().unwrap(),
            "-u",
            dir.join("u").to_str().unwrap(),
        ])
        .args([
            "-t",
            dir.join("v").to_str().unwrap(),
            "--",
            "sh",
            "-c",
            script,
            "sh",
            dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lower = std::fs::read_to_string(dir.join("l/f")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("l/f"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    let hard = dir.join("o/hard").exists();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        lower, "secret\n",
        "the lower file changed; ovl said:\n{stdout}"
    );
    assert_eq!(mode, 0o644, "the lower file's mode changed");
    assert!(
        !hard,
        "a hard link to a lower file was made outside the view"
    );
    assert!(stdout.contains("chmod via link: 1"), "{stdout}");
    assert!(stdout.contains("rm by the real name: 1"), "{stdout}");
    assert!(stdout.contains("proc and fchmod done"), "{stdout}");
}
