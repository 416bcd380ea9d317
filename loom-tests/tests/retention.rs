//! Retention, over the engine's own pass (`retention::apply`): the state
//! without the oldest sealed segments is published before their files go,
//! and a reader holding an older snapshot keeps those segments mapped (the
//! `Arc`s in its snapshot) until it drops it. The sealed mapping is a loom
//! cell read by every access and written by the unmapping, so a read that
//! could race with the unmap is a loom failure.
#![cfg(loom)]

mod common;

use common::{model, payload, read_from, scratch_dir};
use loom::thread;
use varvelog::__loom::{LogState, SegmentWriter};
use varvelog::Error;

#[test]
#[cfg_attr(feature = "mutant", ignore = "the mutant breaks publication on purpose")]
fn reader_holding_an_old_snapshot_never_reads_a_removed_segment() {
    // Goal: retention never pulls a mapping from under a reader, and readers
    // see either the old log or the retained one, never a mix. Method: a
    // sealed segment (records 0, 1) and an active one (record 2); a reader
    // takes a snapshot and reads it fully while a retention pass removes the
    // sealed segment (publishes, then unlinks its file).
    model(|| {
        let dir = scratch_dir();
        let mut w = SegmentWriter::file(dir.path(), 0, 256);
        let log = LogState::new(dir.path(), &w);
        w.append(&payload(0));
        w.append(&payload(1));
        let rotated = log.rotate(&mut w, SegmentWriter::file(dir.path(), 2, 256));
        w.append(&payload(2));
        log.seal(rotated);
        let reader = log.handle();
        let t = thread::spawn(move || {
            let snap = reader.snapshot();
            let first = snap.first_seq().expect("records");
            assert!(first == 0 || first == 2, "first seq {first}");
            assert_eq!(read_from(&snap, first), 3);
        });
        assert_eq!(log.retain_below(2), 1);
        t.join().unwrap();
        let snap = log.snapshot();
        assert_eq!(snap.first_seq(), Some(2));
        assert!(matches!(snap.get(0), Err(Error::Truncated { requested: 0, first_available: 2 })));
        assert_eq!(read_from(&snap, 2), 3);
    });
}
