//! The live segment's key table (`src/keys/live.rs`): the writer links each
//! new entry at the head of its bucket's chain while readers walk chains
//! without locks, so an entry must be fully written before the head that
//! reaches it is published.
#![cfg(loom)]

mod common;

use common::model;
use varvelog::__loom::{key_filter_beside_a_reader, key_table_beside_a_reader};

#[test]
#[cfg_attr(feature = "mutant-keys", ignore = "the mutant breaks this model on purpose")]
fn a_lookup_beside_inserts_sees_whole_entries_newest_first() {
    // Goal: a reader walking a bucket chain while the writer inserts sees a
    // newest-first run of whole entries, never an entry before its fields.
    // Method: three inserts of one key (one bucket) on the writer's thread,
    // one lookup on the main thread; loom explores every interleaving and
    // every value the relaxed field loads may return.
    model(key_table_beside_a_reader);
}

#[test]
#[cfg(feature = "mutant-keys")]
#[should_panic(expected = "Causality violation")]
fn mutant_keys_relaxed_head_is_caught() {
    // Goal: prove the model can fail. Method: built with `mutant-keys`, the
    // bucket head is published with `Relaxed`; a reader can then reach an
    // entry whose write is not ordered before its read, which loom reports.
    model(key_table_beside_a_reader);
}

#[test]
#[cfg_attr(feature = "mutant-key-filter", ignore = "the mutant breaks this model on purpose")]
fn a_published_key_filter_holds_the_keys_of_the_segment_sealed_with_it() {
    // Goal: a reader that finds the log's key filter in a published state
    // finds every key of the segments sealed in it. Method: the sealer's
    // order (add the hashes, then publish) on one thread, a reader loading
    // the state on another; loom explores every interleaving.
    model(key_filter_beside_a_reader);
}

#[test]
#[cfg(feature = "mutant-key-filter")]
#[should_panic(expected = "lacks a sealed segment's key")]
fn mutant_key_filter_published_first_is_caught() {
    // Goal: prove the model can fail. Method: built with
    // `mutant-key-filter`, the state is published before the hashes are
    // added; a reader can then find the filter without them.
    model(key_filter_beside_a_reader);
}
