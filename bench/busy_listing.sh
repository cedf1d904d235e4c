#!/usr/bin/env bash
# bench/busy_listing.sh — how often a walk says "changed while it was read" about a
# directory that receives files all day (a storescp store), issue 15.
#
# For each size: one directory of that many small files; a writer adds files to it at
# BENCH_RATE a second (random names, as DICOM instance UIDs land anywhere in the
# directory's order) while the ordered walk (crates/pacsguard-fs/examples/busy_listing.rs)
# walks it BENCH_RUNS times. Prints how many walks said so, and the walk's wall time.
# Everything it creates is deleted at the end.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
SIZES=${BENCH_SIZES:-"1000 10000 100000"}   # files in the busy directory
RATE=${BENCH_RATE:-20}                      # files written a second
RUNS=${BENCH_RUNS:-200}                     # walks per size
WORK=${BENCH_WORK:-$(mktemp -d)}
PROFILE=${BENCH_PROFILE:-dev}               # cargo profile of the example

cleanup() {
    [[ -n ${writer:-} ]] && kill "$writer" 2>/dev/null && wait "$writer" 2>/dev/null
    rm -rf "$WORK/root"
}
trap cleanup EXIT

(cd "$REPO" && cargo build -q --locked --profile "$PROFILE" -p pacsguard-fs --example busy_listing)
dir=$([[ $PROFILE == dev ]] && echo debug || echo "$PROFILE")
EXAMPLE=$REPO/target/$dir/examples/busy_listing

for n in $SIZES; do
    rm -rf "$WORK/root"
    mkdir -p "$WORK/root/store"
    python3 - "$WORK/root/store" "$n" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, "CT.1.2.840.%d.dcm" % (i * 7919 % 1000003)), "wb") as f:
        f.write(b"DICM" * 25)
PY
    python3 - "$WORK/root/store" "$RATE" <<'PY' &
import os, random, sys, time
d, rate = sys.argv[1], float(sys.argv[2])
i = 0
while True:
    i += 1
    name = "CT.1.2.840.%d.%d.dcm" % (random.getrandbits(40), i)
    with open(os.path.join(d, name), "wb") as f:
        f.write(b"DICM" * 25)
    time.sleep(1 / rate)
PY
    writer=$!
    echo "== $n files, $RATE files/s arriving, $RUNS walks ($PROFILE build)"
    "$EXAMPLE" "$WORK/root" "$RUNS"
    kill "$writer"
    wait "$writer" 2>/dev/null || true
    writer=
done
