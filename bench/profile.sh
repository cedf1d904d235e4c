#!/usr/bin/env bash
# bench/profile.sh — "System profiles" benchmark for PacsGuard.
#
# Times `pacsguard profile` / `pacsguard check` on two generated trees and, in
# the SAME run on the SAME warm page cache, the anchors they are judged
# against: AIDE (--init/--check), b3sum, sha256sum and `openssl dgst -sha256`.
# Prints a table of medians, ratios and PASS/FAIL per target, and writes it as
# markdown to bench/work/results.md.  Always exits 0 once measurements are
# done: this is a benchmark, not a test.  See bench/README.md for the knobs.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

# ---- knobs (documented in bench/README.md) ---------------------------------
SCALE=${BENCH_SCALE:-1}                     # multiplies file counts
RUNS=${BENCH_RUNS:-3}                       # timed runs per measurement
TREES=${BENCH_TREES:-"mixed small"}         # which trees to measure
WORK=${BENCH_WORK:-$BENCH_DIR/work}         # everything generated goes here
SEED=${BENCH_SEED:-20240601}                # generator seed
AIDE_RULES=${BENCH_AIDE_RULES:-"sha256 debian"}
# Hashes for the Debian-style AIDE rule.  Debian's real `Full` rule uses
# Checksums=H (11 hashes incl. gost/whirlpool), which is very slow; set
# AIDE_FULL_HASHES=H to measure exactly that.
AIDE_FULL_HASHES=${AIDE_FULL_HASHES:-sha256+sha512}
# Empty = AIDE's own default (1 worker in 0.18, which is what Debian's stock
# config gives you).  Set e.g. AIDE_WORKERS=2 to give AIDE both cores.
AIDE_WORKERS=${AIDE_WORKERS:-}
PACSGUARD=${PACSGUARD:-}                    # prebuilt binary => skip cargo build
BENCH_NO_INSTALL=${BENCH_NO_INSTALL:-0}     # 1 => never call apt-get

TAG="x$SCALE"                               # trees/results are kept per scale
TREE_DIR=$WORK/trees
HOME_DIR=$WORK/homes/$TAG
AIDE_DIR=$WORK/aide/$TAG
RUN_DIR=$WORK/runs/$TAG

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
if ! [[ $SCALE =~ ^[0-9]*\.?[0-9]+$ ]] || ! awk -v s="$SCALE" 'BEGIN { exit !(s > 0) }'; then
    die "BENCH_SCALE must be a positive number (got '$SCALE')"
fi
for t in $TREES; do
    [[ $t == mixed || $t == small ]] || die "unknown tree '$t' in BENCH_TREES (want mixed, small)"
done
for r in $AIDE_RULES; do
    [[ $r == sha256 || $r == debian ]] || die "unknown rule '$r' in BENCH_AIDE_RULES (want sha256, debian)"
done

# ---- 1. tools ----------------------------------------------------------------
# Install only what is missing, non-interactively; apt-get update at most once.
ensure_tools() {
    local -a missing=()
    command -v aide      >/dev/null || missing+=(aide)
    command -v b3sum     >/dev/null || missing+=(b3sum)
    command -v hyperfine >/dev/null || missing+=(hyperfine)
    command -v openssl   >/dev/null || missing+=(openssl)
    command -v sha256sum >/dev/null || missing+=(coreutils)
    command -v python3   >/dev/null || missing+=(python3)
    [[ -x /usr/bin/time ]]          || missing+=(time)   # GNU time, for max RSS
    install_packages "${missing[@]}"
}

# ---- 2. pacsguard --------------------------------------------------------------
PG_OK=0   # set to 1 once the binary passes the sanity check below
PG_REV="" # commit the binary was built from, taken at build time (the repo
          # may move on while the benchmark runs)

build_pacsguard() {
    local dirty=""
    git -C "$REPO" diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null || dirty="+dirty"
    PG_REV="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$dirty"
    if [[ -n $PACSGUARD ]]; then
        PG_REV="prebuilt; repo at $PG_REV"
        info "using PACSGUARD=$PACSGUARD (no build)"
    else
        log "cargo build --release -p pacsguard"
        if ! (cd "$REPO" && cargo build --release -p pacsguard >&2); then
            # Keep going: the anchors are still worth measuring, and the
            # report marks every pacsguard row as not run.
            warn "build failed; pacsguard rows will be empty"
            return 0
        fi
        PACSGUARD=${CARGO_TARGET_DIR:-$REPO/target}/release/pacsguard
    fi
    [[ -x $PACSGUARD ]] || { warn "no executable at $PACSGUARD"; return 0; }
    sanity_check_pacsguard
}

# Exit status 0 from `check` is what the benchmark relies on to know the tree
# was really verified, so first prove on a scratch tree that the binary
# implements the contract: init creates a home, a clean check exits 0 and a
# modified file makes check exit 1.  (A stub that exits 0 for everything would
# otherwise produce impressively fast, meaningless numbers.)
sanity_check_pacsguard() {
    local d=$WORK/sanity h rc
    rm -rf "$d" && mkdir -p "$d/tree"
    h=$d/home
    printf 'one\n' >"$d/tree/a.dcm"
    printf 'two\n' >"$d/tree/b.dcm"
    if ! "$PACSGUARD" --home "$h" init >"$d/log" 2>&1 || [[ ! -d $h ]] \
        || [[ -z $(ls -A "$h") ]]; then
        warn "pacsguard init did not create a home; skipping pacsguard rows"
        sed 's/^/    | /' "$d/log" >&2; return 0
    fi
    if ! "$PACSGUARD" --home "$h" profile "$d/tree" >"$d/log" 2>&1; then
        warn "pacsguard profile failed on a 2-file tree; skipping pacsguard rows"
        sed 's/^/    | /' "$d/log" >&2; return 0
    fi
    rc=0; "$PACSGUARD" --home "$h" check "$d/tree" >"$d/log" 2>&1 || rc=$?
    if ((rc != 0)); then
        warn "pacsguard check on an unchanged tree exited $rc (want 0); skipping pacsguard rows"
        sed 's/^/    | /' "$d/log" >&2; return 0
    fi
    printf 'TWO, changed\n' >"$d/tree/b.dcm"
    rc=0; "$PACSGUARD" --home "$h" check "$d/tree" >"$d/log" 2>&1 || rc=$?
    if ((rc != 1)); then
        warn "pacsguard check on a modified tree exited $rc (want 1); skipping pacsguard rows"
        sed 's/^/    | /' "$d/log" >&2; return 0
    fi
    PG_OK=1
    info "pacsguard sanity check passed ($PACSGUARD)"
}

# ---- 3. trees ----------------------------------------------------------------
# Trees are expensive-ish to write, so they are reused across runs.  The marker
# sits NEXT TO the tree (never inside it: it would be hashed) and records the
# recipe; a tree whose marker is missing or differs is wiped and regenerated
# (this also cleans up after an interrupted generation).
ensure_tree() {
    # (Separate `local`s: in `local a=$1 b=$a` the $a is expanded too early.)
    local kind=$1
    local dir=$TREE_DIR/$kind-$TAG
    local marker=$dir.marker
    local want
    want="gentree=$(sha256sum <"$BENCH_DIR/gentree.py" | cut -c1-16) kind=$kind scale=$SCALE seed=$SEED"
    if [[ -f $marker && $(head -n1 "$marker") == "$want" ]]; then
        info "reusing $dir ($(sed -n 2p "$marker"))"
        return 0
    fi
    log "generating $kind tree (scale $SCALE) in $dir"
    rm -rf "$dir" "$marker"
    mkdir -p "$TREE_DIR"
    local stats
    stats=$(python3 "$BENCH_DIR/gentree.py" "$kind" "$dir" "$SCALE" "$SEED")
    printf '%s\n%s\n' "$want" "$stats" >"$marker"
    info "$stats"
}

tree_path() { printf '%s' "$TREE_DIR/$1-$TAG"; }

# ---- 4. measuring ------------------------------------------------------------
q() { printf '%q' "$1"; }  # shell-quote for command strings given to hyperfine

# measure TREE LABEL RSS PREPARE CMD
#   Times shell string CMD $RUNS times with hyperfine (PREPARE, if non-empty,
#   runs untimed before each run).  With RSS=1 the command is wrapped in GNU
#   time so each run appends its peak RSS (KiB) to LABEL.rss; only for single
#   commands, not pipelines.  A failure (any non-zero exit) is recorded, its
#   stderr captured by one extra run, and the benchmark carries on.
measure() {
    local tree=$1 label=$2 rss=$3 prepare=$4 cmd=$5
    local out=$RUN_DIR/$tree/$label
    mkdir -p "$RUN_DIR/$tree"
    rm -f "$out".json "$out".rss "$out".failed
    if ((rss)); then
        cmd="/usr/bin/time -a -o $(q "$out.rss") -f %M $cmd"
    fi
    local -a hf=(--runs "$RUNS" --style basic --time-unit second
                 --command-name "$label" --export-json "$out.json")
    [[ -n $prepare ]] && hf+=(--prepare "$prepare")
    if hyperfine "${hf[@]}" "$cmd" >"$out.log" 2>&1; then
        python3 - "$out.json" "$out.rss" "$tree" "$label" >&2 <<'EOF'
import json, os, statistics, sys
r = json.load(open(sys.argv[1]))["results"][0]
rss = ""
if os.path.exists(sys.argv[2]):
    kib = [int(x) for x in open(sys.argv[2]).read().split()]
    rss = "  maxRSS %.1f MiB" % (statistics.median(kib) / 1024)
print("    %-6s %-26s median %8.3f s  [%.3f .. %.3f]%s"
      % (sys.argv[3], sys.argv[4], r["median"], r["min"], r["max"], rss))
EOF
    else
        rm -f "$out.json"
        touch "$out.failed"
        warn "$tree $label FAILED; hyperfine said:"
        tail -n 3 "$out.log" | sed 's/^/    | /' >&2
        # hyperfine hides the command's own output; one more run shows it.
        { [[ -z $prepare ]] || sh -c "$prepare"; sh -c "$cmd"; } \
            >/dev/null 2>"$out.err" || true
        tail -n 5 "$out.err" | sed 's/^/    | /' >&2
    fi
}

# Read every file once so all tools below see the same warm page cache (and
# warm dentry/inode caches from the walk).  24 GiB RAM holds both trees.
warm_cache() {
    log "warming page cache: $1"
    find "$1" -type f -print0 | xargs -0 cat >/dev/null
}

bench_tree() {
    local kind=$1 tree
    tree=$(tree_path "$kind")
    local T; T=$(q "$tree")
    warm_cache "$tree"
    log "measuring $kind tree ($RUNS runs each)"

    # Anchors.  `find` is inside the timed pipeline because pacsguard has to
    # walk the tree too.  b3sum is one process per batch of files and hashes
    # each file with multiple threads; sha256sum/openssl are single-threaded.
    measure "$kind" b3sum 0 "" "find $T -type f -print0 | xargs -0 b3sum >/dev/null"
    measure "$kind" sha256sum 0 "" "find $T -type f -print0 | xargs -0 sha256sum >/dev/null"
    measure "$kind" openssl-sha256 0 "" "find $T -type f -print0 | xargs -0 openssl dgst -sha256 >/dev/null"

    if ((PG_OK)); then
        local PG; PG=$(q "$PACSGUARD")
        local hash H
        local -a flag
        for hash in blake3 sha256; do
            # BLAKE3 is the default: measure it as users run it (no flag).
            flag=(); [[ $hash == blake3 ]] || flag=(--hash "$hash")
            # Each timed profile needs a brand-new home; wiping and re-initing
            # it is setup, so it goes in --prepare (untimed).
            H=$(q "$HOME_DIR/$kind-profile-$hash")
            measure "$kind" "profile-$hash" 1 \
                "rm -rf $H && $PG --home $H init >/dev/null 2>&1" \
                "$PG --home $H profile $T${flag[*]:+ ${flag[*]}}"
        done
        for hash in blake3 sha256; do
            flag=(); [[ $hash == blake3 ]] || flag=(--hash "$hash")
            # Build the baseline that check compares against (untimed).
            local home=$HOME_DIR/$kind-check-$hash
            rm -rf "$home"
            if "$PACSGUARD" --home "$home" init >/dev/null 2>&1 \
                && "$PACSGUARD" --home "$home" profile "$tree" "${flag[@]}" >/dev/null 2>&1; then
                H=$(q "$home")
                measure "$kind" "check-$hash" 1 "" "$PG --home $H check $T"
                measure "$kind" "check-fast-$hash" 1 "" "$PG --home $H check $T --fast"
            else
                warn "could not build the $hash baseline for check; skipping check-$hash"
                mkdir -p "$RUN_DIR/$kind"
                touch "$RUN_DIR/$kind/check-$hash.failed" "$RUN_DIR/$kind/check-fast-$hash.failed"
            fi
        done
    fi

    local rule
    for rule in $AIDE_RULES; do
        local dir=$AIDE_DIR/$kind-$rule
        write_aide_conf "$dir" "$rule" "$tree"
        local C; C=$(q "$dir/aide.conf")
        local NEW; NEW=$(q "$dir/aide.db.new")
        # --init writes database_out; remove it first so every run does the
        # same work (setup, untimed).
        measure "$kind" "aide-$rule-init" 1 "rm -f $NEW" "aide --config $C --init >/dev/null"
        # --check reads database_in: promote the last init's output.  Exit 0
        # means "no differences" for an unchanged tree.
        if [[ -f $dir/aide.db.new ]]; then
            mv -f "$dir/aide.db.new" "$dir/aide.db"
            measure "$kind" "aide-$rule-check" 1 "" "aide --config $C --check >/dev/null"
        else
            touch "$RUN_DIR/$kind/aide-$rule-check.failed"
        fi
    done
}

# write_aide_conf DIR RULE TREE
write_aide_conf() {
    local dir=$1 rule=$2 tree=$3 attrs
    case $rule in
        sha256) attrs="sha256" ;;
        # Debian's `Full` (/etc/aide/aide.conf: InodeData+StaticFile) spelled
        # out, with Checksums narrowed to $AIDE_FULL_HASHES.
        debian) attrs="p+u+g+ftype+n+i+s+b+l+X+m+c+$AIDE_FULL_HASHES" ;;
        *) die "unknown AIDE rule '$rule' (want sha256 or debian)" ;;
    esac
    mkdir -p "$dir"
    rm -f "$dir/aide.db" "$dir/aide.db.new"
    # Selection lines are regular expressions: escape the path.
    local re; re=$(printf '%s' "$tree" | sed 's/[][\.^$*+?(){}|]/\\&/g')
    {
        echo "# generated by bench/profile.sh"
        echo "database_in=file:$dir/aide.db"
        echo "database_out=file:$dir/aide.db.new"
        # Uncompressed db: we compare hashing/walking, not zlib.
        echo "gzip_dbout=no"
        [[ -n $AIDE_WORKERS ]] && echo "num_workers=$AIDE_WORKERS"
        echo "report_url=stdout"
        echo "Bench = $attrs"
        echo "$re Bench"
    } >"$dir/aide.conf"
}

# Peak RSS of pacsguard on a 1-file tree: the fixed cost, so the report can
# show marginal bytes per file next to the raw maxRSS/files.
baseline_rss() {
    ((PG_OK)) || return 0
    local tree h out=$RUN_DIR/baseline.rss
    tree=$(tree_path tiny); h=$HOME_DIR/tiny-profile
    rm -rf "$h" "$out"
    "$PACSGUARD" --home "$h" init >/dev/null 2>&1
    /usr/bin/time -o "$out" -f %M "$PACSGUARD" --home "$h" profile "$tree" >/dev/null 2>&1 \
        || rm -f "$out"
}

# ---- 5. report -----------------------------------------------------------------
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
    echo "aide=$(aide --version 2>&1 | head -n1)"
    echo "aide_workers=${AIDE_WORKERS:-default (1)}"
    echo "aide_debian_hashes=$AIDE_FULL_HASHES"
    echo "b3sum=$(b3sum --version)"
    echo "sha256sum=$(sha256sum --version | head -n1)"
    echo "openssl=$(openssl version)"
    echo "hyperfine=$(hyperfine --version)"
    echo "scale=$SCALE"
    echo "runs=$RUNS"
}

main() {
    ensure_tools
    mkdir -p "$WORK" "$RUN_DIR"
    build_pacsguard
    local kind
    for kind in $TREES; do
        ensure_tree "$kind"
    done
    ensure_tree tiny
    baseline_rss
    for kind in $TREES; do
        rm -rf "${RUN_DIR:?}/$kind"     # no stale numbers in the report
        bench_tree "$kind"
    done
    log "results"
    env_summary >"$RUN_DIR/env.txt"
    python3 "$BENCH_DIR/report.py" "$RUN_DIR" "$TREE_DIR" "$TAG" "$TREES" \
        >"$WORK/results-$TAG.md"
    cp "$WORK/results-$TAG.md" "$WORK/results.md"
    cat "$WORK/results.md"
    info "written to $WORK/results.md (and results-$TAG.md)"
}

main "$@"
exit 0
