#!/usr/bin/env bash
# Every check and every test: formatting, lints, the provider's own tests, the core's unit tests,
# and the end-to-end tests with the real provider, Chromium, Secret Service and window.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

echo "== cargo fmt"; cargo fmt --all -- --check
echo "== cargo clippy"; cargo clippy --all-targets --locked -- -D warnings
echo "== provider tests"; npm --prefix tests/idp test
echo "== cargo test (unit, integration, end-to-end)"
export WEBKIT_DISABLE_COMPOSITING_MODE=1 NO_AT_BRIDGE=1
xvfb-run -a -s "-screen 0 1280x900x24" \
  dbus-run-session -- scripts/with-keyring.sh \
  cargo test --locked -- --test-threads=2
