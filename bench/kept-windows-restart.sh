#!/bin/bash
# Issue 11, session 50 (r50-watch2): what a restart does to images waiting for their proof
# inside a maintenance window that ends while no watcher runs.
#
# 8 copies of pydicom's CT_small (new UIDs each), profiled; a window declared; each image
# re-compressed in place with dcmcjpls while no watcher runs (image 7 forged: its samples
# reversed before the encoding, so only a decode tells). A debug watcher with one late
# proof at most (PACSGUARD_TEST_MAX_LATE_PROOFS=1), a squeezed proving time and its late
# proofs held (PACSGUARD_TEST_HOLD_LATE_PROOFS) catches up: one proven, one queued, the
# rest held for room. It is stopped (SIGTERM), the window ended, and a second watcher
# started. Prints each image's last verdict per run.
#
# usage: bench/kept-windows-restart.sh [--delete-kept]   (--delete-kept: the file of the
# windows kept is removed before the restart, as before session 50)
# Needs a debug build (the test hooks are ignored by a release build), dcmtk and python3.
set -eu
DEL=0; [ "${1:-}" = --delete-kept ] && DEL=1
REPO=$(cd "$(dirname "$0")/.." && pwd)
B=$REPO/target/debug/pacsguard
CT=$(find "$REPO/.testdata" -name CT_small.dcm | head -1)
D=$(mktemp -d); H=$D/home
trap 'rm -rf "$D"' EXIT
mkdir -p $D/store/archive $D/staging
for i in 0 1 2 3 4 5 6 7; do
  cp "$CT" $D/store/archive/$i.dcm; dcmodify -nb -gin $D/store/archive/$i.dcm
done
# Forged: Pixel Data is CT_small's last element, 128 x 128 16-bit samples.
cp $D/store/archive/7.dcm $D/staging/7.forged.dcm
python3 - "$D/staging/7.forged.dcm" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); n = 128 * 128 * 2
s = [b[i:i + 2] for i in range(len(b) - n, len(b), 2)]
b[len(b) - n:] = b''.join(reversed(s)); open(p, 'wb').write(b)
PY
for i in 0 1 2 3 4 5 6; do dcmcjpls $D/store/archive/$i.dcm $D/staging/$i.jls.dcm; done
dcmcjpls $D/staging/7.forged.dcm $D/staging/7.jls.dcm
$B --home $H init >/dev/null
printf '\n[watch]\nscrub_mb_per_s = 0\nquiet_ms = 100\ncheckpoint_seconds = 1\n' >> $H/config.toml
$B --home $H profile $D/store --policy append-only >/dev/null
$B --home $H maintenance start $D/store/archive --until 5min --reason "CHG-50 JPEG-LS"
for i in 0 1 2 3 4 5 6 7; do
  cp $D/staging/$i.jls.dcm $D/store/archive/$i.tmp; mv $D/store/archive/$i.tmp $D/store/archive/$i.dcm
done
export PACSGUARD_TEST_MAX_PROOF_TIME_PER_BATCH_US=1 PACSGUARD_TEST_MIN_PROOFS_PER_BATCH=1 PACSGUARD_TEST_MAX_LATE_PROOFS=1
PACSGUARD_TEST_HOLD_LATE_PROOFS=1 $B --home $H watch --json >$D/w1.out 2>$D/w1.err & P1=$!
for _ in $(seq 1 60); do [ -e $H/watch-kept-windows.json ] && break; sleep 0.5; done
sleep 2
python3 -c "import os, signal; os.kill($P1, signal.SIGTERM)"; wait $P1 || true
$B --home $H maintenance end 1 >/dev/null
[ $DEL = 1 ] && rm -f $H/watch-kept-windows.json
$B --home $H watch --json >$D/w2.out 2>$D/w2.err & P2=$!
sleep 25
python3 -c "import os, signal; os.kill($P2, signal.SIGTERM)"; wait $P2 || true
for n in 1 2; do
  python3 - $D/w$n.out $n <<'PY'
import json, sys
last = {}
for line in open(sys.argv[1]):
    try: f = json.loads(line)
    except ValueError: continue
    if f.get('kind') == 'pixel-data-changed':
        last[f['path'].rsplit('/', 1)[-1]] = f['severity'] + ('(proof-unfinished)' if 'proof-unfinished' in f['fields'] and 'proof-finished-late' not in f['fields'] else '')
print('run', sys.argv[2] + ':', ' '.join(f'{k}={v}' for k, v in sorted(last.items())))
PY
done
