#!/usr/bin/env bash
# `make mutants`: cargo-mutants over the core's security checks, to see which promises the unit
# tests really hold. Each mutant is one small change to the code (a condition flipped, a
# comparison moved, a function's result replaced); a mutant the tests still pass is a promise no
# test holds. Not part of `make test`: it builds and runs the core's tests once per mutant (about
# 250 of them, about 80 minutes on 2 cores). Its last result is summed up by hand in MUTANTS.md.
#
#   scripts/mutants.sh            the whole scope below
#   scripts/mutants.sh loopback   only what the scope names in one file (src/loopback.rs)
#
# The results are in mutants.out/ (caught.txt, missed.txt, timeout.txt, unviable.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run
# The version MUTANTS.md's run used; another may make other mutants.
version=27.1.0
if ! cargo mutants --version 2>/dev/null | grep -qx "cargo-mutants $version"; then
  cargo install --locked cargo-mutants --version "$version"
fi

# The scope: every check of callback, id_token, session, refresh and lock; discovery's metadata
# and transport checks and its refetch rule; http's caps; loopback's judging of a head and its
# choice of a connection to push out.
scope=(
  -F 'src/(callback|id_token|session|refresh|lock)\.rs:'
  -F 'src/discovery\.rs:.* in (check_metadata|check_transport|Discovered::refetch)$'
  -F 'src/discovery\.rs:.*replace (check_metadata|check_transport|Discovered::refetch) '
  -F 'src/http\.rs:19:'
  -F 'src/http\.rs:.*( in | replace )(read_capped|read_limited|check_status|send_bounded)( |$)'
  -F 'src/loopback\.rs:.*( in | replace )(judge|judge_head|head_end|HeadBuf::pull|pick|Connections::admit|Connections::evict_one|Slot::push_out_if)( |$)'
)
# One file of it: still only what the scope names there.
[ $# -gt 0 ] && scope+=(-f "crates/logto-native/src/$1.rs")
echo "mutants: $(cargo mutants --package logto-native --list "${scope[@]}" | wc -l)" >&2

# The core's unit tests and its integration tests (tests/stable.rs), not its doc examples: the
# examples show the API and hold no check a unit test does not. A copy of the tree is built in
# a folder of its own (never this target/, which the app's builds use).
# Most of the core's tests wait on sockets and clocks, not the CPU: run many at once (about half
# the time of one thread per core).
export RUST_TEST_THREADS=16
exec cargo mutants --package logto-native --no-shuffle --copy-target=false \
  --timeout-multiplier 3 "${scope[@]}" -- --lib --tests
