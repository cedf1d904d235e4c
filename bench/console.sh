#!/usr/bin/env bash
# bench/console.sh: the console's sign-in cost and page latency with many findings on the
# trail, as ratios to an anchor measured in the same run (a static file served by the
# same server). See bench/README.md ("The console").
#
# The trail is filled by the real writer: BENCH_RECORDS files that raise an alert are
# screened by `pacsguard scan` (one finding record each). A trail cannot be filled
# faster by writing its file: records carry the home's MAC, and PacsGuard refuses a
# trail with records it did not write (tested: 1,000,000 appended lines were refused).
#
# Environment: PACSGUARD (binary; default target/release/pacsguard), BENCH_RECORDS
# (default 100000), BENCH_RUNS (requests per page, default 200), BENCH_CLIENTS (4),
# BENCH_WORK (bench/work).
#
# With BENCH_GATHER_IDS=N it measures instead what `serve`'s start holds when it gathers
# the records binding the console from a trail naming N sessions (peak RSS under GNU
# `time -v`; the example `gather_bench` of pacsguard-audit, BENCH_PROFILE debug|release,
# default release), then exits.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
if [[ -n ${BENCH_GATHER_IDS:-} ]]; then
    ids=$BENCH_GATHER_IDS
    profile=${BENCH_PROFILE:-release}
    flags=()
    if [[ $profile == release ]]; then flags=(--release); fi
    (cd "$here/.." && cargo build --locked "${flags[@]}" -p pacsguard-audit --example gather_bench)
    bin=$here/../target/$profile/examples/gather_bench
    gwork=${BENCH_WORK:-$here/work}/gather-$ids
    if [[ ! -f $gwork/.filled ]]; then
        log "writing a trail of $ids session openings (the real writer)"
        "$bin" write "$ids" "$gwork"
        touch "$gwork/.filled"
    fi
    log "gathering as serve's start does ($profile build)"
    /usr/bin/time -v "$bin" gather "$ids" "$gwork" 2>"$gwork/time.txt"
    info "peak RSS: $(awk -F': ' '/Maximum resident/ {printf "%.2f GiB", $2 / 1048576}' "$gwork/time.txt")"
    exit 0
fi
PACSGUARD=${PACSGUARD:-$here/../target/release/pacsguard}
RECORDS=${BENCH_RECORDS:-100000}
work=${BENCH_WORK:-$here/work}/console-$RECORDS
[[ -x $PACSGUARD ]] || die "no binary at $PACSGUARD (cargo build --release, or set PACSGUARD)"

if [[ ! -f $work/.filled ]]; then
    log "filling a trail with $RECORDS finding records (real writes: pacsguard scan)"
    rm -rf "$work"
    mkdir -p "$work/tree" "$work/incoming"
    echo "static text" >"$work/tree/readme.txt"
    "$PACSGUARD" --home "$work/home" init >/dev/null
    "$PACSGUARD" --home "$work/home" profile "$work/tree" >/dev/null
    python3 - "$work/incoming" "$RECORDS" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    sub = os.path.join(d, str(i // 10000))
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, f"{i}.sh"), "w") as f:
        f.write(f"#!/bin/sh\necho {i}\n")
PY
    "$PACSGUARD" --home "$work/home" scan "$work/incoming" >/dev/null || [[ $? == 1 ]]
    touch "$work/.filled"
fi
records=$(wc -l <"$work/home/audit.log")
info "trail: $records records"

log "starting pacsguard serve"
# A console without accounts at each run (the bench creates its administrator from the
# setup link); the trail and the profile are kept.
if command -v sqlite3 >/dev/null; then
    sqlite3 "$work/home/pacsguard.db" "DELETE FROM console_accounts; DELETE FROM console_sessions; \
        DELETE FROM console_setup; DELETE FROM console_address_failures;" 2>/dev/null || true
fi
rm -f "$work/home/console/"*.pem 2>/dev/null || true
"$PACSGUARD" --home "$work/home" serve --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
serve=$!
trap 'kill $serve 2>/dev/null; wait $serve 2>/dev/null || true' EXIT
for _ in $(seq 600); do
    grep -q "watching for changes" "$work/serve.err" 2>/dev/null && break
    sleep 0.1
done
base=$(grep -o 'console at https://[^/]*' "$work/serve.err" | head -1 | sed 's/console at //')
link=$(grep -o 'https://[^ ]*/setup?token=[0-9a-f]*' "$work/serve.err" | head -1)
[[ -n $base && -n $link ]] || die "serve did not start: $(cat "$work/serve.err")"
BASE=$base SETUP_LINK=$link CACERT=$work/home/console/cert.pem RUNS=${BENCH_RUNS:-200} \
    CLIENTS=${BENCH_CLIENTS:-4} SECONDS=10 DEEP_SEQ=$((records / 2)) \
    python3 "$here/console.py"
