#!/usr/bin/env bash
# Crash consistency in release: SIGKILL crash test (>= 150 kills, at most 90 s),
# SIGKILL during compaction (>= 80 kills, at most 90 s), SIGKILL of a named
# consumer and of the writer under one (>= 80 kills each, at most 60 s each),
# simulated power loss (150 cuts), and the fault-injection sweep. The same
# tests also run, smaller, in the plain `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/../.."
export VARVELOG_CRASH_KILLS="${VARVELOG_CRASH_KILLS:-150}"
export VARVELOG_CRASH_SECS="${VARVELOG_CRASH_SECS:-90}"
export VARVELOG_POWER_CYCLES="${VARVELOG_POWER_CYCLES:-150}"
export VARVELOG_COMPACT_KILLS="${VARVELOG_COMPACT_KILLS:-80}"
export VARVELOG_COMPACT_SECS="${VARVELOG_COMPACT_SECS:-90}"
export VARVELOG_CONSUMER_KILLS="${VARVELOG_CONSUMER_KILLS:-80}"
export VARVELOG_CONSUMER_SECS="${VARVELOG_CONSUMER_SECS:-60}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
timeout 1200 cargo test --release --test crash --test compaction_crash --test consumer_crash --test power_loss --test faults -- --nocapture >"$log" 2>&1 || status=$?
grep -E "seed|kills in|power cuts|caught|fired|^test |test result|panicked|FAILED" "$log" || true
if [ "$status" -ne 0 ]; then
  tail -n 60 "$log" >&2
  exit "$status"
fi
