//! Append publication and batch visibility, over the engine's own writer
//! (`WriterCore::append_one` / `append_frames`, `MapWriter::publish`) and
//! readers (`Snapshot`, `SegView`, `LiveMap::frames`). Frame bytes are loom
//! cells (see `raw.rs`), so a reader touching bytes not yet published — or
//! published by a store too weak to order them — is a loom failure.
#![cfg(loom)]

mod common;

use std::path::Path;

use common::{model, payload, read_from};
use loom::thread;
use varvelog::__loom::{LogState, SegmentWriter};

/// Two appends racing two snapshots taken by a reader.
fn append_model() {
    model(|| {
        let mut w = SegmentWriter::anonymous(0, 256);
        let log = LogState::new(Path::new("unused"), &w);
        let reader = log.handle();
        let t = thread::spawn(move || {
            let first = read_from(&reader.snapshot(), 0);
            let second = read_from(&reader.snapshot(), 0);
            assert!(second >= first, "a later snapshot shows fewer records");
        });
        w.append(&payload(0));
        w.append(&payload(1));
        t.join().unwrap();
        assert_eq!(read_from(&log.snapshot(), 0), 2);
    });
}

#[test]
#[cfg_attr(feature = "mutant", ignore = "the mutant breaks this model on purpose")]
fn reader_never_sees_unwritten_or_partially_written_frame_bytes() {
    // Goal: a reader sees only whole, published frames, and what it sees
    // never shrinks. Method: the writer appends records 0 and 1 while a
    // reader takes two snapshots and reads each fully; loom explores every
    // interleaving (and, through the frame cells, every unordered access).
    append_model();
}

#[test]
#[cfg_attr(feature = "mutant", ignore = "the mutant breaks this model on purpose")]
fn batch_is_visible_all_or_nothing() {
    // Goal: a batch becomes visible to readers at once. Method: a batch of
    // three records races a reader, which must see 0 or 3 of them, each
    // whole and correct.
    model(|| {
        let mut w = SegmentWriter::anonymous(0, 256);
        let log = LogState::new(Path::new("unused"), &w);
        let reader = log.handle();
        let t = thread::spawn(move || {
            let seen = read_from(&reader.snapshot(), 0);
            assert!(seen == 0 || seen == 3, "reader saw {seen} records of a batch of 3");
        });
        let (p0, p1, p2) = (payload(0), payload(1), payload(2));
        w.append_batch(&[&p0, &p1, &p2]);
        t.join().unwrap();
        assert_eq!(read_from(&log.snapshot(), 0), 3);
    });
}

#[test]
#[cfg(feature = "mutant")]
#[should_panic(expected = "Causality violation")]
fn mutant_relaxed_publication_is_caught_by_the_append_model() {
    // Goal: prove the models can fail. Method: built with the `mutant`
    // feature, the engine publishes with a `Relaxed` store instead of
    // `Release`; the append model must then panic (loom reports reading
    // frame bytes that the publication did not order).
    append_model();
}
