#!/usr/bin/env bash
# Every check and every test: formatting, lints, the core crate packaged as it would be published
# and built without its default features, the provider's own tests, the core's unit tests (also
# without the default features), and the end-to-end tests with the real provider, Chromium, Secret Service and window; among them
# (tests/package.rs, counted in the closing line like the rest) the .deb is made from the debug
# build, checked with lintian, installed with apt-get, opened, and purged.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

echo "== cargo fmt"; cargo fmt --all -- --check
echo "== cargo clippy"; cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo doc (the core crate, warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc -p logto-native --no-deps --locked
echo "== the core crate as published: built from its packaged files, and without its default features"
cargo package -p logto-native --locked --allow-dirty --quiet
cargo clippy -p logto-native --no-default-features --all-targets --locked -- -D warnings
echo "== provider tests"; npm --prefix tests/idp test
echo "== cargo test (unit, integration, end-to-end)"
export WEBKIT_DISABLE_COMPOSITING_MODE=1 NO_AT_BRIDGE=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
xvfb-run -a -s "-screen 0 1280x900x24" \
  dbus-run-session -- scripts/with-keyring.sh \
  cargo test --locked --workspace --no-fail-fast -- --test-threads=2 2>&1 | tee "$log" || status=$?
# The core with neither the OS keychain nor the system browser (MemoryStore and the tests'
# recording browser): what a program that brings its own gets.
cargo test --locked -p logto-native --no-default-features --no-fail-fast 2>&1 | tee -a "$log" || status=$?
# The benchmarks once each, in debug: they still run (the numbers are `make bench`'s job, and a
# smoke run passes whatever they are). Not tests: counted on a line of their own below.
echo "== bench smoke"
dbus-run-session -- scripts/with-keyring.sh \
  cargo test --locked --bench core -- --smoke 2>&1 | tee -a "$log" || status=$?
xvfb-run -a -s "-screen 0 1280x900x24" \
  dbus-run-session -- scripts/with-keyring.sh \
  cargo test --locked --bench window -- --smoke 2>&1 | tee -a "$log" || status=$?
dbus-run-session -- scripts/with-keyring.sh \
  cargo test --locked --bench cli -- --smoke 2>&1 | tee -a "$log" || status=$?
cargo test --locked --bench cached 2>&1 | tee -a "$log" || status=$?
# The closing line counts tests only: each "test result:" line of every test binary (with
# --no-fail-fast, every binary runs even after one fails, and a binary that did not build or
# crashed has no line, so it shows as the status below rather than in the count). The benchmarks'
# smoke runs (their own "bench smoke:" lines, and criterion's "Success" per benchmark it ran
# once) are reported beside it.
awk '/^test result:/ { p += $4; f += $6 }
  /^bench smoke:/ { sp += $3; sf += $5 } /^Success$/ { sp += 1 }
  END {
    printf "benchmarks run once (not tests): %d ran, %d failed\n", sp, sf
    printf "total: %d passed, %d failed\n", p, f
  }' "$log"
[ "$status" -eq 0 ] || echo "a step failed (exit $status): see above" >&2
exit "$status"
