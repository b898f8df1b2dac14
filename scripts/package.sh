#!/usr/bin/env bash
# Installable Linux packages, made by Tauri's bundler from tauri.conf.json's `bundle` section
# (the CLI is the npm package @tauri-apps/cli, locked in packaging/).
#   scripts/package.sh         (`make package`) the release build, then a .deb and an .rpm;
#                              prints where they are
#   scripts/package.sh icons   (`make icons`) makes every icon of `bundle.icon` again from the
#                              one source image, src-tauri/icons/icon.svg
# The release binary is the one `cargo build --release` makes (and `make bench` measures):
# `tauri build` would add the `tauri/custom-protocol` feature, a second release build that differs
# only in a `dev` cfg that matters with a `devUrl`, which this app does not have (its page is
# embedded either way).
set -euo pipefail
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

scripts/deps.sh package
cargo build --release --locked
# Earlier versions' packages would be listed with this one's.
rm -rf target/release/bundle/deb target/release/bundle/rpm
# --no-binary-patching: the bundler would otherwise write the bundle type into
# target/release/logto-desktop for Tauri's updater, which this app does not use; the binary in
# target/ stays the one cargo built.
"$tauri" bundle --bundles deb,rpm --no-binary-patching --ci
deb=$(find target/release/bundle/deb -maxdepth 1 -name '*.deb' -print -quit)
rpm=$(find target/release/bundle/rpm -maxdepth 1 -name '*.rpm' -print -quit)
echo
echo "packages:"
echo "  $PWD/$deb"
echo "  $PWD/$rpm"
echo "install (Debian, Ubuntu):  sudo apt-get install \"./$deb\""
echo "install (Fedora):          sudo dnf install \"./$rpm\""
