#!/usr/bin/env bash
# Installable Linux packages: a .deb made by packaging/deb.sh with dpkg-dev's tools (Tauri's deb
# bundler cannot make one that lintian accepts: see there), and an .rpm made by Tauri's bundler
# from tauri.conf.json's `bundle` section (its CLI is the npm package @tauri-apps/cli, locked in
# packaging/).
#   scripts/package.sh         (`make package`) the release build, then a .deb and an .rpm,
#                              checked with lintian; prints where they are
#   scripts/package.sh bundle PROFILE_DIR
#                              the .deb and the .rpm of the programs in PROFILE_DIR (a cargo
#                              target folder's `debug` or `release`), in PROFILE_DIR/bundle/deb
#                              and /rpm; prints their paths, the .deb's first (the package test)
#   scripts/package.sh icons   (`make icons`) makes every icon of `bundle.icon` again from the
#                              one source image, src-tauri/icons/icon.svg
# The release binaries are the ones `cargo build --release` makes (and `make bench` measures):
# `tauri build` would add the `tauri/custom-protocol` feature, a second release build that differs
# only in a `dev` cfg that matters with a `devUrl`, which this app does not have (its page is
# embedded either way).
set -euo pipefail
# `set -e` holds inside $(...) too: bundle's output is read that way.
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
tauri=packaging/node_modules/.bin/tauri

if [ "${1:-}" = icons ]; then
  scripts/deps.sh package
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  if ! log=$("$tauri" icon src-tauri/icons/icon.svg --output "$out" 2>&1); then
    echo "$log" >&2
    exit 1
  fi
  # Only the sizes the bundle names (Linux, macOS, Windows); not the mobile or Store ones.
  node -e 'for (const p of require("./tauri.conf.json").bundle.icon) console.log(p)' |
    while read -r icon; do
      made=$(basename "$icon")
      # `tauri icon` names its 256 px image 128x128@2x.png; the Linux bundlers would file that
      # under hicolor/256x256@2 (a 512 px slot), so the bundle lists it as 256x256.png.
      [ "$made" = 256x256.png ] && made=128x128@2x.png
      cp "$out/$made" "$icon"
      echo "$icon"
    done
  exit 0
fi

# The .deb and the .rpm of the programs in $1.
bundle() {
  local profile_dir target_dir profile product rpm named
  profile_dir=$(realpath "$1")
  target_dir=$(dirname "$profile_dir")
  profile=$(basename "$profile_dir")
  # Earlier versions' packages would be listed with this one's.
  rm -rf "$profile_dir/bundle/deb" "$profile_dir/bundle/rpm"
  packaging/deb.sh "$profile_dir" "$profile_dir/bundle/deb"
  # The bundler reads the programs of the package's [[bin]] targets from
  # $CARGO_TARGET_DIR/<profile>/. --no-binary-patching: it would otherwise write the bundle type
  # into the main program for Tauri's updater, which this app does not use; the programs stay the
  # ones cargo built.
  # The command line is a package of its own, which the bundler does not see: it is named the
  # main program (the desktop entry's Exec), and the window program, the package's own [[bin]],
  # is added beside it.
  local programs
  programs=$(printf '{"mainBinaryName":"logto-desktop","bundle":{"linux":{"rpm":{"files":{"/usr/bin/logto-desktop-window":"%s/logto-desktop-window"}}}}}' "$profile_dir")
  local flags=(--bundles rpm --no-binary-patching --ci --config "$programs")
  [ "$profile" = debug ] && flags+=(--debug)
  CARGO_TARGET_DIR=$target_dir "$tauri" bundle "${flags[@]}" >&2
  # The bundler names the file after productName, with its space: "Logto Desktop-0.1.0-1.x86_64.rpm".
  product=$(node -p 'require("./tauri.conf.json").productName')
  rpm=$(find "$profile_dir/bundle/rpm" -maxdepth 1 -name '*.rpm' -print -quit)
  named=$profile_dir/bundle/rpm/logto-desktop-${rpm##*/"$product"-}
  mv "$rpm" "$named"
  echo "$named"
}

if [ "${1:-}" = bundle ]; then
  [ $# -eq 2 ] || { echo "usage: scripts/package.sh bundle PROFILE_DIR" >&2; exit 2; }
  bundle "$2"
  exit 0
fi

scripts/deps.sh package
cargo build --release --locked
packages=$(bundle "${CARGO_TARGET_DIR:-target}/release")
deb=$(sed -n 1p <<<"$packages")
rpm=$(sed -n 2p <<<"$packages")
# The release programs are not the ones the package test checks (they are built with LTO and
# without debug assertions): lintian looks at these too.
lintian --fail-on error,warning "$deb"
echo
echo "packages:"
echo "  $deb"
echo "  $rpm"
echo "install (Debian, Ubuntu):  sudo apt-get install \"$deb\""
echo "install (Fedora):          sudo dnf install \"$rpm\""
