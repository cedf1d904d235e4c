#!/usr/bin/env bash
# bench/scan.sh — "Screening" benchmark for PacsGuard.
#
# Times `pacsguard scan` (and `scan --preamble-only`, when the binary has it) on
# a generated DICOM corpus and, in the SAME run on the SAME warm page cache, the
# anchors it is judged against: the `yara` CLI and `clamscan`, each given
# signatures equivalent to pacsguard's checks (bench/scan/equivalent.yar plus
# pacsguard's own rules file; bench/scan/make_ndb.py).  Before timing, one
# untimed run of every tool checks what it found: each must report the planted
# polyglots, and pacsguard must raise no alert on a clean file.  Prints medians,
# ratios and PASS/FAIL per target, and writes the report as markdown to
# bench/work/scan/results.md.  Always exits 0 once measurements are done: this
# is a benchmark, not a test.  See bench/README.md ("Screening") for the knobs.
set -euo pipefail

# Measure pacsguard as it runs for users. With RUST_BACKTRACE=1 in the environment every
# error value that captures a backtrace pays for it, and dicom-rs makes one at the end of
# every data set: 40% slower on the small tree (bench/README.md, "Screening").
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

# ---- knobs (documented in bench/README.md) ---------------------------------
SCALE=${BENCH_SCALE:-1}                     # multiplies file counts
RUNS=${BENCH_RUNS:-3}                       # timed runs per measurement
TREES=${BENCH_TREES:-"images small"}        # which trees to measure
WORK=${BENCH_WORK:-$BENCH_DIR/work}/scan    # everything generated goes here
SEED=${BENCH_SEED:-20240601}                # generator seed
CT_FILES=${BENCH_CT_FILES:-5000}            # CT slices (512x512x16) at scale 1
SMALL_FILES=${BENCH_SMALL_FILES:-20000}     # 2-10 KiB instances at scale 1
YARA_THREADS=${BENCH_YARA_THREADS:-2}       # yara -p
CLAM_XARGS=${BENCH_CLAM_XARGS:-1}           # 1 => also time clamscan x2 via xargs -P2
PACSGUARD=${PACSGUARD:-}                    # prebuilt binary => skip cargo build
BENCH_REV=${BENCH_REV:-}                    # build this commit instead of the work tree
BENCH_NO_INSTALL=${BENCH_NO_INSTALL:-0}     # 1 => never call apt-get

TAG="x$SCALE"
TREE_DIR=$WORK/trees
HOME_DIR=$WORK/homes/$TAG
RUN_DIR=$WORK/runs/$TAG
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BIN_DIR=$WORK/bin   # binaries are copied here, so a concurrent cargo build cannot swap them mid-run

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
if ! [[ $SCALE =~ ^[0-9]*\.?[0-9]+$ ]] || ! awk -v s="$SCALE" 'BEGIN { exit !(s > 0) }'; then
    die "BENCH_SCALE must be a positive number (got '$SCALE')"
fi
[[ $YARA_THREADS =~ ^[1-9][0-9]*$ ]] || die "BENCH_YARA_THREADS must be a positive integer"
for t in $TREES; do
    [[ $t == images || $t == small ]] || die "unknown tree '$t' in BENCH_TREES (want images, small)"
done
# At least one file of each kind, whatever the scale.
count() { awk -v n="$1" -v s="$SCALE" 'BEGIN { c = int(n * s + 0.5); print (c < 1 ? 1 : c) }'; }

# ---- 1. tools ----------------------------------------------------------------
ensure_tools() {
    local -a missing=()
    command -v yara      >/dev/null || missing+=(yara)
    command -v clamscan  >/dev/null || missing+=(clamav)
    command -v hyperfine >/dev/null || missing+=(hyperfine)
    command -v python3   >/dev/null || missing+=(python3)
    [[ -x /usr/bin/time ]]          || missing+=(time)   # GNU time, for max RSS
    install_packages "${missing[@]}"
    # pydicom's sample files (part of the corpus) and pip's PE launcher (planted in the
    # polyglots) come from scripts/setup-test-deps.sh.
    if [[ ! -d $REPO/.testdata/wheels/pydicom/pydicom/data/test_files \
        || ! -f $REPO/.testdata/wheels/pip/pip/_vendor/distlib/t64.exe ]]; then
        [[ $BENCH_NO_INSTALL == 1 ]] && die "no .testdata: run scripts/setup-test-deps.sh"
        log "scripts/setup-test-deps.sh (pydicom samples, a real PE)"
        bash "$REPO/scripts/setup-test-deps.sh" >&2
    fi
}

# ---- 2. binaries ---------------------------------------------------------------
SRC=$REPO       # the source tree built (BENCH_REV: an export of that commit)
PG_OK=0        # 1 once the binary passes the sanity check below
PG_REV=""      # commit the binary was built from, taken at build time
PREAMBLE_ONLY=0  # 1 when `scan --preamble-only` exists in this binary
GEN=$BIN_DIR/gen_corpus

# Builds the corpus generator and pacsguard, from the work tree (like the other
# benchmarks) or, with BENCH_REV, from that commit exported with `git archive` into
# $WORK/src (its own target directory: other engineers' edits in the shared work tree
# then change nothing in what is measured).
build() {
    local src=$REPO target=$TARGET_DIR dirty=""
    mkdir -p "$BIN_DIR"
    if [[ -n $BENCH_REV ]]; then
        local rev; rev=$(git -C "$REPO" rev-parse --verify "$BENCH_REV^{commit}") \
            || die "BENCH_REV=$BENCH_REV is not a commit"
        PG_REV=$(git -C "$REPO" rev-parse --short "$rev")
        src=$WORK/src; target=$WORK/target; SRC=$src
        if [[ ! -f $src/.rev || $(cat "$src/.rev") != "$rev" ]]; then
            log "exporting $PG_REV into $src"
            rm -rf "$src" && mkdir -p "$src"
            git -C "$REPO" archive "$rev" | tar -x -C "$src"
            echo "$rev" >"$src/.rev"
        fi
        # .testdata is not in git; the testkit finds it relative to its own crate.
        ln -sfn "$REPO/.testdata" "$src/.testdata"
    else
        git -C "$REPO" diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null || dirty="+dirty"
        PG_REV="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$dirty"
    fi
    log "cargo build --release --example gen_corpus (pacsguard-testkit) in $src"
    (cd "$src" && CARGO_TARGET_DIR=$target cargo build --release -q -p pacsguard-testkit --example gen_corpus >&2) \
        || die "could not build the corpus generator"
    cp -f "$target/release/examples/gen_corpus" "$GEN"
    if [[ -n $PACSGUARD ]]; then
        PG_REV="prebuilt; repo at $PG_REV"
        info "using PACSGUARD=$PACSGUARD (no build)"
    else
        log "cargo build --release -p pacsguard in $src"
        if ! (cd "$src" && CARGO_TARGET_DIR=$target cargo build --release -p pacsguard >&2); then
            warn "build failed; pacsguard rows will be empty"
            return 0
        fi
        cp -f "$target/release/pacsguard" "$BIN_DIR/pacsguard"
        PACSGUARD=$BIN_DIR/pacsguard
    fi
    [[ -x $PACSGUARD ]] || { warn "no executable at $PACSGUARD"; PACSGUARD=""; return 0; }
    if "$PACSGUARD" scan --help 2>/dev/null | grep -q -- '--preamble-only'; then
        PREAMBLE_ONLY=1
    else
        warn "this pacsguard has no 'scan --preamble-only': its rows are left TODO"
    fi
}

# The benchmark treats exit 0/1 of `scan` as "screened, clean/findings", so first
# prove on two files that the binary keeps that contract: a clean instance exits 0
# and a CVE-2019-11687 polyglot exits 1.  (A stub that exits 0 for everything would
# otherwise produce fast, meaningless numbers.)
sanity_check_pacsguard() {
    [[ -n $PACSGUARD ]] || return 0
    local d=$WORK/sanity h rc tree clean poly
    tree=$(tree_path "$(set -- $TREES; echo "$1")")
    clean=$(find "$tree" -path '*/polyglot' -prune -o -name '*.dcm' -type f -print -quit)
    poly=$(find "$tree/polyglot" -name '*pe-cve*' -type f -print -quit)
    rm -rf "$d" && mkdir -p "$d"
    h=$d/home
    if ! "$PACSGUARD" --home "$h" init >"$d/log" 2>&1; then
        warn "pacsguard init failed; skipping pacsguard rows"
        sed 's/^/    | /' "$d/log" >&2; return 0
    fi
    rc=0; "$PACSGUARD" --home "$h" scan "$clean" >"$d/log" 2>&1 || rc=$?
    if ((rc != 0)); then
        warn "pacsguard scan of a clean instance exited $rc (want 0); skipping pacsguard rows"
        sed 's/^/    | /' "$d/log" >&2; return 0
    fi
    rc=0; "$PACSGUARD" --home "$h" scan "$poly" >"$d/log" 2>&1 || rc=$?
    if ((rc != 1)); then
        warn "pacsguard scan of a polyglot exited $rc (want 1); skipping pacsguard rows"
        sed 's/^/    | /' "$d/log" >&2; return 0
    fi
    PG_OK=1
    info "pacsguard sanity check passed ($PACSGUARD)"
}

# ---- 3. corpus -----------------------------------------------------------------
# images: CT slices of 512x512x16 bit + pydicom's sample files + polyglots.
# small:  2-10 KiB instances + polyglots.
# Reused across runs; the marker next to each tree records the recipe, and a tree
# whose marker is missing or differs is wiped and generated again.
tree_path() { printf '%s' "$TREE_DIR/$1-$TAG"; }

ensure_tree() {
    local kind=$1
    local dir; dir=$(tree_path "$kind")
    local marker=$dir.marker
    local gen_kind n
    case $kind in
        images) gen_kind=ct; n=$(count "$CT_FILES") ;;
        small) gen_kind=small; n=$(count "$SMALL_FILES") ;;
    esac
    local want
    want="gen=$(cat "$SRC/crates/pacsguard-testkit/examples/gen_corpus.rs" \
        "$SRC/crates/pacsguard-testkit/src/lib.rs" | sha256sum | cut -c1-16) kind=$gen_kind n=$n seed=$SEED"
    if [[ -f $marker && $(head -n1 "$marker") == "$want" ]]; then
        info "reusing $dir ($(tail -n1 "$marker"))"
        return 0
    fi
    log "generating the $kind tree ($n $gen_kind instances + polyglots) in $dir"
    rm -rf "$dir" "$marker" "$dir.manifest"
    mkdir -p "$dir"
    "$GEN" "$gen_kind" "$dir" "$n" "$SEED" >"$dir.manifest" || die "gen_corpus failed"
    local stats; stats=$(tail -n1 "$dir.manifest")
    if [[ $kind == images ]]; then
        # Real files written by others, with their quirks (no preamble, big endian,
        # deflate, truncated, JPEG 2000...): pacsguard must stay quiet on them too.
        cp -r "$REPO/.testdata/wheels/pydicom/pydicom/data/test_files" "$dir/pydicom"
        stats=$(python3 -c 'import json, os, sys
s = json.loads(sys.argv[1]); d = sys.argv[2]
for root, _, files in os.walk(os.path.join(d, "pydicom")):
    for f in files:
        s["files"] += 1; s["bytes"] += os.path.getsize(os.path.join(root, f))
print(json.dumps(s, separators=(",", ":")))' "$stats" "$dir")
    fi
    printf '%s\n%s\n' "$want" "$stats" >"$marker"
    info "$stats"
}

# ---- 4. measuring ----------------------------------------------------------------
q() { printf '%q' "$1"; }

# measure TREE LABEL RSS CMD
#   Times shell string CMD $RUNS times with hyperfine.  CMD must exit 0 when the
#   tool ran (the callers map "found something" to 0 and errors to non-zero).
#   With RSS=1, CMD's first word is run under GNU time and each run's peak RSS
#   (KiB) is appended to LABEL.rss.  A failure is recorded, its stderr captured
#   by one more run, and the benchmark carries on.
measure() {
    local tree=$1 label=$2 rss=$3 cmd=$4
    local out=$RUN_DIR/$tree/$label
    mkdir -p "$RUN_DIR/$tree"
    rm -f "$out".json "$out".rss "$out".failed
    ((rss)) && cmd="/usr/bin/time -a -o $(q "$out.rss") -f %M $cmd"
    if hyperfine --runs "$RUNS" --style basic --time-unit second \
        --command-name "$label" --export-json "$out.json" "$cmd" >"$out.log" 2>&1; then
        python3 "$BENCH_DIR/scan/report.py" line "$out" "$tree" "$label" >&2
    else
        rm -f "$out.json"
        touch "$out.failed"
        warn "$tree $label FAILED; hyperfine said:"
        tail -n 3 "$out.log" | sed 's/^/    | /' >&2
        sh -c "$cmd" >/dev/null 2>"$out.err" || true
        tail -n 5 "$out.err" | sed 's/^/    | /' >&2
    fi
}

warm_cache() {
    log "warming page cache: $1"
    find "$1" -type f -print0 | xargs -0 cat >/dev/null
}

NDB=$WORK/equivalent.ndb
YARA_RULES=("$BENCH_DIR/scan/equivalent.yar" "$REPO/crates/pacsguard-screen/rules/pacsguard.yar")

# Exit codes: pacsguard and clamscan exit 1 for "found something", which is a
# successful run here; 2 (or anything else) is an error.  yara exits 0 either way.
ok01='; rc=$?; [ $rc -le 1 ]'

bench_tree() {
    local kind=$1 tree
    tree=$(tree_path "$kind")
    local T; T=$(q "$tree")
    local dir=$RUN_DIR/$kind
    rm -rf "$dir"; mkdir -p "$dir"
    warm_cache "$tree"

    local PG="" H=""
    if ((PG_OK)); then
        PG=$(q "$PACSGUARD")
        local home=$HOME_DIR/$kind
        rm -rf "$home"
        "$PACSGUARD" --home "$home" init >/dev/null 2>&1
        H=$(q "$home")
    fi
    local yara_cmd="yara -r -w -p $YARA_THREADS $(q "${YARA_RULES[0]}") $(q "${YARA_RULES[1]}") $T"
    local clam_cmd="clamscan -r -i --no-summary -d $(q "$NDB") $T"
    local nfiles; nfiles=$(find "$tree" -type f | wc -l)
    # Two clamscan processes, each with half of the files (clamscan is single-threaded).
    local half=$(((nfiles + 1) / 2))
    local clam2_cmd="find $T -type f -print0 | xargs -0 -P2 -n $half sh -c 'clamscan -i --no-summary -d $(q "$NDB") \"\$@\"; [ \$? -le 1 ]' sh"

    # What each tool finds: one untimed run, output kept (this also warms each
    # tool's own code and the dentry cache).
    log "$kind: what each tool reports (one untimed run each)"
    if ((PG_OK)); then
        "$PACSGUARD" --home "$home" scan "$tree" --json >"$dir/found-pacsguard.json" 2>"$dir/found-pacsguard.err" || true
        if ((PREAMBLE_ONLY)); then
            "$PACSGUARD" --home "$home" scan --preamble-only "$tree" --json \
                >"$dir/found-pacsguard-preamble.json" 2>"$dir/found-pacsguard-preamble.err" || true
        fi
    fi
    sh -c "$yara_cmd" >"$dir/found-yara.txt" 2>"$dir/found-yara.err" || true
    sh -c "$clam_cmd" >"$dir/found-clamscan.txt" 2>"$dir/found-clamscan.err" || true
    python3 "$BENCH_DIR/scan/report.py" found "$dir" "$tree" "$tree.manifest" >&2

    log "measuring $kind tree ($RUNS runs each)"
    if ((PG_OK)); then
        measure "$kind" pacsguard-scan 1 "$PG --home $H scan $T >/dev/null$ok01"
        if ((PREAMBLE_ONLY)); then
            measure "$kind" pacsguard-preamble 1 "$PG --home $H scan --preamble-only $T >/dev/null$ok01"
        fi
    fi
    measure "$kind" yara 0 "$yara_cmd >/dev/null"
    measure "$kind" clamscan 0 "$clam_cmd >/dev/null$ok01"
    if [[ $CLAM_XARGS == 1 ]]; then
        measure "$kind" clamscan-x2 0 "$clam2_cmd >/dev/null"
    fi
}

# ---- 5. report -------------------------------------------------------------------
START_DATE=$(date -u +%Y-%m-%dT%H:%MZ)

env_summary() {
    echo "date=$START_DATE"
    echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1) ($(nproc) cores)"
    echo "mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel=$(uname -r)"
    if ((PG_OK)); then
        echo "pacsguard=${PACSGUARD#"$REPO"/} @ $PG_REV"
    else
        echo "pacsguard=(not measured)"
    fi
    echo "preamble_only=$PREAMBLE_ONLY"
    echo "yara=$(yara --version) (-p $YARA_THREADS)"
    echo "clamscan=$(clamscan --version | cut -d/ -f1)"
    echo "hyperfine=$(hyperfine --version)"
    echo "scale=$SCALE"
    echo "runs=$RUNS"
}

main() {
    ensure_tools
    mkdir -p "$WORK" "$RUN_DIR" "$TREE_DIR"
    build
    python3 "$BENCH_DIR/scan/make_ndb.py" >"$NDB"
    local kind
    for kind in $TREES; do
        ensure_tree "$kind"
    done
    sanity_check_pacsguard
    for kind in $TREES; do
        bench_tree "$kind"
    done
    log "results"
    env_summary >"$RUN_DIR/env.txt"
    python3 "$BENCH_DIR/scan/report.py" report "$RUN_DIR" "$TREE_DIR" "$TAG" "$TREES" \
        >"$WORK/results-$TAG.md"
    cp "$WORK/results-$TAG.md" "$WORK/results.md"
    cat "$WORK/results.md"
    info "written to $WORK/results.md (and results-$TAG.md)"
}

main "$@"
exit 0
