#!/usr/bin/env bash
# The loom models in loom-tests/ (every test is #![cfg(loom)]), in release with
# a bounded preemption count, in their own target directory; then the same
# suite built with the `mutant` feature (the engine's publishing store weakened
# to Relaxed), whose one test passes only if the append model fails; and with
# `mutant-sync` (a sync claims records published while it ran), whose test
# passes only if the group-commit model fails; and with `mutant-populator`
# (the header check reads the holders before the populator count), whose
# test passes only if the populator model fails; and with `mutant-keys` (a
# key-table bucket head published Relaxed), whose test passes only if the
# key-table model fails; and with `mutant-key-filter` (the key filter
# published before a segment's keys are added), likewise for its model; and
# with `mutant-waker` (an async tail that does not re-check after registering
# its waker), whose test passes only if the tail wake-up model fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
export CARGO_TARGET_DIR="${LOOM_TARGET_DIR:-$PWD/target/loom}"
export RUSTFLAGS="--cfg loom"

echo "loom models (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS)"
timeout 1500 cargo test --release --manifest-path loom-tests/Cargo.toml

# Builds the models with a deliberate bug (FEATURE) and runs its `mutant_`
# tests (extra cargo test arguments before --), which pass only if the
# models catch it; TEST must then be reported as passing.
mutant_must_be_caught() {
  local feature="$1" test="$2"
  shift 2
  echo "loom $feature: the deliberate bug must be caught"
  local out
  out="$(timeout 900 cargo test --release --manifest-path loom-tests/Cargo.toml --features "$feature" "$@" -- mutant_ 2>&1)" || {
    echo "$out"
    exit 1
  }
  echo "$out" | grep -E "^test |test result" || true
  echo "$out" | grep -q "$test - should panic ... ok" || {
    echo "the $feature test did not run and pass" >&2
    exit 1
  }
}

# A publication store weakened to Relaxed.
mutant_must_be_caught mutant mutant_relaxed_publication_is_caught_by_the_append_model
# A sync that claims records published while it ran.
mutant_must_be_caught mutant-sync mutant_sync_claiming_records_published_during_it_is_caught --test group_commit
# A header check that reads the map's holders before the populator count.
mutant_must_be_caught mutant-populator mutant_populator_reading_holds_first_is_caught --test populator
# A key-table bucket head published before its entry's fields.
mutant_must_be_caught mutant-keys mutant_keys_relaxed_head_is_caught --test keys
# The log's key filter published before a sealed segment's keys are in it.
mutant_must_be_caught mutant-key-filter mutant_key_filter_published_first_is_caught --test keys
# An async tail that registers its waker but trusts the check made before.
mutant_must_be_caught mutant-waker mutant_waker_without_recheck_is_caught --test tail_wakeup
