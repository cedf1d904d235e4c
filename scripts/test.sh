#!/usr/bin/env bash
# The whole test suite: unit tests of every crate and the CLI tests through the real
# binary on real trees. Installs its own prerequisites first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-deps.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
# The gateway's tests once more with the gateway inside `pacsguard serve --gateway`: the
# same tests pass in both forms (about two minutes).
PACSGUARD_TEST_GATEWAY_FORM=serve cargo test -p pacsguard --locked --test gateway 2>&1 | tee -a "$log"
# cargo prints one "test result" line per test binary, the last often a crate without
# doc tests ("0 passed"): close with the sum over all of them.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' "$log"
