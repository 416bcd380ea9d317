use std::time::Duration;
use varvelog::{Log, Options, WaitStrategy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path(), Options::new())?;
    let reader = log.clone();
    let follower = std::thread::spawn(move || -> varvelog::Result<u64> {
        // Park (the default) spins briefly then sleeps; BusySpin is for lowest latency.
        let mut tail = reader.tail_from(0)?.wait_strategy(WaitStrategy::BusySpin);
        let mut sum = 0u64;
        while let Some(rec) = tail.next_timeout(Duration::from_secs(1))? {
            sum += rec.payload().len() as u64; // zero-copy view into the mapping
        }
        Ok(sum) // a second without records ends the loop
    });
    let mut writer = log.writer()?;
    for i in 0..1000u32 {
        writer.append(&i.to_le_bytes())?; // the writer wakes a parked tail only if one waits
    }
    println!("the follower read {} bytes", follower.join().expect("follower thread")?);
    Ok(())
}
