#!/usr/bin/env bash
# Short fuzzing run of every target from the seed corpus, for CI: fails if a parser of
# untrusted bytes panics, runs out of memory or takes too long on any input found within
# the time given (per target). Usage: fuzz/smoke.sh [SECONDS] (default 60). Needs a nightly
# toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`); the seeds need
# scripts/setup-test-deps.sh, which seed-corpus.sh runs when they are missing.
set -euo pipefail

seconds=${1:-60}
fuzz="$(cd "$(dirname "$0")" && pwd)"
cd "$fuzz"

bash "$fuzz/seed-corpus.sh"
# -a: overflow checks and debug assertions on, so arithmetic on lengths from the file is
# checked too. One process (libFuzzer's default; -jobs would send the output to
# fuzz-N.log files instead of the CI log). The limits are the crate's promises: 64 KiB is
# enough to reach every structure, 2 GiB is far above the crate's own budgets, and 10 s for
# one input means a loop that does not end.
# Every target starts from the same seeds (real files and hand-made payloads): the ZIP,
# executable and readers targets need the structures the DICOM seeds carry.
for target in inspect zip executable readers; do
  mkdir -p "corpus/$target"
  if [[ $target != inspect ]]; then
    cp -n corpus/inspect/* "corpus/$target/" 2>/dev/null || true
  fi
  # The committed seeds tests/fuzz_smoke.rs replays (fuzz/README.md, "How CI covers fuzzing").
  if [[ -d seeds/$target ]]; then
    cp -n "seeds/$target"/* "corpus/$target/" 2>/dev/null || true
  fi
  cargo +nightly fuzz run -a "$target" "corpus/$target" -- \
    -dict="$fuzz/inspect.dict" \
    -max_total_time="$seconds" \
    -max_len=65536 \
    -rss_limit_mb=2048 \
    -timeout=10 \
    -print_final_stats=1
done

# The PDF reader on its own: documents written by qpdf (object streams, encryption, QDF)
# as seeds, which the inspect target would reach only through a DICOM wrapper.
bash "$fuzz/seed-pdf.sh"
cargo +nightly fuzz run -a pdf corpus/pdf -- \
  -dict="$fuzz/pdf.dict" \
  -max_total_time="$seconds" \
  -max_len=65536 \
  -rss_limit_mb=2048 \
  -timeout=10 \
  -print_final_stats=1

# The console's WebAuthn relying party: what anyone can post to the sign-in page.
mkdir -p corpus/webauthn
cargo +nightly fuzz run -a webauthn corpus/webauthn -- \
  -max_total_time="$seconds" \
  -max_len=16384 \
  -rss_limit_mb=2048 \
  -timeout=10 \
  -print_final_stats=1

# The media gate's readers (ISO 9660 and DICOMDIR): the DICOM seeds (the wheels'
# DICOMDIRs among them) and small ISO images mastered by genisoimage and xorriso, which
# need more than 64 KiB (the volume descriptors start at 32 KiB).
mkdir -p corpus/media
cp -n corpus/inspect/* corpus/media/ 2>/dev/null || true
staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
mkdir -p "$staging/DICOM"
dicomdir="$(find "$(cd "$fuzz/.." && pwd)/.testdata/wheels/pydicom" -name DICOMDIR | head -n 1)"
cp "$dicomdir" "$staging/DICOMDIR"
printf '[autorun]\r\nopen=VIEWER.EXE\r\n' >"$staging/AUTORUN.INF"
printf 'DICM' >"$staging/DICOM/IM000001"
genisoimage -quiet -o corpus/media/seed-genisoimage.iso "$staging"
xorriso -as mkisofs -quiet -J -R -o corpus/media/seed-xorriso-joliet.iso "$staging" 2>/dev/null
cargo +nightly fuzz run -a media corpus/media -- \
  -dict="$fuzz/inspect.dict" \
  -max_total_time="$seconds" \
  -max_len=1048576 \
  -rss_limit_mb=2048 \
  -timeout=10 \
  -print_final_stats=1

# The gateway's PDU decoder (issue 16): PDUs real DCMTK peers exchanged as seeds.
bash "$fuzz/seed-pdu.sh"
cargo +nightly fuzz run -a pdu corpus/pdu -- \
  -max_total_time="$seconds" \
  -max_len=65536 \
  -rss_limit_mb=2048 \
  -timeout=10 \
  -print_final_stats=1
