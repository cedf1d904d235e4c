#!/usr/bin/env bash
# bench/gateway.sh — DCMTK's storescu through `pacsguard gateway` to storescp, against
# storescu to storescp directly, in the SAME run (issue 16):
#   * throughput: N CT-sized instances (512x512, 16-bit: 512 KiB of pixels each) in one
#     association, direct and relayed (screening on); target: relayed >= 90% of direct
#   * latency per association: K echoscu runs, direct and relayed; target: the median
#     added by the gateway <= 5 ms
#   * small instances: S tiny instances in one association, direct and relayed: the time
#     added per instance (Nagle's algorithm with delayed ACKs shows here, session 17)
#   * concurrency: C storescu at once through the gateway; target: every instance arrives
#   * the real corpus (BENCH_CORPUS, default .testdata/wheels: pydicom's and pynetdicom's
#     test files), direct and relayed: the median ratio
# Medians of BENCH_RUNS. A benchmark, not a test: exits 0 once measured.
# PACSGUARD=<binary> (else a release build is made); BENCH_SCALE scales N, K and C.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
SCALE=${BENCH_SCALE:-1}
RUNS=${BENCH_RUNS:-3}
WORK=${BENCH_WORK:-$BENCH_DIR/work}/gateway
PACSGUARD=${PACSGUARD:-}

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
command -v storescu >/dev/null || install_packages dcmtk
N=$(python3 -c "print(max(1, int(200 * $SCALE)))")
K=$(python3 -c "print(max(5, int(50 * $SCALE)))")
C=$(python3 -c "print(max(2, int(50 * $SCALE)))")

if [[ -z $PACSGUARD ]]; then
    log "building pacsguard (release)"
    (cd "$REPO" && cargo build --release --locked -p pacsguard >&2)
    PACSGUARD=${CARGO_TARGET_DIR:-$REPO/target}/release/pacsguard
fi

rm -rf "$WORK" && mkdir -p "$WORK/in" "$WORK/small" "$WORK/direct" "$WORK/relayed"
S=$(python3 -c "print(max(5, int(50 * $SCALE)))")
log "writing $S tiny instances (a few hundred bytes: every PDU is small)"
python3 - "$WORK/small" "$S" <<'PY'
import os, struct, sys
out, n = sys.argv[1], int(sys.argv[2])
def el(g, e, vr, v):
    if len(v) % 2: v += b"\0" if vr == b"UI" else b" "
    if vr in (b"OB", b"OW"):
        return struct.pack("<HH2sHI", g, e, vr, 0, len(v)) + v
    return struct.pack("<HH2sH", g, e, vr, len(v)) + v
for i in range(n):
    uid = f"1.2.826.0.1.3680043.10.1137.17.{i}".encode()
    meta = (el(2, 1, b"OB", b"\0\1") + el(2, 2, b"UI", b"1.2.840.10008.5.1.4.1.1.7")
            + el(2, 3, b"UI", uid) + el(2, 0x10, b"UI", b"1.2.840.10008.1.2.1"))
    ds = (el(8, 0x16, b"UI", b"1.2.840.10008.5.1.4.1.1.7") + el(8, 0x18, b"UI", uid)
          + el(0x10, 0x10, b"PN", b"BENCH^SMALL"))
    with open(os.path.join(out, f"{i}.dcm"), "wb") as f:
        f.write(b"\0" * 128 + b"DICM" + el(2, 0, b"UL", struct.pack("<I", len(meta))) + meta + ds)
PY
log "writing $N CT-sized instances"
python3 - "$WORK/in" "$N" <<'PY'
import os, struct, sys
out, n = sys.argv[1], int(sys.argv[2])
def el(g, e, vr, v):
    if len(v) % 2: v += b"\0" if vr == b"UI" else b" "
    if vr in (b"OB", b"OW"):
        return struct.pack("<HH2sHI", g, e, vr, 0, len(v)) + v
    return struct.pack("<HH2sH", g, e, vr, len(v)) + v
for i in range(n):
    uid = f"1.2.826.0.1.3680043.10.1137.16.{i}".encode()
    meta = (el(2, 1, b"OB", b"\0\1") + el(2, 2, b"UI", b"1.2.840.10008.5.1.4.1.1.2")
            + el(2, 3, b"UI", uid) + el(2, 0x10, b"UI", b"1.2.840.10008.1.2.1"))
    ds = (el(8, 0x16, b"UI", b"1.2.840.10008.5.1.4.1.1.2") + el(8, 0x18, b"UI", uid)
          + el(8, 0x60, b"CS", b"CT") + el(0x10, 0x10, b"PN", b"BENCH^GATEWAY")
          + el(0x28, 2, b"US", struct.pack("<H", 1)) + el(0x28, 4, b"CS", b"MONOCHROME2")
          + el(0x28, 0x10, b"US", struct.pack("<H", 512)) + el(0x28, 0x11, b"US", struct.pack("<H", 512))
          + el(0x28, 0x100, b"US", struct.pack("<H", 16)) + el(0x28, 0x101, b"US", struct.pack("<H", 12))
          + el(0x28, 0x102, b"US", struct.pack("<H", 11)) + el(0x28, 0x103, b"US", struct.pack("<H", 0))
          + el(0x7fe0, 0x10, b"OW", os.urandom(512 * 512 * 2)))
    with open(os.path.join(out, f"{i}.dcm"), "wb") as f:
        f.write(b"\0" * 128 + b"DICM" + el(2, 0, b"UL", struct.pack("<I", len(meta))) + meta + ds)
PY

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.05; done; die "nothing on port $1"; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

SCP_PORT=$(free_port)
storescp -aet ARCHIVE -od "$WORK/direct" "$SCP_PORT" & SCP=$!
export PACSGUARD_HOME=$WORK/home
"$PACSGUARD" init >/dev/null
cat >"$WORK/gateway.toml" <<EOF
[limits]
max_associations_per_peer = $((C + 2))
max_associations = $((C + 2))
# All C senders start at once from one address: room for all of them before their
# requests, and no rate limit in the way of the measurement.
max_pending = $((C + 2))
max_associations_per_minute = 1000000
[[listener]]
listen = "127.0.0.1:0"
allow = ["127.0.0.0/8"]
[[listener.route]]
called_ae = "PACS"
calling_ae = ["CT1"]
sop_classes = ["*"]
transfer_syntaxes = ["*"]
upstream = "127.0.0.1:$SCP_PORT"
upstream_ae = "ARCHIVE"
EOF
"$PACSGUARD" gateway --config "$WORK/gateway.toml" >"$WORK/gateway.out" 2>"$WORK/gateway.err" & GW=$!
trap 'kill $GW $SCP 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "listening on" "$WORK/gateway.err" 2>/dev/null && break; sleep 0.1; done
GW_PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$WORK/gateway.err" | head -1)
[[ -n $GW_PORT ]] || die "the gateway did not start: $(cat "$WORK/gateway.err")"
wait_port "$SCP_PORT"

MB=$(du -sm "$WORK/in" | cut -f1)
log "throughput: $N instances ($MB MB) in one association, $RUNS runs each"
direct=() relayed=()
for _ in $(seq "$RUNS"); do
    t0=$(now); storescu -aet CT1 -aec ARCHIVE 127.0.0.1 "$SCP_PORT" "$WORK"/in/*.dcm; t1=$(now)
    direct+=("$(echo "$t1 - $t0" | bc -l)")
    t0=$(now); storescu -aet CT1 -aec PACS 127.0.0.1 "$GW_PORT" "$WORK"/in/*.dcm; t1=$(now)
    relayed+=("$(echo "$t1 - $t0" | bc -l)")
done
d=$(printf '%s\n' "${direct[@]}" | median); r=$(printf '%s\n' "${relayed[@]}" | median)
ratio=$(echo "$d / $r * 100" | bc -l)
info "direct  $(printf %.2f "$d") s ($(echo "$MB / $d" | bc -l | xargs printf %.1f) MB/s)"
info "relayed $(printf %.2f "$r") s ($(echo "$MB / $r" | bc -l | xargs printf %.1f) MB/s)"
verdict=$(echo "$ratio >= 90" | bc -l)
info "relayed/direct throughput: $(printf %.1f "$ratio")% (target >= 90%): $([[ $verdict == 1 ]] && echo PASS || echo FAIL)"

# The real corpus (session 23): pydicom's test files (and pynetdicom's), every one
# storescu can read, in one association each way; storescu --no-halt sends on past the
# few it cannot (the same ones both ways). Median of BENCH_RUNS, same run.
CORPUS=${BENCH_CORPUS:-$REPO/.testdata/wheels}
mapfile -t corpus < <(find "$CORPUS" -name '*.dcm' -size +0 2>/dev/null | sort)
if ((${#corpus[@]} > 0)); then
    CMB=$(cat "${corpus[@]}" | wc -c | awk '{printf "%.1f", $1 / 1e6}')
    log "corpus: ${#corpus[@]} real files ($CMB MB) from $CORPUS, one association each way, $RUNS runs each"
    kd=() kr=()
    for _ in $(seq "$RUNS"); do
        t0=$(now); storescu --no-halt -aet CT1 -aec ARCHIVE 127.0.0.1 "$SCP_PORT" "${corpus[@]}" 2>/dev/null || true; t1=$(now)
        kd+=("$(echo "$t1 - $t0" | bc -l)")
        t0=$(now); storescu --no-halt -aet CT1 -aec PACS 127.0.0.1 "$GW_PORT" "${corpus[@]}" 2>/dev/null || true; t1=$(now)
        kr+=("$(echo "$t1 - $t0" | bc -l)")
    done
    mcd=$(printf '%s\n' "${kd[@]}" | median); mcr=$(printf '%s\n' "${kr[@]}" | median)
    info "corpus: direct $(printf %.3f "$mcd") s, relayed $(printf %.3f "$mcr") s; relayed/direct throughput $(printf %.1f "$(echo "$mcd / $mcr * 100" | bc -l)")%"
else
    info "corpus: no .dcm files under $CORPUS (scripts/setup-test-deps.sh fetches them): skipped"
fi

log "small instances: $S in one association, $RUNS runs each (DCMTK's own Nagle: TCP_NODELAY=${TCP_NODELAY:-unset} in the peers' environment)"
sd=() sr=()
for _ in $(seq "$RUNS"); do
    t0=$(now); storescu -aet CT1 -aec ARCHIVE 127.0.0.1 "$SCP_PORT" "$WORK"/small/*.dcm; t1=$(now)
    sd+=("$(echo "($t1 - $t0) * 1000 / $S" | bc -l)")
    t0=$(now); storescu -aet CT1 -aec PACS 127.0.0.1 "$GW_PORT" "$WORK"/small/*.dcm; t1=$(now)
    sr+=("$(echo "($t1 - $t0) * 1000 / $S" | bc -l)")
done
msd=$(printf '%s\n' "${sd[@]}" | median); msr=$(printf '%s\n' "${sr[@]}" | median)
info "per small instance: direct $(printf %.1f "$msd") ms, relayed $(printf %.1f "$msr") ms, added $(printf %.1f "$(echo "$msr - $msd" | bc -l)") ms"

log "latency: $K echoscu associations each way"
ed=() er=()
for _ in $(seq "$K"); do
    t0=$(now); echoscu -aet CT1 -aec ARCHIVE 127.0.0.1 "$SCP_PORT"; t1=$(now); ed+=("$(echo "($t1 - $t0) * 1000" | bc -l)")
    t0=$(now); echoscu -aet CT1 -aec PACS 127.0.0.1 "$GW_PORT"; t1=$(now); er+=("$(echo "($t1 - $t0) * 1000" | bc -l)")
done
md=$(printf '%s\n' "${ed[@]}" | median); mr=$(printf '%s\n' "${er[@]}" | median)
added=$(echo "$mr - $md" | bc -l)
info "median association: direct $(printf %.1f "$md") ms, relayed $(printf %.1f "$mr") ms, added $(printf %.1f "$added") ms (target <= 5 ms): $([[ $(echo "$added <= 5" | bc -l) == 1 ]] && echo PASS || echo FAIL)"

log "concurrency: $C storescu at once through the gateway"
rm -rf "$WORK/direct"/*
pids=()
for i in $(seq 0 $((C - 1))); do
    f="$WORK/in/$((i % N)).dcm"
    storescu -aet CT1 -aec PACS 127.0.0.1 "$GW_PORT" "$f" & pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
arrived=$(find "$WORK/direct" -type f | wc -l)
want=$((C < N ? C : N))
info "$failed of $C senders failed; $arrived distinct instances arrived of $want: $([[ $failed == 0 && $arrived == "$want" ]] && echo PASS || echo FAIL)"
kill -TERM $GW; wait $GW || true
info "gateway: $(grep -c 'relayed C-STORE' "$WORK/gateway.out") instances relayed and screened, $(grep -cE '^(alert|warning) ' "$WORK/gateway.out" || true) warnings or alerts"
