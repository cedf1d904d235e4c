#!/usr/bin/env bash
# Guards one directory in real time with the embedded default store (SQLite in the home)
# and serves the console beside it: builds pacsguard, creates a home if there is none, then
# runs `pacsguard serve DIR`. The first run takes DIR's signed profile; every run first
# reports how DIR differs from it, then every change as it happens, and prints where the
# console is (and, until the first administrator exists, a one-time setup link).
# Ctrl-C (or SIGTERM) stops it cleanly.
#
#   scripts/guard.sh DIR [SERVE OPTIONS]    e.g. --policy append-only, --listen 0.0.0.0:8443
#   home: $PACSGUARD_HOME, else ./.pacsguard-home
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: scripts/guard.sh DIR [--policy static|append-only|growing|volatile] [--listen ADDR:PORT] [--json]}
shift
export PACSGUARD_HOME=${PACSGUARD_HOME:-$PWD/.pacsguard-home}

cargo build --release --locked -q -p pacsguard
pg=${CARGO_TARGET_DIR:-$PWD/target}/release/pacsguard

# init talks to a person: to stderr, so that `--json` output stays one finding per line.
[[ -f $PACSGUARD_HOME/signing.key ]] || "$pg" init >&2
exec "$pg" serve "$dir" "$@"
