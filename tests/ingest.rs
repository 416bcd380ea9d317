//! Ingestion from many threads through the cloneable `Ingest` handle.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::sync::Arc;
use std::thread;

use varvelog::fs::{FaultFs, Op};
use varvelog::{Entry, Error, Log, Options, SyncPolicy};

const SEGMENT_BYTES: u64 = 64 * 1024;

fn opts() -> Options {
    Options::new().segment_bytes(SEGMENT_BYTES)
}

/// `producer:index` with some padding that varies by index.
fn payload(producer: u64, i: u64) -> Vec<u8> {
    let mut p = format!("{producer}:{i}:").into_bytes();
    p.resize(p.len() + (i % 40) as usize, b'.');
    p
}

fn parse(payload: &[u8]) -> (u64, u64) {
    let s = std::str::from_utf8(payload).unwrap();
    let mut parts = s.split(':');
    (parts.next().unwrap().parse().unwrap(), parts.next().unwrap().parse().unwrap())
}

#[test]
fn many_producers_every_record_once_and_in_per_producer_order() {
    // Goal: records from many threads all land exactly once, each producer's
    // records in the order it appended them, and each caller gets the seq
    // its record really has.
    // Method: 6 producers x 1500 appends racing for the one writer over
    // 64 KiB segments (rotations);
    // then scan the log and check every (producer, index) against the seqs
    // the producers were given.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    let ingest = log.ingest().unwrap();
    const P: u64 = 6;
    const N: u64 = 1500;
    let producers: Vec<_> = (0..P)
        .map(|p| {
            let ingest = ingest.clone();
            thread::spawn(move || (0..N).map(|i| ingest.append(&payload(p, i)).unwrap()).collect::<Vec<u64>>())
        })
        .collect();
    let given: Vec<Vec<u64>> = producers.into_iter().map(|t| t.join().unwrap()).collect();
    ingest.close().unwrap();

    let snap = log.snapshot();
    assert_eq!(snap.len(), P * N);
    assert!(snap.segment_count() >= 3, "expected rotations");
    let mut where_is: HashMap<(u64, u64), u64> = HashMap::new();
    let mut last_index = vec![None::<u64>; P as usize];
    for rec in snap.iter() {
        let rec = rec.unwrap();
        let (p, i) = parse(rec.payload());
        assert_eq!(rec.payload(), &payload(p, i)[..]);
        assert!(where_is.insert((p, i), rec.seq()).is_none(), "record {p}:{i} appears twice");
        let prev = last_index[p as usize].replace(i);
        assert_eq!(prev.map_or(0, |x| x + 1), i, "producer {p} out of order at seq {}", rec.seq());
    }
    for p in 0..P {
        for i in 0..N {
            assert_eq!(where_is.get(&(p, i)), Some(&given[p as usize][i as usize]), "seq given for {p}:{i}");
        }
    }
    // The writer is back in the log.
    assert!(log.writer().is_ok());
}

#[test]
fn append_durable_returns_only_once_synced() {
    // Goal: append_durable's seq is durable when it returns, for every caller,
    // while other producers append without asking for durability.
    // Method: SyncPolicy::Never (only explicit syncs), 4 threads mixing
    // append and append_durable; right after each append_durable returns,
    // its seq must be <= log.durable_seq().
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts().sync_policy(SyncPolicy::Never)).unwrap();
    let ingest = log.ingest().unwrap();
    let threads: Vec<_> = (0..4u64)
        .map(|p| {
            let ingest = ingest.clone();
            let log = log.clone();
            thread::spawn(move || {
                let mut durable = 0;
                for i in 0..300u64 {
                    if (i + p) % 5 == 0 {
                        let seq = ingest.append_durable(&payload(p, i)).unwrap();
                        let d = log.durable_seq();
                        assert!(d >= Some(seq), "append_durable returned {seq}, durable_seq is {d:?}");
                        durable += 1;
                    } else {
                        ingest.append(&payload(p, i)).unwrap();
                    }
                }
                durable
            })
        })
        .collect();
    let durable: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(durable, 4 * 60);
    drop(ingest);
    assert_eq!(log.snapshot().len(), 1200);
}

#[test]
fn tickets_stay_valid_after_close_and_clones_are_closed_too() {
    // Goal: tickets of submit() answer after the handle is closed; close()
    // through one clone closes every clone (IngestClosed) and gives the
    // writer back to the log.
    // Method: 2000 tickets from one thread without waiting, close from
    // another clone, then wait all tickets (all Ok, seqs 0..2000 in order).
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    let ingest = log.ingest().unwrap();
    let other = ingest.clone();
    let tickets: Vec<_> = (0..2000u64).map(|i| ingest.submit(Entry::new(&payload(0, i))).unwrap()).collect();
    other.close().unwrap();
    let seqs: Vec<u64> = tickets.into_iter().map(|t| t.wait().unwrap()).collect();
    assert_eq!(seqs, (0..2000).collect::<Vec<_>>());
    assert_eq!(log.snapshot().len(), 2000);
    assert!(matches!(ingest.append(b"late"), Err(Error::IngestClosed)));
    let mut w = log.writer().unwrap();
    assert_eq!(w.append(b"direct").unwrap(), 2000);
}

#[test]
fn dropping_the_last_handle_returns_the_writer() {
    // Goal: a clean shutdown without close(): dropping every clone gives
    // the writer back, and tickets taken before answer.
    // Method: submit tickets, drop all handles, check the tickets and the log.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    let ingest = log.ingest().unwrap();
    assert!(matches!(log.writer(), Err(Error::WriterBusy)));
    assert!(matches!(log.ingest(), Err(Error::WriterBusy)));
    let tickets: Vec<_> = (0..500u64).map(|i| ingest.submit(Entry::new(&payload(1, i)).key(b"k")).unwrap()).collect();
    let clone = ingest.clone();
    drop(ingest);
    drop(clone);
    for (i, t) in tickets.into_iter().enumerate() {
        assert_eq!(t.wait().unwrap(), i as u64);
    }
    let snap = log.snapshot();
    assert_eq!(snap.len(), 500);
    assert_eq!(snap.get(499).unwrap().unwrap().key(), Some(&b"k"[..]));
    assert!(log.writer().is_ok());
}

#[test]
fn oversized_record_is_refused_without_reaching_the_writer() {
    // Goal: limits are checked on the caller's thread with the writer's
    // typed errors, and nothing is written.
    // Method: a payload one byte over the limit, then a normal append.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts().max_payload_bytes(1000)).unwrap();
    let ingest = log.ingest().unwrap();
    assert!(matches!(ingest.append(&[0u8; 1001]), Err(Error::PayloadTooLarge { len: 1001, max: 1000 })));
    assert_eq!(ingest.append(&[0u8; 1000]).unwrap(), 0);
    ingest.close().unwrap();
    assert_eq!(log.snapshot().len(), 1);
}

#[test]
fn sync_failure_reaches_every_durable_caller_and_poisons_later_appends() {
    // Goal: an I/O error on the writer's path reaches every waiting caller
    // with a typed error, and every later append fails (poisoned writer).
    // Method: FaultFs fails every msync; 4 threads each append_durable once
    // (they may share one sync or not); all must get Err, none Ok; later
    // appends get Error::Poisoned and close() reports it.
    let dir = tempfile::tempdir().unwrap();
    let fs = Arc::new(FaultFs::new());
    let log = Log::open(dir.path(), opts().file_system(fs.clone())).unwrap();
    let ingest = log.ingest().unwrap();
    fs.fail(Op::SyncMap, 0, u64::MAX, ErrorKind::Other);
    let results: Vec<_> = (0..4u64)
        .map(|p| {
            let ingest = ingest.clone();
            thread::spawn(move || ingest.append_durable(&payload(p, 0)))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    for r in &results {
        match r {
            Err(Error::Io { .. } | Error::Poisoned { .. }) => {}
            other => panic!("durable append after a failed sync returned {other:?}"),
        }
    }
    assert!(log.is_poisoned());
    assert!(matches!(ingest.append(b"after"), Err(Error::Poisoned { .. })));
    assert!(matches!(ingest.close(), Err(Error::Poisoned { .. })));
}

#[test]
fn disk_full_reaches_the_callers_it_hits_and_appending_resumes() {
    // Goal: a full disk (new segments cannot be allocated) is a typed error
    // for the callers it hit, not a hang or a poisoned writer;
    // once space is back, appends continue and the log holds exactly the
    // records that were acknowledged.
    // Method: FaultFs fails every fallocate with ENOSPC after open; 4
    // producers append until each has seen an error; then clear the fault
    // and append again. Compare the acknowledged payloads with the log.
    let dir = tempfile::tempdir().unwrap();
    let fs = Arc::new(FaultFs::new());
    let log = Log::open(dir.path(), opts().file_system(fs.clone())).unwrap();
    let ingest = log.ingest().unwrap();
    fs.fail(Op::Allocate, 0, u64::MAX, ErrorKind::StorageFull);
    let producers: Vec<_> = (0..4u64)
        .map(|p| {
            let ingest = ingest.clone();
            thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0..100_000u64 {
                    match ingest.append(&payload(p, i)) {
                        Ok(seq) => acked.push((seq, payload(p, i))),
                        Err(Error::Io { source, .. }) if source.kind() == ErrorKind::StorageFull => return acked,
                        Err(e) => panic!("unexpected error {e}"),
                    }
                }
                panic!("the disk never filled up");
            })
        })
        .collect();
    let mut acked: Vec<(u64, Vec<u8>)> = producers.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(!log.is_poisoned(), "a full disk must not poison the writer");
    fs.clear();
    let mut resumed = None;
    for _ in 0..100 {
        if let Ok(seq) = ingest.append(b"after") {
            resumed = Some(seq);
            break;
        }
        thread::sleep(std::time::Duration::from_millis(10));
    }
    let seq = resumed.expect("appends resume once space is back");
    acked.push((seq, b"after".to_vec()));
    ingest.close().unwrap();
    acked.sort();
    let snap = log.snapshot();
    let stored: Vec<(u64, Vec<u8>)> = snap.iter().map(|r| r.unwrap()).map(|r| (r.seq(), r.payload().to_vec())).collect();
    assert_eq!(stored, acked);
}

#[test]
fn durable_appends_from_many_threads_share_syncs() {
    // Goal: group commit. Concurrent durable appends are each durable on
    // return, yet far fewer syncs run than there are durable appends,
    // because one sync covers every record published before it started.
    // Method: 8 threads x 200 append_durable on a real file system; each
    // checks durable_seq right after its call returns; then the log's sync
    // counter must be below the 1600 durable appends (one sync each, as a
    // mutex around append + sync would do, fails this).
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts().sync_policy(SyncPolicy::Never)).unwrap();
    let ingest = log.ingest().unwrap();
    let before = log.stats().syncs;
    const P: u64 = 8;
    const N: u64 = 200;
    thread::scope(|s| {
        for p in 0..P {
            let (ingest, log) = (ingest.clone(), log.clone());
            s.spawn(move || {
                for i in 0..N {
                    let seq = ingest.append_durable(&payload(p, i)).unwrap();
                    assert!(log.durable_seq() >= Some(seq), "returned before a sync covered {seq}");
                }
            });
        }
    });
    let syncs = log.stats().syncs - before;
    assert!(syncs < P * N, "{syncs} syncs for {} durable appends: none were shared", P * N);
    eprintln!("{} durable appends, {syncs} syncs", P * N);
    ingest.close().unwrap();
    assert_eq!(log.snapshot().len(), P * N);
}

#[test]
fn a_durable_ticket_answers_only_once_synced() {
    // Goal: try_get on a durable ticket does not report a record durable
    // before a sync covered it; wait() syncs it, and one wait covers the
    // tickets before it.
    // Method: Never policy; submit_durable 3 records; try_get on the first
    // is None (nothing synced); wait on the last; then try_get on the first
    // answers its seq.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts().sync_policy(SyncPolicy::Never)).unwrap();
    let ingest = log.ingest().unwrap();
    let mut first = ingest.submit_durable(Entry::new(b"a")).unwrap();
    let _second = ingest.submit_durable(Entry::new(b"b")).unwrap();
    let third = ingest.submit_durable(Entry::new(b"c")).unwrap();
    assert!(first.try_get().is_none(), "durable before any sync");
    assert_eq!(log.durable_seq(), None);
    assert_eq!(third.wait().unwrap(), 2);
    assert_eq!(log.durable_seq(), Some(2));
    assert_eq!(first.try_get().map(|r| r.unwrap()), Some(0));
    assert!(first.try_get().is_none(), "answered twice");
}
