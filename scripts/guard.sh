#!/usr/bin/env bash
# Guards one directory in real time with the embedded default store (SQLite in the home):
# builds pacsguard, creates a home if there is none, then watches DIR. The first run takes
# DIR's signed profile; every run first reports how DIR differs from it, then every change
# as it happens. Ctrl-C (or SIGTERM) stops it cleanly.
#
#   scripts/guard.sh DIR [WATCH OPTIONS]    e.g. --policy append-only, --json
#   home: $PACSGUARD_HOME, else ./.pacsguard-home
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: scripts/guard.sh DIR [--policy static|append-only|growing|volatile] [--json]}
shift
export PACSGUARD_HOME=${PACSGUARD_HOME:-$PWD/.pacsguard-home}

cargo build --release --locked -q -p pacsguard
pg=${CARGO_TARGET_DIR:-$PWD/target}/release/pacsguard

# init talks to a person: to stderr, so that `--json` output stays one finding per line.
[[ -f $PACSGUARD_HOME/signing.key ]] || "$pg" init >&2
exec "$pg" watch "$dir" "$@"
