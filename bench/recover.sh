#!/usr/bin/env bash
# bench/recover.sh — `pacsguard recover --readiness` against a backup copy.
#
# On the generated "mixed" tree (about 20,000 files at BENCH_SCALE=1) and a `cp -a`
# copy of it as the backup, times in the SAME run:
#   * readiness, first run   (every backup file of a profiled size is hashed)
#   * readiness, nightly run (the home's digest cache: a stat walk)
#   * rsync -n -a --checksum tree/ backup/   (the anchor: reads both sides whole)
#   * restic check --read-data, when restic is installed (not in Debian's default set
#     here; skipped otherwise, said so)
# and prints medians and the ratios. A benchmark, not a test: exits 0 once measured.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
SCALE=${BENCH_SCALE:-1}
RUNS=${BENCH_RUNS:-3}
WORK=${BENCH_WORK:-$BENCH_DIR/work}
SEED=${BENCH_SEED:-20240601}
PACSGUARD=${PACSGUARD:-}

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
BENCH_NO_INSTALL=${BENCH_NO_INSTALL:-0}     # 1 => never call apt-get
if [[ $BENCH_NO_INSTALL != 1 ]]; then
    missing=()
    command -v rsync  >/dev/null || missing+=(rsync)
    command -v restic >/dev/null || missing+=(restic)
    command -v bc     >/dev/null || missing+=(bc)
    ((${#missing[@]} == 0)) || install_packages "${missing[@]}"
fi
command -v rsync >/dev/null || die "rsync is needed (apt-get install rsync)"

if [[ -z $PACSGUARD ]]; then
    log "building pacsguard (release)"
    (cd "$REPO" && cargo build --release --locked -p pacsguard >&2)
    PACSGUARD=${CARGO_TARGET_DIR:-$REPO/target}/release/pacsguard
fi
[[ -x $PACSGUARD ]] || die "no pacsguard binary at $PACSGUARD"

TAG="x$SCALE"
TREE=$WORK/recover/$TAG/tree
BACKUP=$WORK/recover/$TAG/backup
HOME_DIR=$WORK/recover/$TAG/home
if [[ ! -d $TREE ]]; then
    log "generating the mixed tree (scale $SCALE)"
    mkdir -p "$(dirname "$TREE")"
    python3 "$BENCH_DIR/gentree.py" mixed "$TREE" "$SCALE" "$SEED" >&2
fi
if [[ ! -d $BACKUP ]]; then
    log "backup: cp -a"
    cp -a "$TREE" "$BACKUP"
fi
rm -rf "$HOME_DIR"
export PACSGUARD_HOME=$HOME_DIR
"$PACSGUARD" init >/dev/null
"$PACSGUARD" profile "$TREE" >/dev/null
files=$(find "$TREE" -type f | wc -l)
bytes=$(du -sb "$TREE" | cut -f1)
info "tree: $files files, $bytes bytes"

# Median wall time (seconds) of RUNS runs of "$@"; the page cache is warm for all
# (every tool reads the same files right before).
median() {
    local -a t=()
    for _ in $(seq "$RUNS"); do
        local s e
        s=$(date +%s.%N)
        "$@" >/dev/null 2>&1 || true
        e=$(date +%s.%N)
        t+=("$(echo "$e - $s" | bc)")
    done
    printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

cache=$HOME_DIR/recover-cache.json
first_run() { rm -f "$cache"; "$PACSGUARD" recover --readiness --from "$BACKUP"; }
nightly() { "$PACSGUARD" recover --readiness --from "$BACKUP"; }

log "warming the page cache"
cat "$TREE"/*/* "$BACKUP"/*/* >/dev/null 2>&1 || true
rsync -n -a --checksum "$TREE/" "$BACKUP/" >/dev/null

log "measuring ($RUNS runs each)"
t_first=$(median first_run)
nightly >/dev/null 2>&1 || true
t_nightly=$(median nightly)
t_rsync=$(median rsync -n -a --checksum "$TREE/" "$BACKUP/")
t_restic=""
if command -v restic >/dev/null; then
    repo=$WORK/recover/$TAG/restic
    export RESTIC_PASSWORD=bench
    if [[ ! -d $repo ]]; then
        restic init --repo "$repo" >/dev/null
        restic backup --repo "$repo" "$BACKUP" >/dev/null
    fi
    t_restic=$(median restic check --read-data --repo "$repo")
fi

ratio() { echo "scale=2; $1 / $2" | bc; }
{
    echo "| measurement | median (s) | vs rsync --checksum |"
    echo "|---|---|---|"
    echo "| readiness, first run (hashes the backup) | $t_first | $(ratio "$t_first" "$t_rsync") |"
    echo "| readiness, nightly (digest cache) | $t_nightly | $(ratio "$t_nightly" "$t_rsync") |"
    echo "| rsync -n -a --checksum | $t_rsync | 1.00 |"
    if [[ -n $t_restic ]]; then
        echo "| restic check --read-data | $t_restic | $(ratio "$t_restic" "$t_rsync") |"
    else
        echo "| restic check --read-data | not installed: skipped | |"
    fi
    echo
    echo "$files files, $bytes bytes, $RUNS runs, binary $PACSGUARD"
}
exit 0
