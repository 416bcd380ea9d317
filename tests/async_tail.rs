//! Async tails and consumers (feature `async`) on a multi-threaded tokio
//! runtime, while the writer appends across many rotations.

mod common;

use std::time::Duration;

use common::{append_model, check_model, opts, payload_for, write_model_log};
use futures_util::StreamExt;
use varvelog::{ConsumerOptions, Log, ReadOnlyLog};

/// Records the writer appends: with 64 KiB segments, dozens of rotations.
const N: u64 = 20_000;
/// Longest a test may wait for the stream's next record.
const STALL: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_yield_every_record_in_order_while_the_writer_rotates() {
    // Goal: no record lost, repeated or reordered by an async tail or an
    // async consumer, across concurrent rotation and sealing, with wake-ups
    // crossing runtime threads. Method: a writer thread appends N model
    // records in bursts with pauses (so the streams catch up and wait);
    // two tasks read them through a tail stream and a consumer stream
    // (auto-commit every 1000); each record is checked, and a stall longer
    // than STALL fails the test instead of hanging it.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    let tail = log.tail_from(0).unwrap().into_stream();
    let consumer = log.consumer_with("async", ConsumerOptions::new().commit_every_records(1000)).unwrap().into_stream();
    let read = |mut s: std::pin::Pin<Box<dyn futures_util::Stream<Item = varvelog::Result<varvelog::OwnedRecord>> + Send>>| async move {
        for seq in 0..N {
            let r = tokio::time::timeout(STALL, s.next()).await.unwrap_or_else(|_| panic!("stalled at seq {seq}"));
            let r = r.expect("a stream never ends").unwrap();
            assert_eq!((r.seq(), r.payload()), (seq, &payload_for(seq)[..]));
        }
        s
    };
    let a = tokio::spawn(read(Box::pin(tail)));
    let b = tokio::spawn(read(Box::pin(consumer)));
    let writer = std::thread::spawn({
        let log = log.clone();
        move || {
            let mut w = log.writer().unwrap();
            for seq in 0..N {
                append_model(&mut w, seq);
                if seq % 2000 == 1999 {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    });
    drop(a.await.unwrap());
    drop(b.await.unwrap());
    writer.join().unwrap();
    assert!(log.stats().rotations >= 10, "only {} rotations", log.stats().rotations);
    let info = &log.consumers().unwrap()[0];
    // The last automatic commit was made when record N - 1000 was asked for.
    assert_eq!(info.position, Some(N - 1000), "auto-commits while streaming");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_over_a_read_only_log_sees_new_records_and_a_consumer_resumes() {
    // Goal: the cross-process path (timer, no writer wake-up) works and a
    // named consumer's stream commits where the next one resumes. Method:
    // a read-only reader streams while this process's writer appends; then
    // the consumer commits, is dropped, and resumes after what it committed.
    let dir = tempfile::tempdir().unwrap();
    write_model_log(dir.path(), 100);
    let log = Log::open(dir.path(), opts()).unwrap();
    let reader = ReadOnlyLog::open(dir.path()).unwrap();
    let mut stream = reader.consumer("ro").unwrap().into_stream();
    for seq in 0..100 {
        check_model_owned(&stream.next().await.unwrap().unwrap(), seq);
    }
    let writer = std::thread::spawn({
        let log = log.clone();
        move || {
            let mut w = log.writer().unwrap();
            for seq in 100..300 {
                append_model(&mut w, seq);
                if seq % 50 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    });
    for seq in 100..250 {
        let r = tokio::time::timeout(STALL, stream.next()).await.expect("stalled").unwrap().unwrap();
        check_model_owned(&r, seq);
    }
    stream.get_mut().commit().unwrap();
    drop(stream);
    writer.join().unwrap();
    let mut again = reader.consumer("ro").unwrap();
    check_model(&again.next_timeout(STALL).unwrap().unwrap(), 250);
}

fn check_model_owned(r: &varvelog::OwnedRecord, seq: u64) {
    assert_eq!(r.seq(), seq);
    assert_eq!(r.payload(), payload_for(seq));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_after_an_error_instead_of_repeating_it() {
    // Goal: a stream whose position retention removed yields the error
    // once, then ends (an adapter that skips errors must not spin on it).
    // Method: a tail stream at 0 reads until its snapshot needs a newer one
    // that no longer holds its next record.
    let dir = tempfile::tempdir().unwrap();
    write_model_log(dir.path(), 3000);
    let log = Log::open(dir.path(), opts()).unwrap();
    let mut stream = log.tail_from(0).unwrap().into_stream();
    log.retain(&varvelog::Retention::new().min_seq(2000)).unwrap();
    let mut seen = 0u64;
    let err = loop {
        match tokio::time::timeout(STALL, stream.next()).await.expect("stalled").expect("an item before the end") {
            Ok(r) => assert_eq!(r.seq(), seen),
            Err(e) => break e,
        }
        seen += 1;
        assert!(seen < 3000, "never told about the removed records");
    };
    assert!(matches!(err, varvelog::Error::Truncated { .. }), "{err}");
    assert!(stream.next().await.is_none(), "the stream ended");
}
