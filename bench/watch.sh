#!/usr/bin/env bash
# bench/watch.sh — "Real-time guarding" benchmark for PacsGuard.
#
# Measures `pacsguard watch` on this machine beside `inotifywait` (inotify-tools) and
# `fatrace` (fanotify) doing the same work, in the SAME run:
#   1. close-to-report latency of small files written one at a time (median, p99);
#   2. loss on a burst of 100,000 files in new nested directories (also pacsguard's
#      rescan path: max_watches = 10, poll_seconds = 1);
#   3. CPU and memory of an idle watcher on 1,000,000 files (and its first profile);
#   4. the scrub's actual read rate against its configured budget.
# Prints a summary table (value, anchor, target, ratio) and writes it as markdown to
# bench/work/watch/results.md.  Exits 0 once measurements are done, even when a target
# is missed: this is a benchmark, not a test.  Knobs: bench/README.md ("Real-time
# guarding").  The harness is bench/watch/harness.py (Python 3 standard library only).
set -euo pipefail

# Measure pacsguard as it runs for users (see bench/scan.sh).
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)

# ---- knobs (documented in bench/README.md) ---------------------------------
WORK=${BENCH_WORK:-$SCRIPT_DIR/work}/watch   # binaries, results, logs
DATA=${BENCH_DIR:-$WORK/data}                # trees and scratch data (main disk, not tmpfs)
MEASURES=${BENCH_MEASURES:-"latency burst idle scrub"}
LAT_TOOLS=${BENCH_LAT_TOOLS:-"inotifywait fatrace pacsguard"}
LAT_FILES=${BENCH_LAT_FILES:-2000}           # files written one at a time
LAT_PAUSE_MS=${BENCH_LAT_PAUSE_MS:-5}        # pause after each close
BURST_TOOLS=${BENCH_BURST_TOOLS:-"inotifywait fatrace pacsguard pacsguard-poll"}
BURST_TOP=${BENCH_BURST_TOP:-100}            # top directories
BURST_MID=${BENCH_BURST_MID:-10}             # subdirectories in each
BURST_FILES=${BENCH_BURST_FILES:-100}        # files in each subdirectory
BURST_SETTLE=${BENCH_BURST_SETTLE:-10}       # stop waiting after this long without a new file
BURST_CAP=${BENCH_BURST_CAP:-300}            # ... or this long after the burst
IDLE_DIRS=${BENCH_IDLE_DIRS:-1000}           # idle tree: directories
IDLE_FILES=${BENCH_IDLE_FILES:-1000}         # ... files in each
IDLE_SECONDS=${BENCH_IDLE_SECONDS:-60}       # CPU sampling window
SCRUB_FILES=${BENCH_SCRUB_FILES:-500}        # scrub tree: files
SCRUB_FILE_BYTES=${BENCH_SCRUB_FILE_BYTES:-1000000}
SCRUB_RATE=${BENCH_SCRUB_RATE:-20}           # scrub_mb_per_s
SCRUB_MIN_CYCLE=${BENCH_SCRUB_MIN_CYCLE:-1}  # scrub_min_cycle_seconds (1: cycles back to back)
SCRUB_SECONDS=${BENCH_SCRUB_SECONDS:-30}     # /proc/PID/io sampling window
PACSGUARD=${PACSGUARD:-}                     # prebuilt binary => skip cargo build
BENCH_REV=${BENCH_REV:-}                     # build this commit instead of the work tree
BENCH_NO_INSTALL=${BENCH_NO_INSTALL:-0}      # 1 => never call apt-get

BIN_DIR=$WORK/bin     # the binary is copied here: a concurrent build cannot swap it mid-run
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN_DIR=$WORK/runs/$STAMP
TREE_DIR=$DATA/trees
HARNESS=$SCRIPT_DIR/watch/harness.py
PIDFILE=$RUN_DIR/pids  # every process the harness starts; killed by the trap below
SCRATCH=""

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

posint() { [[ ${!1} =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer (got '${!1}')"; }
for v in LAT_FILES BURST_TOP BURST_MID BURST_FILES BURST_SETTLE BURST_CAP IDLE_DIRS IDLE_FILES \
    IDLE_SECONDS SCRUB_FILES SCRUB_FILE_BYTES SCRUB_RATE SCRUB_MIN_CYCLE SCRUB_SECONDS; do
    posint "$v"
done
[[ $LAT_PAUSE_MS =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "BENCH_LAT_PAUSE_MS must be a number"
for m in $MEASURES; do
    [[ $m =~ ^(latency|burst|idle|scrub)$ ]] || die "unknown measure '$m' in BENCH_MEASURES"
done

# ---- cleanup: only the processes this run started, by pid ----------------------
HARNESS_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $HARNESS_PID ]] && kill -0 "$HARNESS_PID" 2>/dev/null; then
        kill -TERM "$HARNESS_PID" 2>/dev/null || true
        wait "$HARNESS_PID" 2>/dev/null || true
    fi
    if [[ -f $PIDFILE ]]; then
        local pid
        while read -r pid; do
            # Only if that pid is still one of ours (not a reused number).
            [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || continue
            tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qE 'pacsguard|inotifywait|fatrace' \
                && kill -KILL "$pid" 2>/dev/null || true
        done <"$PIDFILE"
    fi
    [[ -n $SCRATCH && -d $SCRATCH ]] && rm -rf "$SCRATCH"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs the harness in the background so that the trap can stop it (and what it started).
harness() {
    WATCH_BENCH_PIDFILE=$PIDFILE python3 "$HARNESS" "$@" &
    HARNESS_PID=$!
    local rc=0
    wait "$HARNESS_PID" || rc=$?
    HARNESS_PID=""
    return "$rc"
}

# ---- 1. tools ----------------------------------------------------------------
ensure_tools() {
    local -a missing=()
    command -v inotifywait >/dev/null || missing+=(inotify-tools)
    command -v fatrace     >/dev/null || [[ -x /usr/sbin/fatrace ]] || missing+=(fatrace)
    command -v python3     >/dev/null || missing+=(python3)
    command -v stdbuf      >/dev/null || missing+=(coreutils)
    install_packages "${missing[@]}"
    export PATH=$PATH:/usr/sbin
    # fatrace (fanotify) needs CAP_SYS_ADMIN.
    ((EUID == 0)) || die "fatrace needs root; run as root"
}

# ---- 2. binary -------------------------------------------------------------------
PG_REV=""
build() {
    mkdir -p "$BIN_DIR"
    if [[ -n $PACSGUARD ]]; then
        PG_REV="prebuilt; repo at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
        info "using PACSGUARD=$PACSGUARD (no build)"
        [[ -x $PACSGUARD ]] || die "no executable at $PACSGUARD"
        return 0
    fi
    local src=$REPO target=${CARGO_TARGET_DIR:-$REPO/target} dirty=""
    if [[ -n $BENCH_REV ]]; then
        # Build that commit, exported with `git archive`: other engineers' uncommitted
        # edits in the shared work tree then change nothing in what is measured.
        local rev; rev=$(git -C "$REPO" rev-parse --verify "$BENCH_REV^{commit}") \
            || die "BENCH_REV=$BENCH_REV is not a commit"
        PG_REV=$(git -C "$REPO" rev-parse --short "$rev")
        src=$WORK/src
        target=$(realpath -m "${BENCH_TARGET_DIR:-$WORK/target}")
        if [[ ! -f $src/.rev || $(cat "$src/.rev") != "$rev" ]]; then
            log "exporting $PG_REV into $src"
            rm -rf "$src" && mkdir -p "$src"
            git -C "$REPO" archive "$rev" | tar -x -C "$src"
            echo "$rev" >"$src/.rev"
        fi
    else
        git -C "$REPO" diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null || dirty="+dirty"
        PG_REV="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$dirty"
    fi
    log "cargo build --release -p pacsguard in $src (target $target)"
    (cd "$src" && CARGO_TARGET_DIR=$target cargo build --release -p pacsguard >&2) \
        || die "cargo build failed (set BENCH_REV=HEAD to build the last commit instead of the work tree)"
    cp -f "$target/release/pacsguard" "$BIN_DIR/pacsguard"
    PACSGUARD=$BIN_DIR/pacsguard
}

# `watch` must exist and `init` must make a home, or nothing here means anything.
sanity_check() {
    local d=$SCRATCH/sanity
    mkdir -p "$d"
    "$PACSGUARD" --home "$d/home" init >"$d/log" 2>&1 || { sed 's/^/    | /' "$d/log" >&2; die "pacsguard init failed"; }
    "$PACSGUARD" watch --help >/dev/null 2>&1 || die "this pacsguard has no 'watch' command"
    info "pacsguard sanity check passed ($PACSGUARD, $PG_REV)"
}

# ---- 3. space ---------------------------------------------------------------------
# Scratch data goes to the main disk, not to a small tmpfs; the idle tree is shrunk
# (and the report says so) if the disk cannot hold it.
check_space() {
    mkdir -p "$DATA" "$TREE_DIR"
    local fstype avail_kib ifree
    fstype=$(findmnt -n -o FSTYPE -T "$DATA" 2>/dev/null || echo unknown)
    avail_kib=$(df -Pk "$DATA" | awk 'NR == 2 { print $4 }')
    ifree=$(df -Pi "$DATA" | awk 'NR == 2 { print $4 }')
    info "data under $DATA ($fstype, $((avail_kib / 1048576)) GiB and $ifree inodes free)"
    [[ $fstype == tmpfs ]] && warn "$DATA is on tmpfs: set BENCH_DIR to a directory on a disk"
    # What the trees need, in KiB: 4 KiB per small file (one block), the scrub tree, one
    # burst tree at a time, plus a 2 GiB margin. A tree that already exists is counted as free.
    local idle=$TREE_DIR/idle-${IDLE_DIRS}x$IDLE_FILES need_idle need_rest files=$((IDLE_DIRS * IDLE_FILES))
    need_idle=$((files * 4 + IDLE_DIRS * 4))
    need_rest=$((SCRUB_FILES * (SCRUB_FILE_BYTES / 1024 + 4) + BURST_TOP * BURST_MID * BURST_FILES * 4 + 2 * 1048576))
    [[ -f $idle.marker ]] && need_idle=0
    if [[ " $MEASURES " == *" idle "* ]] && ((need_idle + need_rest > avail_kib || files + 200000 > ifree)); then
        local fit=$(((avail_kib - need_rest) / 4 / IDLE_FILES))
        local ifit=$(((ifree - 200000) / IDLE_FILES))
        ((ifit < fit)) && fit=$ifit
        ((fit < 1)) && die "not enough space for the idle tree under $DATA"
        warn "the idle tree of $files files does not fit: using $fit x $IDLE_FILES files instead"
        IDLE_DIRS=$fit
    fi
}

# ---- 4. report ---------------------------------------------------------------------
env_summary() {
    ENV_DATE=$START_DATE \
    ENV_CPU="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1) ($(nproc) cores)" \
    ENV_MEM="$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)" \
    ENV_KERNEL="$(uname -r)" \
    ENV_FS="$(findmnt -n -o FSTYPE -T "$DATA" 2>/dev/null || echo unknown)" \
    ENV_PACSGUARD="${PACSGUARD#"$REPO"/} @ $PG_REV" \
    ENV_INOTIFYWAIT="$(inotifywait --help 2>&1 | head -n1)" \
    ENV_FATRACE="fatrace $(dpkg-query -W -f='${Version}' fatrace 2>/dev/null || echo '?')" \
    ENV_QUEUE="$(cat /proc/sys/fs/inotify/max_queued_events)" \
    ENV_LOAD="$LOAD_AT_START" \
    ENV_LATENCY="$LAT_FILES files, ${LAT_PAUSE_MS} ms apart" \
    ENV_BURST="$BURST_TOP x $BURST_MID x $BURST_FILES files" \
    ENV_IDLE="$IDLE_DIRS x $IDLE_FILES files, ${IDLE_SECONDS} s window" \
    ENV_SCRUB="$SCRUB_FILES x $SCRUB_FILE_BYTES bytes, ${SCRUB_RATE} MB/s, scrub_min_cycle_seconds = $SCRUB_MIN_CYCLE, ${SCRUB_SECONDS} s window" \
    python3 -c 'import json, os, sys
json.dump({k[4:].lower(): v for k, v in os.environ.items() if k.startswith("ENV_")},
          open(sys.argv[1], "w"), indent=1)' "$RUN_DIR/env.json"
}

# ---- main -----------------------------------------------------------------------------
START_DATE=$(date -u +%Y-%m-%dT%H:%MZ)
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)

main() {
    ensure_tools
    mkdir -p "$WORK" "$RUN_DIR"
    : >"$PIDFILE"
    check_space
    SCRATCH=$(mktemp -d "$DATA/run.XXXXXX")
    build
    sanity_check
    local pg=(--pacsguard "$PACSGUARD")
    local m tool
    for m in $MEASURES; do
        case $m in
        latency)
            log "1. close-to-report latency: $LAT_FILES files, one at a time, ${LAT_PAUSE_MS} ms apart"
            for tool in $LAT_TOOLS; do
                harness latency "$tool" "$SCRATCH/latency" "$RUN_DIR/latency-$tool.json" \
                    --n "$LAT_FILES" --pause-ms "$LAT_PAUSE_MS" --timeout 120 \
                    "${pg[@]}" --home "$SCRATCH/home-latency" \
                    || warn "latency with $tool failed"
            done
            ;;
        burst)
            log "2. loss on a burst: $BURST_TOP x $BURST_MID new directories x $BURST_FILES files"
            for tool in $BURST_TOOLS; do
                harness burst "$tool" "$SCRATCH/burst" "$RUN_DIR/burst-$tool.json" \
                    --top "$BURST_TOP" --mid "$BURST_MID" --files "$BURST_FILES" \
                    --settle "$BURST_SETTLE" --cap "$BURST_CAP" --timeout 120 \
                    --max-watches 10 --poll-seconds 1 \
                    "${pg[@]}" --home "$SCRATCH/home-burst" \
                    || warn "burst with $tool failed"
            done
            ;;
        idle)
            local idle=$TREE_DIR/idle-${IDLE_DIRS}x$IDLE_FILES
            log "3. idle: $IDLE_DIRS x $IDLE_FILES files in $idle"
            harness mktree idle "$idle" "$IDLE_DIRS" "$IDLE_FILES" || die "could not make the idle tree"
            # The tree's first profile is part of what is measured; start from a warm
            # cache, as on a file server that has just written it.
            harness idle "$idle" "$RUN_DIR/idle.json" --seconds "$IDLE_SECONDS" --anchor \
                --timeout 1800 "${pg[@]}" --home "$SCRATCH/home-idle" \
                || warn "idle measurement failed"
            ;;
        scrub)
            local scrub=$TREE_DIR/scrub-${SCRUB_FILES}x$SCRUB_FILE_BYTES
            log "4. scrub: $SCRUB_RATE MB/s on $SCRUB_FILES files of $SCRUB_FILE_BYTES bytes"
            harness mktree scrub "$scrub" "$SCRUB_FILES" "$SCRUB_FILE_BYTES" || die "could not make the scrub tree"
            harness scrub "$scrub" "$RUN_DIR/scrub.json" --rate "$SCRUB_RATE" \
                --min-cycle "$SCRUB_MIN_CYCLE" --seconds "$SCRUB_SECONDS" --timeout 600 \
                "${pg[@]}" --home "$SCRATCH/home-scrub" \
                || warn "scrub measurement failed"
            ;;
        esac
    done
    log "results"
    env_summary
    python3 "$SCRIPT_DIR/watch/report.py" "$RUN_DIR" >"$RUN_DIR/results.md"
    cp "$RUN_DIR/results.md" "$WORK/results.md"
    cat "$RUN_DIR/results.md"
    info "written to $WORK/results.md (raw results in $RUN_DIR)"
}

main "$@"
exit 0
