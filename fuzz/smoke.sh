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

# The gateway's PDU decoder (issue 16): PDUs real DCMTK peers exchanged as seeds.
bash "$fuzz/seed-pdu.sh"
cargo +nightly fuzz run -a pdu corpus/pdu -- \
  -max_total_time="$seconds" \
  -max_len=65536 \
  -rss_limit_mb=2048 \
  -timeout=10 \
  -print_final_stats=1
