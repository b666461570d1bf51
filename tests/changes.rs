//! `ovl-changes`: what an upper layer changed, listed alike from ovl's upper
//! and from the kernel's after the same commands, and from uppers in every
//! format the overlay reads.

mod common;

use common::*;
use std::process::Command;

/// Two lowers: the top one removes (by a whiteout and by an xattr
/// whiteout) names of the bottom one.
fn two_lowers() -> Fixture {
    let fx = Fixture::new(2);
    fx.lower(2)
        .file("deep/er/x", "e\n")
        .file("deep/er/y", "e\n")
        .file("base", "f\n")
        .file("hidden", "h\n")
        .file("marked/xgone", "m\n")
        .file("marked/kept", "m\n");
    fx.lower(1)
        .file("keep/f", "a\n")
        .file("gone/g", "b\n")
        .file("opq/old", "c\n")
        .file("mod/m", "d\n")
        .file("renamed_from", "g\n")
        .whiteout("hidden")
        .xattr_whiteout("marked/xgone", Ns::Trusted, XwhiteoutMark::OpaqueX);
    fx
}

const SCRIPT: &str = "echo new > added.txt\n\
     mkdir -p newdir/sub && echo n > newdir/sub/n\n\
     echo more >> mod/m\n\
     rm -r gone\n\
     rm -r opq && mkdir opq && echo fresh > opq/fresh\n\
     mv renamed_from renamed_to\n\
     chmod 600 keep/f\n\
     rm deep/er/x\n\
     rm base && mkdir base && echo z > base/z\n\
     echo back > hidden\n\
     echo back > marked/xgone\n\
     echo done";

const EXPECTED: &str = "A added.txt\n\
     C base/\n\
     A base/z\n\
     C deep/\n\
     C deep/er/\n\
     D deep/er/x\n\
     D gone/\n\
     A hidden\n\
     C keep/\n\
     C keep/f\n\
     C marked/\n\
     A marked/xgone\n\
     C mod/\n\
     C mod/m\n\
     A newdir/\n\
     A newdir/sub/\n\
     A newdir/sub/n\n\
     C opq/\n\
     A opq/fresh\n\
     D opq/old\n\
     D renamed_from\n\
     A renamed_to\n";

#[test]
fn changes_read_alike_from_ovls_upper_and_the_kernels() {
    require_root!();
    let pair = two_lowers().pair();
    let (_, ran) = pair.run(SCRIPT);
    assert!(ran.out().contains("done"), "{}", ran.out());
    let kernel = changes_listing(&pair.kernel);
    let ovl = changes_listing(&pair.ovl);
    assert_eq!(ovl, kernel, "ovl's upper and the kernel's list differently");
    assert_eq!(ovl, EXPECTED);
}

/// Uppers written by hand: the seed's whiteouts, `user.` opaque marks, a
/// whiteout of a name no lower layer has (listed nowhere), a directory
/// replacing a file and a file replacing a directory.
#[test]
fn changes_of_uppers_in_every_format() {
    require_root!();
    let fx = Fixture::new(1);
    fx.lower(1)
        .file("a", "a\n")
        .file("d/x", "x\n")
        .file("e/y", "y\n")
        .file("f", "f\n")
        .file("g/z", "z\n");
    fx.upper()
        .seed_whiteout("a", Ns::Trusted)
        .opaque("d", Ns::User)
        .file("d/new", "n\n")
        .whiteout("never")
        .file("e", "now a file\n")
        .file("f/inside", "i\n")
        .dir("g");
    assert_eq!(
        changes_listing(&fx),
        "D a\nC d/\nA d/new\nD d/x\nC e\nC f/\nA f/inside\nC g/\n"
    );
}

#[test]
fn names_end_with_nul_when_asked() {
    let fx = Fixture::new(1);
    fx.lower(1).file("old", "o\n");
    fx.upper()
        .file("old", "changed\n")
        .file("two\nlines", "n\n");
    let out = run_ovl_changes(&fx.upper_dir(), &fx.lower_dirs(), &["-z"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, b"C old\0A two\nlines\0");
}

#[test]
fn layers_given_as_mount_options() {
    let fx = Fixture::new(2);
    fx.lower(2).file("low", "l\n");
    fx.lower(1).file("mid", "m\n");
    fx.upper().file("low", "changed\n").file("top", "t\n");
    let dirs = fx.lower_dirs();
    let opts = format!(
        "lowerdir={}:{},upperdir={},workdir=/not/used",
        dirs[0].display(),
        dirs[1].display(),
        fx.upper_dir().display()
    );
    // ovl-exec's other options are accepted, as ovl-exec was given them.
    let out = Command::new(ovl_changes())
        .args(["-o", &opts, "-t", "/not/used/either"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "C low\nA top\n");
    // As for ovl-exec: lower layers given twice ways, or a work directory
    // given twice, are refused.
    for extra in [&["-l", "/a"][..], &["-w", "/not/used"]] {
        let out = Command::new(ovl_changes())
            .args(["-o", &opts])
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(
            err.starts_with("ovl-changes: ")
                && (err.contains("use one") || err.contains("give it once")),
            "{err}"
        );
    }
}

#[test]
fn missing_layers_are_named() {
    let fx = Fixture::new(1);
    let no_upper = Command::new(ovl_changes())
        .arg("-l")
        .arg(fx.lower_dir(1))
        .output()
        .unwrap();
    assert_eq!(no_upper.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&no_upper.stderr).contains("no upper layer: give it with -u DIR")
    );

    let missing = fx.root_dir().join("nowhere");
    let out = run_ovl_changes(&fx.upper_dir(), std::slice::from_ref(&missing), &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("ovl-changes: ") && err.contains(&*missing.to_string_lossy()),
        "{err}"
    );
}

/// A directory of the view that cannot be read (here, by `nobody`): no
/// listing at all, one line naming it.
#[test]
fn an_unreadable_directory_is_named() {
    require_root!();
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let fx = Fixture::new(1);
    fx.lower(1).file("d/old", "o\n");
    fx.upper().file("d/sub/new", "n\n").file("top", "t\n");
    std::fs::set_permissions(
        fx.upper().at("d/sub"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let reachable = Command::new("test")
        .arg("-x")
        .arg(fx.upper().at("d"))
        .uid(65534)
        .status()
        .is_ok_and(|s| s.success());
    if !reachable {
        eprintln!("skipped: nobody cannot reach the fixture's directories (a private temporary directory)");
        return;
    }
    let out = Command::new(ovl_changes())
        .arg("-u")
        .arg(fx.upper_dir())
        .arg("-l")
        .arg(fx.lower_dir(1))
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        err,
        "ovl-changes: the view's d/sub: Permission denied (os error 13) (reading the layers there)\n"
    );
}
