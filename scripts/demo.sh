#!/usr/bin/env bash
# Builds ovl, makes a small source tree, and shows a program changing it
# through the overlay while the tree itself stays pristine.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --quiet
OVL=$PWD/target/release/ovl-exec

demo=$(mktemp -d /tmp/ovl-demo.XXXXXX)
mkdir -p "$demo/src/sub" "$demo/upper"
printf 'hello from the lower layer\n' > "$demo/src/hello.txt"
printf 'old\n' > "$demo/src/sub/old.txt"
printf 'remove me\n' > "$demo/src/gone.txt"

echo "== the lower tree, $demo/src"
(cd "$demo/src" && find . | sort)

echo "== a shell under ovl-exec changes it in place"
"$OVL" --lower "$demo/src" --upper "$demo/upper" -- sh -c '
  cd "$1"
  echo "appended" >> hello.txt
  rm gone.txt
  mkdir -p new/dir && echo fresh > new/dir/file.txt
  mv sub/old.txt sub/renamed.txt
  echo "-- what the program sees:"; find . | sort
  echo "-- hello.txt:"; cat hello.txt
' sh "$demo/src"

echo "== the lower tree afterwards (unchanged)"
(cd "$demo/src" && find . | sort && cat hello.txt)
echo "== the upper layer: copied-up files, new files, whiteouts (c 0,0)"
(cd "$demo/upper" && find . -printf '%y %p\n' | sort -k2)
echo "== what it changed, by ovl-changes (A added, C changed, D removed)"
"$PWD/target/release/ovl-changes" --lower "$demo/src" --upper "$demo/upper"
if [ "$(id -u)" = 0 ] && grep -qw overlay /proc/filesystems; then
  echo "== the kernel's overlayfs mounts the same layers and shows the same view"
  mkdir -p "$demo/mnt"
  mount -t overlay overlay -o "lowerdir=$demo/src,upperdir=$demo/upper,workdir=$demo/upper.ovl-work" "$demo/mnt"
  (cd "$demo/mnt" && find . | sort)
  umount "$demo/mnt"
fi
rm -rf "$demo"
