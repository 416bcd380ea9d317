//! Rotation and sealing, over the engine's own state publication
//! (`WriterCore::install`, the sealer's `publish_sealed`, `SnapshotCell`):
//! a reader moving from one segment to the next never skips or repeats a
//! record, whichever snapshots it holds.
#![cfg(loom)]

mod common;

use std::path::Path;

use common::{model, payload, read_from, scratch_dir};
use loom::thread;
use varvelog::__loom::{LogState, SegmentWriter};

#[test]
#[cfg_attr(feature = "mutant", ignore = "the mutant breaks publication on purpose")]
fn reader_crossing_a_rotation_never_skips_or_repeats() {
    // Goal: rotation publishes the new segment so that a reader continuing
    // from where an older snapshot ended finds exactly the next record.
    // Method: the writer appends 0, rotates to a new segment, appends 1 and
    // 2; the reader reads a snapshot, then continues in a newer snapshot from
    // the seq it reached, checking every record and its bytes.
    model(|| {
        let mut w = SegmentWriter::anonymous(0, 256);
        let log = LogState::new(Path::new("unused"), &w);
        let reader = log.handle();
        let t = thread::spawn(move || {
            let reached = read_from(&reader.snapshot(), 0);
            let later = reader.snapshot();
            let end = read_from(&later, reached);
            assert_eq!(read_from(&later, 0), end, "two reads of one snapshot differ");
        });
        w.append(&payload(0));
        let _rotated = log.rotate(&mut w, SegmentWriter::anonymous(1, 256));
        w.append(&payload(1));
        w.append(&payload(2));
        t.join().unwrap();
        assert_eq!(read_from(&log.snapshot(), 0), 3);
    });
}

#[test]
#[cfg_attr(feature = "mutant", ignore = "the mutant breaks publication on purpose")]
fn reader_crossing_from_a_sealed_segment_never_skips_or_repeats() {
    // Goal: sealing swaps a live segment for its sealed form (a second,
    // read-only mapping of the file) without a reader noticing: whether it
    // reads the live or the sealed form, the records are the same, then the
    // next segment continues. Method: file-backed segments; the writer
    // appends 0 and 1, rotates, appends 2, and seals the first segment, while
    // the reader reads one snapshot, then continues in a newer one.
    model(|| {
        let dir = scratch_dir();
        let mut w = SegmentWriter::file(dir.path(), 0, 256);
        let log = LogState::new(dir.path(), &w);
        let reader = log.handle();
        let t = thread::spawn(move || {
            let reached = read_from(&reader.snapshot(), 0);
            read_from(&reader.snapshot(), reached);
        });
        w.append(&payload(0));
        w.append(&payload(1));
        let rotated = log.rotate(&mut w, SegmentWriter::file(dir.path(), 2, 256));
        w.append(&payload(2));
        log.seal(rotated);
        t.join().unwrap();
        let snap = log.snapshot();
        assert_eq!(read_from(&snap, 0), 3);
    });
}
