#!/usr/bin/env bash
# Every fuzz target for a bounded time (FUZZ_SECONDS each, default 20) on the
# stable toolchain; fuzz/run.sh installs cargo-fuzz if it is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target/fuzz}"
timeout 1500 fuzz/run.sh "${FUZZ_SECONDS:-20}"
