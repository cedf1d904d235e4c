#!/usr/bin/env bash
# bench/ransomware.sh — the ransomware simulator against `pacsguard watch`.
#
# Runs each attack pattern of issue 11 against a fresh append-only store guarded with the
# DEFAULT thresholds (the tests shorten the long window; this is where the defaults are
# measured), and each benign pattern, and reports per pattern: detected or not, seconds
# from the start of the attack to `ransomware-suspected`, files lost (changed before the
# alert), and alerts raised. Benign patterns must raise none. Writes the table as markdown
# to bench/work/ransomware/results.md. Exits 0 once measured (a benchmark, not a test).
#
# Knobs: BENCH_WORK (default bench/work), BENCH_RW_FILES (store size, default 300),
# BENCH_RW_PATTERNS (default: all), PACSGUARD (a prebuilt binary: skip cargo build).
# Run as root for fanotify (the hard-link pattern needs it).
set -euo pipefail
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"

WORK=${BENCH_WORK:-$SCRIPT_DIR/work}/ransomware
FILES=${BENCH_RW_FILES:-300}
PATTERNS=${BENCH_RW_PATTERNS:-"full intermittent locked-rename hardlink mmap slow-0.6 slow-2 slow-10 decoy-then-attack dir-rename base64-in-window hex-in-window part-ingest copy-in recompress"}
PACSGUARD=${PACSGUARD:-}
[[ $FILES =~ ^[1-9][0-9]*$ ]] || die "BENCH_RW_FILES must be a positive integer"

mkdir -p "$WORK"
if [[ -z $PACSGUARD ]]; then
    target=${CARGO_TARGET_DIR:-$REPO/target}
    log "cargo build --release -p pacsguard (target $target)"
    (cd "$REPO" && CARGO_TARGET_DIR=$target cargo build --release -p pacsguard >&2) || die "cargo build failed"
    PACSGUARD=$target/release/pacsguard
fi
mkdir -p "$WORK/bin"
cp "$PACSGUARD" "$WORK/bin/pacsguard"

log "simulating: $PATTERNS ($FILES files per store)"
# shellcheck disable=SC2086
python3 "$SCRIPT_DIR/ransomware/sim.py" "$WORK/bin/pacsguard" "$WORK/data" "$FILES" $PATTERNS \
    | tee "$WORK/results.jsonl"

python3 - "$WORK/results.jsonl" "$FILES" >"$WORK/results.md" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"| pattern | kind | ransomware-suspected | time to detection | files lost (of {sys.argv[2]}) | ransomware-suspected alerts | non-info findings (alerts included) |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    det = "yes" if r["detected"] else "no"
    secs = f'{r["seconds"]:.2f} s' if r["seconds"] is not None else "-"
    lost = str(r["lost"]) if r["kind"] == "attack" else "-"
    print(f'| {r["pattern"]} | {r["kind"]} | {det} | {secs} | {lost} | {r["alerts"]} | {r["non_info"]} |')
PY
cat "$WORK/results.md"
rm -rf "$WORK/data"
