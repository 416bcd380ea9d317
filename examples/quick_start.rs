use std::time::{Duration, SystemTime};

use varvelog::{Entry, Log, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?; // any directory; created if missing
    let log = Log::open(dir.path(), Options::new())?;
    let mut writer = log.writer()?; // the one writer (typed error if taken)
    let seq = writer.append(b"hello")?; // visible to readers on return
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    writer.append_entry(Entry::new(b"v1").key(b"user-42").time(an_hour_ago))?;
    writer.append_batch([&b"a"[..], b"b", b"c"])?; // readers see all three or none
    writer.sync()?; // durable from here on

    let snap = log.snapshot(); // lock-free, from any thread
    assert_eq!(snap.get(seq)?.unwrap().payload(), b"hello");
    for rec in snap.iter_from(seq) {
        let rec = rec?; // damage is an Err naming file and offset
        println!("{} {:?} {:?}", rec.seq(), rec.time(), rec.payload());
    }
    let newest_first: Vec<u64> = snap.range(1..4).rev().map(|r| r.map(|r| r.seq())).collect::<Result<_, _>>()?;
    assert_eq!(newest_first, [3, 2, 1]);

    drop(writer);
    log.close()?; // syncs, finishes sealing, reports what a drop would not
    Ok(())
}
