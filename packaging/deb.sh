#!/usr/bin/env bash
# Makes logto-desktop's .deb from the two built programs, as a distribution would accept it:
#   packaging/deb.sh BIN_DIR OUT_DIR
# BIN_DIR holds `logto-desktop` and `logto-desktop-window` as cargo built them (they are stripped
# here); OUT_DIR gets logto-desktop_<version>_<arch>.deb, and its path is printed on stdout.
# `scripts/package.sh` runs it, for `make package` and for the package test alike.
#
# Not Tauri's deb bundler: it names the file and the desktop entry after productName ("Logto
# Desktop", with a space), writes Depends from tauri.conf.json rather than from the binaries, puts
# every program in /usr/bin, and has no changelog, man page or AppStream file. So the tree is
# staged here, laid out as debhelper lays it out (debian/<package>/), and dpkg-dev's own tools do
# the rest: dpkg-shlibdeps works out Depends from the binaries, dpkg-gencontrol writes the control
# file (Version from debian/changelog, Installed-Size), and dpkg-deb packs it with root as owner.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: packaging/deb.sh BIN_DIR OUT_DIR" >&2
  exit 2
fi
bin_dir=$(realpath "$1")
mkdir -p "$2"
out_dir=$(realpath "$2")
cd "$(dirname "$0")/.."

package=logto-desktop
app_id=$(node -p 'require("./tauri.conf.json").identifier')
version=$(dpkg-parsechangelog -l packaging/debian/changelog -SVersion)
for program in logto-desktop logto-desktop-window; do
  if [ ! -x "$bin_dir/$program" ]; then
    echo "deb.sh: no $bin_dir/$program (cargo builds both programs of the package)" >&2
    exit 1
  fi
done
# debian/changelog says which version this is; the program must agree.
said=$("$bin_dir/logto-desktop" --version)
if [ "$said" != "logto-desktop $version" ]; then
  echo "deb.sh: packaging/debian/changelog is at $version, but the program says \"$said\"" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 022
mkdir -p "$work/debian"
cp packaging/debian/control packaging/debian/changelog "$work/debian/"
root=$work/debian/$package
# Every file's time in the package is the changelog's (dpkg-deb reads SOURCE_DATE_EPOCH), so the
# same binaries make the same .deb.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(dpkg-parsechangelog -l packaging/debian/changelog -STimestamp)}
export SOURCE_DATE_EPOCH

# The programs, stripped as dh_strip strips them. The window program is no command of its own
# (`logto-desktop` starts it), so it lives in /usr/lib.
install -d "$root/usr/bin" "$root/usr/lib/$package"
strip_into() {
  strip --remove-section=.comment --remove-section=.note --strip-unneeded -o "$2" "$1"
  chmod 0755 "$2"
}
strip_into "$bin_dir/logto-desktop" "$root/usr/bin/logto-desktop"
strip_into "$bin_dir/logto-desktop-window" "$root/usr/lib/$package/logto-desktop-window"

# The man pages, made from the command line's definition (packaging/man).
cargo run --quiet --locked -p logto-desktop-man -- "$work" </dev/null
if ! grep -q "^\.TH logto-desktop 1 .*\"logto-desktop $version\"" "$work/logto-desktop.1"; then
  echo "deb.sh: the man page is not of version $version (packaging/man/Cargo.toml):" >&2
  head -n 3 "$work/logto-desktop.1" >&2
  exit 1
fi
install -d "$root/usr/share/man/man1"
for page in "$work"/*.1; do
  gzip -9n <"$page" >"$root/usr/share/man/man1/$(basename "$page").gz"
done

# The menu entry, named after the app id, from the template the .rpm's uses too (the Handlebars
# of Tauri's bundler, filled in the same way: the name, the short description, the program).
install -d "$root/usr/share/applications"
node - packaging/logto-desktop.desktop <<'EOF' >"$root/usr/share/applications/$app_id.desktop"
const fs = require("fs");
const conf = require(process.cwd() + "/tauri.conf.json");
// Tauri's bundler writes the freedesktop categories of bundle.category this way.
const categories = { Utility: "Utility;" }[conf.bundle.category];
if (!categories) throw new Error(`no freedesktop category for ${conf.bundle.category}`);
const values = {
  name: conf.productName,
  comment: conf.bundle.shortDescription,
  exec: "logto-desktop",
  icon: "logto-desktop",
  categories,
};
let text = fs.readFileSync(process.argv[2], "utf8");
text = text.replace(/\{\{#if (\w+)\}\}\n?([\s\S]*?)\{\{\/if\}\}\n?/g, (_, key, body) => (values[key] ? body : ""));
text = text.replace(/\{\{(\w+)\}\}/g, (_, key) => {
  if (!(key in values)) throw new Error(`the desktop template's {{${key}}} has no value`);
  return values[key];
});
process.stdout.write(text);
EOF
install -D -m 0644 "packaging/$app_id.metainfo.xml" "$root/usr/share/metainfo/$app_id.metainfo.xml"

# The icons of tauri.conf.json's bundle.icon that are PNGs, each filed under its own size.
node -e 'for (const p of require("./tauri.conf.json").bundle.icon) if (p.endsWith(".png")) console.log(p)' |
  while read -r icon; do
    size=$(od -An -tu1 -j16 -N4 "$icon" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }')
    install -D -m 0644 "$icon" "$root/usr/share/icons/hicolor/${size}x${size}/apps/logto-desktop.png"
  done

# The copyright file, the licence texts it names, and the changelog: a native package's is
# changelog.gz (Debian policy 12.7).
install -d "$root/usr/share/doc/$package"
install -m 0644 packaging/copyright "$root/usr/share/doc/$package/copyright"
install -m 0644 LICENSE-MIT LICENSE-APACHE "$root/usr/share/doc/$package/"
gzip -9n <packaging/debian/changelog >"$root/usr/share/doc/$package/changelog.gz"

# dpkg-shlibdeps finds a program's package folder by the DEBIAN folder above it.
install -d "$root/DEBIAN"
cd "$work"
dpkg-shlibdeps -Tdebian/substvars "debian/$package/usr/bin/logto-desktop" \
  "debian/$package/usr/lib/$package/logto-desktop-window"
dpkg-gencontrol -p"$package" -Tdebian/substvars -P"$root" -fdebian/files
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
  xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
chmod 0755 "$root"

arch=$(sed -n 's/^Architecture: //p' "$root/DEBIAN/control")
deb=$out_dir/${package}_${version}_$arch.deb
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"
