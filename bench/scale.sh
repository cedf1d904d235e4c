#!/usr/bin/env bash
# bench/scale.sh — archive scale: peak memory of `profile`, `check`, `check --fast`,
# `profile` again (a root profiled before) and `accept` of one file, on trees of 1,000,000
# and 5,000,000 files (issue 15), and of `watch` (BENCH_COMMANDS: watch-first, a fresh home's
# first profile then watching; watch, a restart's catch-up then watching; each reported as
# the peak, VmHWM, and the idle VmRSS once watching). PACSGUARD_BASE=binary measures a
# second binary (main's, say) side by side in the same run, with a home of its own.
#
# The files are EMPTY (one inode each, no data block): 5,000,000 files of even a few bytes
# would take 20 GB of 4 KiB blocks. What grows with the number of files is the per-entry
# bookkeeping, which is what this measures; hashing speed is bench/profile.sh's business.
# The tree is grown in place from one size to the next (sizes ascending), each size gets a
# fresh home, and the tree is deleted at the end unless BENCH_KEEP=1. When the file system
# lacks the inodes or space for a size, the size is shrunk to what fits and the report
# says so. Always exits 0 once measurements are done: a benchmark, not a test.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

# ---- knobs (documented in bench/README.md, "Archive scale") -------------------
SIZES=${BENCH_SIZES:-"1000000 5000000"}     # file counts, ascending
WORK=${BENCH_WORK:-$BENCH_DIR/work/scale}   # tree, homes and logs go here
KEEP=${BENCH_KEEP:-0}                       # 1 => keep the tree afterwards
PACSGUARD=${PACSGUARD:-}                    # prebuilt binary => skip cargo build
PACSGUARD_BASE=${PACSGUARD_BASE:-}          # a second binary measured beside it
# Commands measured, in this order (profile first: the others need its home).
COMMANDS=${BENCH_COMMANDS:-"profile check check-fast reprofile accept"}
# Inodes and bytes left free for everyone else on the machine.
RESERVE_INODES=${BENCH_RESERVE_INODES:-2000000}
RESERVE_KB=${BENCH_RESERVE_KB:-4000000}
FILES_PER_DIR=${BENCH_FILES_PER_DIR:-1000}  # 1000: a series directory of a PACS store
# Runs of check, check --fast, diff and accept per size and binary (the report gives the
# medians of time and peak); profile, profile again and watch run once (a second run of
# them is not the same work). accept's runs alternate the file's mode, so each takes in
# one difference.
REPEAT=${BENCH_REPEAT:-1}
# Lines put under [watch] in the config of PACSGUARD's homes only (not PACSGUARD_BASE's,
# which may not know the setting): the same binary measured with and without one, say
# BENCH_WATCH_CONFIG="view_on_disk = true".
WATCH_CONFIG=${BENCH_WATCH_CONFIG:-}

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPEAT: '$REPEAT' is not a positive integer"
[[ $FILES_PER_DIR =~ ^[1-9][0-9]*$ ]] || die "BENCH_FILES_PER_DIR: '$FILES_PER_DIR' is not a positive integer"
prev=0
for n in $SIZES; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_SIZES: '$n' is not a positive integer"
    ((n > prev)) || die "BENCH_SIZES must be ascending (the tree grows from one to the next)"
    prev=$n
done
[[ -x /usr/bin/time ]] || install_packages time
command -v python3 >/dev/null || install_packages python3

# ---- the binary ----------------------------------------------------------------
REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$REPO" diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null || REV="$REV+dirty"
if [[ -z $PACSGUARD ]]; then
    log "cargo build --release -p pacsguard"
    (cd "$REPO" && nice -n 10 cargo build --release -p pacsguard >&2)
    PACSGUARD=${CARGO_TARGET_DIR:-$REPO/target}/release/pacsguard
else
    REV="prebuilt $PACSGUARD; repo at $REV"
fi
[[ -x $PACSGUARD ]] || die "no executable at $PACSGUARD"
[[ -z $PACSGUARD_BASE || -x $PACSGUARD_BASE ]] || die "no executable at $PACSGUARD_BASE"
[[ " $COMMANDS " == *" profile "* ]] || die "BENCH_COMMANDS must include profile (the others need its home)"
for cmd in $COMMANDS; do
    case $cmd in profile | check | check-fast | reprofile | accept | diff | watch | watch-first) ;; *) die "BENCH_COMMANDS: unknown command '$cmd'" ;; esac
done
# The binaries measured: "after" (PACSGUARD) and, when given, "before" (PACSGUARD_BASE).
BINS=(after)
[[ -n $PACSGUARD_BASE ]] && BINS=(before after)
declare -A BIN=([after]=$PACSGUARD [before]=$PACSGUARD_BASE)

mkdir -p "$WORK"
# One tree per layout: a tree grown with another number of files per directory is not it.
TREE=$WORK/tree-$FILES_PER_DIR
COUNT_FILE=$WORK/tree-$FILES_PER_DIR.count
LOGS=$WORK/logs
mkdir -p "$TREE" "$LOGS"
cleanup() {
    if [[ $KEEP != 1 ]]; then
        log "deleting $TREE and the homes (BENCH_KEEP=1 keeps them)"
        rm -rf "$TREE" "$WORK"/home-* "$COUNT_FILE"
    fi
}
trap cleanup EXIT

# How many files exist in the tree now (the generator's own count, kept beside it).
have=0
[[ -f $COUNT_FILE ]] && have=$(cat "$COUNT_FILE")

# Grows the tree to $1 files: directories of FILES_PER_DIR empty files, created with
# mknod relative to each directory's descriptor (one system call per file).
grow_tree() {
    python3 - "$TREE" "$have" "$1" "$FILES_PER_DIR" <<'EOF'
import os, stat, sys
root, have, want, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
i = have
while i < want:
    d = os.path.join(root, "study%04d" % (i // (per * 100)), "series%07d" % (i // per))
    os.makedirs(d, exist_ok=True)
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        stop = min(want, (i // per + 1) * per)
        for j in range(i, stop):
            os.mknod("%08d.dcm" % j, 0o644 | stat.S_IFREG, dir_fd=fd)
        i = stop
    finally:
        os.close(fd)
EOF
    have=$1
    echo "$have" >"$COUNT_FILE"
}

# The largest count up to $1 the file system can take now, leaving the reserves free.
fitting() {
    local want=$1 inodes kb dirs_kb most
    inodes=$(df --output=iavail "$WORK" | tail -1 | tr -d ' ')
    kb=$(df --output=avail "$WORK" | tail -1 | tr -d ' ')
    # New files cost an inode each; directories about 32 bytes of listing per file.
    most=$((have + inodes - RESERVE_INODES))
    dirs_kb=$(((want - have) * 32 / 1024))
    if ((kb - dirs_kb < RESERVE_KB)); then
        most=$((have + (kb - RESERVE_KB) * 1024 / 32))
    fi
    ((most < want)) && echo $((most > have ? most : have)) || echo "$want"
}

# Runs one command of binary $2 under GNU time; prints "peak_kib seconds exit".
measure() {
    local name=$1 bin=$2; shift 2
    local rc=0
    /usr/bin/time -f '%M %e' -o "$LOGS/$name.time" "$bin" "$@" \
        >"$LOGS/$name.out" 2>"$LOGS/$name.err" || rc=$?
    echo "$(cat "$LOGS/$name.time" | tail -1) $rc"
}

# Puts WATCH_CONFIG under [watch] in the config of home $2 when binary $1 is "after".
watch_config() {
    [[ -n $WATCH_CONFIG && $1 == after ]] || return 0
    printf '\n[watch]\n%s\n' "$WATCH_CONFIG" >>"$2/config.toml"
}

# The median of the numbers given (the lower middle one of an even count).
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# Runs `watch` of binary $2 (home $3, root $4) until it says it is watching (bounded by
# WATCH_TIMEOUT), lets it settle WATCH_SETTLE seconds, reads its peak (VmHWM) and current
# (VmRSS) memory, stops it with SIGTERM; prints "peak_kib seconds exit idle_kib".
WATCH_TIMEOUT=${BENCH_WATCH_TIMEOUT:-3600}
WATCH_SETTLE=${BENCH_WATCH_SETTLE:-5}
measure_watch() {
    local name=$1 bin=$2 home=$3 root=$4 pid start waited=0 hwm=0 rss=0 rc=0
    start=$(date +%s.%N)
    # Gone first: a log of an earlier run, not yet truncated by the child, would match.
    rm -f "$LOGS/$name.err"
    "$bin" --home "$home" watch "$root" --policy static --json \
        >"$LOGS/$name.out" 2>"$LOGS/$name.err" &
    pid=$!
    until grep -q "watching for changes" "$LOGS/$name.err" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null || ((waited >= WATCH_TIMEOUT * 10)); then
            kill "$pid" 2>/dev/null || true
            wait "$pid" || rc=$?
            echo "0 0 ${rc/#0/124} 0"
            return
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    local secs
    secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    sleep "$WATCH_SETTLE"
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
    kill -TERM "$pid"
    wait "$pid" || rc=$?
    echo "$hwm $secs $rc $rss"
}

declare -A RSS SECS RC COUNT IDLE
NOTES=()
sizes_done=()
for want in $SIZES; do
    n=$(fitting "$want")
    if ((n < want)); then
        NOTES+=("size $want shrunk to $n: the file system has too few free inodes or bytes (reserves: $RESERVE_INODES inodes, $RESERVE_KB KiB)")
        warn "${NOTES[-1]}"
    fi
    if ((${#sizes_done[@]} > 0 && n <= sizes_done[-1])); then
        NOTES+=("size $want not measured: no room to grow the tree past ${sizes_done[-1]} files")
        continue
    fi
    log "tree of $n empty files"
    start=$(date +%s)
    grow_tree "$n"
    info "grown in $(($(date +%s) - start)) s"
    # The file `accept` takes in: its mode changed, then put back for the next size.
    accepted=$(find "$TREE" -name '*.dcm' -print -quit)
    for b in "${BINS[@]}"; do
        home=$WORK/home-$b-$n
        rm -rf "$home"
        "${BIN[$b]}" --home "$home" init >"$LOGS/init-$b-$n.out" 2>&1 || die "init failed: $(cat "$LOGS/init-$b-$n.out")"
        watch_config "$b" "$home"
        for cmd in $COMMANDS; do
            case $cmd in
                profile | reprofile) args=(profile "$TREE") ;;
                check) args=(check) ;;
                watch | watch-first) args=() ;;
                check-fast) args=(check --fast) ;;
                # The signed profile against itself: both sides read, nothing differs.
                diff) args=(diff current current) ;;
                accept)
                    chmod 0600 "$accepted"
                    args=(accept "$accepted" --reason "bench/scale.sh")
                    ;;
            esac
            log "$cmd ($b), $n files"
            case $cmd in
                watch) read -r rss secs rc idle < <(measure_watch "$cmd-$b-$n" "${BIN[$b]}" "$home" "$TREE") ;;
                watch-first)
                    # A home of its own: its first run takes the profile.
                    rm -rf "$home-first"
                    "${BIN[$b]}" --home "$home-first" init >/dev/null 2>&1
                    watch_config "$b" "$home-first"
                    read -r rss secs rc idle < <(measure_watch "$cmd-$b-$n" "${BIN[$b]}" "$home-first" "$TREE")
                    ;;
                check | check-fast | diff | accept)
                    idle=
                    runs_rss=() runs_secs=()
                    for ((r = 1; r <= REPEAT; r++)); do
                        # accept: 0600, then back to 0644, ...: a difference each run.
                        [[ $cmd == accept ]] && chmod $((r % 2 ? 600 : 644)) "$accepted"
                        read -r rss secs rc < <(measure "$cmd-$b-$n" "${BIN[$b]}" --home "$home" "${args[@]}")
                        runs_rss+=("$rss") runs_secs+=("$secs")
                        ((rc == 0)) || break
                    done
                    rss=$(median "${runs_rss[@]}") secs=$(median "${runs_secs[@]}")
                    ((REPEAT > 1)) && info "$cmd: ${#runs_secs[@]} runs, seconds ${runs_secs[*]}"
                    ;;
                *)
                    idle=
                    read -r rss secs rc < <(measure "$cmd-$b-$n" "${BIN[$b]}" --home "$home" "${args[@]}")
                    ;;
            esac
            IDLE[$cmd,$b,$n]=$idle
            if [[ $cmd == accept ]] && ((REPEAT % 2)); then
                # An odd number of runs left the file at 0600: put back and taken in, so
                # the tree checks clean for the next commands and size.
                chmod 0644 "$accepted"
                "${BIN[$b]}" --home "$home" accept "$accepted" --reason "bench/scale.sh" >/dev/null 2>&1
            fi
            RSS[$cmd,$b,$n]=$rss SECS[$cmd,$b,$n]=$secs RC[$cmd,$b,$n]=$rc
            info "peak RSS $((rss / 1024)) MiB${idle:+, idle $((idle / 1024)) MiB}, $secs s, exit $rc"
            # An unchanged tree must check clean: otherwise the numbers are of something else.
            # A directory wider than LISTING_BATCH (65,536) names is said, a warning (exit 1).
            want_rc=0
            ((FILES_PER_DIR > 65536 && n > 65536)) && want_rc=1
            ((rc == want_rc)) || NOTES+=("$cmd ($b) at $n files exited $rc (want $want_rc): see $LOGS/$cmd-$b-$n.err")
        done
    done
    COUNT[$n]=$n
    sizes_done+=("$n")
done

# ---- report ----------------------------------------------------------------------
REPORT=$WORK/results.md
{
    echo "Run $(date -u +%Y-%m-%dT%H:%MZ) at $REV, empty files, $FILES_PER_DIR per directory, medians of $REPEAT runs (check, check --fast, diff, accept)."
    [[ -n $PACSGUARD_BASE ]] && echo "before: $PACSGUARD_BASE; after: $PACSGUARD."
    echo
    printf '| command |'
    ((${#BINS[@]} > 1)) && printf ' binary |'
    for n in "${sizes_done[@]}"; do printf ' %s files |' "$n"; done
    ((${#sizes_done[@]} > 1)) && printf ' ratio %s/%s |' "${sizes_done[-1]}" "${sizes_done[0]}"
    echo
    printf '|---|'
    ((${#BINS[@]} > 1)) && printf -- '---|'
    for _ in "${sizes_done[@]}"; do printf -- '---:|'; done
    ((${#sizes_done[@]} > 1)) && printf -- '---:|'
    echo
    for cmd in $COMMANDS; do
        for b in "${BINS[@]}"; do
            case $cmd in
                reprofile) printf '| `profile` again |' ;;
                accept) printf '| `accept` of one file |' ;;
                diff) printf '| `diff current current` |' ;;
                watch) printf '| `watch` restart (catch-up), peak / idle |' ;;
                watch-first) printf '| `watch` first start (profile), peak / idle |' ;;
                *) printf '| `%s` |' "${cmd/-/ --}" ;;
            esac
            ((${#BINS[@]} > 1)) && printf ' %s |' "$b"
            for n in "${sizes_done[@]}"; do
                rss=${RSS[$cmd,$b,$n]}
                idle=${IDLE[$cmd,$b,$n]}
                if [[ -n $idle ]]; then
                    printf ' %d MiB (%d B/file) / %d MiB (%d B/file), watching after %s s |' $((rss / 1024)) $((rss * 1024 / n)) \
                        $((idle / 1024)) $((idle * 1024 / n)) "${SECS[$cmd,$b,$n]}"
                else
                    printf ' %d MiB (%d B/file), %s s |' $((rss / 1024)) $((rss * 1024 / n)) "${SECS[$cmd,$b,$n]}"
                fi
            done
            if ((${#sizes_done[@]} > 1)); then
                awk -v a="${RSS[$cmd,$b,${sizes_done[-1]}]}" -v b="${RSS[$cmd,$b,${sizes_done[0]}]}" \
                    'BEGIN { printf " %.2f× |", a / b }'
            fi
            echo
        done
    done
    echo
    echo "Target (issue 15): peak RSS ≤ 256 MiB at 5,000,000 files, and ≤ +10% from 1,000,000 to 5,000,000."
    for note in "${NOTES[@]}"; do echo "- $note"; done
} >"$REPORT"
log "report ($REPORT)"
cat "$REPORT"
