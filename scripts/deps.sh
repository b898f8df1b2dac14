#!/usr/bin/env bash
# Installs what building, running or testing needs, and only what is missing.
#   scripts/deps.sh run      build dependencies, Node packages of the local provider
#   scripts/deps.sh test     the above plus Xvfb, D-Bus, GNOME Keyring, Chromium, WebKitWebDriver, xclip,
#                            tauri-driver, and what the package test uses: the Tauri CLI, dpkg-dev,
#                            lintian, appstream, desktop-file-utils, man-db, xprop and rpm
#   scripts/deps.sh package  build dependencies, the Tauri CLI, dpkg-dev and lintian (`make package`)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}

build_pkgs=(build-essential pkg-config file libssl-dev libdbus-1-dev libwebkit2gtk-4.1-dev
  libayatana-appindicator3-dev librsvg2-dev nodejs npm)
test_pkgs=(xvfb xauth dbus dbus-x11 gnome-keyring libsecret-tools chromium chromium-driver
  webkit2gtk-driver imagemagick xdotool xclip x11-utils fonts-noto-cjk fonts-dejavu-core
  desktop-file-utils rpm appstream man-db)
# The .deb is made with dpkg-dev's tools (dpkg-shlibdeps, dpkg-gencontrol) and checked with lintian.
package_pkgs=(dpkg-dev lintian)
pkgs=("${build_pkgs[@]}")
[ "$mode" = test ] && pkgs+=("${test_pkgs[@]}")
[ "$mode" != run ] && pkgs+=("${package_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  # nodejs/npm may come from elsewhere than Debian; a working command is enough.
  case "$p" in nodejs) command -v node >/dev/null && continue ;; npm) command -v npm >/dev/null && continue ;; esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  # apt and dpkg say a line per package even with -qq: shown only when something fails.
  log=$(mktemp)
  if ! { $sudo apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
fi

# The Tauri CLI that bundles the packages (its npm package carries a prebuilt binary), as locked.
if [ "$mode" != run ] &&
  { [ ! -d packaging/node_modules ] || [ packaging/package-lock.json -nt packaging/node_modules/.package-lock.json ]; }; then
  echo "deps: npm ci in packaging" >&2
  npm --prefix packaging ci --no-audit --no-fund --loglevel=error >&2
fi
[ "$mode" = package ] && exit 0

# oidc-provider 9 needs Node 20.18 or later (it uses URL.parse and crypto.hash); Debian 12's own
# nodejs is 18, so say so plainly rather than fail later inside the provider.
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 18) ? 0 : 1)'; then
  echo "deps: Node $(node --version) is too old: the local provider needs Node 20.18 or later (e.g. from NodeSource or nvm)." >&2
  exit 1
fi

# The provider's Node packages, exactly as locked.
if [ ! -d tests/idp/node_modules ] || [ tests/idp/package-lock.json -nt tests/idp/node_modules/.package-lock.json ]; then
  echo "deps: npm ci in tests/idp" >&2
  npm --prefix tests/idp ci --no-audit --no-fund --loglevel=error >&2
fi

if [ "$mode" = test ] && ! command -v tauri-driver >/dev/null; then
  echo "deps: cargo install tauri-driver" >&2
  cargo install tauri-driver --locked --quiet >&2
fi
