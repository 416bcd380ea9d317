use std::time::Duration;
use varvelog::{ConsumerOptions, Log, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path(), Options::new())?;
    let mut writer = log.writer()?;
    for i in 0..10u32 {
        writer.append(&i.to_le_bytes())?;
    }

    // Commits its position every 4 records (and could call commit() itself).
    let opts = ConsumerOptions::new().commit_every_records(4);
    let mut billing = log.consumer_with("billing", opts)?;
    for _ in 0..6 {
        let record = billing.next_timeout(Duration::from_secs(1))?.expect("published");
        println!("billed record {}", record.seq());
    }
    drop(billing); // a crash here would do the same: records 4 and 5 were not committed

    // Restarted (here, or in another process through Log::open_read_only):
    // resumes at the last commit, so nothing is skipped.
    let billing = log.consumer_with("billing", opts)?;
    println!("resuming at {}", billing.position()); // 4
    for c in log.consumers()? {
        println!("{}: at {:?}, {} records behind", c.name, c.position, c.lag);
    }
    Ok(())
}
