#!/usr/bin/env bash
# Runs a command with an unlocked GNOME Keyring Secret Service of its own. Call it inside
# `dbus-run-session` (and `xvfb-run` outside that); the keyring files live in a fresh folder, so
# runs never share or inherit secrets.
set -euo pipefail
keyring_home=$(mktemp -d)
trap 'rm -rf "$keyring_home"' EXIT
export XDG_DATA_HOME="$keyring_home"
eval "$(printf 'test' | gnome-keyring-daemon --components=secrets --daemonize --unlock)"
export GNOME_KEYRING_CONTROL
"$@"
