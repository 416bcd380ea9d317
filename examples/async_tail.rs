//! Needs the `async` feature: `cargo run --example async_tail --features async`.
use futures_util::StreamExt;
use varvelog::{Log, Options};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path(), Options::new())?;

    // The writer wakes the task when it publishes; no polling loop.
    let mut records = log.consumer("indexer")?.into_stream();
    let reader = tokio::spawn(async move {
        let mut sum = 0u64;
        while let Some(record) = records.next().await {
            let record = record?; // an owned record: shares the mapping, no copy
            sum += u64::from(record.payload()[0]);
            if record.seq() == 999 {
                records.get_mut().commit()?;
                break;
            }
        }
        Ok::<u64, varvelog::Error>(sum)
    });

    let mut writer = log.writer()?;
    for i in 0..1000u32 {
        writer.append(&[(i % 7) as u8])?;
    }
    println!("the indexer summed {}", reader.await??);
    Ok(())
}
