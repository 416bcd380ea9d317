use std::time::Duration;

use varvelog::{CompactOptions, Entry, Log, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path(), Options::new())?;
    let mut w = log.writer()?;
    w.append_entry(Entry::new(b"alice@old.example").key(b"user:1"))?;
    w.append_entry(Entry::new(b"alice@new.example").key(b"user:1"))?;
    w.append_entry(Entry::new(b"bob@example.org").key(b"user:2"))?;
    w.append_entry(Entry::new(b"").key(b"user:2").tombstone())?;
    w.sync()?;

    let snap = log.snapshot();
    assert_eq!(snap.get_key(b"user:1")?.unwrap().payload(), b"alice@new.example");
    assert!(snap.get_key(b"user:2")?.is_none()); // deleted
    assert_eq!(snap.iter_key(b"user:1").count(), 2); // every version, newest first
    for record in &log.kv() {
        let record = record?; // the newest live record of each key, in seq order
        let key = String::from_utf8_lossy(record.key().unwrap_or_default());
        println!("{key} = {}", String::from_utf8_lossy(record.payload()));
    }

    // Keep the newest record of every key in the sealed segments (none yet
    // here: all four records are in the live segment); drop tombstones older
    // than a day. Seqs do not change: `get(seq)` of a removed record is
    // `None`, and iterators skip it.
    let report = log.compact(&CompactOptions::new().tombstone_retention(Duration::from_secs(86_400)))?;
    println!("removed {} records", report.records_removed);
    Ok(())
}
