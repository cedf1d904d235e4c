#!/usr/bin/env bash
# bench/dicom_profile.sh — the cost of DICOM awareness in profiles.
#
# On one generated tree of CT instances (pacsguard-testkit's gen_corpus, dicom-rs),
# times `pacsguard profile` under `append-only` (DICOM-aware: each instance parsed up
# to its Pixel Data and hashed as header + pixels) against `growing` (the same walk and
# read, each file hashed whole, no parsing), alternating the two, on a warm page cache.
# Target (issue 3): DICOM-aware / plain <= 1.3. Prints medians and the ratio; exits 0.
#
# Knobs: BENCH_COUNT (instances, default 2000, ~0.5 MB each), BENCH_RUNS (default 5),
# BENCH_WORK (default bench/work), PACSGUARD (a prebuilt binary: skip cargo build).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
COUNT=${BENCH_COUNT:-2000}
RUNS=${BENCH_RUNS:-5}
WORK=${BENCH_WORK:-$BENCH_DIR/work}/dicom-profile
PACSGUARD=${PACSGUARD:-}

cd "$REPO"
if [[ -z $PACSGUARD ]]; then
  cargo build --release --locked -q -p pacsguard
  PACSGUARD=$REPO/target/release/pacsguard
fi
cargo build --release --locked -q -p pacsguard-testkit --example gen_corpus
GEN=$REPO/target/release/examples/gen_corpus

TREE=$WORK/tree-$COUNT
if [[ ! -d $TREE ]]; then
  mkdir -p "$WORK"
  "$GEN" ct "$TREE.partial" "$COUNT" 20261129 >/dev/null
  mv "$TREE.partial" "$TREE"
fi
files=$(find "$TREE" -type f | wc -l)
bytes=$(du -sb "$TREE" | cut -f1)
find "$TREE" -type f -exec cat {} + >/dev/null   # warm the page cache

declare -A times
for ((run = 1; run <= RUNS; run++)); do
  for policy in growing append-only; do
    home=$WORK/home-$policy
    rm -rf "$home"
    "$PACSGUARD" --home "$home" init >/dev/null
    start=$(date +%s.%N)
    "$PACSGUARD" --home "$home" profile --policy "$policy" "$TREE" >/dev/null
    end=$(date +%s.%N)
    times[$policy]+="$(echo "$end - $start" | bc) "
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
plain=$(echo "${times[growing]}" | median)
aware=$(echo "${times[append-only]}" | median)
ratio=$(echo "scale=2; $aware / $plain" | bc)
verdict=$([[ $(echo "$ratio <= 1.3" | bc) == 1 ]] && echo PASS || echo FAIL)
printf '%s files, %s bytes, %s runs (commit %s)\n' "$files" "$bytes" "$RUNS" "$(git rev-parse --short HEAD)"
printf 'plain profile (growing)        median %ss   runs: %s\n' "$plain" "${times[growing]}"
printf 'DICOM-aware profile (append-only) median %ss   runs: %s\n' "$aware" "${times[append-only]}"
printf 'DICOM-aware / plain = %s (target <= 1.3): %s\n' "$ratio" "$verdict"
