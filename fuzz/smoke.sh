#!/usr/bin/env bash
# Short fuzzing runs of the inspect and pdf targets from their seed corpora, for CI: fails
# if pacsguard_dicom::inspect or inspect_pdf panics, runs out of memory or takes too long
# on any input found within the time given (per target). Usage: fuzz/smoke.sh [SECONDS]
# (default 60). Needs a nightly
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
cargo +nightly fuzz run -a inspect corpus/inspect -- \
  -dict="$fuzz/inspect.dict" \
  -max_total_time="$seconds" \
  -max_len=65536 \
  -rss_limit_mb=2048 \
  -timeout=10 \
  -print_final_stats=1

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
