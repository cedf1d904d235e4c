#!/usr/bin/env bash
# The whole test suite: unit tests of every crate and the CLI tests through the real
# binary on real trees. Installs its own prerequisites first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-deps.sh
cargo test --workspace --locked
