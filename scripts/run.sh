#!/usr/bin/env bash
# Builds and opens the app. With LOGTO_ENDPOINT and LOGTO_APP_ID set it talks to that tenant;
# without them it starts the local Logto-faithful provider from tests/idp and points the app at it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run
# Built the way `make test` builds it (cargo test's feature set, dev-dependencies included), so
# that `make run` after `make test` reuses that build instead of rebuilding most of the tree for
# `cargo build`'s smaller feature set. The binary is the same app.
cargo test --locked --workspace --no-run --quiet

if [ -z "${LOGTO_ENDPOINT:-}" ] && [ -z "${LOGTO_APP_ID:-}" ]; then
  info=$(mktemp)
  IDP_DEMO=1 IDP_EXIT_WITH_STDIN=1 node tests/idp/server.js > "$info" < <(sleep infinity) &
  idp=$!
  trap 'kill $idp 2>/dev/null; rm -f "$info"' EXIT
  for _ in $(seq 100); do [ -s "$info" ] && break; sleep 0.1; done
  [ -s "$info" ] || { echo "the local provider did not start" >&2; exit 1; }
  LOGTO_ENDPOINT=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8").split("\n")[0]).endpoint)' "$info")
  LOGTO_APP_ID=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8").split("\n")[0]).app_id)' "$info")
  export LOGTO_ENDPOINT LOGTO_APP_ID
  echo "Local Logto-faithful provider at $LOGTO_ENDPOINT (app $LOGTO_APP_ID); its sign-in page lists the demo users." >&2
fi
target/debug/logto-desktop
