#!/usr/bin/env bash
# Runs every fuzz target for a bounded time on the stable toolchain
# (`cargo fuzz run -s none`), installing cargo-fuzz if it is missing.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 20 s, all targets)
#
# New inputs go to a scratch corpus; the committed seeds in fuzz/corpus/ are
# read, never written. A crash leaves its input in fuzz/artifacts/TARGET/ and
# makes the script fail.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-20}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(decode open_damaged ops keys consumer_position proofs)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo fuzz build -s none
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "corpus/$t"
  echo "=== fuzz $t for ${secs}s"
  # -rss_limit_mb: the targets open real logs; -max_len keeps inputs small.
  status=0
  cargo fuzz run -s none "$t" "$work/$t" "corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 >"$work/$t.log" 2>&1 || status=$?
  grep -E "^(Done|stat::number_of_executed_units)|ERROR|panicked|SUMMARY|Test unit written" "$work/$t.log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$work/$t.log" >&2
    echo "fuzz target $t failed (exit $status); the input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
echo "all fuzz targets ran ${secs}s without a failure"
