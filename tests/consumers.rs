//! Named consumers: resuming from committed positions, automatic commits,
//! exclusive names, listing and removal, damage, logs cut back, and
//! retention that keeps what consumers have not read.

mod common;

use std::time::Duration;

use common::{append_model, check_model, opts, segment_files, write_model_log};
use varvelog::{ConsumerOptions, Error, Log, ReadOnlyLog, Retention};

const WAIT: Duration = Duration::from_secs(5);

/// Reads `n` records from `c`, checking each against the model from `from`.
fn read_n(c: &mut varvelog::Consumer, from: u64, n: u64) {
    for seq in from..from + n {
        let r = c.next_timeout(WAIT).unwrap().expect("published");
        check_model(&r, seq);
    }
}

#[test]
fn a_consumer_resumes_after_its_last_commit_and_gets_uncommitted_records_again() {
    // Goal: at-least-once, never a skip. Method: read 30, commit, read 20
    // more without committing, drop; the log is closed and reopened; the
    // consumer resumes at 30, in-process and from a read-only reader.
    let dir = tempfile::tempdir().unwrap();
    write_model_log(dir.path(), 100);
    {
        let log = Log::open(dir.path(), opts()).unwrap();
        let mut c = log.consumer("billing").unwrap();
        assert_eq!((c.name(), c.position(), c.committed()), ("billing", 0, 0));
        read_n(&mut c, 0, 30);
        c.commit().unwrap();
        read_n(&mut c, 30, 20);
        assert_eq!((c.position(), c.committed(), c.lag()), (50, 30, 50));
    }
    let log = Log::open(dir.path(), opts()).unwrap();
    let mut c = log.consumer("billing").unwrap();
    assert_eq!(c.position(), 30);
    read_n(&mut c, 30, 5);
    c.commit_sync().unwrap();
    drop(c);
    let reader = ReadOnlyLog::open(dir.path()).unwrap();
    let mut c = reader.consumer("billing").unwrap();
    assert_eq!(c.position(), 35);
    let rest: Vec<u64> = c.poll().unwrap().map(|r| r.unwrap().seq()).collect();
    assert_eq!(rest, (35..100).collect::<Vec<_>>());
    c.commit().unwrap();
    drop(c);
    let info = &log.consumers().unwrap()[0];
    assert_eq!((info.name.as_str(), info.position, info.lag), ("billing", Some(100), 0));
    assert!(info.committed_at.is_some());
}

#[test]
fn automatic_commits_cover_only_records_handed_out_before_the_call() {
    // Goal: an automatic commit never covers the record being handed out.
    // Method: commit every 4 records; after 10 records the committed
    // position is 8 (made when the 9th was asked for) and a reopened
    // consumer resumes there.
    let dir = tempfile::tempdir().unwrap();
    write_model_log(dir.path(), 20);
    let log = Log::open(dir.path(), opts()).unwrap();
    let every4 = ConsumerOptions::new().commit_every_records(4);
    {
        let mut c = log.consumer_with("c", every4).unwrap();
        read_n(&mut c, 0, 10);
        assert_eq!(c.committed(), 8);
    }
    let mut c = log.consumer_with("c", every4).unwrap();
    assert_eq!(c.position(), 8);
    // Through the owned-record iterator too.
    let owned: Vec<u64> = c.by_ref().take(5).map(|r| r.unwrap().seq()).collect();
    assert_eq!(owned, [8, 9, 10, 11, 12]);
    assert_eq!(c.committed(), 12);
    drop(c);
    // After a seek back, counting starts again from the seek: reading 2..6
    // commits 6 (made when the fifth record was asked for).
    let mut c = log.consumer_with("c", every4).unwrap();
    c.seek(2).unwrap();
    read_n(&mut c, 2, 5);
    assert_eq!(c.committed(), 6);
    drop(c);
    // By time: an interval of zero commits whenever something was read.
    let mut c = log.consumer_with("t", ConsumerOptions::new().commit_every(Duration::ZERO)).unwrap();
    read_n(&mut c, 0, 3);
    assert_eq!(c.committed(), 2);
}

#[test]
fn one_consumer_of_a_name_at_a_time_and_names_are_checked() {
    // Goal: two readers cannot share a position by accident, and a name
    // that cannot be a file name is a typed error. Method: open the same
    // name twice (from a Log and a ReadOnlyLog), then after a drop; try
    // bad names.
    let dir = tempfile::tempdir().unwrap();
    write_model_log(dir.path(), 3);
    let log = Log::open(dir.path(), opts()).unwrap();
    let reader = ReadOnlyLog::open(dir.path()).unwrap();
    let held = log.consumer("one").unwrap();
    assert!(matches!(reader.consumer("one"), Err(Error::ConsumerBusy { ref name, .. }) if name == "one"));
    assert!(matches!(log.consumer("one"), Err(Error::ConsumerBusy { .. })));
    assert!(matches!(log.remove_consumer("one"), Err(Error::ConsumerBusy { .. })));
    drop(held);
    reader.consumer("one").unwrap();
    for bad in ["", "../escape", ".hidden", "with space", &"n".repeat(65)] {
        assert!(matches!(log.consumer(bad), Err(Error::InvalidConsumerName { .. })), "{bad:?}");
    }
    assert_eq!(std::fs::read_dir(dir.path().join("consumers")).unwrap().count(), 1, "no file for a bad name");
}

#[test]
fn consumers_are_listed_with_lag_and_can_be_removed() {
    // Goal: what `varve consumers` shows. Method: two consumers, one never
    // committed; list; remove one; list again.
    let dir = tempfile::tempdir().unwrap();
    write_model_log(dir.path(), 50);
    let log = Log::open(dir.path(), opts()).unwrap();
    assert!(log.consumers().unwrap().is_empty());
    let mut a = log.consumer("a").unwrap();
    read_n(&mut a, 0, 20);
    a.commit().unwrap();
    drop(a);
    drop(log.consumer("b").unwrap());
    let list = log.consumers().unwrap();
    let view: Vec<_> = list.iter().map(|c| (c.name.as_str(), c.position, c.lag)).collect();
    assert_eq!(view, [("a", Some(20), 30), ("b", Some(0), 50)], "an opened consumer stores where it starts");
    assert_eq!(ReadOnlyLog::open(dir.path()).unwrap().consumers().unwrap(), list);
    assert!(log.remove_consumer("b").unwrap());
    assert!(!log.remove_consumer("b").unwrap());
    assert_eq!(log.consumers().unwrap().len(), 1);
}

#[test]
fn a_new_consumer_can_start_at_the_end() {
    // Goal: `start_from_end` skips history for a consumer that never
    // committed, and only for one.
    let dir = tempfile::tempdir().unwrap();
    write_model_log(dir.path(), 10);
    let log = Log::open(dir.path(), opts()).unwrap();
    let end = ConsumerOptions::new().start_from_end(true);
    let mut c = log.consumer_with("live", end).unwrap();
    assert_eq!(c.position(), 10);
    assert!(c.try_next().unwrap().is_none());
    append_model(&mut log.writer().unwrap(), 10);
    check_model(&c.next_timeout(WAIT).unwrap().unwrap(), 10);
    c.commit().unwrap();
    drop(c);
    let mut w = log.writer().unwrap();
    append_model(&mut w, 11);
    let c = log.consumer_with("live", end).unwrap();
    assert_eq!(c.position(), 11, "a committed position wins over start_from_end");
}

#[test]
fn a_damaged_position_file_is_reported_not_reset() {
    // Goal: damage is never silently turned into "start over". Method:
    // commit, then overwrite both slots with garbage; opening and listing
    // report corruption naming the file. One torn slot only falls back to
    // the other.
    let dir = tempfile::tempdir().unwrap();
    write_model_log(dir.path(), 10);
    let log = Log::open(dir.path(), opts()).unwrap();
    let mut c = log.consumer("d").unwrap();
    read_n(&mut c, 0, 4);
    c.commit().unwrap();
    read_n(&mut c, 4, 3);
    c.commit().unwrap();
    let path = c.position_file().to_path_buf();
    drop(c);
    // Opening stored generation 1 (position 0), the commits 2 and 3; the
    // last is in the slot at offset 512: tear it.
    common::flip_byte(&path, 512 + 16, 0xff);
    assert_eq!(log.consumer("d").unwrap().position(), 4, "the other slot's commit");
    common::write_bytes_at(&path, 0, &common::garbage(1024, 7));
    match log.consumer("d") {
        Err(e) => assert_eq!(e.corruption_location().map(|(p, _)| p.to_path_buf()), Some(path.clone()), "{e}"),
        Ok(c) => panic!("opened at {} from a damaged file", c.position()),
    }
    assert!(log.consumers().unwrap_err().is_corruption());
}

#[test]
fn a_position_past_the_end_of_a_log_cut_back_resumes_at_the_new_end() {
    // Goal: after a machine crash lost records the consumer had read, the
    // seqs given out again are read, not skipped. Method: a consumer
    // commits 10 in a log of 10; its position file is put beside a log of 6
    // (the same log cut back); it resumes at 6 and reads the new seq 6.
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_model_log(a.path(), 10);
    write_model_log(b.path(), 6);
    {
        let log = Log::open(a.path(), opts()).unwrap();
        let mut c = log.consumer("x").unwrap();
        read_n(&mut c, 0, 10);
        c.commit().unwrap();
    }
    std::fs::create_dir(b.path().join("consumers")).unwrap();
    std::fs::copy(a.path().join("consumers/x.pos"), b.path().join("consumers/x.pos")).unwrap();
    let log = Log::open(b.path(), opts()).unwrap();
    let c = log.consumer("x").unwrap();
    assert_eq!(c.position(), 6);
    // The lowered position is stored at once: dropped before any commit,
    // the consumer still resumes at 6 once seqs 6.. exist again.
    drop(c);
    let mut w = log.writer().unwrap();
    for seq in 6..20 {
        append_model(&mut w, seq);
    }
    let mut c = log.consumer("x").unwrap();
    assert_eq!(c.position(), 6);
    check_model(&c.next_timeout(WAIT).unwrap().unwrap(), 6);
}

#[test]
fn a_consumer_starting_at_the_end_that_never_committed_resumes_at_its_start() {
    // Goal: a consumer created at the end and stopped before its first
    // commit does not skip what was published meanwhile. Method: open at
    // the end (10), read 10..14, drop, append up to 30, reopen: 10.
    let dir = tempfile::tempdir().unwrap();
    write_model_log(dir.path(), 10);
    let log = Log::open(dir.path(), opts()).unwrap();
    let mut w = log.writer().unwrap();
    let end = ConsumerOptions::new().start_from_end(true).commit_every_records(100);
    let mut c = log.consumer_with("late", end).unwrap();
    for seq in 10..15 {
        append_model(&mut w, seq);
    }
    read_n(&mut c, 10, 5);
    drop(c);
    for seq in 15..30 {
        append_model(&mut w, seq);
    }
    assert_eq!(log.consumers().unwrap()[0].position, Some(10));
    assert_eq!(log.consumer_with("late", end).unwrap().position(), 10);
}

#[test]
fn a_read_only_handle_opened_long_ago_sees_the_log_end_before_placing_a_consumer() {
    // Goal: a stale read-only view neither lowers a committed position nor
    // starts "from the end" at an old end. Method: open the reader, then
    // append across many segments and commit far along through the writer;
    // the old reader's consumer resumes at the commit, its end tail at the end.
    let dir = tempfile::tempdir().unwrap();
    write_model_log(dir.path(), 10);
    let reader = ReadOnlyLog::open(dir.path()).unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    let mut w = log.writer().unwrap();
    for seq in 10..3000 {
        append_model(&mut w, seq);
    }
    let mut c = log.consumer("far").unwrap();
    read_n(&mut c, 0, 2900);
    c.commit().unwrap();
    drop(c);
    assert_eq!(reader.consumer("far").unwrap().position(), 2900);
    assert_eq!(reader.tail_from_end().unwrap().position(), 3000);
    let end = ConsumerOptions::new().start_from_end(true);
    assert_eq!(reader.consumer_with("new", end).unwrap().position(), 3000);
}

#[test]
fn commits_by_time_happen_while_the_consumer_waits() {
    // Goal: `commit_every` bounds how much a crash re-delivers even when
    // the consumer sits idle. Method: read 3 records, then wait 300 ms for
    // a record that never comes, with commits every 10 ms.
    let dir = tempfile::tempdir().unwrap();
    write_model_log(dir.path(), 3);
    let log = Log::open(dir.path(), opts()).unwrap();
    let mut c = log.consumer_with("idle", ConsumerOptions::new().commit_every(Duration::from_millis(10))).unwrap();
    read_n(&mut c, 0, 3);
    assert!(c.next_timeout(Duration::from_millis(300)).unwrap().is_none());
    assert_eq!(c.committed(), 3);
    assert_eq!(log.consumers().unwrap()[0].position, Some(3));
}

#[test]
fn a_damaged_position_file_neither_stops_retention_nor_resists_removal() {
    // Goal: one unreadable file cannot fill the disk or be stuck. Method:
    // damage a consumer's file; retention with a hold still runs (keeping
    // what the cap allows for it); `remove_consumer` removes it.
    let dir = tempfile::tempdir().unwrap();
    write_model_log(dir.path(), 3000);
    let log = Log::open(dir.path(), opts()).unwrap();
    let path = log.consumer("bad").unwrap().position_file().to_path_buf();
    common::write_bytes_at(&path, 0, &common::garbage(1024, 3));
    let all = Retention::new().min_seq(u64::MAX);
    let r = log.retain(&all.keep_for_consumers(u64::MAX)).unwrap();
    assert!(r.removed.is_empty() && r.held_for_consumers > 0, "{r:?}");
    let r = log.retain(&all.keep_for_consumers(0)).unwrap();
    assert!(!r.removed.is_empty(), "{r:?}");
    assert!(log.remove_consumer("bad").unwrap());
    assert!(!path.exists());
}

#[test]
fn a_tail_iterator_ends_after_an_error_until_it_seeks() {
    // Goal: an iterator whose position was removed does not spin on the
    // same error. Method: a tail at 0, retention removes 0; the iterator
    // yields Truncated once, then None; after a seek it reads again.
    let dir = tempfile::tempdir().unwrap();
    write_model_log(dir.path(), 3000);
    let log = Log::open(dir.path(), opts()).unwrap();
    let mut tail = log.tail_from(0).unwrap();
    let first = log.retain(&Retention::new().min_seq(2000)).unwrap().first_seq;
    // The tail's snapshot still shows seg 0; drain it until it needs a
    // newer one, which no longer has its next record.
    let mut seen = 0;
    let err = loop {
        match tail.next().expect("an item before the end") {
            Ok(_) => seen += 1,
            Err(e) => break e,
        }
        assert!(seen < 3000, "never told about the removed records");
    };
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
    assert!(tail.next().is_none(), "the iterator ended");
    tail.seek(first).unwrap();
    assert_eq!(tail.next().unwrap().unwrap().seq(), first);
}

#[test]
fn retention_keeps_segments_a_consumer_has_not_committed_past_up_to_its_cap() {
    // Goal: `keep_for_consumers` holds what a lagging consumer still needs,
    // within the cap, and a consumer whose records went anyway is told.
    // Method: 64 KiB segments; a consumer commits part way; retention by
    // seq would remove everything sealed; with a large cap it keeps the
    // consumer's segment on, with a cap of one segment it keeps one.
    let dir = tempfile::tempdir().unwrap();
    write_model_log(dir.path(), 5000);
    let log = Log::open(dir.path(), opts()).unwrap();
    let sealed = segment_files(dir.path()).len() - 1;
    assert!(sealed >= 6, "{sealed} sealed segments");
    let mut c = log.consumer("slow").unwrap();
    read_n(&mut c, 0, 1500);
    c.commit().unwrap();
    drop(c);
    let all = Retention::new().min_seq(u64::MAX);
    let r = log.retain(&all.keep_for_consumers(u64::MAX)).unwrap();
    assert!(r.first_seq <= 1500, "first seq {} is past the consumer's position", r.first_seq);
    assert!(r.held_for_consumers >= 4 && !r.removed.is_empty(), "{r:?}");
    let mut c = log.consumer("slow").unwrap();
    read_n(&mut c, 1500, 10);
    drop(c);
    // Sealed files differ a little in size: a cap of two hold one or two.
    let one_segment = std::fs::metadata(&segment_files(dir.path())[0].1).unwrap().len();
    let r = log.retain(&all.keep_for_consumers(2 * one_segment)).unwrap();
    assert!((1..=2).contains(&r.held_for_consumers), "{r:?}");
    assert!(r.first_seq > 1500);
    assert!(matches!(log.consumer("slow"), Err(Error::Truncated { requested: 1500, .. })));
    // Unless told to skip what was removed.
    let skipping = log.consumer_with("slow", ConsumerOptions::new().skip_removed(true)).unwrap();
    assert_eq!((skipping.position(), skipping.committed()), (r.first_seq, r.first_seq));
    drop(skipping);
    // A consumer that never committed starts at what is left.
    assert_eq!(log.consumer("late").unwrap().position(), r.first_seq);
    // Without the hold, retention ignores consumers.
    log.remove_consumer("late").unwrap();
    assert!(log.retain(&all).unwrap().held_for_consumers == 0);
}

#[test]
fn owned_records_outlive_their_segment_and_copy_nothing() {
    // Goal: an owned record keeps its mapping alive: after retention
    // removed its segment it still reads the same bytes, and its payload
    // points into the mapping rather than a copy.
    let dir = tempfile::tempdir().unwrap();
    write_model_log(dir.path(), 3000);
    let log = Log::open(dir.path(), opts()).unwrap();
    let mut tail = log.tail_from(0).unwrap();
    let owned: Vec<_> = tail.by_ref().take(3).map(Result::unwrap).collect();
    let snap = log.snapshot();
    let borrowed = snap.get(1).unwrap().unwrap();
    assert_eq!(owned[1].payload().as_ptr(), borrowed.payload().as_ptr(), "a copy, not the mapping");
    drop(snap);
    let r = log.retain(&Retention::new().min_seq(2000)).unwrap();
    assert!(r.first_seq > 2, "{r:?}");
    for (seq, o) in owned.iter().enumerate() {
        assert_eq!(o.seq(), seq as u64);
        assert_eq!(o.payload(), common::payload_for(seq as u64));
        assert_eq!(o.key(), Some(&common::key_for(seq as u64)[..]).filter(|k| !k.is_empty()));
    }
    let moved = std::thread::spawn({
        let o = owned[2].clone();
        move || o.into_payload()
    });
    assert_eq!(moved.join().unwrap(), common::payload_for(2));
}
