#!/usr/bin/env bash
# Runs every test: builds the workspace, then `cargo test` over it.
# Extra arguments go to `cargo test` (for example a test name, or
# `-- --nocapture`). As root, tools the tests drive are installed first when
# missing, and the kernel's overlayfs serves as the reference; as another
# user, the tests that need it say "skipped" and pass.
set -euo pipefail
cd "$(dirname "$0")/.."

# command the tests run -> Debian package that provides it
tools=(
  getfattr:attr
  strace:strace
  sqlite3:sqlite3
  git:git
  make:make
  gcc:gcc
  python3:python3
  tar:tar
  find:findutils
  setcap:libcap2-bin
  node:nodejs
  npm:npm
  rsync:rsync
  patch:patch
  ed:ed
  zip:zip
  unzip:unzip
  chattr:e2fsprogs
  go:golang-go
  musl-gcc:musl-tools
  autoreconf:autoconf
  automake:automake
  cmake:cmake
  ninja:ninja-build
  mkfs.xfs:xfsprogs
)

missing=()
for entry in "${tools[@]}"; do
  command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry##*:}")
done
# What a test links with, not a command: gcc flags -> Debian package.
links_with() {
  local probe
  probe=$(mktemp)
  echo 'int main(void) { return 0; }' | gcc "$@" -x c - -o "$probe" >/dev/null 2>&1
  local ok=$?
  rm -f "$probe"
  return $ok
}
links_with -luring || missing+=(liburing-dev)
# A 32-bit program (a test of programs the overlay cannot be preloaded into).
if [ "$(uname -m)" = x86_64 ]; then
  links_with -m32 || missing+=(gcc-multilib)
fi

if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  else
    echo "test.sh: warning: missing ${missing[*]}; tests that use them will fail" >&2
  fi
fi

# What the tests run: ovl-exec and the shim as installed (target/release).
cargo build --release --workspace
# The test programs themselves: see [profile.tests] in Cargo.toml.
# --no-fail-fast: one failing test binary does not hide the others.
cargo test --profile tests --workspace --no-fail-fast "$@"
