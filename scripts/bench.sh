#!/usr/bin/env bash
# The benchmarks (issue 9): release builds, against the Logto-faithful provider on loopback and
# the real Secret Service, each measure side by side with its baseline in the same run. Prints
# the tables, writes target/bench/core.json and the chart docs/benchmarks.svg; BENCHMARKS.md says what is measured and what
# is not yet.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
mkdir -p target/bench
dbus-run-session -- scripts/with-keyring.sh \
  cargo bench --locked --bench core -- --json target/bench/core.json --svg docs/benchmarks.svg
cargo bench --locked --bench cached
