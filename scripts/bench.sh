#!/usr/bin/env bash
# The benchmarks (issue 9), each measure side by side with its baseline in the same run:
# - the window's (start-up, idle memory, size): the shipped release build of the app against
#   the bare Tauri window of benches/bare, built the same way, under Xvfb;
# - the core's: against the Logto-faithful provider on loopback and the real Secret Service;
# - the command line's (issue 17): `token` and `status`, wall time and peak memory, against
#   `secret-tool lookup` of the same keychain entry;
# - a cached access token (criterion).
# Prints the tables, writes target/bench/{window,cli,core}.json and the chart docs/benchmarks.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
mkdir -p target/bench/bin
# What `cargo build --release` ships (cargo bench builds the app again with the benchmarks'
# dev-dependencies, which turn on more features of shared crates).
cargo build --locked --release -p logto-desktop -p logto-desktop-cli -p bare-window
cp target/release/logto-desktop target/release/logto-desktop-window target/release/bare-window \
  target/bench/bin/
export WEBKIT_DISABLE_COMPOSITING_MODE=1 NO_AT_BRIDGE=1
# The window benchmark only launches the two binaries and reads their output, so its own harness
# is the debug build `make test` makes (a release build of it would be one more LTO link).
xvfb-run -a -s "-screen 0 1280x900x24" dbus-run-session -- scripts/with-keyring.sh \
  cargo test --locked --bench window -- \
  --app target/bench/bin/logto-desktop-window --bare target/bench/bin/bare-window \
  --json target/bench/window.json
# The same for the command line's: its harness only launches programs.
dbus-run-session -- scripts/with-keyring.sh \
  cargo test --locked --bench cli -- --cli target/bench/bin/logto-desktop \
  --json target/bench/cli.json
dbus-run-session -- scripts/with-keyring.sh \
  cargo bench --locked --bench core -- --json target/bench/core.json --svg docs/benchmarks.svg \
  --with target/bench/window.json --with target/bench/cli.json
cargo bench --locked --bench cached
