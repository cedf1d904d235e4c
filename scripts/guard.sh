#!/usr/bin/env bash
# Guards one directory end to end with the embedded default store (SQLite in the home):
# builds pacsguard, creates a home if there is none, takes the signed profile of DIR the
# first time, and verifies DIR against it every time after.
#
#   scripts/guard.sh DIR            home: $PACSGUARD_HOME, else ./.pacsguard-home
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: scripts/guard.sh DIR}
export PACSGUARD_HOME=${PACSGUARD_HOME:-$PWD/.pacsguard-home}

cargo build --release --locked -q -p pacsguard
pg=$PWD/target/release/pacsguard

[[ -f $PACSGUARD_HOME/signing.key ]] || "$pg" init
# Exit status 2 from a quick check means "not profiled yet" (or a real error, which the
# profile run then reports loudly: it refuses to extend a baseline that fails verification).
set +e
"$pg" check --fast "$dir" >/dev/null 2>&1
status=$?
set -e
if [[ $status -eq 2 ]]; then
  "$pg" profile "$dir"
fi
exec "$pg" check "$dir"
